// lockrank.hpp — the runtime's locks and the one order they are taken in
// (Go's lockrank.go, much smaller).
//
// Lock is a futex mutex for runtime-internal state (Go's runtime.mutex). It
// differs from std::mutex in one way that matters here: a goroutine may take
// it and its M's g0 release it, after the goroutine's context is saved
// (gopark's unlock function) — same thread, other stack. Sanitizers that
// track "the owner thread" of a std::mutex by fiber would call that a bug;
// this lock is only atomics, which they understand.
//
// The order: THE table of every runtime lock. A lock may be taken only while
// every lock already held has a lower rank (equal ranks only where marked
// "several": channel locks, taken in address order by select; the root
// registry's shards, taken in index order by the collector). Debug builds
// check it on every acquisition (lock.cpp). Every other comment about lock
// order in the tree points here instead of restating it.
//
//     noplock (mheap_.noplock)      5   gc: P-less allocation; the collector
//                                       holds it from stop to start the world
//     hooks (the cleanup hooks)     6   held while the hooks run (mgc.cpp)
//     pool (poolsLock)              7   sync.Pool; taken in its cleanup hook
//     sched (sched.lock)           10   also under noplock (suspend_hogs)
//     gfree (sched.gFreeLock)      15   leaf
//     timers (p.timers.lock)       20
//     hchan (a channel's lock)     30   several, in address order
//     sema (a semaphore root)      40
//     finalizer (finlock)          45   the root scan: finlock -> allg -> roots
//     allg (allglock)              50
//     rootkeys (gc_add_root's map) 55   held while linking its node
//     roots (a root shard)         60   several, in index order (the root scan)
//     mcentral (mcentral.lock)     70   one at a time
//     heap (mheap_.lock)           75
//     sweep (the sweeper's lock)   80   leaf
//     forcegc (forcegc.lock)       82   leaf
//     gcwork (work.full's lock)    90   leaf; also on mark helper threads
//
// Never held across a park: a goroutine that parks holds at most the one
// lock its unlock function releases. Semaphores that park (gcsema,
// worldsema) are therefore not in the table: they are taken with no lock held.
#pragma once

#include <atomic>
#include <cstdint>

namespace goro::detail {

enum class LockRank : std::uint8_t {
  noplock = 5,
  hooks = 6,
  pool = 7,
  sched = 10,
  gfree = 15,
  timers = 20,
  hchan = 30,
  sema = 40,
  finalizer = 45,
  allg = 50,
  rootkeys = 55,
  roots = 60,
  mcentral = 70,
  heap = 75,
  sweep = 80,
  forcegc = 82,
  gcwork = 90,
};

class Lock {
 public:
  explicit constexpr Lock(LockRank rank = LockRank::sema) : rank_(rank) {}
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  void lock() {
#ifndef NDEBUG
    rank_acquire(rank_);
#endif
    std::uint32_t z = 0;
    if (!key_.compare_exchange_strong(z, 1, std::memory_order_acquire)) lock_slow();
  }
  bool try_lock() {
    std::uint32_t z = 0;
    if (!key_.compare_exchange_strong(z, 1, std::memory_order_acquire)) return false;
#ifndef NDEBUG
    rank_acquire(rank_);
#endif
    return true;
  }
  void unlock() {
#ifndef NDEBUG
    rank_release(rank_);
#endif
    if (key_.exchange(0, std::memory_order_release) == 2) unlock_slow();
  }

 private:
  void lock_slow();
  void unlock_slow();
  static void rank_acquire(LockRank r);
  static void rank_release(LockRank r);

  std::atomic<std::uint32_t> key_{0};  // 0 free, 1 locked, 2 locked with waiters
  LockRank rank_;
};

}  // namespace goro::detail
