// time_test.cpp — sleeping goroutines: they wake in deadline order and never
// early. Sleeping is the thing under test here, so these tests do sleep; they
// never sleep to wait for something else to happen.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <vector>

#include "test_util.hpp"

namespace goro::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Time : public ProcsTest {};
GORO_INSTANTIATE_PROCS(Time);

// Sleepers spawned in a scrambled order wake in the order of their
// deadlines, and none wakes before its deadline — to the extent the runtime
// guarantees it on a loaded machine:
//   - never early: guaranteed, asserted for every sleeper;
//   - order: timers fire in deadline order, but two sleepers whose timers
//     fire in one batch (the thread running timers stalled for longer than
//     the gap between them) are readied together, and the later one, readied
//     last, takes runnext and runs first — as in Go. And once readied, a
//     goroutine may wait for a CPU (2 cores shared with other work) for any
//     time. So an inversion is allowed exactly when the earlier sleeper was
//     late by at least the gap. (With both wake-ups timed that follows from
//     never-early; the check states the guarantee rather than adding one.
//     The inversions are counted and printed: on an idle machine there are
//     none.)
// Wake-up times are taken by each sleeper the moment sleep_for returns and
// compared as times, not by the order the sleepers then reach a shared
// list: a sleeper descheduled between waking and recording would otherwise
// look out of order while it was not (the "late 209615ns vs 30ms" failure
// under TSan on a loaded machine).
TEST_P(Time, SleepersWakeInDeadlineOrder) {
  const int gap_ms = kSanitized ? 30 : 20;
  const std::vector<int> slots = {4, 1, 6, 3, 5, 2};  // durations in gaps
  struct Wake {
    int slot;
    Clock::time_point deadline, woke;
  };
  std::vector<Wake> wakes;
  std::mutex mu;
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(static_cast<int>(slots.size()));
    const auto start = Clock::now();
    for (int s : slots)
      goro::go([&, s] {
        const auto deadline = start + std::chrono::milliseconds(s * gap_ms);
        goro::sleep_until(deadline);
        const auto woke = Clock::now();
        {
          std::lock_guard<std::mutex> lk(mu);
          wakes.push_back({s, deadline, woke});
        }
        wg.done();
      });
    wg.wait();
  });
  ASSERT_EQ(wakes.size(), slots.size());
  int inversions = 0;
  for (const Wake& a : wakes) {
    EXPECT_GE(a.woke, a.deadline) << "slot " << a.slot << " woke before its deadline";
    for (const Wake& b : wakes) {
      if (a.slot >= b.slot || a.woke <= b.woke) continue;
      // a's deadline is earlier but it woke after b: only if a was late by
      // at least the gap between them (its timer batch stalled, or it
      // waited for a CPU).
      inversions++;
      EXPECT_GE(a.woke - a.deadline, b.deadline - a.deadline)
          << "slot " << a.slot << " woke after slot " << b.slot << " though not late by the gap";
    }
  }
  if (inversions > 0) std::printf("note: %d inversion(s), each excused by lateness\n", inversions);
}

// sleep_for never returns early, for short and odd durations, repeatedly.
TEST_P(Time, SleepForIsNeverEarly) {
  std::atomic<int> early{0};
  std::atomic<long> worst_ns{0};
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(8);
    for (int w = 0; w < 8; w++)
      goro::go([&, w] {
        for (int i = 0; i < 10; i++) {
          const auto d = std::chrono::microseconds(100 + 317 * ((i + w) % 7));
          const auto t0 = Clock::now();
          goro::sleep_for(d);
          const auto el = Clock::now() - t0;
          if (el < d) {
            early.fetch_add(1);
            worst_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d - el).count();
          }
        }
        wg.done();
      });
    wg.wait();
  });
  EXPECT_EQ(early.load(), 0) << "woke up to " << worst_ns.load() << "ns early";
}

TEST_P(Time, SleepUntilIsNeverEarly) {
  goro::run(opts(), [] {
    for (int i = 1; i <= 5; i++) {
      const auto deadline = Clock::now() + std::chrono::milliseconds(i);
      goro::sleep_until(deadline);
      EXPECT_GE(Clock::now(), deadline);
    }
    // A deadline in the past returns at once.
    const auto t0 = Clock::now();
    goro::sleep_until(t0 - 1s);
    EXPECT_LT(Clock::now() - t0, 500ms);
  });
}

TEST_P(Time, ZeroAndNegativeSleepReturnAtOnce) {
  goro::run(opts(), [] {
    const auto t0 = Clock::now();
    for (int i = 0; i < 1000; i++) {
      goro::sleep_for(0ns);
      goro::sleep_for(-5ms);
    }
    EXPECT_LT(Clock::now() - t0, 1s);
  });
}

// Many concurrent sleepers with random durations all wake, none early.
TEST_P(Time, ManySleepers) {
  const int n = static_cast<int>(scaled(2000));
  std::atomic<int> woke{0}, early{0};
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(n);
    std::mt19937 rng(1234);
    for (int i = 0; i < n; i++) {
      const auto d = std::chrono::microseconds(500 + rng() % 20000);
      goro::go([&, d] {
        const auto t0 = Clock::now();
        goro::sleep_for(d);
        if (Clock::now() - t0 < d) early.fetch_add(1);
        woke.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
  });
  EXPECT_EQ(woke.load(), n);
  EXPECT_EQ(early.load(), 0);
}

// A sleeping goroutine does not hold its P: with one P, another goroutine
// makes progress while main sleeps.
TEST_P(Time, SleeperDoesNotHoldItsP) {
  std::atomic<long> progress{0};
  long during = 0;
  goro::run(opts(), [&] {
    std::atomic<bool> stop{false};
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      Deadline deadline(10s);
      while (!stop.load() && !deadline.passed()) {
        progress.fetch_add(1);
        goro::yield();
      }
      wg.done();
    });
    const long before = progress.load();
    goro::sleep_for(30ms);
    during = progress.load() - before;
    stop = true;
    wg.wait();
  });
  EXPECT_GT(during, 10);
}

}  // namespace
}  // namespace goro::test
