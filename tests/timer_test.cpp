// timer_test.cpp — time.After, time.Timer and time.Ticker: firing never
// early, Stop/Reset return values, tickers ticking, dropping ticks for a
// slow reader and stopping, and timers destroyed or reset while they fire
// (the lifetime race the generation scheme in runtime/time.cpp exists for).
// Time is the thing under test, so these tests wait on timers; they never
// sleep to let something else happen.
#include <atomic>
#include <vector>

#include "test_util.hpp"

namespace goro::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Timers : public ProcsTest {};
GORO_INSTANTIATE_PROCS(Timers);

TEST_P(Timers, AfterFiresNotEarly) {
  goro::run(opts(), [&] {
    for (auto d : {0ms, 1ms, 5ms, 20ms}) {
      const auto t0 = Clock::now();
      goro::Chan<goro::Time> c = goro::after(d);
      EXPECT_EQ(c.cap(), 1u);
      std::optional<goro::Time> v = c.recv();
      const auto t1 = Clock::now();
      ASSERT_TRUE(v.has_value());
      EXPECT_GE(t1 - t0, d);
      EXPECT_GE(*v - t0, d) << "the time sent is the firing time";
      EXPECT_LE(*v, t1);
    }
  });
}

// Many goroutines wait on after() at once; every one fires, none early.
TEST_P(Timers, ManyAfters) {
  const int n = static_cast<int>(scaled(2000));
  std::atomic<int> early{0}, fired{0};
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(n);
    for (int i = 0; i < n; i++)
      goro::go([&, i] {
        const auto d = std::chrono::microseconds((i * 37) % 5000);
        const auto t0 = Clock::now();
        if (goro::after(d).recv()) fired.fetch_add(1);
        if (Clock::now() - t0 < d) early.fetch_add(1);
        wg.done();
      });
    wg.wait();
  });
  EXPECT_EQ(fired.load(), n);
  EXPECT_EQ(early.load(), 0);
}

TEST_P(Timers, TimerFiresNotEarly) {
  goro::run(opts(), [&] {
    const auto t0 = Clock::now();
    goro::Timer t(10ms);
    std::optional<goro::Time> v = t.c().recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_GE(Clock::now() - t0, 10ms);
    EXPECT_GE(*v - t0, 10ms);
  });
}

TEST_P(Timers, TimerStopBeforeFire) {
  goro::run(opts(), [&] {
    goro::Timer t(1h);
    EXPECT_TRUE(t.stop()) << "stopping an armed timer";
    EXPECT_FALSE(t.stop()) << "stopping it again";
    EXPECT_FALSE(t.c().try_recv().has_value());
    EXPECT_FALSE(t.reset(1h)) << "reset of a stopped timer";
    EXPECT_TRUE(t.reset(1h)) << "reset of an armed timer";
    EXPECT_TRUE(t.stop());
  });
}

TEST_P(Timers, TimerStopAfterFire) {
  goro::run(opts(), [&] {
    goro::Timer t(1ms);
    ASSERT_TRUE(t.c().recv().has_value());
    EXPECT_FALSE(t.stop()) << "stopping a fired timer";
    // Reset of a fired (and drained) timer: false, and it fires again.
    const auto t0 = Clock::now();
    EXPECT_FALSE(t.reset(5ms));
    ASSERT_TRUE(t.c().recv().has_value());
    EXPECT_GE(Clock::now() - t0, 5ms);
    EXPECT_FALSE(t.stop());
  });
}

// A fired timer whose value was not received: stop() is false and the
// value waits in the channel (Go <= 1.22, capacity-1 semantics), so the
// documented "if (!t.stop()) t.c().recv()" idiom does not hang.
TEST_P(Timers, TimerStopDrainIdiom) {
  goro::run(opts(), [&] {
    goro::Timer t(0ns);
    // Wait for the firing without receiving it: the value shows in len().
    Deadline d(10s);
    while (t.c().len() == 0 && !d.passed()) goro::yield();
    ASSERT_EQ(t.c().len(), 1u);
    if (!t.stop()) {
      ASSERT_TRUE(t.c().recv().has_value());
    }
    EXPECT_EQ(t.c().len(), 0u);
    EXPECT_FALSE(t.reset(1ms));
    EXPECT_TRUE(t.c().recv().has_value());
  });
}

// Reset moves the deadline of an armed timer: later...
TEST_P(Timers, TimerResetLater) {
  goro::run(opts(), [&] {
    const auto t0 = Clock::now();
    // Long enough that a slow (sanitizer) build still resets it before it
    // fires: reset must then report that it stopped an armed timer.
    goro::Timer t(100ms);
    EXPECT_TRUE(t.reset(150ms));
    ASSERT_TRUE(t.c().recv().has_value());
    EXPECT_GE(Clock::now() - t0, 150ms);
  });
}

// ... and earlier.
TEST_P(Timers, TimerResetEarlier) {
  goro::run(opts(), [&] {
    goro::Timer t(1h);
    const auto t0 = Clock::now();
    EXPECT_TRUE(t.reset(2ms));
    ASSERT_TRUE(t.c().recv().has_value());
    EXPECT_GE(Clock::now() - t0, 2ms);
  });
}

TEST_P(Timers, TickerTicks) {
  goro::run(opts(), [&] {
    const auto t0 = Clock::now();
    goro::Ticker tk(2ms);
    EXPECT_EQ(tk.c().cap(), 1u);
    goro::Time prev = t0;
    for (int i = 1; i <= 5; i++) {
      std::optional<goro::Time> v = tk.c().recv();
      ASSERT_TRUE(v.has_value());
      EXPECT_GT(*v, prev);
      prev = *v;
    }
    // Five ticks of a 2 ms ticker cannot arrive before 10 ms.
    EXPECT_GE(Clock::now() - t0, 10ms);
    tk.stop();
  });
}

// A reader that does not keep up finds one buffered tick, not a backlog.
TEST_P(Timers, TickerDropsTicksForSlowReader) {
  goro::run(opts(), [&] {
    goro::Ticker tk(1ms);
    goro::sleep_for(20ms);  // a slow reader: about 20 ticks are due
    EXPECT_EQ(tk.c().len(), 1u);
    ASSERT_TRUE(tk.c().recv().has_value());
    tk.stop();
  });
}

// After stop, no more ticks: the one possibly buffered is drained, then
// several periods pass with the channel empty.
TEST_P(Timers, TickerStop) {
  goro::run(opts(), [&] {
    goro::Ticker tk(1ms);
    ASSERT_TRUE(tk.c().recv().has_value());
    tk.stop();
    tk.c().try_recv();
    goro::sleep_for(10ms);
    EXPECT_FALSE(tk.c().try_recv().has_value());
    // Reset brings it back with the new period.
    tk.reset(2ms);
    ASSERT_TRUE(tk.c().recv().has_value());
    tk.stop();
  });
}

TEST_P(Timers, TickerNonPositivePanics) {
  goro::run(opts(), [&] {
    EXPECT_THROW(goro::Ticker(0ns), goro::Panic);
    EXPECT_THROW(goro::Ticker(-1ms), goro::Panic);
    goro::Ticker tk(1h);
    EXPECT_THROW(tk.reset(0ns), goro::Panic);
  });
}

// Timers and tickers destroyed while they are firing, on every P at once:
// the sends of a retired timer must never touch it (ASan and TSan watch).
// Also exercises the recycling of TimeTimers.
TEST_P(Timers, DestroyWhileFiring) {
  const int kG = 8;
  const int kN = static_cast<int>(scaled(3000));
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(kG);
    for (int g = 0; g < kG; g++)
      goro::go([&, g] {
        for (int i = 0; i < kN; i++) {
          if ((i + g) % 3 == 0) {
            goro::Ticker tk(std::chrono::microseconds(1 + i % 20));
            if (i % 2 == 0) goro::yield();
          } else {
            goro::Timer t(std::chrono::microseconds(i % 10));
            if (i % 4 == 0) {
              t.c().recv();
            } else if (i % 4 == 1) {
              goro::yield();
              t.reset(std::chrono::microseconds(i % 7));
            }
          }
        }
        wg.done();
      });
    wg.wait();
  });
}

// Timers moved between objects keep working; a moved-from Timer is inert.
TEST_P(Timers, TimerMove) {
  goro::run(opts(), [&] {
    goro::Timer a(1ms);
    goro::Timer b(std::move(a));
    EXPECT_FALSE(a.stop());  // NOLINT(bugprone-use-after-move): inert by design
    EXPECT_FALSE(static_cast<bool>(a.c()));
    ASSERT_TRUE(b.c().recv().has_value());
    goro::Timer c(1h);
    c = std::move(b);
    EXPECT_FALSE(c.stop());
  });
}

TEST(TimersOutside, NeedARuntime) {
  EXPECT_THROW(goro::after(1ms), goro::Error);
  EXPECT_THROW(goro::Timer(1ms), goro::Error);
  EXPECT_THROW(goro::Ticker(1ms), goro::Error);
}

}  // namespace
}  // namespace goro::test
