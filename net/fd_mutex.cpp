// fd_mutex.cpp — Go's internal/poll/fd_mutex.go: a reference count plus a
// read lock and a write lock in one word, with close folded in. The layout
// and the lifetime rule are described in fd.hpp.
//
// Waiting for the read or write lock parks the goroutine on the runtime
// semaphore (sema.cpp), as Go's runtime_Semacquire does: two goroutines
// reading one connection take turns without blocking a thread.
#include <cstdint>

#include "net/fd.hpp"
#include "sched/proc.hpp"

namespace goro::net::detail {

namespace {

constexpr std::uint64_t mutexClosed = 1ULL << 0;
constexpr std::uint64_t mutexRLock = 1ULL << 1;
constexpr std::uint64_t mutexWLock = 1ULL << 2;
constexpr std::uint64_t mutexRef = 1ULL << 3;
constexpr std::uint64_t mutexRefMask = ((1ULL << 20) - 1) << 3;
constexpr std::uint64_t mutexRWait = 1ULL << 23;
constexpr std::uint64_t mutexRMask = ((1ULL << 20) - 1) << 23;
constexpr std::uint64_t mutexWWait = 1ULL << 43;
constexpr std::uint64_t mutexWMask = ((1ULL << 20) - 1) << 43;

[[noreturn]] void too_many() {
  throw goro::Panic("too many concurrent operations on a single file or socket (max 1048575)");
}

}  // namespace

bool fdMutex::incref() {
  std::uint64_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (old & mutexClosed) return false;
    const std::uint64_t nw = old + mutexRef;
    if ((nw & mutexRefMask) == 0) too_many();
    if (state_.compare_exchange_weak(old, nw, std::memory_order_acq_rel)) return true;
  }
}

bool fdMutex::increfAndClose() {
  std::uint64_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (old & mutexClosed) return false;
    // Mark closed, take a reference, and forget every lock waiter: they are
    // woken below and, retrying, find the mutex closed.
    std::uint64_t nw = (old | mutexClosed) + mutexRef;
    if ((nw & mutexRefMask) == 0) too_many();
    nw &= ~(mutexRMask | mutexWMask);
    if (state_.compare_exchange_weak(old, nw, std::memory_order_acq_rel)) {
      while (old & mutexRMask) {
        old -= mutexRWait;
        goro::detail::semrelease(&rsema_, false);
      }
      while (old & mutexWMask) {
        old -= mutexWWait;
        goro::detail::semrelease(&wsema_, false);
      }
      return true;
    }
  }
}

bool fdMutex::decref() {
  std::uint64_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((old & mutexRefMask) == 0) goro::detail::fatal("inconsistent poll.fdMutex");
    const std::uint64_t nw = old - mutexRef;
    if (state_.compare_exchange_weak(old, nw, std::memory_order_acq_rel))
      return (nw & (mutexClosed | mutexRefMask)) == mutexClosed;
  }
}

bool fdMutex::rwlock(bool read) {
  const std::uint64_t bit = read ? mutexRLock : mutexWLock;
  const std::uint64_t wait = read ? mutexRWait : mutexWWait;
  const std::uint64_t mask = read ? mutexRMask : mutexWMask;
  std::atomic<std::uint32_t>* sema = read ? &rsema_ : &wsema_;
  for (;;) {
    std::uint64_t old = state_.load(std::memory_order_relaxed);
    if (old & mutexClosed) return false;
    std::uint64_t nw;
    if ((old & bit) == 0) {
      nw = (old | bit) + mutexRef;  // lock is free: take it and a reference
      if ((nw & mutexRefMask) == 0) too_many();
    } else {
      nw = old + wait;  // held: queue as a waiter
      if ((nw & mask) == 0) too_many();
    }
    if (state_.compare_exchange_weak(old, nw, std::memory_order_acq_rel)) {
      if ((old & bit) == 0) return true;
      goro::detail::semacquire(sema, false, goro::detail::WaitReason::semacquire);
      // Woken by the unlocker (who removed our wait count) or by close: retry.
    }
  }
}

bool fdMutex::rwunlock(bool read) {
  const std::uint64_t bit = read ? mutexRLock : mutexWLock;
  const std::uint64_t wait = read ? mutexRWait : mutexWWait;
  const std::uint64_t mask = read ? mutexRMask : mutexWMask;
  std::atomic<std::uint32_t>* sema = read ? &rsema_ : &wsema_;
  std::uint64_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((old & bit) == 0 || (old & mutexRefMask) == 0) goro::detail::fatal("inconsistent poll.fdMutex");
    std::uint64_t nw = (old & ~bit) - mutexRef;
    if (old & mask) nw -= wait;  // hand the lock to one waiter
    if (state_.compare_exchange_weak(old, nw, std::memory_order_acq_rel)) {
      if (old & mask) goro::detail::semrelease(sema, false);
      return (nw & (mutexClosed | mutexRefMask)) == mutexClosed;
    }
  }
}

}  // namespace goro::net::detail
