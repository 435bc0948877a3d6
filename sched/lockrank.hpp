// lockrank.hpp — the runtime's locks and the one order they are taken in
// (Go's lockrank.go, much smaller). This table is the only place the order
// is written; every other comment about lock order points here.
//
// Lock is a futex mutex for runtime-internal state (Go's runtime.mutex). It
// differs from std::mutex in two ways that matter here:
//   - a goroutine may take it and its M's g0 release it, after the
//     goroutine's context is saved (gopark's unlock function) — same thread,
//     other stack. Sanitizers that track "the owner thread" of a std::mutex
//     by fiber would call that a bug; this lock is only atomics;
//   - while it is held, the M's `locks` counter is raised, as Go's lock2
//     does (gp.m.locks++): the preemption signal never takes the P of an M
//     that holds a runtime lock (sched/preempt.cpp), so a user callback run
//     under a lock (a channel element's move constructor) cannot lose the P
//     and then invert the order below by taking sched.lock.
// No runtime code uses std::mutex: nothing would check its order, and it
// does not raise m.locks.
//
// unlock is a locked exchange: it must see whether a waiter marked the lock
// contended (key 2) and went to sleep on the futex. unlock_plain, for a
// channel's lock only, reads the key first and, when nobody marked it,
// ends the critical section with a plain release store: no locked
// instruction, no full barrier. A waiter that marks the key between that
// read and that store is not woken; so a channel lock's sleepers (and only
// theirs) wait with a timeout (lock.cpp), and retry.
//
// The order. A lock may be taken only while every lock already held has a
// lower rank (equal ranks only where marked "several": channel locks, taken
// in address order by select; the root registry's shards, taken in index
// order by the collector). Debug builds check it on every acquisition.
//
//   rank  lock                                 file                 notes
//   ----  -----------------------------------  -------------------  ----------------
//      5  noplock     mheap_.noplock           gc/malloc.hpp        P-less allocation; the
//                                                                   collector holds it from
//                                                                   stop to start the world
//      6  hooks       the GC's cleanup hooks   gc/mgc.cpp           held while hooks run
//      7  pool        poolsLock                pool/pool.cpp        taken in its GC hook
//      8  netpoll     pd.lock, the pollcache   sched/netpoll.cpp    held across modtimer,
//                                                                   which may take
//                                                                   sched.lock; two are
//                                                                   never held at once
//     10  sched       sched.lock               sched/runtime2.hpp   also under noplock
//                                                                   (suspend_hogs)
//     15  gfree       sched.gFreeLock          sched/runtime2.hpp   leaf
//     20  timers      p.timers.lock            sched/timer.hpp      timer fns run
//                                                                   under it (send
//                                                                   on a Ticker's
//                                                                   channel: hchan)
//     30  hchan       a channel's lock         runtime/hchan.hpp    several, address order
//     35  notifylist  a Cond's ticket list     runtime/cond.cpp     taken alone
//     40  sema        a semaphore root         sched/sema.cpp
//     45  timerfree   time.Timer free list     runtime/time.cpp     leaf
//     47  finalizer   finlock                  gc/mgc.hpp           the root scan holds
//                                                                   finlock -> allg -> roots
//     50  allg        allglock                 sched/proc.hpp
//     55  rootkeys    gc_add_root's map        gc/roots.cpp         held while linking
//     60  roots       a root-registry shard    gc/roots.cpp         several, index order
//     70  mcentral    mcentral.lock            gc/malloc.hpp        one at a time
//     75  heap        mheap_.lock              gc/malloc.hpp
//     80  sweep       the sweeper's lock       gc/mgc.hpp           leaf
//     82  forcegc     forcegc.lock             gc/mgc.hpp           leaf
//     90  gcwork      work.full's lock         gc/mgc.hpp           leaf; mark helper
//                                                                   threads (no M) too
//     95  stackalloc  StackAllocator::mu_      sched/stack.hpp      leaf
//     97  gcran       work.ranLock             gc/mgc.hpp           leaf: taken in
//                                                                   casgstatus, under
//                                                                   channel and sema locks
//     99  tracewriter the GORO_TRACE writer    sched/trace.cpp      leaf: events are
//                                                                   emitted under any lock
//
// Never held across a park: a goroutine that parks holds at most the one
// lock its unlock function releases (on g0 after the switch, or on the
// direct path right before it, the context cleared: proc.cpp). Semaphores
// that park (gcsema, worldsema) are not in the table: they are taken with no
// lock held.
#pragma once

#include <atomic>
#include <cstdint>

namespace goro::detail {

enum class LockRank : std::uint8_t {
  noplock = 5,
  hooks = 6,
  pool = 7,
  netpoll = 8,
  sched = 10,
  gfree = 15,
  timers = 20,
  hchan = 30,
  notifylist = 35,
  sema = 40,
  timerfree = 45,
  finalizer = 47,
  allg = 50,
  rootkeys = 55,
  roots = 60,
  mcentral = 70,
  heap = 75,
  sweep = 80,
  forcegc = 82,
  gcwork = 90,
  stackalloc = 95,
  gcran = 97,
  tracewriter = 99,
};

// plain_unlock_ok: locks of this rank may be released by unlock_plain, so
// their sleepers must not count on being woken and wait with a timeout
// (Lock::lock_slow). One rule, read by both sides.
constexpr bool plain_unlock_ok(LockRank r) { return r == LockRank::hchan; }

// The rank checks of debug builds (lock.cpp).
void lock_rank_acquire(LockRank r);
void lock_rank_release(LockRank r);

class Lock {
 public:
  explicit constexpr Lock(LockRank rank) : rank_(rank) {}  // every lock names its rank
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  void lock() {
    lock_enter(rank_);  // m.locks++ first: held means not preemptible
    std::uint32_t z = 0;
    if (!key_.compare_exchange_strong(z, 1, std::memory_order_acquire)) lock_slow();
  }
  bool try_lock() {
    std::uint32_t z = 0;
    if (key_.load(std::memory_order_relaxed) != 0 ||
        !key_.compare_exchange_strong(z, 1, std::memory_order_acquire))
      return false;
    lock_enter(rank_);
    return true;
  }
  // unlock_plain: every release of a channel's lock (runtime/chan.cpp, and
  // a timer's send in runtime/time.cpp), including the unlock function of
  // a goroutine parking on a channel (goparkunlock_chan). Only for ranks
  // whose sleepers wait with a timeout (plain_unlock_ok; checked in debug
  // builds).
  void unlock_plain() {
#ifndef NDEBUG
    if (!plain_unlock_ok(rank_)) unlock_plain_misuse();
#endif
    if (key_.load(std::memory_order_relaxed) != 1) return unlock();  // marked: wake a sleeper
    const LockRank r = rank_;
    key_.store(0, std::memory_order_release);
    lock_exit(r);
  }
  void unlock() {
    // rank_ is read first: once the key is released the Lock may be freed
    // (a channel whose last reference a woken goroutine drops).
    const LockRank r = rank_;
    if (key_.exchange(0, std::memory_order_release) == 2) unlock_slow();
    lock_exit(r);  // m.locks-- last
  }

 private:
  void lock_slow();
  void unlock_slow();
  [[noreturn]] static void unlock_plain_misuse();
  friend struct LockTestPeer;  // tests/sched_test.cpp: a lost wake-up, made on purpose
  // lock_enter raises the calling M's locks (when the thread has an M) and,
  // in debug builds, checks the rank against the locks this thread holds;
  // lock_exit undoes both. Inline (runtime2.hpp, which needs M): a channel
  // operation takes and releases a lock twice, and four calls to find the
  // M were a measurable part of it.
  static inline void lock_enter(LockRank r);
  static inline void lock_exit(LockRank r);

  std::atomic<std::uint32_t> key_{0};  // 0 free, 1 locked, 2 locked with waiters
  LockRank rank_;
};

}  // namespace goro::detail

// Lock::lock_enter and lock_exit are inline, beside M (runtime2.hpp): every
// file that takes a Lock sees their definitions through this header.
#include "sched/runtime2.hpp"
