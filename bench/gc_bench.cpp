// gc_bench.cpp — the goro side of the GC rows of the benchmark table; each
// benchmark mirrors its twin in peers/go/gc.go:
//   alloc        16-byte objects {next, v}, one goroutine, ns/op
//   binarytrees  the benchmarks-game program at depth 18 (goroutine per depth),
//                counters "ms" (total), "max_pause_ms" and "p99_pause_ms"
//                (longest and 99th-percentile pause over the run's cycles)
//   gcpause100m  collect() with 100 MiB of live 64-byte list nodes: counters
//                "ms" (the whole collect()), "pause_ms" (its longest pause)
//                and "cpus" (process CPU time / wall time during it)
//   gcpause1g    the same with 1 GiB live
//   gcparked     collect() with 1M goroutines parked in a channel receive,
//                each holding a pointer to a 16-byte object: "ms", "pause_ms",
//                "cpus"
//   gcmutator    a goroutine rewiring a 100 MiB list while another calls
//                collect() back to back, against the same work with no cycle:
//                "ratio" (time with cycles / time without), "cycles"
// Pauses are read only from the public gc::stats() (Go's PauseNs ring), never
// from the collector's internals, exactly as the Go peers read MemStats.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
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

// pauses_since returns the pause (ns) of every cycle that ended after the
// cycle numbered n0, from gc::stats()'s PauseNs ring: cycle n (1-based) is at
// pause_ns[(n - 1) % 256], and only the last 256 cycles are still there (Go's
// maxPause in peers/go/gc.go reads MemStats the same way).
std::vector<std::uint64_t> pauses_since(const goro::gc::Stats& st, std::uint64_t n0) {
  std::vector<std::uint64_t> v;
  for (auto i = n0 + 1; i <= st.num_gc; i++)
    if (i + 256 > st.num_gc) v.push_back(st.pause_ns[(i - 1) % 256]);
  return v;
}

double max_ms(const std::vector<std::uint64_t>& ns) {
  return ns.empty() ? 0.0 : static_cast<double>(*std::max_element(ns.begin(), ns.end())) / 1e6;
}

// p99_ms is the nearest-rank 99th percentile: the smallest pause that at
// least 99 % of the cycles did not exceed (with fewer than 100 cycles, the
// longest one), as the Go peer's p99.
double p99_ms(std::vector<std::uint64_t> ns) {
  if (ns.empty()) return 0.0;
  std::sort(ns.begin(), ns.end());
  const std::size_t rank = (ns.size() * 99 + 99) / 100;  // ceil(0.99 n), 1-based
  return static_cast<double>(ns[rank - 1]) / 1e6;
}

// Collected is one timed collect(): its wall time, the longest pause among
// the cycles that ended during it, and the process's CPU time over its wall
// time (the mark workers' share: 1.0 is one thread busy throughout).
struct Collected {
  double ms, pause_ms, cpus;
};

Collected timed_collect() {
  const std::uint64_t n0 = goro::gc::stats().num_gc;
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  goro::gc::collect();
  const double el = seconds_since(t0);
  const double cpu = cpu_seconds() - c0;
  const auto pauses = pauses_since(goro::gc::stats(), n0);
  if (pauses.empty()) throw std::runtime_error("collect() returned without a cycle in gc::stats()");
  return {el * 1e3, max_ms(pauses), cpu / el};
}

// report_collect sets the counters of a timed collect() and its manual time.
void report_collect(benchmark::State& state, const Collected& c) {
  state.counters["ms"] = c.ms;
  state.counters["pause_ms"] = c.pause_ms;
  state.counters["cpus"] = c.cpus;
  state.SetIterationTime(c.ms / 1e3);
}

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
    struct Pauses {
      double max_ms, p99_ms;
    };
    auto once = [&](Pauses* pauses) {
      goro::gc::collect();
      const auto n0 = goro::gc::stats().num_gc;
      const auto t0 = Clock::now();
      if (binary_trees(depth) != want) throw std::runtime_error("binarytrees: wrong checksum");
      const double el = seconds_since(t0);
      const auto ns = pauses_since(goro::gc::stats(), n0);
      *pauses = {max_ms(ns), p99_ms(ns)};
      return el;
    };
    Pauses pauses{};
    once(&pauses);  // warm-up
    for (auto _ : state) {
      const double el = once(&pauses);
      state.counters["ms"] = el * 1e3;
      state.counters["max_pause_ms"] = pauses.max_ms;
      state.counters["p99_pause_ms"] = pauses.p99_ms;
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

// build_list allocates bytes / 64 nodes as one singly linked list, each new
// node in front, and returns its head.
Node64* build_list(std::size_t bytes) {
  Node64* head = nullptr;
  for (std::size_t i = 0; i < bytes / 64; i++) head = goro::gc::make<Node64>(Node64{head, {}});
  return head;
}

void gcpause(benchmark::State& state, std::size_t bytes) {
  in_goro(state, {}, [&] {
    Node64* volatile keep = build_list(bytes);  // live through the timed cycles
    (void)keep;
    goro::gc::collect();  // finish the cycles the build started
    goro::gc::collect();  // warm-up
    for (auto _ : state) report_collect(state, timed_collect());
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

// gcparked — mirrors gcParked: a heap of 1M goroutines, each parked in a
// receive on one unbuffered channel and holding, in its frame, the only
// pointer to a 16-byte object it allocated. The collector must find all 1M
// objects through the parked stacks. Counters as gcpause's: "ms" (one whole
// collect()), "pause_ms", "cpus". Go starts the goroutines once and times 5
// collect()s; here each repetition is a fresh run() that starts them, does
// one untimed collect() (which also lets the last ones reach the receive)
// and times one. Closing the channel releases them; each checks its object.
void BM_gcparked(benchmark::State& state) {
  constexpr int n = 1'000'000;
  in_goro(state, {}, [&] {
    for (auto _ : state) {
      auto ch = goro::make_chan<int>();
      goro::WaitGroup started, done;
      std::atomic<int> bad{0};
      started.add(n);
      done.add(n);
      for (int i = 0; i < n; i++) {
        goro::go([&, i] {
          obj16* o = goro::gc::make<obj16>(nullptr, static_cast<std::uintptr_t>(i));
          // The compiler must treat *o as visible to others, so o stays in
          // this frame across the receive instead of being folded away.
          benchmark::DoNotOptimize(o);
          started.done();
          (void)ch.recv();
          if (o->v != static_cast<std::uintptr_t>(i)) bad.fetch_add(1, std::memory_order_relaxed);
          done.done();
        });
      }
      started.wait();
      goro::gc::collect();  // warm-up
      report_collect(state, timed_collect());
      ch.close();
      done.wait();
      if (bad.load() != 0) throw std::runtime_error("gcparked: an object held by a parked goroutine changed");
    }
  });
}
BENCHMARK(BM_gcparked)
    ->Name("gcparked")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// gcmutator — mirrors gcMutator: how much marking slows the program down.
// The mutator (main) does a fixed amount of pointer writing over a 100 MiB
// live list: kMutatorPasses passes, each swapping every pair of nodes after
// the head (3 pointer stores per pair, every page of the list written). It
// does that work once with no cycle running, then again while another
// goroutine calls collect() back to back; counter "ratio" is the second wall
// time over the first (1.0: marking costs the mutator nothing), "cycles" the
// number of cycles that ran during the second. The mutator allocates
// nothing, so no cycle starts by itself during the first (it is measured
// again, up to 3 times, if one did); every pass checks the list's length.
// It needs GOMAXPROCS >= 2 (the collecting goroutine has a P of its own) and
// refuses fewer, as the Go peer does: on one P the row would measure how the
// scheduler shares it, not marking.
constexpr int kMutatorPasses = 64;

// swap_pairs swaps every pair of nodes after head: head→a→b→c becomes
// head→b→a→c, and so on down the list; returns the number of pairs.
std::size_t swap_pairs(Node64* head) {
  std::size_t pairs = 0;
  for (Node64* p = head; p->next != nullptr && p->next->next != nullptr; pairs++) {
    Node64* a = p->next;
    Node64* b = a->next;
    a->next = b->next;
    b->next = a;
    p->next = b;
    p = a;
  }
  return pairs;
}

void BM_gcmutator(benchmark::State& state) {
  constexpr std::size_t bytes = 100 << 20;
  constexpr std::size_t want_pairs = (bytes / 64 - 1) / 2;
  in_goro(state, {}, [&] {
    if (goro::gomaxprocs() < 2) throw std::runtime_error("gcmutator needs GOMAXPROCS >= 2");
    Node64* volatile keep = build_list(bytes);
    Node64* const head = keep;
    auto work = [&] {
      const auto t0 = Clock::now();
      for (int i = 0; i < kMutatorPasses; i++)
        if (swap_pairs(head) != want_pairs) throw std::runtime_error("gcmutator: the list lost nodes");
      return seconds_since(t0);
    };
    goro::gc::collect();  // finish the cycles the build started
    if (swap_pairs(head) != want_pairs) throw std::runtime_error("gcmutator: the list lost nodes");  // warm-up
    goro::gc::collect();
    for (auto _ : state) {
      // The work alone, again if a cycle started anyway (a forced one).
      double alone = 0;
      for (int attempt = 0;; attempt++) {
        const std::uint64_t n0 = goro::gc::stats().num_gc;
        alone = work();
        if (goro::gc::stats().num_gc == n0) break;
        if (attempt == 2) throw std::runtime_error("gcmutator: cycles kept running during the work alone");
      }

      std::atomic<bool> stop{false};
      goro::WaitGroup running, finished;
      running.add(1);
      finished.add(1);
      goro::go([&] {
        running.done();
        while (!stop.load(std::memory_order_relaxed)) goro::gc::collect();
        finished.done();
      });
      running.wait();
      const std::uint64_t n0 = goro::gc::stats().num_gc;
      const double marked = work();
      const std::uint64_t cycles = goro::gc::stats().num_gc - n0;
      stop.store(true, std::memory_order_relaxed);
      finished.wait();
      if (cycles == 0) throw std::runtime_error("gcmutator: no cycle ran during the work");
      state.counters["ratio"] = marked / alone;
      state.counters["cycles"] = static_cast<double>(cycles);
      state.SetIterationTime(alone + marked);
    }
    keep = nullptr;
  });
}
BENCHMARK(BM_gcmutator)
    ->Name("gcmutator")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
