// mgc.hpp — the collector's state as one object, GcState, made when run()
// starts (gc_init) and destroyed when it ends (gc_teardown), owned by the
// Runtime (Runtime::gc). Go keeps the same state in globals: mheap_ (the
// heap, malloc.hpp), work (the cycle and the mark), gcController (pacing),
// finq/fing (mfinal.go), sweep (mgcsweep.go) and forcegc (proc.go). goro
// groups them so that every run() starts from constructed state: nothing is
// reset by hand, and nothing from an earlier run can leak into the next.
//
// What is NOT here, on purpose: the registry of extra roots (gc/roots.cpp)
// and the cleanup hooks (mgc.cpp). Their users — a global gc::Root, sync.Pool
// registering its hook once per process — outlive any one run, so they
// belong to the process.
//
// Locks: each field says which lock guards it; the ranks and the order are
// the table in sched/lockrank.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gc/malloc.hpp"
#include "gc/mdirty.hpp"
#include "gc/sysalloc.hpp"
#include "sched/lockrank.hpp"
#include "sched/note.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

// maxMarkWorkers bounds the threads that mark in parallel (the collecting
// goroutine's and the helpers).
inline constexpr int maxMarkWorkers = 8;

// Grey is an object waiting to be scanned: its base and size.
struct Grey {
  std::uintptr_t obj, size;
};

// GreyStack is a list of grey objects on mmap'd memory (sysalloc.hpp: the
// mark must not call malloc).
using GreyStack = std::vector<Grey, SysAllocator<Grey>>;

// gcWork is one mark worker's state (Go's gcWork): touched only by that
// worker while it drains, and by the collector between drains.
struct alignas(64) gcWork {
  GreyStack stack;                 // grey objects, scanned LIFO
  std::uint64_t marked_bytes = 0;  // bytes this worker marked this cycle
  bool parallel = false;           // other workers mark too: set bits with fetch_or
  Note wake;                       // sleeps here waiting for a batch (drain)
};

// markHelper is one helper thread (gcBgMarkWorker, as a thread: the world is
// stopped, so no M is free to run a goroutine). It has no M.
struct markHelper {
  std::thread thread;
  Note start;  // the collector wakes it for a drain, or to quit
};

// workType is Go's `work`: one cycle's bookkeeping and the mark machinery.
struct workType {
  std::atomic<std::uint32_t> startSema{1};  // gcsema: one cycle (or stats()) at a time
  std::atomic<G*> owner{nullptr};           // the goroutine running a cycle
  std::atomic<std::uint64_t> cycles{0};     // completed cycles (num_gc)

  // The concurrent mark (mgcmark.cpp): the goroutines that ran or were
  // readied during this concurrent mark, each once (G::gcrangen): the
  // concurrent passes rescan their stacks (mark termination rescans all).
  Lock ranLock{LockRank::gcran};
  std::vector<G*, SysAllocator<G*>> ran;  // GUARDED_BY(ranLock)

  // The workers' stacks: works[0] is the collecting goroutine's.
  gcWork works[maxMarkWorkers];

  // The shared work list (Go's work.full): batches of grey objects a worker
  // with plenty gives away for idle workers to take.
  Lock fullLock{LockRank::gcwork};
  std::vector<GreyStack, SysAllocator<GreyStack>> full;   // GUARDED_BY(fullLock)
  // Empty batches kept with their capacity for the next hand-off (Go's
  // work.empty), so that a warmed-up mark maps nothing.
  std::vector<GreyStack, SysAllocator<GreyStack>> spare;  // GUARDED_BY(fullLock)
  gcWork* sleepers[maxMarkWorkers] = {};  // GUARDED_BY(fullLock): idle workers asleep on wake
  int nsleepers = 0;                      // GUARDED_BY(fullLock)
  int nwait = 0;                        // GUARDED_BY(fullLock): workers waiting for a batch
  int nmarking = 0;                     // GUARDED_BY(fullLock): workers in this drain
  bool markDone = false;                // GUARDED_BY(fullLock)
  std::atomic<int> nwaitHint{0};        // nwait, readable without the lock

  // The helper threads: started before the world stops (gc_mark_prepare:
  // creating a thread allocates), kept for the run, joined by ~GcState.
  // helpers is touched only by the collector (under startSema).
  std::vector<std::unique_ptr<markHelper>> helpers;
  std::atomic<int> nhelping{0};      // helpers still draining this cycle
  Note helpersDone;                  // the last helper to finish wakes the collector
  std::atomic<bool> helpersQuit{false};

  // Threads the preemption signal took the P from, suspended for the root
  // scan (suspend_hogs); sized once, to the thread limit (sched.maxmcount).
  std::vector<M*> hogs;

  // Pauses and CPU time (under startSema).
  std::uint64_t pauseNs[gcPauseRing] = {};  // PauseNs ring, by cycle
  std::uint64_t pauseTotalNs = 0;
  bool fallbackSaid = false;  // gctrace said once why the mark is not concurrent
  std::int64_t cpuNs = 0;  // sum of cycle durations, for gctrace's P%
};

// gcControllerState is Go's gcController: when the next cycle starts.
struct gcControllerState {
  // heapMinimum: no cycle before the heap reaches 4 MiB (Go's heapMinimum).
  static constexpr std::uint64_t heapMinimum = 4 << 20;
  std::atomic<int> percent{100};             // GOGC; < 0: off
  std::atomic<std::uint64_t> heapMarked{0};  // live bytes found by the last mark
  std::atomic<std::uint64_t> heapGoal{0};    // next_gc: allocation waits for a cycle here
  std::atomic<std::uint64_t> heapTrigger{0};  // a background cycle starts here (<= heapGoal)
  std::atomic<bool> concurrent{false};        // marks run concurrently (dirty pages tracked)
  std::atomic<std::int64_t> lastGcNs{0};     // nanotime of the last cycle's end (forcegc)
};

// FinEntry is one queued finalizer: call == nullptr: run the destructor of
// the slot obj (header first); otherwise call(closure, obj). Its words are
// scanned conservatively, keeping both the closure and the object alive.
struct FinEntry {
  FinCallFn call = nullptr;
  void* closure = nullptr;
  void* obj = nullptr;
};

// Special is a finalizer set by gc::set_finalizer and not queued yet (Go's
// specialfinalizer).
struct Special {
  void* obj;  // the user's pointer (slot + header, if any)
  void* closure;
  FinCallFn call;
};

// finState is the finalizer queue, its goroutine and the set_finalizer
// specials (mfinal.go's finq, fing, finlock, fingwait; Go keeps specials on
// the span, one table under finlock is enough here).
struct finState {
  Lock lock{LockRank::finalizer};  // finlock: guards everything below
  std::vector<FinEntry> q;         // finalizers waiting to run
  FinEntry volatile cur{};         // the one running now (a root)
  G* g = nullptr;                  // the finalizer goroutine
  bool gwait = false;              // g is parked on an empty queue
  std::unordered_map<std::uintptr_t, Special> specials;  // slot address -> its finalizer
  std::atomic<std::size_t> nspecials{0};  // specials.size(), readable without the lock (sweep)
};

// sweepState is mgcsweep.go's `sweep`: the background sweeper.
struct sweepState {
  Lock lock{LockRank::sweep};    // guards parked, pending and g
  G* g = nullptr;                // the background sweeper goroutine
  bool parked = false;           // g is parked waiting for work
  bool pending = false;          // a cycle ended since g last looked
  std::atomic<int> inflight{0};  // spans popped off an unswept list, not yet placed
};

// forcegcState is proc.go's forcegc: the helper sysmon readies.
struct forcegcState {
  Lock lock{LockRank::forcegc};  // guards g and idle
  G* g = nullptr;
  bool idle = false;         // g is parked, waiting for sysmon or the heap trigger
  bool heapTrigger = false;  // woken because the heap reached its trigger
};

// GcState is everything the collector keeps for one run.
struct GcState {
  explicit GcState(Runtime* r);  // reserves the heap arena (fatal if it cannot), sets GOGC
  ~GcState();                    // joins the mark helpers, frees every mcache and span, unmaps
  GcState(const GcState&) = delete;
  GcState& operator=(const GcState&) = delete;

  mheap heap;  // Go's mheap_
  workType work;
  gcControllerState controller;
  finState fin;
  sweepState sweep;
  forcegcState forcegc;
  std::atomic<bool> workersStarted{false};  // bgsweep, runfinq, forcegchelper are running
  // Dirty-page tracking of the arena (mdirty.hpp); dirty.why != nullptr: the
  // concurrent mark is unavailable, every mark stops the world.
  DirtyTracker dirty;
};

// gcs is the running runtime's collector state. Only between gc_init and
// gc_teardown, on a thread of the runtime (or one the collector started).
inline GcState& gcs() { return *rt()->gc; }
inline mheap& mheap_() { return rt()->gc->heap; }

}  // namespace goro::detail
