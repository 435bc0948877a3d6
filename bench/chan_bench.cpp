// chan_bench.cpp — goro_bench_chan: the channel rows of the goro-vs-Go table
// (bench/README.md, bench/compare.py, /work/shared/spec/BENCH.md).
//
// Every benchmark mirrors one Go peer in bench/peers/go/chan.go and measures
// the same thing with goro's API: the same goroutines, the same channels
// (capacity and element type: Go's int is a 64-bit integer), the same op
// count. The conventions are those of sched_bench.cpp:
//
//  * The Go harness runs its closure once to warm up and then measures five
//    runs, in the same process; the repetitions of a goro twin run in one
//    runtime that lives as long as the program (in_warm_goro), and the first
//    does the same warm-up work once, untimed, before measuring. GOMAXPROCS
//    comes from the environment (Options{} reads $GOMAXPROCS).
//  * real_time rows fix the iteration count to the Go peer's op count and use
//    manual time: the figure is total wall time / ops, as Go's nsPer. Where
//    the ops run on other goroutines (prodcons, select, threadring) the
//    benchmark loop itself is empty and only counts the iterations.
//  * skynet is read from the counter "ms" and runs one iteration, which also
//    reports the measured wall time as its manual time.

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

// pingpong — mirrors benchPingpong: unbuffered round trip. main sends on
// ping, the partner receives and answers on pong, main receives; ns per
// round trip. One iteration is one round trip.
constexpr std::int64_t kPingpongN = 1'000'000;

void BM_pingpong(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    auto ping = goro::make_chan<std::int64_t>();
    auto pong = goro::make_chan<std::int64_t>();
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([ping, pong, &wg] {
      for (std::int64_t v : ping) pong.send(v);
      wg.done();
    });
    for (std::int64_t i = 0; first && i < kPingpongN; i++) {  // warm-up, untimed
      ping.send(i);
      pong.recv();
    }
    std::int64_t i = 0;
    const auto t0 = Clock::now();
    for (auto _ : state) {
      ping.send(i++);
      benchmark::DoNotOptimize(pong.recv());
    }
    state.SetIterationTime(seconds_since(t0));
    ping.close();
    wg.wait();
  });
}
BENCHMARK(BM_pingpong)->Name("pingpong")->Iterations(kPingpongN)->UseManualTime();

// prodcons — mirrors benchProdcons: a channel of capacity 128, one producer
// goroutine sends n items, one consumer goroutine receives them, main waits
// for both; ns per item.
constexpr std::int64_t kProdconsN = 8'000'000;

double prodcons_once(std::int64_t n) {
  auto ch = goro::make_chan<std::int64_t>(128);
  goro::WaitGroup wg;
  wg.add(2);
  const auto t0 = Clock::now();
  goro::go([ch, n, &wg] {
    for (std::int64_t i = 0; i < n; i++) ch.send(i);
    wg.done();
  });
  goro::go([ch, n, &wg] {
    for (std::int64_t i = 0; i < n; i++) benchmark::DoNotOptimize(ch.recv());
    wg.done();
  });
  wg.wait();
  return seconds_since(t0);
}

void BM_prodcons(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) prodcons_once(kProdconsN);  // warm-up
    count_iterations(state, prodcons_once(state.max_iterations));
  });
}
BENCHMARK(BM_prodcons)->Name("prodcons")->Iterations(kProdconsN)->UseManualTime();

// select — mirrors benchSelect: two producer goroutines each send n/2 items
// on their own unbuffered channel; a consumer goroutine runs a 2-case select
// receive over both n times; main waits for the three; ns per select.
constexpr std::int64_t kSelectN = 2'000'000;

double select_once(std::int64_t n) {
  auto a = goro::make_chan<std::int64_t>();
  auto b = goro::make_chan<std::int64_t>();
  goro::WaitGroup wg;
  wg.add(3);
  const auto t0 = Clock::now();
  for (const auto& c : {a, b}) {
    goro::go([c, n, &wg] {
      for (std::int64_t i = 0; i < n / 2; i++) c.send(i);
      wg.done();
    });
  }
  goro::go([a, b, n, &wg] {
    for (std::int64_t i = 0; i < n; i++) goro::select(goro::case_recv(a), goro::case_recv(b));
    wg.done();
  });
  wg.wait();
  return seconds_since(t0);
}

void BM_select(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) select_once(kSelectN);  // warm-up
    count_iterations(state, select_once(state.max_iterations));
  });
}
BENCHMARK(BM_select)->Name("select")->Iterations(kSelectN)->UseManualTime();

// threadring — mirrors benchThreadring: 503 goroutines in a ring, each
// receiving on its own unbuffered channel and passing the token (a hop
// counter) to the next; the one that receives 0 signals done. ns per hop.
// Go builds a fresh ring for the warm-up and for each run; here one ring
// serves both (the token is simply injected twice), then closing the
// channels ends every ring goroutine, as in Go.
constexpr int kRing = 503;
constexpr std::int64_t kHops = 3'000'000;

void BM_threadring(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    std::vector<goro::Chan<std::int64_t>> chans;
    for (int i = 0; i < kRing; i++) chans.push_back(goro::make_chan<std::int64_t>());
    auto done = goro::make_chan<int>();
    for (int i = 0; i < kRing; i++) {
      goro::go([in = chans[i], out = chans[(i + 1) % kRing], done] {
        for (std::int64_t t : in) {
          if (t == 0) {
            done.send(0);
            continue;
          }
          out.send(t - 1);
        }
      });
    }
    auto once = [&](std::int64_t hops) {
      const auto t0 = Clock::now();
      chans[0].send(hops);
      done.recv();
      return seconds_since(t0);
    };
    if (first) once(kHops);  // warm-up
    count_iterations(state, once(state.max_iterations));
    for (auto& c : chans) c.close();  // nobody is sending now: all goroutines exit
  });
}
BENCHMARK(BM_threadring)->Name("threadring")->Iterations(kHops)->UseManualTime();

// skynet — mirrors benchSkynet: a 10-ary tree of 1,111,111 goroutines. Each
// leaf sends its number on its parent's unbuffered channel; each parent sums
// its 10 children and sends the sum up; counter "ms" is the total time. The
// children hold a copy of the parent's Chan (a reference, as Go's chan value
// is), so the channel lives until the last of them is done with it.
constexpr std::int64_t kSkynetLeaves = 1'000'000, kSkynetSum = 499'999'500'000;

void skynet(goro::Chan<std::int64_t> c, std::int64_t num, std::int64_t size) {
  if (size == 1) {
    c.send(num);
    return;
  }
  auto rc = goro::make_chan<std::int64_t>();
  size /= 10;
  for (std::int64_t i = 0; i < 10; i++) {
    goro::go([rc, num, i, size] { skynet(rc, num + i * size, size); });
  }
  std::int64_t sum = 0;
  for (int i = 0; i < 10; i++) sum += *rc.recv();
  c.send(sum);
}

void BM_skynet(benchmark::State& state) {
  auto once = [] {
    auto c = goro::make_chan<std::int64_t>();
    const auto t0 = Clock::now();
    goro::go([c] { skynet(c, 0, kSkynetLeaves); });
    const std::int64_t sum = *c.recv();
    const double el = seconds_since(t0);
    if (sum != kSkynetSum) throw std::runtime_error("skynet: wrong sum");
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
BENCHMARK(BM_skynet)->Name("skynet")->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

// chanmake — mirrors benchChanmake: on GOMAXPROCS goroutines at once, make a
// buffered channel (capacity 16) and drop the one made 16 steps earlier
// (a ring of 16 per goroutine, so each channel lives a little while, as Go's
// do until the next GC); ns per make+drop = wall time / all channels. The
// element type is a pointer, so the buffer is a GC root while the channel
// lives: this measures root registration on every P. chanmake_int is the same
// with int64 elements (a buffer the collector never needs to scan).
constexpr std::int64_t kChanmakeN = 1'000'000;  // per goroutine

template <class T>
double chanmake_once(std::int64_t n) {
  const int g = goro::gomaxprocs();
  goro::WaitGroup wg;
  wg.add(g);
  const auto t0 = Clock::now();
  for (int j = 0; j < g; j++)
    goro::go([&] {
      goro::Chan<T> ring[16];
      for (std::int64_t i = 0; i < n; i++) ring[i % 16] = goro::make_chan<T>(16);
      benchmark::DoNotOptimize(ring);
      wg.done();
    });
  wg.wait();
  return seconds_since(t0) / g;
}

void BM_chanmake(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) chanmake_once<std::int64_t*>(kChanmakeN);
    count_iterations(state, chanmake_once<std::int64_t*>(state.max_iterations));
  });
}
BENCHMARK(BM_chanmake)->Name("chanmake")->Iterations(kChanmakeN)->UseManualTime();

void BM_chanmake_int(benchmark::State& state) {
  static bool warmed = false;
  in_warm_goro(state, 0, &warmed, [&](bool first) {
    if (first) chanmake_once<std::int64_t>(kChanmakeN);
    count_iterations(state, chanmake_once<std::int64_t>(state.max_iterations));
  });
}
BENCHMARK(BM_chanmake_int)->Name("chanmake_int")->Iterations(kChanmakeN)->UseManualTime();

BENCHMARK_MAIN();
