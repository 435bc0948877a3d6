// timer.hpp — runtime timers, kept in a heap per P: Go's runtime/time.go.
//
// A Timer calls f(arg, seq) on some M (with a P) once `when` has passed; if
// period > 0 it is re-armed `period` later. sleep_for parks its goroutine
// with a timer whose f readies it; the time package's Timer and Ticker send
// on a channel from f.
//
// Why per P (Go 1.14's design) rather than one global heap with a timer
// thread: adding a timer locks only the current P's heap, firing happens on
// the scheduler loop that is already running (no thread wake-up), and 100k
// sleepers spread over all Ps' heaps. The cost is that an idle runtime needs
// one M to sleep until the earliest deadline of all Ps: the "watcher"
// (findrunnable, sched.pollUntil).
//
// Invariants:
//   - t.pp != nullptr  <=>  t is in t.pp->timers.heap (at index t.index if
//     t.indexed).
//   - t.pp and t.index change only under t.pp->timers.lock.
//   - a timer that is not `indexed` (a sleep's) is never deleted before it
//     fires, so it leaves the heap only from the top: its index is never
//     needed, and the sifts do not write it. That write, into the sleeper's
//     frame on its own stack, was a cache miss (and often a TLB miss) at
//     every level a sift moved the timer.
//   - a heap entry's `when` equals its timer's `when`: the heap keeps a
//     copy beside the pointer, so sifting compares entries in the heap's
//     own array instead of loading each timer (a cache miss apiece when
//     the timers are the sleeping goroutines' own, spread over their Gs);
//   - timers.when0 equals the heap's minimum `when` (0 if empty); readers
//     use it without the lock to skip the heap when nothing is due.
//   - f runs without the timers lock held, so it may take other locks
//     (a channel's) and add timers.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "sched/lockrank.hpp"

namespace goro::detail {

struct P;

struct Timer {
  std::int64_t when = 0;
  std::int64_t period = 0;
  void (*f)(void* arg, std::uintptr_t seq) = nullptr;
  void* arg = nullptr;
  std::uintptr_t seq = 0;
  std::atomic<P*> pp{nullptr};  // the P whose heap holds it, if any
  std::int32_t index = -1;      // its place in that heap, if indexed
  bool indexed = true;          // false: never deltimer'd or modtimer'd
};

struct TimerWhen {
  std::int64_t when;
  Timer* t;
  bool indexed;  // t->indexed, kept here so a sift need not load t
};

struct Timers {
  Lock lock{LockRank::timers};  // guards heap and the pp/index of every timer in it
  std::vector<TimerWhen> heap;
  std::atomic<std::int64_t> when0{0};
};

// addtimer arms t (t.when, t.period, t.f, t.arg set) on the current P.
// t must not be armed already.
void addtimer(Timer* t);
// deltimer disarms t; returns true if it was armed (Go's Timer.Stop result).
bool deltimer(Timer* t);
// modtimer disarms and re-arms t at `when`; returns whether it was armed.
bool modtimer(Timer* t, std::int64_t when, std::int64_t period);
// checktimers runs pp's timers that are due at `now` and returns the next
// deadline (0: none). The caller holds a P (f may ready goroutines).
std::int64_t checktimers(P* pp, std::int64_t now);
// timers_move moves every timer of `from` onto `to` (procresize).
void timers_move(P* from, P* to);
// nobarrierWakeTime returns the earliest deadline over all Ps (0: none).
std::int64_t timers_earliest();

}  // namespace goro::detail
