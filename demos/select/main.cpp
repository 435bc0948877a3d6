// select — what goro::select does, case by case (lesson 10; Go's selectgo).
//
//   1. Two channels always ready: select picks uniformly at random (the
//      poll order is a fresh shuffle each time), so neither case starves.
//   2. Nothing ready and a default case: the default runs, nobody parks.
//   3. Nothing ready, no default: the goroutine parks on every channel at
//      once (one sudog per case) and the first to become ready wins — here a
//      timer's channel, time.After.
//   4. The same, woken by a sender on another goroutine.
// The demo checks each result and exits 1 if one is wrong.
//
//   demos/run select            (one P: Options.procs = 1)
#include <goro/goro.hpp>

#include <chrono>
#include <cstdio>

int main() {
  int status = 0;
  goro::run({.procs = 1}, [&] {
    using namespace std::chrono_literals;
    // 1. Fairness among ready cases.
    constexpr int kRounds = 1000;
    auto a = goro::make_chan<int>(kRounds);
    auto b = goro::make_chan<int>(kRounds);
    for (int i = 0; i < kRounds; i++) {
      a.send(i);
      b.send(i);
    }
    int na = 0;
    int nb = 0;
    for (int i = 0; i < kRounds; i++) {
      goro::select(goro::case_recv(a, [&] { na++; }), goro::case_recv(b, [&] { nb++; }));
    }
    std::printf("1. both channels always ready, %d selects: a chosen %d times, b %d times\n",
                kRounds, na, nb);
    const bool fair = na > 400 && nb > 400;  // 6 standard deviations
    std::printf("   each case chosen about half the time: %s\n", fair ? "yes" : "NO");
    if (!fair) status = 1;

    // 2. default.
    auto empty = goro::make_chan<int>(0);
    bool took_default = false;
    goro::select(goro::case_recv(empty, [] {}), goro::case_default([&] { took_default = true; }));
    std::printf("2. nothing ready, with a default case: %s\n",
                took_default ? "the default ran, nobody parked" : "a case ran?");
    if (!took_default) status = 1;

    // 3. Park on two channels; the timer fires first.
    const auto t0 = std::chrono::steady_clock::now();
    int which = -1;
    goro::select(goro::case_recv(empty, [&] { which = 0; }),
                 goro::case_recv(goro::after(20ms), [&] { which = 1; }));
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("3. parked on an empty channel and after(20ms): %s after %.0f ms\n",
                which == 1 ? "the timer's case won" : "the other case won?", ms);
    if (which != 1 || ms < 20) status = 1;

    // 4. Park; another goroutine sends.
    auto c = goro::make_chan<int>(0);
    goro::go([c] { c.send(42); });
    int got = -1;
    goro::select(goro::case_recv(empty, [&] { which = 0; }),
                 goro::case_recv(c, [&](std::optional<int> v) { got = v.value_or(-1); }));
    std::printf("4. parked on two channels, a goroutine sends 42 on one: received %d\n", got);
    if (got != 42) status = 1;
  });
  if (status != 0) std::printf("unexpected result\n");
  return status;
}
