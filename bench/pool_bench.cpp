// pool_bench.cpp — goro_bench_pool: the sync.Pool rows of the goro-vs-Go
// table (bench/README.md, bench/compare.py).
//
// Every benchmark mirrors one Go peer in bench/peers/go/pool.go: the same
// goroutines, the same object (64 bytes, from goro::gc::make as Go's
// new(poolObj)), the same op counts. Conventions as in chan_bench.cpp:
//
//  * The repetitions of a twin run in one runtime that lives as long as the
//    program (in_warm_goro), as the Go peer's runs share its process;
//    GOMAXPROCS comes from the environment (Options{} reads $GOMAXPROCS).
//  * The Go harness runs its closure once to warm up and then measures; the
//    first repetition of each twin does the same work once, untimed, first.
//  * real_time rows fix the iteration count to the per-goroutine op count
//    and report wall time / all ops as manual time: with g goroutines the
//    manual time is el / g over n iterations.
//  * pool_expensive_new is read from the counter "news" (how many times New
//    ran); pool_expensive_new_novictim is the same with the victim cache
//    switched off (a test-only switch), to show what the victim saves.
//
// Objects a goroutine holds are kept in arrays on its stack: the collector
// scans goroutine stacks, not malloc memory.

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <goro/goro.hpp>

#include "bench_util.hpp"

namespace goro::detail {
// pool/pool.hpp: poolCleanup drops primaries instead of keeping victims.
void pool_set_victim_enabled_for_test(bool on);
}  // namespace goro::detail

namespace {

using namespace goro_bench;

struct PoolObj {
  unsigned char buf[64];
};

PoolObj* newObj() {
  return goro::gc::make<PoolObj>();
}

// pool — mirrors benchPool: uncontended Get+Put pair on one goroutine.
constexpr std::int64_t kPoolN = 30'000'000;

void BM_pool(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) {
      goro::Pool<PoolObj> p(newObj);  // warm-up
      for (std::int64_t i = 0; i < kPoolN; i++) p.put(p.get());
    }
    goro::Pool<PoolObj> p(newObj);
    const auto t0 = Clock::now();
    for (auto _ : state) p.put(p.get());
    state.SetIterationTime(seconds_since(t0));
  });
}
BENCHMARK(BM_pool)->Name("pool")->Iterations(kPoolN)->UseManualTime();

// run_on_procs starts g goroutines running body and returns the wall time
// until all are done.
double run_on_procs(int g, const std::function<void()>& body) {
  goro::WaitGroup wg;
  wg.add(g);
  const auto t0 = Clock::now();
  for (int j = 0; j < g; j++)
    goro::go([&] {
      body();
      wg.done();
    });
  wg.wait();
  return seconds_since(t0);
}

// pool_parallel — mirrors benchPoolParallel: Get+Put pairs on GOMAXPROCS
// goroutines at once; ns per pair = wall time / all pairs.
constexpr std::int64_t kParallelN = 15'000'000;  // per goroutine

double parallel_once(std::int64_t n) {
  goro::Pool<PoolObj> p(newObj);
  const int g = goro::gomaxprocs();
  return run_on_procs(g,
                      [&] {
                        for (std::int64_t i = 0; i < n; i++) p.put(p.get());
                      }) /
         g;
}

void BM_pool_parallel(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) parallel_once(kParallelN);
    count_iterations(state, parallel_once(state.max_iterations));
  });
}
BENCHMARK(BM_pool_parallel)->Name("pool_parallel")->Iterations(kParallelN)->UseManualTime();

// pool_overflow — mirrors benchPoolOverflow: on GOMAXPROCS goroutines, Put
// 100 objects then Get 100, 60k times; ns per Put or Get.
constexpr std::int64_t kOverflowIters = 60'000;

double overflow_once(std::int64_t iters) {
  goro::Pool<PoolObj> p(newObj);
  const int g = goro::gomaxprocs();
  return run_on_procs(g,
                      [&] {
                        PoolObj* items[100];
                        for (auto& x : items) x = newObj();
                        for (std::int64_t i = 0; i < iters; i++) {
                          for (PoolObj* x : items) p.put(x);
                          for (auto& x : items) {
                            if (PoolObj* y = p.get()) x = y;
                          }
                        }
                        benchmark::DoNotOptimize(items);
                      }) /
         g;
}

void BM_pool_overflow(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) overflow_once(kOverflowIters);
    count_iterations(state, overflow_once(state.max_iterations / 200));
  });
}
BENCHMARK(BM_pool_overflow)
    ->Name("pool_overflow")
    ->Iterations(kOverflowIters * 200)
    ->UseManualTime();

// pool_steal — mirrors benchPoolSteal: one goroutine keeps Putting, max(1,
// GOMAXPROCS-1) others Get n times each from a Pool without New; ns per Get.
constexpr std::int64_t kStealN = 10'000'000;  // Gets per getter

double steal_once(std::int64_t n) {
  goro::Pool<PoolObj> p;
  int getters = goro::gomaxprocs() - 1;
  if (getters < 1) getters = 1;
  std::atomic<bool> stop{false};
  goro::WaitGroup putter;
  putter.add(1);
  goro::go([&] {
    PoolObj* objs[1024];
    for (auto& x : objs) x = newObj();
    for (std::int64_t i = 0; !stop.load(std::memory_order_relaxed); i++) p.put(objs[i % 1024]);
    benchmark::DoNotOptimize(objs);
    putter.done();
  });
  const double el = run_on_procs(getters, [&] {
    for (std::int64_t i = 0; i < n; i++) benchmark::DoNotOptimize(p.get());
  });
  stop.store(true);
  putter.wait();
  return el / getters;
}

void BM_pool_steal(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) steal_once(kStealN);
    count_iterations(state, steal_once(state.max_iterations));
  });
}
BENCHMARK(BM_pool_steal)->Name("pool_steal")->Iterations(kStealN)->UseManualTime();

// pool_expensive_new — mirrors benchPoolExpensiveNew: 1M Get+Put pairs, 100
// objects checked out at a time, goro::gc::collect() every 100k pairs; the
// counter "news" is how many times New ran (about 100 when the victim cache
// carries the objects across each collection, about 1000 without it).
double expensive_new_once() {
  constexpr int n = 1'000'000, batch = 100, gcEvery = 100'000;
  int news = 0;
  goro::Pool<PoolObj> p([&] {
    news++;
    return newObj();
  });
  PoolObj* items[batch];
  for (int done = 0; done < n; done += batch) {
    if (done % gcEvery == 0 && done > 0) goro::gc::collect();
    for (auto& x : items) x = p.get();
    for (auto& x : items) {
      p.put(x);
      x = nullptr;
    }
  }
  return news;
}

void expensive_new(benchmark::State& state, bool victim, bool* warmed) {
  in_warm_goro(state, 0, warmed, [&](bool first) {
    goro::detail::pool_set_victim_enabled_for_test(victim);
    if (first) expensive_new_once();  // warm-up
    double news = 0;
    const auto t0 = Clock::now();
    for (auto _ : state) news = expensive_new_once();
    state.SetIterationTime(seconds_since(t0));
    state.counters["news"] = news;
    goro::detail::pool_set_victim_enabled_for_test(true);
  });
}

void BM_pool_expensive_new(benchmark::State& state) {
  static bool warmed = false;
  expensive_new(state, true, &warmed);
}
BENCHMARK(BM_pool_expensive_new)->Name("pool_expensive_new")->Iterations(1)->UseManualTime();

void BM_pool_expensive_new_novictim(benchmark::State& state) {
  static bool warmed = false;
  expensive_new(state, false, &warmed);
}
BENCHMARK(BM_pool_expensive_new_novictim)
    ->Name("pool_expensive_new_novictim")
    ->Iterations(1)
    ->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
