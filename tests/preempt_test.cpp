// preempt_test.cpp — taking a P back from a goroutine that will not give it
// up (sched/sysmon.cpp retake, sched/preempt.cpp).
//
// Two mechanisms, two kinds of hog:
//   - a loop that calls goro::preempt_point() and nothing else: sysmon sets
//     g.preempt after one 10 ms slice and the loop yields at its next
//     preempt_point (cooperative preemption; works in every build);
//   - a loop with no runtime call at all: a slice after the flag, sysmon
//     signals the hog's thread, the SIGURG handler detaches the P (counted in
//     sched.nhogs) and sysmon hands it to another M; the hog takes a P back
//     at its next runtime call. Not under TSan (preempt_signal_available()
//     is false there): those tests skip.
// Each test puts one hog on every P (GOMAXPROCS {1, 2, 4, 8}), so that
// anything else runs only if the hogs are preempted. The machine may have
// two cores: the assertions count progress within generous deadlines rather
// than measure the 10 ms slice.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "test_util.hpp"

namespace goro::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class Preempt : public ProcsTest {};
GORO_INSTANTIATE_PROCS(Preempt);

// kRounds is how many times the starved goroutine must get a P back.
constexpr int kRounds = 5;

std::uint64_t nhogs() {
  return goro::detail::rt()->sched.nhogs.load(std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Cooperative preemption

// One goroutine per P loops on preempt_point() and nothing else. A counter
// goroutine, started once every hog runs, must get a P kRounds times within
// 2 s, and between two of its rounds every hog must have run too (each round
// waits, yielding, for all the hogs' iteration counts to move): the P is
// time-shared, each round costing about one 10 ms slice.
TEST_P(Preempt, PreemptPointLoopsDoNotStarveOthers) {
  Watchdog watchdog(std::chrono::seconds(kSanitized ? 120 : 60));
  const int n = nprocs();
  std::atomic<bool> stop{false};
  std::atomic<int> started{0}, hogs_timed_out{0};
  auto iters = std::make_unique<std::atomic<long>[]>(static_cast<std::size_t>(n));
  std::vector<Clock::time_point> stamps;  // the counter's rounds (only it writes)
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(n + 1);
    for (int i = 0; i < n; i++)
      goro::go([&, i] {
        started.fetch_add(1);
        Deadline deadline(30s);  // a broken preemption fails the test, not hangs it
        while (!stop.load(std::memory_order_relaxed)) {
          iters[i].fetch_add(1, std::memory_order_relaxed);
          goro::preempt_point();
          if (deadline.passed()) {
            hogs_timed_out.fetch_add(1);
            break;
          }
        }
        wg.done();
      });
    goro::go([&] {
      Deadline start(20s);
      while (started.load() < n && !start.passed()) goro::yield();
      std::vector<long> last(static_cast<std::size_t>(n), -1);
      Deadline deadline(kSanitized ? 10s : 2s);
      while (static_cast<int>(stamps.size()) < kRounds && !deadline.passed()) {
        bool all_moved = true;
        for (int i = 0; i < n; i++) all_moved &= iters[i].load() != last[i];
        if (all_moved) {
          stamps.push_back(Clock::now());
          for (int i = 0; i < n; i++) last[i] = iters[i].load();
        }
        goro::yield();
      }
      stop = true;
      wg.done();
    });
    wg.wait();
  });
  ASSERT_EQ(started.load(), n) << "not every hog started";
  EXPECT_EQ(static_cast<int>(stamps.size()), kRounds)
      << "the counter and the preempt_point() loops took turns only " << stamps.size()
      << " times in " << (kSanitized ? 10 : 2) << " s";
  EXPECT_EQ(hogs_timed_out.load(), 0) << "a hog looped 30 s without being stopped";
  if (stamps.size() >= 2) {
    std::int64_t gap = 0;
    for (std::size_t i = 1; i < stamps.size(); i++)
      gap = std::max<std::int64_t>(
          gap,
          std::chrono::duration_cast<std::chrono::microseconds>(stamps[i] - stamps[i - 1]).count());
    RecordProperty("max_round_gap_us", static_cast<int>(gap));
  }
}

// While hogs keep every P busy, sysmon preempts each of them once a slice,
// and that is all it has to do: as in Go, a preemption request does not
// count as work in sysmon's back-off (only a P taken from a system call
// does), so it soon looks every 10 ms. It used to restart at its 20 us pace
// after every request: about 60 looks per slice, each taking a CPU from a
// running M. Sysmon's sleeps only get longer under load, so the bound holds
// on a busy machine too: over 300 ms, at most 50 quick looks, a few
// doublings and one look per 10 ms, about 90 (the old rule: about 1 800).
TEST_P(Preempt, SysmonBacksOffWhileHogsRun) {
  Watchdog watchdog(std::chrono::seconds(kSanitized ? 120 : 60));
  const int n = nprocs();
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  std::uint64_t looks = 0;
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(n);
    for (int i = 0; i < n; i++)
      goro::go([&] {
        started.fetch_add(1);
        Deadline deadline(30s);
        while (!stop.load(std::memory_order_relaxed) && !deadline.passed()) goro::preempt_point();
        wg.done();
      });
    Deadline start(20s);
    while (started.load() < n && !start.passed()) goro::yield();
    auto* r = goro::detail::rt();
    const std::uint64_t w0 = r->sysmonwakes.load(std::memory_order_relaxed);
    goro::sleep_for(300ms);
    looks = r->sysmonwakes.load(std::memory_order_relaxed) - w0;
    stop = true;
    wg.wait();
  });
  ASSERT_EQ(started.load(), n) << "not every hog started";
  EXPECT_LT(looks, 400u) << "sysmon looked " << looks << " times in 300 ms of busy Ps";
  RecordProperty("sysmon_looks", static_cast<int>(looks));
}

// ---------------------------------------------------------------------------
// Preemption by signal: loops with no safepoint

// One goroutine per P spins on `while (!stop) {}`, never entering the
// runtime. Then:
//   - a counter goroutine still gets a P kRounds times;
//   - every hog loses its P to the signal (sched.nhogs grows by n);
//   - gomaxprocs(n + 1) and gomaxprocs(1), two stops of the world, complete
//     while the hogs spin;
//   - after `stop`, each hog rejoins a P at its next runtime call
//     (goro::yield()), and proc_pin() there returns a valid P id.
TEST_P(Preempt, LoopWithoutSafepointIsPreemptedBySignal) {
  Watchdog watchdog(std::chrono::seconds(kSanitized ? 120 : 60));
  const int n = nprocs();
  bool no_signal = false;
  std::atomic<bool> stop{false};
  std::atomic<int> started{0}, out{0};
  int out_before_stop = -1;
  std::vector<int> ids(static_cast<std::size_t>(n), -2);
  int rounds = 0, procs_after = 0;
  std::uint64_t hogs_before = 0, hogs_detached = 0;
  goro::run(opts(), [&] {
    if (!goro::detail::preempt_signal_available()) {
      no_signal = true;
      return;
    }
    hogs_before = nhogs();
    Deadline deadline(20s);  // for every wait below
    goro::WaitGroup hogs, counter;
    hogs.add(n);
    counter.add(1);
    for (int i = 0; i < n; i++)
      goro::go([&, i] {
        started.fetch_add(1);
        while (!stop.load(std::memory_order_relaxed)) {
        }
        out.fetch_add(1);
        goro::yield();  // the next runtime call: take a P back
        ids[static_cast<std::size_t>(i)] = goro::proc_pin();
        goro::proc_unpin();
        hogs.done();
      });
    goro::go([&] {
      while (started.load() < n && !deadline.passed()) goro::yield();
      while (rounds < kRounds && !deadline.passed()) {
        rounds++;
        goro::yield();
      }
      counter.done();
    });
    counter.wait();
    // Every hog holds its P until the signal takes it; a stop-the-world
    // begun before that waits on a hog nobody will signal (see
    // StopTheWorldWhileAHogHoldsItsP). Wait for all n.
    while (nhogs() - hogs_before < static_cast<std::uint64_t>(n) && !deadline.passed())
      goro::yield();
    hogs_detached = nhogs() - hogs_before;
    goro::gomaxprocs(n + 1);
    goro::gomaxprocs(1);
    procs_after = goro::gomaxprocs();
    out_before_stop = out.load();
    stop = true;
    hogs.wait();
  });
  if (no_signal) GTEST_SKIP() << "no preemption signal in this build (TSan or a static link)";
  EXPECT_EQ(started.load(), n);
  EXPECT_EQ(rounds, kRounds) << "the goroutine queued behind the spinning hogs starved";
  EXPECT_GE(hogs_detached, static_cast<std::uint64_t>(n)) << "sched.nhogs did not count every hog";
  EXPECT_EQ(out_before_stop, 0) << "a hog left its loop before `stop`";
  EXPECT_EQ(procs_after, 1);
  for (int i = 0; i < n; i++)
    EXPECT_TRUE(ids[static_cast<std::size_t>(i)] >= 0 && ids[static_cast<std::size_t>(i)] < 1)
        << "hog " << i << " ran on P " << ids[static_cast<std::size_t>(i)] << " after rejoining";
}

// A hog that finishes without any further runtime call (its function just
// returns) still gives its thread back cleanly: goexit takes a P first.
TEST_P(Preempt, HogThatReturnsWithoutARuntimeCall) {
  Watchdog watchdog(std::chrono::seconds(kSanitized ? 120 : 60));
  const int n = nprocs();
  bool no_signal = false;
  std::atomic<bool> stop{false};
  std::atomic<int> started{0}, finished{0};
  goro::run(opts(), [&] {
    if (!goro::detail::preempt_signal_available()) {
      no_signal = true;
      return;
    }
    const std::uint64_t before = nhogs();
    for (int i = 0; i < n; i++)
      goro::go([&] {
        started.fetch_add(1);
        while (!stop.load(std::memory_order_relaxed)) {
        }
        finished.fetch_add(1);  // no runtime call: the goroutine returns
      });
    Deadline deadline(20s);
    while (nhogs() - before < static_cast<std::uint64_t>(n) && !deadline.passed()) goro::yield();
    stop = true;
    // Every hog's goroutine must end: num_goroutine drops back to 1.
    while (goro::num_goroutine() > 1 && !deadline.passed()) goro::yield();
    EXPECT_EQ(goro::num_goroutine(), 1);
  });
  if (no_signal) GTEST_SKIP() << "no preemption signal in this build (TSan or a static link)";
  EXPECT_EQ(started.load(), n);
  EXPECT_EQ(finished.load(), n);
}

// A stop of the world begun while a hog still holds its P (before sysmon
// has had a slice to flag and signal it) must complete too, as Go's does.
// GOMAXPROCS=2: main on one P, the hog just started on the other.
TEST_F(RuntimeTest, StopTheWorldWhileAHogHoldsItsP) {
  Watchdog watchdog(std::chrono::seconds(kSanitized ? 60 : 20));
  bool no_signal = false;
  std::atomic<bool> stop{false}, started{false};
  int prev = 0;
  goro::run(procs(2), [&] {
    if (!goro::detail::preempt_signal_available()) {
      no_signal = true;
      return;
    }
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      started = true;
      while (!stop.load(std::memory_order_relaxed)) {
      }
      goro::yield();
      wg.done();
    });
    Deadline deadline(10s);
    while (!started.load() && !deadline.passed()) goro::yield();
    prev = goro::gomaxprocs(3);
    stop = true;
    wg.wait();
  });
  if (no_signal) GTEST_SKIP() << "no preemption signal in this build (TSan or a static link)";
  EXPECT_EQ(prev, 2);
}

// Goroutines that yield in a loop next to spinning hogs, on more threads
// than cores: their threads are descheduled for whole slices, so sysmon
// flags and then signals them while they are inside goro::yield(). The
// handler must leave a goroutine alone when it interrupts the runtime.
// Today it does not recognise boost's jump_fcontext (libboost_context.so,
// outside libgoro's text) as runtime code: a signal landing in the switch to
// g0 detaches the P of a goroutine that is being descheduled and g0 dies
// with "casgstatus: goroutine N is syscall, wanted running -> runnable".
TEST_F(RuntimeTest, SignalDuringAContextSwitch) {
  Watchdog watchdog(std::chrono::seconds(kSanitized ? 120 : 60));
  bool no_signal = false;
  std::atomic<bool> stop{false};
  std::atomic<long> yields{0};
  goro::run(procs(8), [&] {
    if (!goro::detail::preempt_signal_available()) {
      no_signal = true;
      return;
    }
    goro::WaitGroup wg;
    wg.add(16);
    for (int i = 0; i < 8; i++) {
      goro::go([&] {
        while (!stop.load(std::memory_order_relaxed)) {
        }
        goro::yield();
        wg.done();
      });
      goro::go([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          goro::yield();
          yields.fetch_add(1, std::memory_order_relaxed);
        }
        wg.done();
      });
    }
    Deadline deadline(kSanitized ? 10s : 3s);
    while (!deadline.passed()) goro::yield();
    stop = true;
    wg.wait();
  });
  if (no_signal) GTEST_SKIP() << "no preemption signal in this build (TSan or a static link)";
  EXPECT_GT(yields.load(), 0);
}

// ---------------------------------------------------------------------------
// "Inside the runtime" is m.locks (sched/runtime2.hpp M::locks)

// SlowMove's move constructor spins for 30 ms with no runtime call. The
// channel moves elements under its lock (bufsend, send to a parked
// receiver), so the move is user code running inside the runtime: the
// preemption signal must leave that P alone, or its handler, seeing a
// stop-the-world pending, would take sched.lock with the channel lock held
// (the lock order inverted: a rank abort in debug builds, a deadlock
// otherwise). Stop-the-world waits for the move instead.
struct SlowMove {
  std::uint64_t value = 0;
  std::uint64_t check = 0;  // ~value, moved along with it
  SlowMove() = default;
  explicit SlowMove(std::uint64_t v) : value(v), check(~v) {}
  SlowMove(const SlowMove&) = default;
  SlowMove(SlowMove&& o) noexcept : value(o.value), check(o.check) {
    const auto until = Clock::now() + 30ms;
    while (Clock::now() < until) {
    }
  }
  SlowMove& operator=(SlowMove&&) = default;
};

// While one goroutine sends SlowMoves through a buffered and an unbuffered
// channel, two others change GOMAXPROCS and run GC cycles (each a
// stop-the-world): every value arrives intact and everything finishes.
TEST_P(Preempt, SlowElementMoveUnderTheChannelLock) {
  Watchdog watchdog(std::chrono::seconds(kSanitized ? 240 : 120));
  const int n = nprocs();
  constexpr int kValues = 8;
  std::atomic<int> intact{0}, stws{0};
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    for (std::size_t cap : {std::size_t{0}, std::size_t{1}}) {
      auto ch = goro::make_chan<SlowMove>(cap);
      std::atomic<bool> done{false};
      wg.add(4);
      goro::go([&, ch]() mutable {
        for (int i = 0; i < kValues; i++) ch.send(SlowMove(static_cast<std::uint64_t>(i) * 7919));
        wg.done();
      });
      goro::go([&, ch]() mutable {
        for (int i = 0; i < kValues; i++) {
          std::optional<SlowMove> v = ch.recv();
          if (v && v->value == static_cast<std::uint64_t>(i) * 7919 && v->check == ~v->value)
            intact.fetch_add(1);
        }
        done = true;
        wg.done();
      });
      goro::go([&] {
        for (int i = 0; !done.load() && i < 50; i++) {
          goro::gomaxprocs(i % 2 == 0 ? n + 1 : n);
          stws.fetch_add(1);
        }
        goro::gomaxprocs(n);
        wg.done();
      });
      goro::go([&] {
        for (int i = 0; !done.load() && i < 50; i++) {
          goro::gc::collect();
          stws.fetch_add(1);
        }
        wg.done();
      });
      wg.wait();
    }
  });
  EXPECT_EQ(intact.load(), 2 * kValues);
  EXPECT_GT(stws.load(), 0);
}

// A goroutine stuck in a raw read(2) on a pipe — user code inside libc,
// with no blocking() around it — is outside the runtime: the preemption
// signal takes its P (even with GOMAXPROCS=1, where it holds the only one),
// and the collector suspends its thread to scan it. So GC cycles and
// GOMAXPROCS changes complete and other goroutines run while it waits; the
// write that releases it comes only after all of that.
TEST_P(Preempt, RawReadOnAPipeDoesNotHoldTheWorld) {
  Watchdog watchdog(std::chrono::seconds(kSanitized ? 120 : 60));
  const int n = nprocs();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  bool no_signal = false;
  std::atomic<bool> reading{false};
  std::atomic<int> others{0}, cycles{0};
  char got = 0;
  Clock::duration took{};
  goro::run(opts(), [&] {
    if (!goro::detail::preempt_signal_available()) {
      no_signal = true;
      return;
    }
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      reading = true;
      char c = 0;
      while (::read(fds[0], &c, 1) != 1) {  // EINTR: read again
      }
      got = c;
      wg.done();
    });
    Deadline start(20s);
    while (!reading.load() && !start.passed()) goro::yield();
    const auto t0 = Clock::now();
    for (int i = 0; i < 3; i++) {
      goro::gc::collect();
      cycles.fetch_add(1);
    }
    goro::gomaxprocs(n + 1);
    goro::gomaxprocs(n);
    goro::WaitGroup others_wg;
    others_wg.add(4 * n);
    for (int i = 0; i < 4 * n; i++)
      goro::go([&] {
        goro::yield();
        others.fetch_add(1);
        others_wg.done();
      });
    others_wg.wait();
    took = Clock::now() - t0;
    const char c = 'x';
    EXPECT_EQ(::write(fds[1], &c, 1), 1);
    wg.wait();
  });
  ::close(fds[0]);
  ::close(fds[1]);
  if (no_signal) GTEST_SKIP() << "no preemption signal in this build (TSan or a static link)";
  EXPECT_EQ(got, 'x');
  EXPECT_EQ(cycles.load(), 3);
  EXPECT_EQ(others.load(), 4 * n);
  // The reader is never released by the work above, so finishing at all
  // proves the point; the bound only turns a hang into a readable failure.
  EXPECT_LT(took, 30s);
}

}  // namespace
}  // namespace goro::test
