// pool_test.cpp — sync.Pool (pool/pool.cpp), after Go's sync/pool_test.go:
// Get/Put on one goroutine, New only when empty, the victim cache across
// cleanups, pools listed in allPools/oldPools and unlisted when destroyed,
// GOMAXPROCS changes, and a stress run with cleanups stopping the world in
// between. Parameterised over GOMAXPROCS {1, 2, 4, 8}.
//
// Most tests run "a GC cycle" as pool_cleanup_stw_for_test(): stop the world,
// run poolCleanup, start the world — what the collector does with its cleanup
// hooks, minus the marking, so the pool logic is tested deterministically.
// The collect()-based tests at the end check the rest:
// the victim really keeps objects alive for one cycle, and they really die
// after two.
#include "goro/pool.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "goro/gc.hpp"
#include "runtime/access.hpp"
#include "pool/pool.hpp"
#include "test_util.hpp"

namespace goro::test {
namespace {

using detail::getSource;

// Obj is a pooled object, on the GC heap as Pool::put requires. Arena makes
// them and counts them; it holds no pointers (the collector does not scan
// malloc memory), so every test keeps what it uses on goroutine stacks or in
// the pool.
struct Obj {
  std::atomic<int> inUse{0};
  std::uint64_t pad[7] = {};
};

class Arena {
 public:
  Obj* make() {
    n_.fetch_add(1);
    return goro::gc::make<Obj>();
  }
  std::size_t size() { return n_.load(); }

 private:
  std::atomic<std::size_t> n_{0};
};

void cycle() {
  detail::pool_cleanup_stw_for_test();
}

std::size_t allCount() {
  std::size_t a, o;
  detail::pool_counts_for_test(&a, &o);
  return a;
}
std::size_t oldCount() {
  std::size_t a, o;
  detail::pool_counts_for_test(&a, &o);
  return o;
}

class PoolTest : public ProcsTest {};
GORO_INSTANTIATE_PROCS(PoolTest);

// Go's TestPool: what one goroutine puts it gets back, in LIFO order from its
// own P (private first, then the shared chain's head).
TEST_P(PoolTest, PutThenGetReturnsTheSameObject) {
  Arena arena;
  goro::run(opts(), [&] {
    goro::Pool<Obj> p;
    EXPECT_EQ(p.get(), nullptr) << "an empty pool without New returns nullptr";
    Obj* a = arena.make();
    Obj* b = arena.make();
    p.put(a);
    EXPECT_EQ(p.get(), a);
    EXPECT_EQ(p.get(), nullptr);
    p.put(a);
    p.put(b);
    Obj* x = p.get();
    Obj* y = p.get();
    EXPECT_TRUE((x == a && y == b) || (x == b && y == a));
    EXPECT_EQ(p.get(), nullptr);
    p.put(nullptr);  // ignored
    EXPECT_EQ(p.get(), nullptr);
  });
}

// Go's TestPoolNew: New runs only when every cache is empty.
TEST_P(PoolTest, NewCalledOnlyWhenEmpty) {
  Arena arena;
  goro::run(opts(), [&] {
    int news = 0;
    goro::Pool<Obj> p([&] {
      news++;
      return arena.make();
    });
    Obj* a = p.get();
    EXPECT_EQ(news, 1);
    Obj* b = p.get();
    EXPECT_EQ(news, 2);
    EXPECT_NE(a, b);
    p.put(a);
    EXPECT_EQ(p.get(), a);
    EXPECT_EQ(news, 2);
    p.put(b);
    p.put(a);
    p.get();
    p.get();
    EXPECT_EQ(news, 2);
    p.get();
    EXPECT_EQ(news, 3);
  });
}

// After one cycle the objects sit in the victim and Get still finds them;
// after two they are dropped.
TEST_P(PoolTest, VictimKeepsObjectsForOneCycle) {
  Arena arena;
  goro::run(opts(), [&] {
    goro::Pool<Obj> p;
    Obj* a = arena.make();
    p.put(a);
    cycle();
    getSource src;
    auto* impl = detail::Access::impl(p);
    EXPECT_EQ(detail::pool_get_traced(impl, &src), a);
    EXPECT_TRUE(src == getSource::victimPrivate || src == getSource::victimShared)
        << detail::getSourceName(src);
    p.put(a);
    cycle();
    cycle();
    EXPECT_EQ(p.get(), nullptr) << "two cycles drop what was not taken back";
    // Many objects, spread over private and shared: all survive one cycle.
    std::set<Obj*> put;
    for (int i = 0; i < 100; i++) {
      Obj* o = arena.make();
      put.insert(o);
      p.put(o);
    }
    cycle();
    std::set<Obj*> got;
    while (Obj* o = p.get()) got.insert(o);
    EXPECT_EQ(got, put);
  });
}

// allPools holds the pools with a primary cache, oldPools those with a
// victim; a destroyed pool leaves both.
TEST_P(PoolTest, AllPoolsAndOldPools) {
  Arena arena;
  goro::run(opts(), [&] {
    cycle();
    cycle();  // forget pools of earlier tests (there are none left, but be sure)
    const std::size_t all0 = allCount(), old0 = oldCount();
    {
      goro::Pool<Obj> p;
      EXPECT_EQ(allCount(), all0) << "a pool is listed on first use, not when made";
      p.put(arena.make());
      EXPECT_EQ(allCount(), all0 + 1);
      cycle();
      EXPECT_EQ(allCount(), all0);
      EXPECT_EQ(oldCount(), old0 + 1);
      p.put(arena.make());
      EXPECT_EQ(allCount(), all0 + 1);
      EXPECT_EQ(oldCount(), old0 + 1);
    }
    EXPECT_EQ(allCount(), all0);
    EXPECT_EQ(oldCount(), old0);
    cycle();  // would touch the destroyed pool if it were still listed
  });
}

// A pool used before and after GOMAXPROCS changes keeps working: pinSlow
// reallocates the locals for the new size; the replaced array is freed at
// the next cycle (ASan checks nobody touches it afterwards).
TEST_P(PoolTest, GomaxprocsChangedBetweenUses) {
  Arena arena;
  goro::run(opts(), [&] {
    goro::Pool<Obj> p([&] { return arena.make(); });
    goro::Pool<Obj> q;  // no New: holds only what we put
    for (int n : {nprocs() * 2, 1, nprocs(), 8, 3}) {
      goro::WaitGroup wg;
      for (int g = 0; g < 8; g++) {
        wg.add(1);
        goro::go([&] {
          for (int i = 0; i < 200; i++) {
            Obj* o = p.get();
            EXPECT_EQ(o->inUse.exchange(1), 0);
            o->inUse.store(0);
            p.put(o);
          }
          wg.done();
        });
      }
      wg.wait();
      goro::gomaxprocs(n);
      Obj* a = arena.make();
      q.put(a);
      EXPECT_EQ(q.get(), a) << "GOMAXPROCS " << n;
      EXPECT_EQ(q.get(), nullptr);
      if (n == 1) cycle();
    }
  });
}

// Go's TestPoolStress plus cleanups: goroutines Get and Put while another
// goroutine keeps running cycles. No object may be handed to two goroutines
// at once (inUse), and nothing crashes (run it under TSan and ASan).
TEST_P(PoolTest, StressWithConcurrentCleanups) {
  Arena arena;
  const long iters = scaled(20000);
  goro::run(opts(), [&] {
    goro::Pool<Obj> p([&] { return arena.make(); });
    std::atomic<bool> stop{false};
    std::atomic<long> cycles{0};
    goro::WaitGroup cleaner;
    cleaner.add(1);
    goro::go([&] {
      while (!stop.load()) {
        if (cycles.load() % 2)
          goro::gc::collect();
        else
          cycle();
        cycles.fetch_add(1);
        goro::yield();
      }
      cleaner.done();
    });
    goro::WaitGroup wg;
    for (int g = 0; g < 8; g++) {
      wg.add(1);
      goro::go([&] {
        Obj* held[4];  // on the stack: the collector sees them
        for (long i = 0; i < iters; i++) {
          const int k = int(i % 4) + 1;  // hold up to 4 at once: exercises shared
          for (int j = 0; j < k; j++) {
            Obj* o = p.get();
            EXPECT_EQ(o->inUse.exchange(1), 0) << "an object was handed out twice";
            held[j] = o;
          }
          for (int j = 0; j < k; j++) {
            held[j]->inUse.store(0);
            p.put(held[j]);
          }
          if (i % 64 == 0) goro::yield();
        }
        wg.done();
      });
    }
    wg.wait();
    stop.store(true);
    cleaner.wait();
    EXPECT_GT(cycles.load(), 0);
  });
}

// Pools made, used and destroyed while cycles run: destruction unlists a pool
// safely however it interleaves with poolCleanup.
TEST_P(PoolTest, PoolsCreatedAndDestroyedWhileCyclesRun) {
  Arena arena;
  const int rounds = int(scaled(2000));
  goro::run(opts(), [&] {
    std::atomic<bool> stop{false};
    goro::WaitGroup cleaner;
    cleaner.add(1);
    goro::go([&] {
      while (!stop.load()) {
        cycle();
        goro::yield();
      }
      cleaner.done();
    });
    goro::WaitGroup wg;
    for (int g = 0; g < 4; g++) {
      wg.add(1);
      goro::go([&] {
        for (int r = 0; r < rounds; r++) {
          auto p = std::make_unique<goro::Pool<Obj>>([&] { return arena.make(); });
          Obj* a = p->get();
          Obj* b = p->get();
          p->put(a);
          p->put(b);
          for (int i = 0; i < 20; i++) p->put(p->get());
          if (r % 8 == 0) goro::yield();
        }
        wg.done();
      });
    }
    wg.wait();
    stop.store(true);
    cleaner.wait();
  });
  EXPECT_GT(arena.size(), 0u);
}

// Objects stolen from other Ps: Put on one goroutine, Get on others.
TEST_P(PoolTest, GetStealsFromOtherPs) {
  Arena arena;
  goro::run(opts(), [&] {
    goro::Pool<Obj> p;
    std::set<Obj*> put;
    for (int i = 0; i < 1000; i++) {
      Obj* o = arena.make();
      put.insert(o);
      p.put(o);
    }
    std::mutex mu;
    std::set<Obj*> got;
    goro::WaitGroup wg;
    for (int g = 0; g < 4; g++) {
      wg.add(1);
      goro::go([&] {
        std::vector<Obj*> mine;
        while (Obj* o = p.get()) mine.push_back(o);
        std::lock_guard<std::mutex> l(mu);
        for (Obj* o : mine) EXPECT_TRUE(got.insert(o).second) << "got twice";
        wg.done();
      });
    }
    wg.wait();
    // The main goroutine's private slot may be on a P no getter visited last;
    // anything left is still in the pool.
    while (Obj* o = p.get()) EXPECT_TRUE(got.insert(o).second);
    EXPECT_EQ(got, put);
  });
}

// ---- with the collector ---------------------------------------------------

struct Fin {
  static inline std::atomic<int> destroyed{0};
  std::uint64_t payload[8] = {};
  ~Fin() { destroyed.fetch_add(1); }
};

[[gnu::noinline]] void putFresh(goro::Pool<Fin>& p, int n) {
  for (int i = 0; i < n; i++) p.put(goro::gc::make<Fin>());
}

// waitDestroyed runs collections until `want` finalizers have run (they run
// on the finalizer goroutine, after the cycle): at least `limit` times, and
// then on until 30 s have passed, since on a loaded machine the finalizer
// goroutine may get little CPU between the cycles.
bool waitDestroyed(int want, int limit) {
  goro::test::Deadline deadline(std::chrono::seconds(30));
  for (int i = 0; i < limit || !deadline.passed(); i++) {
    if (Fin::destroyed.load() >= want) return true;
    goro::gc::collect();
    for (int k = 0; k < 10; k++) goro::yield();
  }
  return Fin::destroyed.load() >= want;
}

// Go's TestPoolGC: objects put and never taken back are collected after two
// cycles, and not after one.
TEST_P(PoolTest, GcCollectsAfterTwoCycles) {
  goro::run(opts(), [&] {
    Fin::destroyed.store(0);
    goro::Pool<Fin> p;
    putFresh(p, 100);
    goro::gc::collect();
    EXPECT_EQ(Fin::destroyed.load(), 0) << "one cycle: the victim still holds them";
    goro::gc::collect();
    // The collector is conservative: a stale copy of a pointer in a parked
    // goroutine's saved registers or stack can keep an object alive (Boehm
    // GC's tests allow for the same). Demand nearly all, not all.
    EXPECT_TRUE(waitDestroyed(98, 20)) << Fin::destroyed.load() << " of 100 collected";
  });
}

// Go's TestPool/victim: after one collect() an object is still retrievable
// through the victim. As in Go's test, the object is in the shared part
// (the filler took the private slot): collect() may yield, as runtime.GC
// does, and resume on another P, whose Get can only steal from the shared
// parts of the other Ps' victims.
TEST_P(PoolTest, GcObjectSurvivesOneCycleInVictim) {
  goro::run(opts(), [&] {
    goro::Pool<Fin> p;
    Fin* filler = goro::gc::make<Fin>();
    Fin* a = goro::gc::make<Fin>();
    p.put(filler);
    p.put(a);
    goro::gc::collect();
    Fin* got1 = p.get();
    Fin* got2 = p.get();
    EXPECT_TRUE(got1 == a || got2 == a) << got1 << " " << got2;
    p.put(a);
    p.put(filler);
  });
}

}  // namespace
}  // namespace goro::test
