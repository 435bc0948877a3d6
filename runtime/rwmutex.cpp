// rwmutex.cpp — sync.RWMutex (Go's sync/rwmutex.go).
//
// A reader/writer lock built from a Mutex (writers among themselves), two
// runtime semaphores and two counters:
//
//   readerCount  readers inside or arriving. A writer announces itself by
//                subtracting rwmutexMaxReaders, making it negative: a reader
//                that then increments it sees a negative value and parks on
//                readerSem instead of entering. That is writer preference —
//                a pending writer blocks NEW readers, so a stream of readers
//                cannot starve it.
//   readerWait   how many readers were inside when the writer announced
//                itself; each of them, leaving, decrements it, and the last
//                one releases writerSem, where the writer waits.
//
// unlock adds rwmutexMaxReaders back; the value it then sees is the number
// of readers that arrived (and parked) meanwhile, and it releases readerSem
// that many times. Readers are therefore admitted in batches between
// writers, so neither side starves.
//
// Rejected: a Mutex plus a Cond (every reader would take the mutex: readers
// would serialise on it, which is what an RWMutex exists to avoid).
//
// Invariants:
//   - readerCount >= 0 with no writer pending; in [-rwmutexMaxReaders, 0)
//     with one pending or inside (the writer holds w_).
//   - At most rwmutexMaxReaders - 1 concurrent readers.
//   - Only the goroutine holding w_ subtracts rwmutexMaxReaders, and only it
//     (in unlock) adds it back.
//   - Misuse is Go's fatal error: "sync: RUnlock of unlocked RWMutex",
//     "sync: Unlock of unlocked RWMutex".
#include "goro/sync.hpp"
#include "sched/proc.hpp"

namespace goro {

void RWMutex::lock_shared() {
  if (readerCount_.fetch_add(1, std::memory_order_acq_rel) + 1 < 0) {
    // A writer is pending or inside: wait for its unlock to admit us.
    detail::semacquire(&readerSem_, false, detail::WaitReason::sync_rwmutex_rlock);
  }
}

bool RWMutex::try_lock_shared() {
  std::int32_t c = readerCount_.load(std::memory_order_relaxed);
  for (;;) {
    if (c < 0) return false;  // a writer is pending or inside
    if (readerCount_.compare_exchange_weak(c, c + 1, std::memory_order_acquire,
                                           std::memory_order_relaxed))
      return true;
  }
}

void RWMutex::unlock_shared() {
  const std::int32_t r = readerCount_.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if (r >= 0) return;
  // rUnlockSlow: a writer is pending.
  if (r + 1 == 0 || r + 1 == -rwmutexMaxReaders) detail::fatal("sync: RUnlock of unlocked RWMutex");
  // We were one of the readers the writer waits for; the last one wakes it.
  if (readerWait_.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0) {
    detail::semrelease(&writerSem_, false);
  }
}

void RWMutex::lock() {
  // First, resolve competition with other writers.
  w_.lock();
  // Announce to readers there is a pending writer; r is how many are inside.
  const std::int32_t r = readerCount_.fetch_sub(rwmutexMaxReaders, std::memory_order_acq_rel);
  // Wait for the active readers. readerWait may already have gone negative
  // (readers left between the two steps), hence the add-and-test.
  if (r != 0 && readerWait_.fetch_add(r, std::memory_order_acq_rel) + r != 0) {
    detail::semacquire(&writerSem_, false, detail::WaitReason::sync_rwmutex_lock);
  }
}

bool RWMutex::try_lock() {
  if (!w_.try_lock()) return false;
  std::int32_t z = 0;
  if (!readerCount_.compare_exchange_strong(z, -rwmutexMaxReaders, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
    w_.unlock();
    return false;
  }
  return true;
}

void RWMutex::unlock() {
  // Announce to readers there is no active writer.
  const std::int32_t r =
      readerCount_.fetch_add(rwmutexMaxReaders, std::memory_order_acq_rel) + rwmutexMaxReaders;
  if (r >= rwmutexMaxReaders) detail::fatal("sync: Unlock of unlocked RWMutex");
  // Admit the readers that arrived while we were pending or inside.
  for (std::int32_t i = 0; i < r; i++) detail::semrelease(&readerSem_, false);
  // Allow other writers to proceed.
  w_.unlock();
}

}  // namespace goro
