// waitgroup.cpp — sync.WaitGroup (Go's sync/waitgroup.go).
//
// The counter and the waiter count share one 64-bit word so that "counter
// reached zero" and "how many to wake" are read in one atomic step. When
// add() brings the counter to zero with waiters present, it resets the word
// and releases the semaphore once per waiter; a Wait that started before the
// reset is then woken, and any Add racing with that reset is the misuse Go
// panics on.
#include "goro/sync.hpp"
#include "sched/proc.hpp"

namespace goro {

void WaitGroup::add(int delta) {
  const std::uint64_t d = static_cast<std::uint64_t>(static_cast<std::int64_t>(delta)) << 32;
  const std::uint64_t state = state_.fetch_add(d, std::memory_order_acq_rel) + d;
  const auto v = static_cast<std::int32_t>(state >> 32);
  const auto w = static_cast<std::uint32_t>(state);
  if (v < 0) throw Panic("sync: negative WaitGroup counter");
  if (w != 0 && delta > 0 && v == delta)
    throw Panic("sync: WaitGroup misuse: Add called concurrently with Wait");
  if (v > 0 || w == 0) return;
  // The counter is 0 and there are waiters: wake them all.
  if (state_.load(std::memory_order_relaxed) != state)
    throw Panic("sync: WaitGroup misuse: Add called concurrently with Wait");
  state_.store(0, std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < w; i++) detail::semrelease(&sema_, false);
}

void WaitGroup::wait() {
  detail::Entry e("goro::WaitGroup::wait");
  std::uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state >> 32) == 0) return;
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel)) {
      detail::semacquire(&sema_, false, detail::WaitReason::wait_group_wait);
      if (state_.load(std::memory_order_acquire) != 0)
        throw Panic("sync: WaitGroup is reused before previous Wait has returned");
      return;
    }
  }
}

}  // namespace goro
