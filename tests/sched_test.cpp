// sched_test.cpp — the scheduler: spawning, spreading work over the Ps,
// stealing, fairness, runnext, GOMAXPROCS changes, proc_pin, goid and
// num_goroutine. Every scheduler test is parameterised over GOMAXPROCS
// {1, 2, 4, 8} (the machine may have only 2 cores: more Ps than cores is the
// point). Last, the runtime's own Lock (sched/lock.cpp), on plain threads.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace goro::detail {
// LockTestPeer reaches into a Lock: its key, and a release that wakes
// nobody (what unlock_plain does when it loses the race with a waiter).
struct LockTestPeer {
  static std::uint32_t key(Lock& l) { return l.key_.load(std::memory_order_acquire); }
  static void release_without_wake(Lock& l) {
    l.key_.store(0, std::memory_order_release);
    Lock::lock_exit(l.rank_);
  }
  static void wake_all(Lock& l) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&l.key_), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1 << 30,
            nullptr, nullptr, 0);
  }
};
}  // namespace goro::detail

namespace goro::test {
namespace {

using namespace std::chrono_literals;

class Sched : public ProcsTest {};
GORO_INSTANTIATE_PROCS(Sched);

// ---------------------------------------------------------------------------
// Spawn and join

// One million goroutines (a hundred thousand under a sanitizer), spawned by
// main in one go and joined with a WaitGroup. Run once, at GOMAXPROCS=4; the
// parameterised test below does a smaller batch at every GOMAXPROCS.
TEST_F(RuntimeTest, SpawnJoinOneMillion) {
  const long n = scaled(1000000);
  std::atomic<long> ran{0};
  goro::run(procs(4), [&] {
    goro::WaitGroup wg;
    wg.add(static_cast<int>(n));
    for (long i = 0; i < n; i++)
      goro::go([&] {
        ran.fetch_add(1, std::memory_order_relaxed);
        wg.done();
      });
    wg.wait();
    EXPECT_EQ(ran.load(), n);
  });
  EXPECT_EQ(ran.load(), n);
}

TEST_P(Sched, SpawnJoin) {
  const long n = scaled(50000);
  std::atomic<long> sum{0};
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(static_cast<int>(n));
    for (long i = 0; i < n; i++)
      goro::go([&sum, &wg, i] {
        sum.fetch_add(i, std::memory_order_relaxed);
        wg.done();
      });
    wg.wait();
  });
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
}

// Goroutines spawning goroutines, a binary tree of depth 12.
TEST_P(Sched, SpawnTree) {
  constexpr int kDepth = 12;
  std::atomic<int> leaves{0};
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    struct Node {
      static void grow(int depth, goro::WaitGroup& wg, std::atomic<int>& leaves) {
        if (depth == 0) {
          leaves.fetch_add(1);
        } else {
          wg.add(2);
          for (int k = 0; k < 2; k++)
            goro::go([depth, &wg, &leaves] {
              grow(depth - 1, wg, leaves);
              wg.done();
            });
        }
      }
    };
    Node::grow(kDepth, wg, leaves);
    wg.wait();
  });
  EXPECT_EQ(leaves.load(), 1 << kDepth);
}

// ---------------------------------------------------------------------------
// Work spreading and stealing

// Every P runs goroutines: busy goroutines that yield record the id of the P
// they run on (proc_pin) until every id in [0, n) has been seen.
TEST_P(Sched, WorkSpreadsToEveryP) {
  const int n = nprocs();
  std::array<std::atomic<int>, 8> seen_count{};
  std::atomic<int> distinct{0};
  std::atomic<bool> bad_id{false};
  goro::run(opts(), [&] {
    const int workers = 8 * n;
    goro::WaitGroup wg;
    wg.add(workers);
    Deadline deadline(10s);
    for (int w = 0; w < workers; w++)
      goro::go([&] {
        for (int iter = 0; iter < 200000 && distinct.load() < n && !deadline.passed(); iter++) {
          spin(2000);
          const int id = goro::proc_pin();
          goro::proc_unpin();
          if (id < 0 || id >= n) bad_id = true;
          else if (seen_count[id].fetch_add(1) == 0) distinct.fetch_add(1);
          goro::yield();
        }
        wg.done();
      });
    wg.wait();
  });
  EXPECT_FALSE(bad_id.load());
  for (int i = 0; i < n; i++) EXPECT_GT(seen_count[i].load(), 0) << "P" << i << " never ran a goroutine";
}

// Stealing: one goroutine spawns all the work onto its own P's run queue
// (fewer than the queue's 256 slots, so nothing overflows to the global
// queue) and then keeps that P busy without entering the runtime. The only
// way for the work to run is for other Ps to steal it; the spawner waits
// until some goroutine has finished on another P.
TEST_P(Sched, IdlePsStealWork) {
  const int n = nprocs();
  if (n == 1) GTEST_SKIP() << "stealing needs a second P";
  constexpr int kWorkers = 128;
  std::atomic<int> spawner_p{-1};
  std::atomic<int> finished_elsewhere{0};
  std::array<std::atomic<int>, 8> finished_on{};
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      goro::WaitGroup work;
      work.add(kWorkers);
      const int me = goro::proc_pin();
      goro::proc_unpin();
      spawner_p = me;
      for (int i = 0; i < kWorkers; i++)
        goro::go([&] {
          spin(20000);
          const int id = goro::proc_pin();
          goro::proc_unpin();
          finished_on[id].fetch_add(1);
          if (id != spawner_p.load()) finished_elsewhere.fetch_add(1);
          work.done();
        });
      // Hold our P (no runtime calls) until a thief has run something.
      Deadline deadline(10s);
      while (finished_elsewhere.load() == 0 && !deadline.passed()) spin(100);
      work.wait();
      wg.done();
    });
    wg.wait();
  });
  EXPECT_GT(finished_elsewhere.load(), 0) << "no goroutine was stolen from P" << spawner_p.load();
  int ps = 0, total = 0;
  for (int i = 0; i < 8; i++) {
    ps += finished_on[i].load() > 0;
    total += finished_on[i].load();
  }
  EXPECT_EQ(total, kWorkers);
  // The thieves may well have run all of it (the spawner kept its P busy),
  // so "several Ps" is: at least one P other than the spawner's.
  EXPECT_GE(ps, 1);
  EXPECT_LT(finished_on[spawner_p.load()].load(), kWorkers);
}

// ---------------------------------------------------------------------------
// Fairness and run order

// A goroutine that yields in a loop cannot starve one it spawned: the
// spawned one sets a flag the yielder waits for. The loop is bounded so
// that starvation is a failure, not a hang.
TEST_P(Sched, YieldLoopDoesNotStarveSpawned) {
  long iterations = -1;
  goro::run(opts(), [&] {
    std::atomic<bool> flag{false};
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      flag = true;
      wg.done();
    });
    long i = 0;
    for (; i < 1000000 && !flag.load(); i++) goro::yield();
    iterations = flag.load() ? i : -1;
    wg.wait();
  });
  EXPECT_GE(iterations, 0) << "the spawned goroutine never ran";
}

// The same with two yielders competing: a third goroutine spawned by one of
// them still runs.
TEST_P(Sched, YieldersDoNotStarveEachOther) {
  std::atomic<int> done_count{0};
  std::atomic<bool> starved{false};
  goro::run(opts(), [&] {
    std::atomic<bool> flag{false};
    goro::WaitGroup wg;
    wg.add(2);
    for (int k = 0; k < 2; k++)
      goro::go([&, k] {
        if (k == 0)
          goro::go([&] { flag = true; });
        long i = 0;
        for (; i < 1000000 && !flag.load(); i++) goro::yield();
        if (!flag.load()) starved = true;
        done_count.fetch_add(1);
        wg.done();
      });
    wg.wait();
  });
  EXPECT_FALSE(starved.load());
  EXPECT_EQ(done_count.load(), 2);
}

// run_gated spawns n goroutines that stay alive until every one has
// started, calls while_alive() meanwhile, and returns when all have ended.
template <class F>
void run_gated(int n, F while_alive) {
  goro::WaitGroup started, gate, finished;
  gate.add(1);
  started.add(n);
  finished.add(n);
  for (int i = 0; i < n; i++)
    goro::go([&] {
      started.done();
      gate.wait();
      finished.done();
    });
  started.wait();
  while_alive();
  gate.done();
  finished.wait();
}

// A yield loop on one P still runs a timer that falls due: yield's fast
// path (globrunqput_next) runs the P's due timers before it takes the next
// G, as findrunnable does. The sleeper must wake while the loop is running
// (bounded in count, not in time).
TEST_P(Sched, YieldLoopRunsDueTimers) {
  bool woke = false;
  goro::run(opts(), [&] {
    std::atomic<bool> flag{false};
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      goro::sleep_for(1ms);
      flag = true;
      wg.done();
    });
    for (long i = 0; i < 100000000 && !flag.load(); i++) goro::yield();
    woke = flag.load();
    wg.wait();
  });
  EXPECT_TRUE(woke) << "100M yields went by and the 1 ms sleeper never woke";
}

// Dead goroutines are reused: rounds of 500 goroutines that are all alive at
// once, spawned by main and exiting on whichever P ran them, make only as
// many new Gs as the other Ps may keep for themselves — the exits past 64
// per P go to the global free list in batches of 32, and spawning takes
// them back a batch at a time.
// Every G is accounted for: live, on a P's free list or on the global one.
TEST_P(Sched, DeadGoroutinesAreReusedInBatches) {
  constexpr int kN = 500, kRounds = 20;
  std::int32_t after_first = 0, after_last = 0, free_total = 0, allg = 0, bad_batches = 0;
  goro::run(opts(), [&] {
    detail::Runtime* r = detail::rt();
    for (int round = 0; round < kRounds; round++) {
      run_gated(kN, [] {});
      for (int i = 0; i < 1000000 && goro::num_goroutine() != 1; i++) goro::yield();
      if (round == 0) after_first = r->allglen.load() - r->sched.ngsys.load();
    }
    after_last = r->allglen.load() - r->sched.ngsys.load();
    // Once the other Ps are idle their lists stand still; sched.lock orders
    // their last writes (pidleput takes it) before our reads. Walk every
    // list and check the counts against the lengths.
    for (int i = 0; i < 1000000 && r->sched.npidle.load() != goro::gomaxprocs() - 1; i++) goro::yield();
    { std::lock_guard<detail::Lock> lk(r->sched.lock); }
    {
      std::lock_guard<detail::Lock> lk(r->sched.gFreeLock);
      std::int32_t global = 0;
      for (detail::G* b = r->sched.gFree; b != nullptr; b = b->gfreebatch) {
        std::int32_t n = 0;
        for (detail::G* g = b; g != nullptr; g = g->schedlink) n++;
        if (n != b->gfreen) bad_batches++;
        global += n;
      }
      if (global != r->sched.gFreeCount.load()) bad_batches++;
      free_total = global;
    }
    for (int i = 0; i < goro::gomaxprocs(); i++) {
      detail::P* p = r->allp[i].load();
      std::int32_t n = 0;
      for (detail::G* g = p->gFree; g != nullptr; g = g->schedlink) n++;
      if (n != p->gFreeCount.load()) bad_batches++;
      free_total += n;
    }
    allg = r->allglen.load() - r->sched.ngsys.load();
  });
  // Main's P spawns every goroutine; the other Ps each keep up to 63 dead Gs
  // on their own lists (as Go's do), out of its reach; everything else comes
  // back to it through the global list.
  EXPECT_GE(after_first, kN + 1);
  EXPECT_LE(after_last, kN + 1 + 63 * (GetParam() - 1)) << "later rounds made new Gs instead of reusing dead ones";
  EXPECT_EQ(bad_batches, 0) << "a free list's count differs from its length";
  EXPECT_EQ(free_total + 1, allg) << "dead Gs on the free lists, plus main, are all the user Gs";
}

// ---------------------------------------------------------------------------
// The direct switch (proc.cpp): a goroutine that parks right after readying
// another, or yields, hands its M straight to the next G, and is visible to
// other Ms (queued, or woken) a moment before its context is saved.

// Pairs ping-pong over unbuffered channels, every value checked, while
// yielders churn the global queue. Each round trip readies the partner into
// runnext and parks (the direct hand-off); with several Ps a goroutine may be
// woken and taken by another M while it is still switching out, which must
// wait for the save. A goroutine resumed from a stale context would lose its
// loop counters (held in registers and on its stack) or crash.
TEST_P(Sched, DirectSwitchKeepsEveryGoroutineWhole) {
  constexpr int kPairs = 8, kYielders = 4;
  const long kRounds = scaled(100000);
  std::atomic<long> bad{0}, sum{0}, yields{0};
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(2 * kPairs + kYielders);
    for (int p = 0; p < kPairs; p++) {
      auto ping = goro::make_chan<long>(), pong = goro::make_chan<long>();
      goro::go([&, ping, pong, p]() mutable {
        for (long i = 0; i < kRounds; i++) {
          ping.send(i * kPairs + p);
          if (pong.recv() != -(i * kPairs + p)) bad++;
        }
        wg.done();
      });
      goro::go([&, ping, pong, p]() mutable {
        long local = 0;
        for (long i = 0; i < kRounds; i++) {
          const long v = *ping.recv();
          if (v != i * kPairs + p) bad++;
          local += v;
          pong.send(-v);
        }
        sum += local;
        wg.done();
      });
    }
    for (int y = 0; y < kYielders; y++)
      goro::go([&] {
        long local = 0;
        for (long i = 0; i < kRounds; i++, local++) goro::yield();
        yields += local;
        wg.done();
      });
    wg.wait();
  });
  const long n = kRounds * kPairs;  // every value 0 .. n-1 sent once
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
  EXPECT_EQ(yields.load(), kRounds * kYielders);
}

// Two goroutines that hand the M to each other through runnext never go
// back to g0 on the direct path, and share one time slice (as in Go). The
// direct path still sends the M to g0 when one of the P's timers is due,
// and sysmon's preemption after a slice of 10 ms still moves the pair
// behind the global queue. On one P: a sleeper wakes, and main (queued
// globally by each of its yields) gets to run again, long before the pair
// reaches its bound of round trips.
TEST_F(RuntimeTest, DirectHandOffsLeaveRoomForTimersAndTheGlobalQueue) {
  constexpr long kMaxTrips = 50000000;
  long trips = 0;
  bool woke = false;
  goro::run(procs(1), [&] {
    std::atomic<bool> stop{false}, slept{false};
    goro::WaitGroup wg;
    wg.add(3);
    auto ping = goro::make_chan<int>(), pong = goro::make_chan<int>();
    goro::go([&, ping, pong]() mutable {
      long i = 0;
      for (; i < kMaxTrips && !stop.load(); i++) {
        ping.send(1);
        pong.recv();
      }
      trips = i;
      ping.close();
      wg.done();
    });
    goro::go([&, ping, pong]() mutable {
      while (ping.recv()) pong.send(1);
      wg.done();
    });
    goro::go([&] {
      goro::sleep_for(1ms);
      slept = true;
      wg.done();
    });
    for (long i = 0; i < 1000 && !slept.load(); i++) goro::yield();
    woke = slept.load();
    stop = true;
    wg.wait();
  });
  EXPECT_TRUE(woke) << "main yielded 1000 times and the 1 ms sleeper never woke";
  EXPECT_LT(trips, kMaxTrips) << "the ping-pong pair kept the P to itself";
}

// runnext: with one P, goroutines spawned A, B, C by main, which then
// blocks, run C first (the last spawned sits in runnext) and then A, B in
// FIFO order — Go's order.
TEST_F(RuntimeTest, RunnextOrderWithOneP) {
  std::vector<char> order;
  goro::run(procs(1), [&] {
    goro::WaitGroup wg;
    wg.add(3);
    for (char c : {'A', 'B', 'C'})
      goro::go([&order, &wg, c] {
        order.push_back(c);
        wg.done();
      });
    wg.wait();
  });
  EXPECT_EQ(std::string(order.begin(), order.end()), "CAB");
}

// yield() is Go's Gosched: the goroutine goes to the *global* run queue
// (goschedImpl -> globrunqput), not to its P's local one. With one P, main
// spawns X (into runnext) and yields; X runs next and finds main in the
// global queue and its P's local queue empty. (Before this was fixed, main
// sat at the tail of the local queue: global 0, local 1.)
TEST_F(RuntimeTest, YieldPutsTheGoroutineOnTheGlobalQueue) {
  std::int32_t global = -1;
  std::uint32_t local = 99;
  std::uint32_t tick = 0;
  bool main_resumed = false;
  goro::run(procs(1), [&] {
    goro::WaitGroup wg;
    // Move schedtick off 0 first: main itself started from runnext (no
    // tick), and on a tick that is a multiple of 61 findrunnable takes from
    // the global queue first, which would run main again before X. A and B:
    // B runs from runnext (no tick), A from the ring (one tick).
    wg.add(2);
    for (int k = 0; k < 2; k++) goro::go([&] { wg.done(); });
    wg.wait();
    tick = detail::getm()->p->schedtick.load();
    ASSERT_NE(tick % 61, 0u) << "schedtick " << tick;
    wg.add(1);
    goro::go([&] {
      global = detail::rt()->sched.runqsize.load();
      local = detail::runqlen(detail::getm()->p);
      wg.done();
    });
    goro::yield();
    main_resumed = true;  // taken back from the global queue
    wg.wait();
  });
  EXPECT_EQ(global, 1) << "the yielding goroutine is not on the global run queue (schedtick "
                       << tick << ")";
  EXPECT_EQ(local, 0u) << "the yielding goroutine is on the local run queue";
  EXPECT_TRUE(main_resumed);
}

// A goroutine readied by another runs next on that P (runnext handoff):
// with one P, the ping-pong between two goroutines through WaitGroups is not
// interleaved with a third goroutine that is runnable the whole time.
TEST_F(RuntimeTest, ReadiedGoroutineRunsNext) {
  std::vector<int> order;
  goro::run(procs(1), [&] {
    goro::WaitGroup gate, done;
    std::atomic<bool> waiting{false};
    gate.add(1);
    done.add(2);
    goro::go([&] {  // the waiter
      waiting = true;
      gate.wait();
      order.push_back(2);
      done.done();
    });
    // Let it park on gate. One yield is not enough: yield() goes to the
    // global queue, and on a schedtick that is a multiple of 61 the global
    // queue is looked at first, so main may run again before the waiter.
    for (int i = 0; i < 1000 && !waiting.load(); i++) goro::yield();
    goro::go([&] {  // a bystander, queued behind
      order.push_back(3);
      done.done();
    });
    order.push_back(1);
    gate.done();  // readies the waiter into runnext, displacing the bystander
    done.wait();
  });
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

// ---------------------------------------------------------------------------
// GOMAXPROCS

// gomaxprocs(n) while goroutines run and yield: 1 -> 4 -> 2 -> 8 -> 1. Each
// call returns the previous value, gomaxprocs() the new one; all work
// completes; once the value is back at 1, every goroutine runs on P0.
TEST_P(Sched, GomaxprocsChangesUnderLoad) {
  constexpr int kWorkers = 16;
  const int iters = static_cast<int>(scaled(3000));
  std::atomic<long> total{0};
  std::atomic<bool> shrunk{false};
  std::atomic<int> bad_p_after_shrink{0};
  std::atomic<int> max_p_seen{0};
  goro::run(opts(), [&] {
    EXPECT_EQ(goro::gomaxprocs(), nprocs());
    goro::WaitGroup wg;
    wg.add(kWorkers);
    for (int w = 0; w < kWorkers; w++)
      goro::go([&] {
        for (int i = 0; i < iters; i++) {
          const bool after = shrunk.load();
          const int id = goro::proc_pin();
          goro::proc_unpin();
          if (after && id != 0) bad_p_after_shrink.fetch_add(1);
          int m = max_p_seen.load();
          while (id > m && !max_p_seen.compare_exchange_weak(m, id)) {
          }
          spin(200);
          total.fetch_add(1);
          goro::yield();
        }
        wg.done();
      });
    int expect_prev = nprocs();
    for (int n : {1, 4, 2, 8, 1}) {
      for (int k = 0; k < 50; k++) goro::yield();
      EXPECT_EQ(goro::gomaxprocs(n), expect_prev);
      EXPECT_EQ(goro::gomaxprocs(), n);
      EXPECT_EQ(goro::gomaxprocs(0), n);  // 0 queries
      expect_prev = n;
    }
    shrunk = true;
    // Setting it to its current value changes nothing and returns it.
    EXPECT_EQ(goro::gomaxprocs(1), 1);
    wg.wait();
    EXPECT_EQ(goro::gomaxprocs(), 1);
  });
  EXPECT_EQ(total.load(), static_cast<long>(kWorkers) * iters);
  EXPECT_EQ(bad_p_after_shrink.load(), 0);
  EXPECT_LT(max_p_seen.load(), 8);
}

// Growing GOMAXPROCS puts the new Ps to work.
TEST_P(Sched, GomaxprocsGrowUsesNewPs) {
  std::array<std::atomic<int>, 8> seen{};
  std::atomic<int> distinct{0};
  goro::run(opts(), [&] {
    goro::gomaxprocs(8);
    goro::WaitGroup wg;
    wg.add(32);
    Deadline deadline(10s);
    for (int w = 0; w < 32; w++)
      goro::go([&] {
        for (int i = 0; i < 100000 && distinct.load() < 8 && !deadline.passed(); i++) {
          spin(2000);
          const int id = goro::proc_pin();
          goro::proc_unpin();
          if (seen[id].fetch_add(1) == 0) distinct.fetch_add(1);
          goro::yield();
        }
        wg.done();
      });
    wg.wait();
  });
  EXPECT_EQ(distinct.load(), 8);
}

// ---------------------------------------------------------------------------
// proc_pin

// proc_pin returns the same id for as long as the goroutine is pinned
// (nested pins included), in [0, gomaxprocs).
TEST_P(Sched, ProcPinIdIsStable) {
  std::atomic<int> bad{0};
  goro::run(opts(), [&] {
    const int n = goro::gomaxprocs();
    goro::WaitGroup wg;
    wg.add(4 * n);
    for (int w = 0; w < 4 * n; w++)
      goro::go([&] {
        for (int round = 0; round < 20; round++) {
          const int id = goro::proc_pin();
          if (id < 0 || id >= n) bad.fetch_add(1);
          for (int k = 0; k < 50; k++) {
            spin(100);
            if (goro::proc_pin() != id) bad.fetch_add(1);  // nested
          }
          for (int k = 0; k < 50; k++) goro::proc_unpin();
          if (goro::proc_pin() != id) bad.fetch_add(1);
          goro::proc_unpin();
          goro::proc_unpin();
          goro::yield();
        }
        wg.done();
      });
    wg.wait();
  });
  EXPECT_EQ(bad.load(), 0);
}

// Unpinning more than was pinned is misuse and throws.
TEST_P(Sched, ProcUnpinWithoutPinThrows) {
  goro::run(opts(), [] {
    EXPECT_THROW(goro::proc_unpin(), goro::Error);
    goro::proc_pin();
    goro::proc_unpin();
    EXPECT_THROW(goro::proc_unpin(), goro::Error);
  });
}

// A pinned goroutine holds off stop-the-world: gomaxprocs(n), called from
// another goroutine while the pin is held, does not return before the
// pinned goroutine unpins. The pinned goroutine waits (spinning, pinned)
// until the stopper has actually begun (sched.gcwaiting), then sets
// `released` and unpins; the caller must see `released` once gomaxprocs
// returns.
TEST_P(Sched, ProcPinHoldsOffStopTheWorld) {
  const int n = nprocs();
  if (n == 1) GTEST_SKIP() << "the stopper needs a P of its own";
  std::atomic<bool> pinned{false}, caller_started{false}, stw_seen{false}, released{false};
  std::atomic<bool> saw_released_after{false};
  std::atomic<int> prev_returned{0};
  goro::run(opts(), [&] {
    goro::WaitGroup wg;
    wg.add(2);
    goro::go([&] {
      goro::proc_pin();
      pinned = true;
      Deadline deadline(10s);
      while (!caller_started.load() && !deadline.passed()) spin(100);
      while (!goro::detail::rt()->sched.gcwaiting.load() && !deadline.passed()) spin(100);
      stw_seen = goro::detail::rt()->sched.gcwaiting.load();
      spin(100000);  // give the stopper every chance to (wrongly) finish
      released = true;
      goro::proc_unpin();
      wg.done();
    });
    goro::go([&] {
      Deadline deadline(10s);
      while (!pinned.load() && !deadline.passed()) goro::yield();
      caller_started = true;
      prev_returned = goro::gomaxprocs(n + 1);
      saw_released_after = released.load();
      wg.done();
    });
    wg.wait();
    EXPECT_EQ(goro::gomaxprocs(), n + 1);
  });
  EXPECT_TRUE(stw_seen.load()) << "the stop-the-world never started";
  EXPECT_TRUE(saw_released_after.load()) << "gomaxprocs returned while a goroutine was pinned";
  EXPECT_EQ(prev_returned.load(), n);
}

// ---------------------------------------------------------------------------
// goid and num_goroutine

TEST_P(Sched, GoidMainIsOneAndIdsAreUnique) {
  constexpr int kN = 2000;
  std::vector<std::uint64_t> ids(kN);
  std::uint64_t main_id = 0;
  goro::run(opts(), [&] {
    main_id = goro::goid();
    goro::WaitGroup wg;
    wg.add(kN);
    for (int i = 0; i < kN; i++)
      goro::go([&, i] {
        ids[i] = goro::goid();
        goro::yield();
        EXPECT_EQ(goro::goid(), ids[i]);  // stable across a reschedule
        wg.done();
      });
    wg.wait();
    EXPECT_EQ(goro::goid(), 1u);
  });
  EXPECT_EQ(main_id, 1u);
  std::set<std::uint64_t> uniq(ids.begin(), ids.end());
  EXPECT_EQ(uniq.size(), static_cast<std::size_t>(kN));
  EXPECT_EQ(uniq.count(1), 0u);
  EXPECT_EQ(uniq.count(0), 0u);
}

// Ids are not reused even though the G structures are.
TEST_P(Sched, GoidNotReusedAcrossGenerations) {
  std::set<std::uint64_t> ids;
  goro::run(opts(), [&] {
    for (int round = 0; round < 20; round++) {
      std::vector<std::uint64_t> batch(50);
      goro::WaitGroup wg;
      wg.add(50);
      for (int i = 0; i < 50; i++)
        goro::go([&, i] {
          batch[i] = goro::goid();
          wg.done();
        });
      wg.wait();
      ids.insert(batch.begin(), batch.end());
    }
  });
  EXPECT_EQ(ids.size(), 1000u);
}

TEST_P(Sched, NumGoroutineCountsLiveGoroutines) {
  constexpr int kN = 100;
  int during = 0, at_start = 0, at_end = -1;
  goro::run(opts(), [&] {
    at_start = goro::num_goroutine();
    run_gated(kN, [&] { during = goro::num_goroutine(); });
    for (int i = 0; i < 1000000 && goro::num_goroutine() != 1; i++) goro::yield();
    at_end = goro::num_goroutine();
  });
  EXPECT_EQ(at_start, 1);
  EXPECT_GE(during, kN + 1);
  EXPECT_LE(during, kN + 1);  // nothing else is alive
  EXPECT_EQ(at_end, 1);
}

TEST_P(Sched, NumCpuIsPositive) {
  goro::run(opts(), [] { EXPECT_GE(goro::num_cpu(), 1); });
}

// ---------------------------------------------------------------------------
// The runtime's Lock (sched/lock.cpp), on plain threads: a channel's lock is
// released by unlock (a locked exchange that wakes a sleeper) or unlock_plain
// (a release store when nobody marked the lock contended).

// Four threads take one channel-rank lock, release it either way at random,
// and now and then hold it for 30 us so that the others go past their spin
// to the futex. Mutual exclusion: a plain counter comes out exact (and the
// TSan build checks every increment is ordered); progress: every thread
// finishes.
TEST(RuntimeLock, PlainAndLockedUnlocksExcludeEachOther) {
  detail::Lock lock(detail::LockRank::hchan);
  const long per = scaled(200000);
  long counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      std::uint32_t x = 2463534242u + static_cast<std::uint32_t>(t);  // xorshift32
      for (long i = 0; i < per; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        lock.lock();
        counter++;
        if (x % 512 == 0) {
          const auto until = std::chrono::steady_clock::now() + 30us;
          while (std::chrono::steady_clock::now() < until) {
          }
        }
        if (x & 1)
          lock.unlock_plain();
        else
          lock.unlock();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(counter, 4 * per);
  EXPECT_EQ(detail::LockTestPeer::key(lock), 0u);
}

// state_of returns the scheduler state letter of thread tid ('S': asleep),
// from /proc/self/task/<tid>/stat.
char state_of(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(f, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() ? line[close + 2] : '?';
}

// The race unlock_plain can lose: a waiter marks the lock contended and
// sleeps on the futex just after the holder read the key, and the holder's
// store wakes nobody. The waiter must still get the lock: a channel lock's
// sleepers wait with a timeout and look again.
TEST(RuntimeLock, ChannelLockSleeperOutlivesALostWakeup) {
  detail::Lock lock(detail::LockRank::hchan);
  lock.lock();
  std::atomic<pid_t> tid{0};
  std::atomic<bool> acquired{false};
  std::thread waiter([&] {
    tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    lock.lock();
    acquired.store(true);
    lock.unlock();
  });
  // Wait (bounded) until the waiter has marked the lock and is asleep.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((tid.load() == 0 || detail::LockTestPeer::key(lock) != 2 || state_of(tid.load()) != 'S') &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  if (detail::LockTestPeer::key(lock) != 2) {
    lock.unlock();  // the waiter never marked the lock: let it finish
    waiter.join();
    FAIL() << "the waiter did not go to sleep on the lock within 10 s";
  }
  detail::LockTestPeer::release_without_wake(lock);
  const auto bound = std::chrono::steady_clock::now() + 10s;
  while (!acquired.load() && std::chrono::steady_clock::now() < bound) std::this_thread::yield();
  const bool got = acquired.load();
  if (!got) detail::LockTestPeer::wake_all(lock);  // so that the test can end
  waiter.join();
  EXPECT_TRUE(got) << "a sleeper whose wake-up was lost never took the lock";
}

}  // namespace
}  // namespace goro::test
