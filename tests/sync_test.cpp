// sync_test.cpp — sync.Mutex, RWMutex, Cond and Once: mutual exclusion under
// contention, starvation mode, try_lock, the std lock adaptors, Go's fatal
// errors on misuse, reader parallelism and writer preference, Cond's signal
// and broadcast, Once under contention and after a throwing fn. Every
// runtime test is parameterised over GOMAXPROCS {1, 2, 4, 8}; waits are on
// WaitGroups, the locks themselves or the primitives' state words, never on
// sleeps.
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <vector>

#include "runtime/access.hpp"
#include "sched/nanotime.hpp"
#include "test_util.hpp"

namespace goro::test {
namespace {

using namespace std::chrono_literals;
using SyncTestAccess = detail::Access;  // the state words the tests assert on

class Sync : public ProcsTest {};
GORO_INSTANTIATE_PROCS(Sync);

// waitfor yields until pred() holds, failing the test after 10 s instead of
// hanging. The predicates are state the other goroutine reaches by itself
// (a counter, a state word), so this is synchronisation, not a sleep.
template <class Pred>
void waitfor(Pred pred, const char* what) {
  Deadline d(10s);
  while (!pred()) {
    if (d.passed()) {
      ADD_FAILURE() << "timed out waiting for " << what;
      return;
    }
    goro::yield();
  }
}

// ---------------------------------------------------------------------------
// Mutex

// 8 goroutines x 10k increments of a plain (non-atomic) counter: any lost
// update is a mutual exclusion failure, and TSan sees the data race.
TEST_P(Sync, MutexContention) {
  constexpr int kG = 8;
  const long kN = scaled(10000) * (kSanitized ? 5 : 1);
  long counter = 0;
  goro::run(opts(), [&] {
    goro::Mutex mu;
    goro::WaitGroup wg;
    wg.add(kG);
    for (int g = 0; g < kG; g++)
      goro::go([&] {
        for (long i = 0; i < kN; i++) {
          mu.lock();
          counter = counter + 1;
          mu.unlock();
        }
        wg.done();
      });
    wg.wait();
    EXPECT_EQ(SyncTestAccess::state(mu), 0);
  });
  EXPECT_EQ(counter, kG * kN);
}

// Goroutines that also yield while holding the lock: waiters really park,
// are woken, lose to bargers and re-queue at the front.
TEST_P(Sync, MutexContentionWithYield) {
  constexpr int kG = 16;
  const long kN = scaled(2000);
  long counter = 0;
  goro::run(opts(), [&] {
    goro::Mutex mu;
    goro::WaitGroup wg;
    wg.add(kG);
    for (int g = 0; g < kG; g++)
      goro::go([&, g] {
        for (long i = 0; i < kN; i++) {
          std::lock_guard<goro::Mutex> lk(mu);
          long c = counter;
          if ((i + g) % 7 == 0) goro::yield();
          counter = c + 1;
        }
        wg.done();
      });
    wg.wait();
    EXPECT_EQ(SyncTestAccess::state(mu), 0);
  });
  EXPECT_EQ(counter, kG * kN);
}

// Starvation mode (Go's sync.Mutex): a waiter that has waited > 1 ms
// switches the mutex to starvation mode, and from then on unlock hands the
// mutex straight to the first waiter. Main re-locks immediately after every
// release and holds it > 1 ms each time, so in normal mode the woken waiter
// nearly always loses the race. What the runtime guarantees, and so what is
// asserted:
//   - once the state word shows mutexStarving, the next unlock gives the
//     mutex to the waiter: main's following lock() returns only after the
//     waiter's critical section ran (got is true);
//   - the waiter gets the mutex within a bounded number of rounds;
//   - starvation mode ends with the last waiter.
// A waiter may also win a release in normal mode (spinning on another P, or
// when main's thread is descheduled between unlock and lock on a loaded
// machine), as in Go; such an attempt shows no starvation and is repeated,
// and starvation must be seen in at least one of several attempts. (At
// GOMAXPROCS=1 the waiter runs only when sysmon preempts the holder, at
// preempt_point, as Go's async preemption would.)
TEST_P(Sync, MutexStarvationMode) {
  constexpr int kAttempts = 8, kMaxRounds = 2000;
  int starved_attempts = 0;
  for (int attempt = 0; attempt < kAttempts && starved_attempts == 0; attempt++) {
    int rounds = 0;
    bool handed_off = false;  // an unlock in starvation mode happened
    bool handoff_ok = true;
    goro::run(opts(), [&] {
      goro::Mutex mu;
      std::atomic<bool> got{false};
      goro::WaitGroup wg;
      wg.add(1);
      mu.lock();
      goro::go([&] {
        mu.lock();
        got.store(true);
        mu.unlock();
        wg.done();
      });
      while (!got.load() && rounds < kMaxRounds) {
        const std::int64_t until = detail::nanotime() + 1200 * 1000;
        while (detail::nanotime() < until) goro::preempt_point();
        const bool starving = SyncTestAccess::state(mu) & goro::Mutex::mutexStarving;
        mu.unlock();
        rounds++;
        mu.lock();
        if (starving) {
          // Handed off: the waiter ran its critical section before we got
          // the mutex back.
          handed_off = true;
          if (!got.load()) handoff_ok = false;
          break;
        }
      }
      mu.unlock();
      wg.wait();
      EXPECT_EQ(SyncTestAccess::state(mu) & goro::Mutex::mutexStarving, 0)
          << "starvation mode must end with the last waiter";
    });
    EXPECT_LT(rounds, kMaxRounds) << "the waiter never got the mutex";
    EXPECT_TRUE(handoff_ok) << "an unlock in starvation mode did not hand the mutex to the waiter";
    if (handed_off) starved_attempts++;
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(starved_attempts, 0) << "the waiter won every attempt in normal mode: starvation "
                                    "mode was never seen in "
                                 << kAttempts << " attempts";
}

TEST_P(Sync, MutexTryLock) {
  goro::run(opts(), [&] {
    goro::Mutex mu;
    EXPECT_TRUE(mu.try_lock());
    EXPECT_FALSE(mu.try_lock());
    goro::WaitGroup wg;
    wg.add(1);
    bool other = true;
    goro::go([&] {
      other = mu.try_lock();
      wg.done();
    });
    wg.wait();
    EXPECT_FALSE(other);
    mu.unlock();
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
    EXPECT_EQ(SyncTestAccess::state(mu), 0);
  });
}

TEST_P(Sync, MutexStdAdaptors) {
  constexpr int kG = 4;
  const int kN = static_cast<int>(scaled(5000));
  long counter = 0;
  goro::run(opts(), [&] {
    goro::Mutex mu;
    goro::WaitGroup wg;
    wg.add(2 * kG);
    for (int g = 0; g < kG; g++) {
      goro::go([&] {
        for (int i = 0; i < kN; i++) {
          std::lock_guard<goro::Mutex> lk(mu);
          counter++;
        }
        wg.done();
      });
      goro::go([&] {
        for (int i = 0; i < kN; i++) {
          std::unique_lock<goro::Mutex> lk(mu, std::defer_lock);
          if (!lk.try_lock()) lk.lock();
          counter++;
          lk.unlock();
        }
        wg.done();
      });
    }
    wg.wait();
    std::scoped_lock both(mu);
    EXPECT_EQ(counter, 2L * kG * kN);
  });
}

// A Mutex is not owned by a goroutine: another one may unlock it (Go).
TEST_P(Sync, MutexUnlockFromOtherGoroutine) {
  goro::run(opts(), [&] {
    goro::Mutex mu;
    goro::WaitGroup wg;
    mu.lock();
    wg.add(1);
    goro::go([&] {
      mu.unlock();
      wg.done();
    });
    mu.lock();  // parks until the other goroutine unlocks
    mu.unlock();
    wg.wait();
  });
}

TEST(SyncOutside, MutexFastPathOutsideRuntimeAndLockOutsideWithWaitIsError) {
  goro::RWMutex rw;  // construction needs no runtime
  goro::Mutex mu;
  goro::Cond c(mu);
  EXPECT_THROW(c.wait(), goro::Error);
}

using SyncDeathTest = RuntimeTest;

TEST_F(SyncDeathTest, UnlockOfUnlockedMutex) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(goro::run(procs(2),
                        [] {
                          goro::Mutex mu;
                          mu.unlock();
                        }),
              ::testing::ExitedWithCode(2), "fatal error: sync: unlock of unlocked mutex");
}

TEST_F(SyncDeathTest, DoubleUnlockOfMutex) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(goro::run(procs(2),
                        [] {
                          goro::Mutex mu;
                          mu.lock();
                          mu.unlock();
                          mu.unlock();
                        }),
              ::testing::ExitedWithCode(2), "fatal error: sync: unlock of unlocked mutex");
}

TEST_F(SyncDeathTest, RUnlockOfUnlockedRWMutex) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(goro::run(procs(2),
                        [] {
                          goro::RWMutex rw;
                          rw.unlock_shared();
                        }),
              ::testing::ExitedWithCode(2), "fatal error: sync: RUnlock of unlocked RWMutex");
}

TEST_F(SyncDeathTest, UnlockOfUnlockedRWMutex) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(goro::run(procs(2),
                        [] {
                          goro::RWMutex rw;
                          rw.unlock();
                        }),
              ::testing::ExitedWithCode(2), "fatal error: sync: Unlock of unlocked RWMutex");
}

// ---------------------------------------------------------------------------
// RWMutex

// Two readers inside at once: the second lock_shared must return while the
// first reader still holds the lock (were it exclusive, wg.wait would be a
// deadlock, the runtime's fatal error). A writer cannot get in meanwhile.
TEST_P(Sync, RWMutexReadersShare) {
  goro::run(opts(), [&] {
    goro::RWMutex rw;
    rw.lock_shared();
    bool inside = false, tried_w = true, tried_r = false;
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      std::shared_lock<goro::RWMutex> lk(rw);
      inside = true;
      tried_r = rw.try_lock_shared();
      if (tried_r) rw.unlock_shared();
      tried_w = rw.try_lock();
      wg.done();
    });
    wg.wait();
    EXPECT_TRUE(inside);
    EXPECT_TRUE(tried_r);
    EXPECT_FALSE(tried_w);
    EXPECT_FALSE(rw.try_lock());
    rw.unlock_shared();
    EXPECT_TRUE(rw.try_lock());
    EXPECT_FALSE(rw.try_lock_shared());
    rw.unlock();
    EXPECT_EQ(SyncTestAccess::reader_count(rw), 0);
  });
}

// Writers exclude readers and each other: writers keep a == b, readers check
// it; the non-atomic fields make any overlap a TSan report too.
TEST_P(Sync, RWMutexWritersExclude) {
  constexpr int kW = 4, kR = 4;
  const int kN = static_cast<int>(scaled(5000));
  long a = 0, b = 0;
  std::atomic<long> bad{0};
  goro::run(opts(), [&] {
    goro::RWMutex rw;
    goro::WaitGroup wg;
    wg.add(kW + kR);
    for (int w = 0; w < kW; w++)
      goro::go([&] {
        for (int i = 0; i < kN; i++) {
          std::lock_guard<goro::RWMutex> lk(rw);
          a++;
          if (i % 64 == 0) goro::yield();
          b++;
        }
        wg.done();
      });
    for (int r = 0; r < kR; r++)
      goro::go([&] {
        for (int i = 0; i < kN; i++) {
          std::shared_lock<goro::RWMutex> lk(rw);
          if (a != b) bad.fetch_add(1);
        }
        wg.done();
      });
    wg.wait();
    EXPECT_EQ(SyncTestAccess::reader_count(rw), 0);
  });
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(a, long{kW} * kN);
  EXPECT_EQ(b, long{kW} * kN);
}

// Writer preference: with a reader inside and a writer waiting, a new reader
// must wait for the writer. The order in which they got in is recorded
// under the lock itself.
TEST_P(Sync, RWMutexWriterPreference) {
  std::vector<char> order;
  goro::run(opts(), [&] {
    goro::RWMutex rw;
    goro::WaitGroup wg;
    rw.lock_shared();
    wg.add(2);
    goro::go([&] {
      rw.lock();
      order.push_back('w');
      rw.unlock();
      wg.done();
    });
    // The writer is pending once readerCount has gone negative.
    waitfor([&] { return SyncTestAccess::reader_count(rw) < 0; }, "the writer to be pending");
    EXPECT_FALSE(rw.try_lock_shared()) << "a pending writer must block new readers";
    goro::go([&] {
      rw.lock_shared();
      order.push_back('r');
      rw.unlock_shared();
      wg.done();
    });
    // The new reader has registered (and parks): two readers counted.
    waitfor(
        [&] { return SyncTestAccess::reader_count(rw) == -goro::RWMutex::rwmutexMaxReaders + 2; },
        "the second reader to arrive");
    rw.unlock_shared();
    wg.wait();
    EXPECT_EQ(SyncTestAccess::reader_count(rw), 0);
  });
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], 'w');
  EXPECT_EQ(order[1], 'r');
}

// ---------------------------------------------------------------------------
// Cond

// Broadcast wakes every waiter. "ready == n" under the mutex means every
// waiter has taken its ticket (wait() takes it before unlocking), so the
// broadcast reaches all of them whether they have parked yet or not.
TEST_P(Sync, CondBroadcastWakesAll) {
  constexpr int kN = 20;
  int woken = 0;
  goro::run(opts(), [&] {
    goro::Mutex mu;
    goro::Cond c(mu);
    int ready = 0;
    bool go_on = false;
    goro::WaitGroup wg;
    wg.add(kN);
    for (int i = 0; i < kN; i++)
      goro::go([&] {
        std::unique_lock<goro::Mutex> lk(mu);
        ready++;
        while (!go_on) c.wait();
        woken++;
        wg.done();
      });
    waitfor(
        [&] {
          std::lock_guard<goro::Mutex> lk(mu);
          return ready == kN;
        },
        "every waiter to wait");
    {
      std::lock_guard<goro::Mutex> lk(mu);
      go_on = true;
      c.broadcast();
    }
    wg.wait();
  });
  EXPECT_EQ(woken, kN);
}

// Signal wakes exactly one waiter: each signal hands out one token, and the
// count of wait() returns is checked against the tickets still unnotified.
TEST_P(Sync, CondSignalWakesOne) {
  constexpr int kN = 8;
  goro::run(opts(), [&] {
    goro::Mutex mu;
    goro::Cond c(mu);
    int ready = 0, tokens = 0, returns = 0, done = 0;
    goro::WaitGroup wg;
    wg.add(kN);
    for (int i = 0; i < kN; i++)
      goro::go([&] {
        std::unique_lock<goro::Mutex> lk(mu);
        ready++;
        while (tokens == 0) {
          c.wait();
          returns++;
        }
        tokens--;
        done++;
        wg.done();
      });
    waitfor(
        [&] {
          std::lock_guard<goro::Mutex> lk(mu);
          return ready == kN;
        },
        "every waiter to wait");
    for (int k = 1; k <= kN; k++) {
      {
        std::lock_guard<goro::Mutex> lk(mu);
        tokens++;
        c.signal();
      }
      waitfor(
          [&] {
            std::lock_guard<goro::Mutex> lk(mu);
            return done == k;
          },
          "the signalled waiter");
      std::lock_guard<goro::Mutex> lk(mu);
      // Exactly one wait() returned per signal: nobody else was woken.
      EXPECT_EQ(returns, k);
    }
    wg.wait();
  });
}

// A signal with no waiter is not remembered (a Cond is not a semaphore):
// a later waiter still needs its own signal. Checked through wait()'s
// return count with a producer that signals only after seeing the waiter.
TEST_P(Sync, CondSignalNotRemembered) {
  goro::run(opts(), [&] {
    goro::Mutex mu;
    goro::Cond c(mu);
    c.signal();
    c.broadcast();
    bool waiting = false, flag = false;
    int returns = 0;
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      std::unique_lock<goro::Mutex> lk(mu);
      waiting = true;
      while (!flag) {
        c.wait();
        returns++;
      }
      wg.done();
    });
    waitfor(
        [&] {
          std::lock_guard<goro::Mutex> lk(mu);
          return waiting;
        },
        "the waiter");
    {
      std::lock_guard<goro::Mutex> lk(mu);
      flag = true;
      c.signal();
    }
    wg.wait();
    EXPECT_EQ(returns, 1);
  });
}

// A producer/consumer queue on two Conds, the classic use.
TEST_P(Sync, CondBoundedQueue) {
  const int kItems = static_cast<int>(scaled(20000));
  constexpr int kCap = 4, kProducers = 3;
  long sum = 0;
  goro::run(opts(), [&] {
    goro::Mutex mu;
    goro::Cond not_empty(mu), not_full(mu);
    std::vector<int> q;
    goro::WaitGroup wg;
    wg.add(kProducers);
    for (int p = 0; p < kProducers; p++)
      goro::go([&, p] {
        for (int i = p; i < kItems; i += kProducers) {
          std::unique_lock<goro::Mutex> lk(mu);
          while (q.size() == kCap) not_full.wait();
          q.push_back(i);
          not_empty.signal();
        }
        wg.done();
      });
    for (int n = 0; n < kItems; n++) {
      std::unique_lock<goro::Mutex> lk(mu);
      while (q.empty()) not_empty.wait();
      sum += q.back();
      q.pop_back();
      not_full.signal();
    }
    wg.wait();
  });
  EXPECT_EQ(sum, static_cast<long>(kItems) * (kItems - 1) / 2);
}

// ---------------------------------------------------------------------------
// Once

// 100 goroutines race to call(); fn runs once, and every call returns only
// after it has finished.
TEST_P(Sync, OnceUnderContention) {
  constexpr int kG = 100;
  int runs = 0;
  std::atomic<int> early{0};
  goro::run(opts(), [&] {
    goro::Once once;
    std::atomic<bool> finished{false};
    goro::WaitGroup wg;
    wg.add(kG);
    for (int g = 0; g < kG; g++)
      goro::go([&] {
        once.call([&] {
          for (int i = 0; i < 10; i++) goro::yield();  // let the others pile up
          runs++;
          finished.store(true);
        });
        if (!finished.load()) early.fetch_add(1);
        wg.done();
      });
    wg.wait();
  });
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(early.load(), 0);
}

// If fn throws, the exception propagates and Once is still done (Go marks
// it done in a defer, which runs during the panic).
TEST_P(Sync, OnceThrowingFnIsDone) {
  goro::run(opts(), [&] {
    goro::Once once;
    int runs = 0;
    EXPECT_THROW(once.call([&] {
      runs++;
      throw std::runtime_error("boom");
    }),
                 std::runtime_error);
    once.call([&] { runs++; });
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      once.call([&] { runs++; });
      wg.done();
    });
    wg.wait();
    EXPECT_EQ(runs, 1);
  });
}

}  // namespace
}  // namespace goro::test
