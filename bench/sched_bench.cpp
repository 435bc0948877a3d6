// sched_bench.cpp — goro_bench_sched: the scheduler rows of the goro-vs-Go
// table (bench/README.md, bench/compare.py, /work/shared/spec/BENCH.md).
//
// Every benchmark mirrors one Go peer in bench/peers/go/sched.go (skynet_wg:
// chan.go) and measures the same thing with goro's API. Conventions:
//
//  * The Go harness warms up once and then measures five runs, all in one
//    process. So the repetitions of a row run in one goro runtime that lives
//    as long as the program (in_warm_goro, bench_util.hpp): the first does
//    the Go peer's warm-up, untimed, before it measures, and the later ones
//    find the stacks and Gs the earlier ones left, as Go's runs do.
//    GOMAXPROCS comes from the environment (Options{} reads $GOMAXPROCS);
//    yield and handoff, which BENCH.md defines with GOMAXPROCS=1, set it for
//    their body and restore it, as the Go peer's withProcs.
//  * parked and idle have no warm-up and measure a fresh runtime: each
//    repetition is its own goro::run() (in_goro), which releases every stack
//    and thread when it returns, as the Go peer runs each parked measurement
//    in a fresh process.
//  * Rows read as real_time per op (spawn, yield, mutex, blocking) fix the
//    iteration count to the Go peer's op count; spawn and yield use manual
//    time so that the per-op figure is total wall time / ops, as in Go.
//    Rows read from a counter (us, ms, bytes_per_g, cpu_s) run one iteration
//    and also report the measured wall time as the iteration's manual time.

#include <benchmark/benchmark.h>
#include <goro/goro.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

using namespace goro_bench;

using namespace std::chrono_literals;

// spawn — mirrors benchSpawn: 1M × go func(){ wg.Done() }, wg.Wait(); ns per
// goroutine (creating, running and finishing it). One iteration spawns one
// goroutine; the clock stops after wg.wait() has seen all of them finish.
constexpr std::int64_t kSpawnN = 1'000'000;

void BM_spawn(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) {  // warm-up, untimed: the Go peer's first run
      goro::WaitGroup wg;
      wg.add(static_cast<int>(kSpawnN));
      for (std::int64_t i = 0; i < kSpawnN; i++) goro::go([&wg] { wg.done(); });
      wg.wait();
    }
    goro::WaitGroup wg;
    wg.add(static_cast<int>(state.max_iterations));
    const auto t0 = Clock::now();
    for (auto _ : state) goro::go([&wg] { wg.done(); });
    wg.wait();
    state.SetIterationTime(seconds_since(t0));
  });
}
BENCHMARK(BM_spawn)->Name("spawn")->Iterations(kSpawnN)->UseManualTime();

// yield — mirrors benchYield: GOMAXPROCS=1, two goroutines each calling
// runtime.Gosched() in a loop; ns per yield (total time / total yields).
// Here main is one of the two: it yields once per iteration while a partner
// goroutine yields until told to stop; with one P the two strictly alternate
// and the partner's count is read exactly while it is not running.
constexpr std::int64_t kYieldN = 2'000'000;  // per goroutine, as in Go

void BM_yield(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 1, &warmed, [&](bool first) {
    std::atomic<bool> stop{false};
    std::atomic<std::int64_t> partner{0};
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        goro::yield();
        // Only the partner writes it: a plain increment, not a locked
        // read-modify-write the Go twin (which counts nothing) would not pay.
        partner.store(partner.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      }
      wg.done();
    });
    for (std::int64_t i = 0; first && i < kYieldN; i++) goro::yield();  // warm-up
    const std::int64_t p0 = partner.load(std::memory_order_relaxed);
    const auto t0 = Clock::now();
    for (auto _ : state) goro::yield();
    const double el = seconds_since(t0);
    const std::int64_t p1 = partner.load(std::memory_order_relaxed);
    stop.store(true, std::memory_order_relaxed);
    wg.wait();
    // Per yield over both goroutines; scaled to the iterations counted.
    const auto mine = static_cast<double>(state.iterations());
    state.SetIterationTime(el * mine / (mine + static_cast<double>(p1 - p0)));
    state.counters["partner_yields"] = static_cast<double>(p1 - p0);
  });
}
BENCHMARK(BM_yield)->Name("yield")->Iterations(kYieldN)->UseManualTime();

// sleep_wakeup — mirrors benchSleepWakeup: 10k goroutines each sleep 1 ms
// once, 10 rounds; counter "us" is the mean lateness past 1 ms in µs.
void BM_sleep_wakeup(benchmark::State& state) {
  constexpr int n = 10'000, rounds = 10;
  auto once = [] {
    std::vector<Clock::duration> late(n);
    Clock::duration total{};
    for (int r = 0; r < rounds; r++) {
      goro::WaitGroup wg;
      wg.add(n);
      for (int i = 0; i < n; i++) {
        goro::go([&late, &wg, i] {
          const auto t = Clock::now();
          goro::sleep_for(1ms);
          late[i] = Clock::now() - t - 1ms;
          wg.done();
        });
      }
      wg.wait();
      for (auto l : late) total += l;
    }
    return std::chrono::duration<double, std::micro>(total).count() / (n * rounds);
  };
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) once();  // warm-up
    for (auto _ : state) {
      const auto t0 = Clock::now();
      state.counters["us"] = once();
      state.SetIterationTime(seconds_since(t0));
    }
  });
}
BENCHMARK(BM_sleep_wakeup)
    ->Name("sleep_wakeup")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// mutex — mirrors benchMutex: 4 goroutines each do n × (lock; counter++;
// unlock) on one goro::Mutex; ns per lock/unlock pair over all goroutines
// (total time / 4n). One iteration is one pair; main only waits, so the
// benchmark loop is empty and counts the pairs.
constexpr int kMutexG = 4;
constexpr std::int64_t kMutexN = 2'000'000;  // per goroutine, as in Go
constexpr std::int64_t kMutexOps = kMutexG * kMutexN;

void BM_mutex(benchmark::State& state) {
  auto once = [](std::int64_t n) {
    goro::Mutex mu;
    std::int64_t counter = 0;
    goro::WaitGroup wg;
    wg.add(kMutexG);
    const auto t0 = Clock::now();
    for (int j = 0; j < kMutexG; j++) {
      goro::go([&, n] {
        for (std::int64_t i = 0; i < n; i++) {
          mu.lock();
          counter++;
          mu.unlock();
        }
        wg.done();
      });
    }
    wg.wait();
    const double el = seconds_since(t0);
    if (counter != kMutexG * n) throw std::runtime_error("mutex: lost updates");
    return el;
  };
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) once(kMutexN);  // warm-up
    const double el = once(state.max_iterations / kMutexG);
    for (auto _ : state) {
    }
    state.SetIterationTime(el);
  });
}
BENCHMARK(BM_mutex)->Name("mutex")->Iterations(kMutexOps)->UseManualTime();

// timers — mirrors benchTimers: 10k goroutines × 10 × sleep 1 ms; counter
// "ms" is the total time (the floor is 10 ms).
void BM_timers(benchmark::State& state) {
  constexpr int n = 10'000, k = 10;
  auto once = [] {
    goro::WaitGroup wg;
    wg.add(n);
    const auto t0 = Clock::now();
    for (int i = 0; i < n; i++) {
      goro::go([&wg] {
        for (int j = 0; j < k; j++) goro::sleep_for(1ms);
        wg.done();
      });
    }
    wg.wait();
    return seconds_since(t0);
  };
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) once();  // warm-up
    for (auto _ : state) {
      const double el = once();
      state.counters["ms"] = el * 1e3;
      state.SetIterationTime(el);
    }
  });
}
BENCHMARK(BM_timers)->Name("timers")->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// skynet_wg — mirrors benchSkynetWG (chan.go): the 10-ary skynet tree of
// 1,111,111 goroutines without channels. Node k (children 10k+1..10k+10)
// writes its value to a preallocated results array; a parent spawns its 10
// children, waits on its own WaitGroup and sums their slots; counter "ms".
constexpr std::int64_t kSkynetLeaves = 1'000'000, kSkynetSum = 499'999'500'000;
constexpr std::size_t kSkynetNodes = 1'111'111;

void skynet_wg(std::int64_t* results, goro::WaitGroup* parent, std::int64_t k, std::int64_t num,
               std::int64_t size) {
  if (size == 1) {
    results[k] = num;
    parent->done();
    return;
  }
  goro::WaitGroup wg;
  wg.add(10);
  size /= 10;
  for (std::int64_t i = 0; i < 10; i++) {
    goro::go([=, &wg] { skynet_wg(results, &wg, 10 * k + 1 + i, num + i * size, size); });
  }
  wg.wait();
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < 10; i++) sum += results[10 * k + 1 + i];
  results[k] = sum;
  parent->done();
}

void BM_skynet_wg(benchmark::State& state) {
  std::vector<std::int64_t> results(kSkynetNodes);  // outside the timing, reused
  auto once = [&] {
    goro::WaitGroup wg;
    wg.add(1);
    const auto t0 = Clock::now();
    goro::go([&] { skynet_wg(results.data(), &wg, 0, 0, kSkynetLeaves); });
    wg.wait();
    const double el = seconds_since(t0);
    if (results[0] != kSkynetSum) throw std::runtime_error("skynet_wg: wrong sum");
    return el;
  };
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) once();  // warm-up
    for (auto _ : state) {
      const double el = once();
      state.counters["ms"] = el * 1e3;
      state.SetIterationTime(el);
    }
  });
}
BENCHMARK(BM_skynet_wg)
    ->Name("skynet_wg")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// parked — mirrors benchParked/parkedChild: memory per blocked goroutine.
// 1M goroutines each block (Go: on a channel receive; goro has no channels
// yet, so on one WaitGroup gate that main releases at the end); counter
// "bytes_per_g" is the RSS growth (/proc/self/statm) / 1M. Go runs each
// measurement in a fresh process; here each repetition is a fresh run(),
// which unmaps every stack slab when it returns, so the growth is not hidden
// by a previous repetition's memory. No warm-up, as in Go.
std::int64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long size = 0, resident = 0;
  const int got = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  if (got != 2) return -1;
  return static_cast<std::int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

void BM_parked(benchmark::State& state) {
  constexpr int n = 1'000'000;
  in_goro(state, {}, [&] {
    for (auto _ : state) {
      goro::WaitGroup started, gate, done;
      started.add(n);
      gate.add(1);
      done.add(n);
      const auto t0 = Clock::now();
      const std::int64_t rss0 = rss_bytes();
      for (int i = 0; i < n; i++) {
        goro::go([&] {
          started.done();
          gate.wait();
          done.done();
        });
      }
      started.wait();
      // Every goroutine has run up to started.done(), so its G and stack
      // pages are already resident; the few not yet parked on `gate` touch
      // no new page getting there. No need to wait for them.
      const std::int64_t rss1 = rss_bytes();
      gate.done();
      done.wait();
      state.counters["bytes_per_g"] = static_cast<double>(rss1 - rss0) / n;
      state.SetIterationTime(seconds_since(t0));
    }
  });
}
BENCHMARK(BM_parked)->Name("parked")->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// blocking — mirrors benchBlocking: a trivial system call through the
// scheduler's syscall bookkeeping, goro::blocking(getppid); ns per call.
// compare.py sets it against both Go's raw syscall.Getppid() ("blocking")
// and syscall.Syscall(SYS_GETPPID) ("blocking_syscall").
void BM_blocking(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    for (int i = 0; first && i < 100'000; i++) benchmark::DoNotOptimize(goro::blocking([] { return getppid(); }));
    for (auto _ : state) benchmark::DoNotOptimize(goro::blocking([] { return getppid(); }));
  });
}
BENCHMARK(BM_blocking)->Name("blocking")->Iterations(3'000'000)->UseRealTime();

// blocking_raw — the floor under blocking: the same loop, in the same warm
// goroutine, calling getppid() directly, with no entersyscall/exitsyscall.
// compare.py sets it against Go's raw syscall.Getppid(), which is also what
// the blocking row is measured against, so blocking / blocking_raw is the
// cost of the bookkeeping and blocking_raw's ratio is what is left of the
// blocking row's when the bookkeeping is free.
void BM_blocking_raw(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    for (int i = 0; first && i < 100'000; i++) benchmark::DoNotOptimize(getppid());
    for (auto _ : state) benchmark::DoNotOptimize(getppid());
  });
}
BENCHMARK(BM_blocking_raw)->Name("blocking_raw")->Iterations(3'000'000)->UseRealTime();

// handoff — mirrors benchHandoff: is the only P handed off while its
// goroutine is stuck in a system call? GOMAXPROCS=1. B sleeps until
// t0 + 2 ms; A enters a real 50 ms nanosleep(2) inside goro::blocking right
// after t0; counter "us" is how late B runs past its deadline, mean of 4
// rounds. B is started before A, as in Go.
void BM_handoff(benchmark::State& state) {
  constexpr int rounds = 4;
  auto once = [] {
    Clock::duration total{};
    for (int r = 0; r < rounds; r++) {
      goro::WaitGroup wg;
      wg.add(2);
      const auto deadline = Clock::now() + 2ms;
      Clock::duration late{};
      goro::go([&] {  // B
        goro::sleep_until(deadline);
        late = Clock::now() - deadline;
        wg.done();
      });
      goro::go([&] {  // A
        goro::blocking([] {
          struct timespec ts{0, 50'000'000};
          nanosleep(&ts, nullptr);
        });
        wg.done();
      });
      wg.wait();
      total += late;
    }
    return std::chrono::duration<double, std::micro>(total).count() / rounds;
  };
  static bool warmed = false;
  in_warm_goro(state, 1, &warmed, [&](bool first) {
    if (first) once();  // warm-up
    for (auto _ : state) {
      const auto t0 = Clock::now();
      state.counters["us"] = once();
      state.SetIterationTime(seconds_since(t0));
    }
  });
}
BENCHMARK(BM_handoff)->Name("handoff")->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// idle — mirrors benchIdle: CPU burnt by an idle runtime. main sleeps 5 s
// (PEERS_IDLE_SECONDS overrides, as for the Go peer) with the default procs;
// counter "cpu_s" is the user+sys CPU time of the whole process
// (getrusage(RUSAGE_SELF), cpu_seconds in bench_util.hpp) over that window.
// No warm-up.

void BM_idle(benchmark::State& state) {
  double secs = 5.0;
  if (const char* s = std::getenv("PEERS_IDLE_SECONDS"); s != nullptr && *s != '\0') {
    char* end = nullptr;
    secs = std::strtod(s, &end);
    if (*end != '\0' || secs < 0) {
      state.SkipWithError("PEERS_IDLE_SECONDS: not a number of seconds");
      return;
    }
  }
  in_goro(state, {}, [&] {
    for (auto _ : state) {
      const auto t0 = Clock::now();
      const double c0 = cpu_seconds();
      goro::sleep_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs)));
      state.counters["cpu_s"] = cpu_seconds() - c0;
      state.SetIterationTime(seconds_since(t0));
    }
  });
}
BENCHMARK(BM_idle)->Name("idle")->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
