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
// The order. A lock may be taken only while every lock already held has a
// lower rank (equal ranks only where marked: channel locks, taken in address
// order by select). Debug builds check it on every acquisition.
//
//     netpoll (pd.lock, pollcache)   5   held across modtimer, which may take
//                                        sched.lock; two are never held at once
//     sched (sched.lock)            10
//     gfree (sched.gFreeLock)       15   leaf
//     timers (p.timers.lock)        20
//     hchan (a channel's lock)      30   several, in address order
//     sema (a semaphore root)       40
//     allg (allglock)               50   leaf
//
// Never held across a park: a goroutine that parks holds at most the one
// lock its unlock function releases.
#pragma once

#include <atomic>
#include <cstdint>

namespace goro::detail {

enum class LockRank : std::uint8_t {
  netpoll = 5,
  sched = 10,
  gfree = 15,
  timers = 20,
  hchan = 30,
  sema = 40,
  allg = 50,
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
