// waitgroup_test.cpp — sync.WaitGroup.
#include <atomic>
#include <string>

#include "test_util.hpp"

namespace goro::test {
namespace {

class WaitGroupTest : public ProcsTest {};
GORO_INSTANTIATE_PROCS(WaitGroupTest);

TEST_P(WaitGroupTest, NegativeCounterPanics) {
  goro::run(opts(), [] {
    goro::WaitGroup wg;
    try {
      wg.add(-1);
      ADD_FAILURE() << "add(-1) on a zero WaitGroup did not panic";
    } catch (const goro::Panic& e) {
      EXPECT_STREQ(e.what(), "sync: negative WaitGroup counter");
    }
    goro::WaitGroup wg2;
    wg2.add(2);
    wg2.done();
    wg2.done();
    try {
      wg2.done();
      ADD_FAILURE() << "a third done() did not panic";
    } catch (const goro::Panic& e) {
      EXPECT_STREQ(e.what(), "sync: negative WaitGroup counter");
    }
  });
}

TEST_P(WaitGroupTest, WaitWithZeroCountReturnsAtOnce) {
  goro::run(opts(), [] {
    goro::WaitGroup wg;
    wg.wait();
    wg.add(3);
    wg.add(-3);
    wg.wait();
    SUCCEED();
  });
}

// Many waiters parked on one WaitGroup are all released by the last done().
TEST_P(WaitGroupTest, ManyWaitersAllReleased) {
  constexpr int kWaiters = 200;
  std::atomic<int> released{0};
  std::atomic<bool> gate_open{false};
  std::atomic<int> early{0};
  goro::run(opts(), [&] {
    goro::WaitGroup gate, started, finished;
    gate.add(1);
    started.add(kWaiters);
    finished.add(kWaiters);
    for (int i = 0; i < kWaiters; i++)
      goro::go([&] {
        started.done();
        gate.wait();
        if (!gate_open.load()) early.fetch_add(1);
        released.fetch_add(1);
        finished.done();
      });
    started.wait();
    gate_open = true;
    gate.done();
    finished.wait();
  });
  EXPECT_EQ(released.load(), kWaiters);
  EXPECT_EQ(early.load(), 0);
}

// A WaitGroup reused for many rounds, with done() racing from many
// goroutines on several Ps.
TEST_P(WaitGroupTest, ReusedAcrossRounds) {
  std::atomic<long> total{0};
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    for (int round = 0; round < 200; round++) {
      wg.add(10);
      for (int i = 0; i < 10; i++)
        goro::go([&] {
          total.fetch_add(1);
          wg.done();
        });
      wg.wait();
      EXPECT_EQ(total.load(), (round + 1) * 10L);
    }
  });
  EXPECT_EQ(total.load(), 2000);
}

// add() from the goroutines themselves (each adds for its children before
// spawning them), waited on by several goroutines.
TEST_P(WaitGroupTest, NestedAddsAndSeveralWaiters) {
  std::atomic<int> leaves{0}, waiters_done{0};
  goro::run(opts(), [&] {
    goro::WaitGroup wg, all;
    wg.add(1);
    goro::go([&] {
      for (int i = 0; i < 50; i++) {
        wg.add(1);
        goro::go([&] {
          leaves.fetch_add(1);
          wg.done();
        });
      }
      wg.done();
    });
    all.add(5);
    for (int w = 0; w < 5; w++)
      goro::go([&] {
        wg.wait();
        EXPECT_EQ(leaves.load(), 50);
        waiters_done.fetch_add(1);
        all.done();
      });
    wg.wait();
    all.wait();
  });
  EXPECT_EQ(leaves.load(), 50);
  EXPECT_EQ(waiters_done.load(), 5);
}

}  // namespace
}  // namespace goro::test
