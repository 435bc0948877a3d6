// mutex.cpp — sync.Mutex (Go's sync/mutex.go).
//
// The whole mutex is two words: state_ (the lock bit, two flags and the
// number of parked waiters) and sema_, a runtime semaphore (sched/sema.cpp)
// where the waiters park. An uncontended lock and unlock are one atomic
// operation each, inlined in sync.hpp; everything here is the slow path.
//
// Two modes, as in Go since 1.9:
//
//   Normal mode. Waiters queue FIFO on the semaphore, but a woken waiter
//   does not own the mutex: it competes with goroutines that are arriving
//   right now, and those usually win — they are already running on a CPU,
//   while the woken one still has to be scheduled. Barging keeps the lock
//   hot in one goroutine's cache and gives the best throughput. A waiter
//   that loses goes back to the FRONT of the queue (lifo), so it is the
//   next to be woken.
//
//   Starvation mode. A waiter that has failed to get the lock for more than
//   starvationThresholdNs (1 ms) sets mutexStarving. From then on unlock
//   hands the mutex straight to the waiter at the head of the queue
//   (semrelease with handoff, which also yields the P to it); newcomers do
//   not try to grab it and do not spin, they queue at the tail. The mode
//   ends when the waiter that received the lock is the last one, or waited
//   less than 1 ms: fairness is then paid for only while it is needed.
//
// Spinning: in normal mode an arriving goroutine may spin a few times
// (active_spin, 4 rounds of 30 pause instructions) when the holder is
// probably running on another CPU: only on a multicore machine, with
// GOMAXPROCS > 1, at least one other P running and this P's run queue
// empty, exactly Go's sync_runtime_canSpin. It sets mutexWoken while
// spinning so that unlock does not wake a waiter who would only lose.
//
// Rejected: a plain FIFO handoff mutex (fair but every contended unlock
// costs a context switch: an order of magnitude slower under load); an
// unbounded spin-then-park lock (burns a P that could run the holder when
// GOMAXPROCS is small).
//
// Invariants:
//   - state_ >> mutexWaiterShift counts goroutines parked on, or about to
//     park on, sema_; only a goroutine that sets mutexWoken or a handoff
//     decrements it on a waiter's behalf.
//   - At most one goroutine holds mutexWoken: a spinner or a woken waiter.
//   - In starvation mode the mutexLocked bit is not set by unlock: the woken
//     waiter owns the mutex and sets it itself (together with removing
//     itself from the count), so nobody can barge in between.
//   - Unlock of a state with mutexLocked clear is the fatal error
//     "sync: unlock of unlocked mutex", never a panic: the mutex state may
//     already be corrupt, so recovering would be unsafe (Go's reasoning).
#include "goro/sync.hpp"
#include "sched/config.hpp"
#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro {

namespace {

constexpr std::int64_t starvationThresholdNs = 1000 * 1000;
constexpr int active_spin = 4;       // Go's runtime active_spin
constexpr int active_spin_cnt = 30;  // pause instructions per round

int cached_ncpu() {
  static const int n = detail::ncpu();
  return n;
}

// canspin is Go's sync_runtime_canSpin: spin only if it can pay off — the
// holder may be running on another CPU and no other goroutine is waiting
// for this P.
bool canspin(int iter) {
  if (iter >= active_spin || cached_ncpu() <= 1) return false;
  detail::Runtime* r = detail::rt();
  const int procs = r->gomaxprocs.load(std::memory_order_relaxed);
  if (procs <= r->sched.npidle.load(std::memory_order_relaxed) +
                   r->sched.nmspinning.load(std::memory_order_relaxed) + 1)
    return false;
  detail::M* m = detail::getm();
  if (m == nullptr || m->p == nullptr || !detail::runqempty(m->p)) return false;
  return true;
}

// dospin is Go's procyield(active_spin_cnt).
void dospin() {
  for (int i = 0; i < active_spin_cnt; i++) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
}

}  // namespace

bool Mutex::try_lock() {
  std::int32_t old = state_.load(std::memory_order_relaxed);
  // Locked, or handed off to a waiter in starvation mode: not ours to take.
  if ((old & (mutexLocked | mutexStarving)) != 0) return false;
  // There may be a woken goroutine that wants the mutex; we barge, as a
  // spinning lock() would.
  return state_.compare_exchange_strong(old, old | mutexLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed);
}

// lock_slow is Go's lockSlow: spin, then register as a waiter and park;
// each wake-up either owns the mutex (starvation handoff) or competes again.
void Mutex::lock_slow() {
  // A runtime entry that does not yield: yielding between "found it
  // locked" and "registered as a waiter" would only let others barge in
  // (Go's lockSlow does not yield either). Inside it the preemption signal
  // cannot take our P, which parking needs.
  detail::Entry e("goro::Mutex::lock", detail::Entry::NoYield);
  std::int64_t wait_start = 0;  // when we first parked; 0: not yet
  bool starving = false;
  bool awoke = false;  // we hold mutexWoken (spinning, or woken by unlock)
  int iter = 0;
  std::int32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Spin while it is locked in normal mode and spinning may pay off.
    if ((old & (mutexLocked | mutexStarving)) == mutexLocked && canspin(iter)) {
      // Tell unlock not to wake anyone: we are awake and will take it.
      if (!awoke && (old & mutexWoken) == 0 && (old >> mutexWaiterShift) != 0 &&
          state_.compare_exchange_weak(old, old | mutexWoken, std::memory_order_relaxed)) {
        awoke = true;
      }
      dospin();
      iter++;
      old = state_.load(std::memory_order_relaxed);
      continue;
    }
    std::int32_t nw = old;
    // In starvation mode newcomers never take it: it goes to the head waiter.
    if ((old & mutexStarving) == 0) nw |= mutexLocked;
    if ((old & (mutexLocked | mutexStarving)) != 0) nw += 1 << mutexWaiterShift;
    // We switch to starvation mode only while it is locked: an unlocked
    // mutex in starvation mode would have nobody to hand it to.
    if (starving && (old & mutexLocked) != 0) nw |= mutexStarving;
    if (awoke) {
      if ((nw & mutexWoken) == 0) detail::fatal("sync: inconsistent mutex state");
      nw &= ~mutexWoken;
    }
    if (!state_.compare_exchange_weak(old, nw, std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
      continue;                                              // old reloaded by the failed CAS
    if ((old & (mutexLocked | mutexStarving)) == 0) return;  // locked it with the CAS
    // Park. A waiter that waited before goes to the front of the queue.
    const bool lifo = wait_start != 0;
    if (wait_start == 0) wait_start = detail::nanotime();
    detail::semacquire(&sema_, lifo, detail::WaitReason::sync_mutex_lock);
    starving = starving || detail::nanotime() - wait_start > starvationThresholdNs;
    old = state_.load(std::memory_order_acquire);
    if ((old & mutexStarving) != 0) {
      // Handed off: we own the mutex, but the state does not say so yet
      // (unlock left mutexLocked clear and our waiter count in place).
      if ((old & (mutexLocked | mutexWoken)) != 0 || (old >> mutexWaiterShift) == 0)
        detail::fatal("sync: inconsistent mutex state");
      std::int32_t delta = mutexLocked - (1 << mutexWaiterShift);
      // Leave starvation mode if we did not really starve or are the last
      // waiter: staying in it would force handoffs (and context switches)
      // on goroutines that could simply take the lock.
      if (!starving || (old >> mutexWaiterShift) == 1) delta -= mutexStarving;
      state_.fetch_add(delta, std::memory_order_acq_rel);
      return;
    }
    awoke = true;
    iter = 0;
  }
}

// unlock_slow is Go's unlockSlow; n is the state after clearing mutexLocked.
void Mutex::unlock_slow(std::int32_t n) {
  if (((n + mutexLocked) & mutexLocked) == 0) detail::fatal("sync: unlock of unlocked mutex");
  // A runtime entry that does not yield (semrelease readies a G and needs
  // our P): yielding here, with the mutex free and a woken waiter queued,
  // would hand the mutex over in normal mode behind the back of the
  // starvation logic; Go's unlock does not yield either.
  detail::Entry e("goro::Mutex::unlock", detail::Entry::NoYield);
  if ((n & mutexStarving) == 0) {
    std::int32_t old = n;
    for (;;) {
      // Nobody to wake, or someone already did (woken), or another goroutine
      // already locked it, or it is in starvation mode: done.
      if ((old >> mutexWaiterShift) == 0 || (old & (mutexLocked | mutexWoken | mutexStarving)) != 0)
        return;
      // Take the right to wake one waiter.
      const std::int32_t nw = (old - (1 << mutexWaiterShift)) | mutexWoken;
      if (state_.compare_exchange_weak(old, nw, std::memory_order_release,
                                       std::memory_order_relaxed)) {
        detail::semrelease(&sema_, false);
        return;
      }
    }
  }
  // Starvation mode: hand the mutex to the next waiter and yield our P to
  // it, so it runs at once. mutexLocked stays clear; the waiter sets it.
  // While mutexStarving is set newcomers do not take the lock, so this
  // handoff cannot be stolen.
  detail::semrelease(&sema_, true);
}

}  // namespace goro
