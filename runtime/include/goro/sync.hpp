// goro/sync.hpp — goroutine-aware synchronisation (Go's sync package).
//
// A goroutine that has to wait parks; its thread runs other goroutines
// meanwhile. All of these are built on the runtime semaphore (sched/sema.cpp),
// Go's sema.go: a wait queue per address, found by hashing, so the objects
// themselves are just a few integers.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>

#include "goro/runtime.hpp"

namespace goro {

// WaitGroup waits for a collection of goroutines to finish (sync.WaitGroup).
// add(n) before starting them, done() in each, wait() to block until the
// count is zero. A negative count panics with Go's message.
class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  void add(int delta);
  void done() { add(-1); }
  void wait();

 private:
  // High 32 bits: the counter; low 32 bits: the number of waiters.
  std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint32_t> sema_{0};
};

}  // namespace goro

// ---------------------------------------------------------------------------
// Mutex, RWMutex, Cond and Once (Go's sync/mutex.go, rwmutex.go, cond.go,
// once.go). The essays are at the top of mutex.cpp, rwmutex.cpp and cond.cpp.

namespace goro {

namespace detail {
struct Access;  // the runtime's own view of API objects' internals (runtime/access.hpp)
}

// Mutex is a mutual exclusion lock (sync.Mutex); the zero value is unlocked.
// A goroutine that has to wait parks on the runtime semaphore. It meets the
// standard Lockable requirements, so std::lock_guard and std::unique_lock
// work. Unlocking an unlocked Mutex is Go's fatal error "sync: unlock of
// unlocked mutex" (exit status 2); as in Go, a Mutex is not tied to the
// goroutine that locked it.
class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() {
    // Fast path: grab the unlocked mutex.
    std::int32_t z = 0;
    if (state_.compare_exchange_strong(z, mutexLocked, std::memory_order_acquire)) return;
    lock_slow();
  }
  bool try_lock();
  void unlock() {
    // Fast path: drop the lock bit; anything left means waiters to wake.
    const std::int32_t n = state_.fetch_sub(mutexLocked, std::memory_order_release) - mutexLocked;
    if (n != 0) unlock_slow(n);
  }

  // The bits of state_ (Go's names).
  static constexpr std::int32_t mutexLocked = 1;    // held
  static constexpr std::int32_t mutexWoken = 2;     // a waiter is awake: unlock need not wake one
  static constexpr std::int32_t mutexStarving = 4;  // starvation mode: hand the lock off directly
  static constexpr int mutexWaiterShift = 3;        // the rest counts the parked waiters

 private:
  friend struct detail::Access;
  void lock_slow();
  void unlock_slow(std::int32_t n);

  std::atomic<std::int32_t> state_{0};
  std::atomic<std::uint32_t> sema_{0};
};

// RWMutex is a reader/writer mutual exclusion lock (sync.RWMutex): any
// number of readers or one writer. A blocked writer keeps new readers out,
// so readers cannot starve it. lock/unlock are the writer's side,
// lock_shared/unlock_shared the readers' (Go's RLock/RUnlock), so
// std::unique_lock and std::shared_lock work.
class RWMutex {
 public:
  RWMutex() = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  void lock();
  bool try_lock();
  void unlock();
  void lock_shared();
  bool try_lock_shared();
  void unlock_shared();

  static constexpr std::int32_t rwmutexMaxReaders = 1 << 30;

 private:
  friend struct detail::Access;
  Mutex w_;                                  // held by a writer, pending or inside
  std::atomic<std::uint32_t> writerSem_{0};  // the writer waits here for departing readers
  std::atomic<std::uint32_t> readerSem_{0};  // readers wait here for the writer to finish
  // readers inside; minus rwmutexMaxReaders once a writer is pending
  std::atomic<std::int32_t> readerCount_{0};
  std::atomic<std::int32_t> readerWait_{0};  // readers the pending writer still waits for
};

namespace detail {
struct Sudog;

// NotifyList is a ticket-based list of waiting goroutines (Go's
// runtime/sema.go notifyList), what Cond is built on. wait counts tickets
// handed out, notify the next ticket to wake; both only grow (mod 2^32).
struct NotifyList {
  std::atomic<std::uint32_t> wait{0};
  std::atomic<std::uint32_t> notify{0};
  // head..tail: the parked waiters, in ticket order except where a waiter
  // that took its ticket earlier queued later. Guarded by the list's lock,
  // a runtime Lock found by hashing the list's address (cond.cpp), so the
  // public header needs no runtime internals.
  Sudog* head = nullptr;
  Sudog* tail = nullptr;

  std::uint32_t add();                // notifyListAdd: take a ticket
  void wait_ticket(std::uint32_t t);  // notifyListWait: park until ticket t is notified
  void notify_one();                  // notifyListNotifyOne
  void notify_all();                  // notifyListNotifyAll
};
}  // namespace detail

// Cond is a condition variable (sync.Cond) bound to a Mutex: wait() unlocks
// it, parks until signal() or broadcast(), and locks it again. As in Go,
// wait() can wake without the condition holding; call it in a loop.
class Cond {
 public:
  explicit Cond(Mutex& m) : l_(m) {}
  Cond(const Cond&) = delete;
  Cond& operator=(const Cond&) = delete;

  void wait();
  void signal();                       // wake one waiter, if any
  void broadcast();                    // wake every waiter
  Mutex& mutex() const { return l_; }  // Go's Cond.L

 private:
  Mutex& l_;
  detail::NotifyList notify_;
};

// Once runs a function exactly once (sync.Once). call(fn) returns only after
// fn has returned (or thrown) in whichever goroutine ran it. If fn throws,
// Once still counts it as done, as Go's deferred done.Store(1) does after a
// panic: later calls return at once without running anything.
class Once {
 public:
  Once() = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

  template <class F>
  void call(F&& fn) {
    // The fast path is one acquire load; it pairs with the release store
    // below, so a caller that sees done_ also sees fn's effects.
    if (done_.load(std::memory_order_acquire) == 0) call_slow(std::forward<F>(fn));
  }

 private:
  template <class F>
  void call_slow(F&& fn) {
    std::lock_guard<Mutex> lk(m_);
    if (done_.load(std::memory_order_relaxed) != 0) return;
    // Go's `defer o.done.Store(1)`: runs whether fn returns or throws.
    struct Done {
      std::atomic<std::uint32_t>& d;
      ~Done() { d.store(1, std::memory_order_release); }
    } done{done_};
    std::forward<F>(fn)();
  }

  std::atomic<std::uint32_t> done_{0};
  Mutex m_;
};

}  // namespace goro
