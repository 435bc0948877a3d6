// gc_bench.cpp — the goro side of the GC rows of the benchmark table; each
// benchmark mirrors its twin in peers/go/gc.go:
//   alloc        16-byte objects {next, v}, one goroutine, ns/op
//   binarytrees  the benchmarks-game program at depth 18 (goroutine per depth),
//                counters "ms" (total) and "max_pause_ms" (longest pause)
//   gcpause100m  collect() with 100 MiB of live 64-byte list nodes, "ms"
//   gcpause1g    the same with 1 GiB live
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <goro/goro.hpp>
#include <stdexcept>
#include <vector>

#include "bench_util.hpp"

namespace {

using namespace goro_bench;

struct obj16 {
  obj16* next;
  std::uintptr_t v;
};
obj16* volatile alloc_sink;

constexpr std::int64_t kAllocN = 20'000'000;

void BM_alloc(benchmark::State& state) {
  in_goro(state, {}, [&] {
    for (std::int64_t i = 0; i < kAllocN; i++)
      alloc_sink = goro::gc::make<obj16>(nullptr, i);  // warm-up
    const auto t0 = Clock::now();
    std::uintptr_t i = 0;
    for (auto _ : state) alloc_sink = goro::gc::make<obj16>(nullptr, i++);
    state.SetIterationTime(seconds_since(t0));
    alloc_sink = nullptr;
  });
}
BENCHMARK(BM_alloc)->Name("alloc")->Iterations(kAllocN)->UseManualTime();

struct TreeNode {
  TreeNode* left;
  TreeNode* right;
};

TreeNode* bottom_up(int depth) {
  if (depth <= 0) return goro::gc::make<TreeNode>(nullptr, nullptr);
  TreeNode* l = bottom_up(depth - 1);
  TreeNode* r = bottom_up(depth - 1);
  return goro::gc::make<TreeNode>(l, r);
}

long check(const TreeNode* n) {
  return n->left == nullptr ? 1 : 1 + check(n->left) + check(n->right);
}

long binary_trees(int max_depth) {
  constexpr int min_depth = 4;
  long total = check(bottom_up(max_depth + 1));  // stretch tree
  TreeNode* long_lived = bottom_up(max_depth);
  std::vector<long> checks(static_cast<std::size_t>(max_depth + 1));
  goro::WaitGroup wg;
  for (int d = min_depth; d <= max_depth; d += 2) {
    wg.add(1);
    const long iterations = 1L << (max_depth - d + min_depth);
    goro::go([&, d, iterations] {
      long c = 0;
      for (long i = 0; i < iterations; i++) c += check(bottom_up(d));
      checks[static_cast<std::size_t>(d)] = c;
      wg.done();
    });
  }
  wg.wait();
  for (long c : checks) total += c;
  return total + check(long_lived);
}

void BM_binarytrees(benchmark::State& state) {
  constexpr int depth = 18;
  long want = ((1L << 20) - 1) + ((1L << 19) - 1);
  for (int d = 4; d <= depth; d += 2) want += (1L << (depth - d + 4)) * ((1L << (d + 1)) - 1);
  in_goro(state, {}, [&] {
    auto once = [&](double* max_pause_ms) {
      goro::gc::collect();
      const auto n0 = goro::gc::stats().num_gc;
      const auto t0 = Clock::now();
      if (binary_trees(depth) != want) throw std::runtime_error("binarytrees: wrong checksum");
      const double el = seconds_since(t0);
      const goro::gc::Stats st = goro::gc::stats();
      const auto n1 = st.num_gc;
      std::uint64_t mx = 0;
      for (auto i = n0 + 1; i <= n1 && i + 256 > n1; i++)
        mx = std::max(mx, st.pause_ns[(i - 1) % 256]);
      *max_pause_ms = static_cast<double>(mx) / 1e6;
      return el;
    };
    double pause = 0;
    once(&pause);  // warm-up
    for (auto _ : state) {
      const double el = once(&pause);
      state.counters["ms"] = el * 1e3;
      state.counters["max_pause_ms"] = pause;
      state.SetIterationTime(el);
    }
  });
}
BENCHMARK(BM_binarytrees)
    ->Name("binarytrees")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

struct Node64 {
  Node64* next;
  char pad[56];
};

void gcpause(benchmark::State& state, std::size_t bytes) {
  in_goro(state, {}, [&] {
    Node64* head = nullptr;
    for (std::size_t i = 0; i < bytes / 64; i++) head = goro::gc::make<Node64>(Node64{head, {}});
    Node64* volatile keep = head;  // the list stays live through the timed cycles
    (void)keep;
    goro::gc::collect();  // finish the cycles the build started
    goro::gc::collect();  // warm-up
    for (auto _ : state) {
      const auto t0 = Clock::now();
      goro::gc::collect();
      const double el = seconds_since(t0);
      state.counters["ms"] = el * 1e3;
      state.SetIterationTime(el);
    }
    keep = nullptr;
  });
}

void BM_gcpause100m(benchmark::State& state) {
  gcpause(state, 100 << 20);
}
BENCHMARK(BM_gcpause100m)
    ->Name("gcpause100m")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_gcpause1g(benchmark::State& state) {
  gcpause(state, std::size_t(1) << 30);
}
BENCHMARK(BM_gcpause1g)
    ->Name("gcpause1g")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
