// goro/sync.hpp — goroutine-aware synchronisation (Go's sync package).
//
// A goroutine that has to wait parks; its thread runs other goroutines
// meanwhile. All of these are built on the runtime semaphore (sched/sema.cpp),
// Go's sema.go: a wait queue per address, found by hashing, so the objects
// themselves are just a few integers.
#pragma once

#include <atomic>
#include <cstdint>

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
