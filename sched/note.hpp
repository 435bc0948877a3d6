// note.hpp — a one-shot sleep/wakeup event on a futex: Go's note
// (runtime/lock_futex.go).
//
// An M parks on its note when it has nothing to do (stopm) and another M wakes
// it with a P to run (startm). Exactly one thread sleeps on a note and at most
// one wakeup is delivered before the sleeper clears it again.
//
// Invariants: key is 0 (clear) or 1 (signalled); sleep() returns only after
// wakeup() was called; clear() is called only by the sleeper, after it woke.
#pragma once

#include <atomic>
#include <cstdint>

namespace goro::detail {

class Note {
 public:
  void wakeup();
  void sleep();
  // tsleep sleeps at most ns nanoseconds (ns <= 0: just polls); returns
  // true if woken by wakeup().
  bool tsleep(std::int64_t ns);
  void clear() { key_.store(0, std::memory_order_relaxed); }
  bool signalled() const { return key_.load(std::memory_order_acquire) != 0; }

 private:
  std::atomic<std::uint32_t> key_{0};
};

}  // namespace goro::detail
