// thread_ring — the benchmarks game's thread-ring on goroutines.
//
// 503 goroutines, numbered 1..503, sit in a ring, each blocked in a receive
// on its own unbuffered channel. Goroutine 1 is handed a token, the number
// N; each holder passes it on to the next with the number decremented, and
// the one that receives 0 reports its id. Every hop is one channel hand-off:
// the sender finds the receiver parked, moves the value into its slot and
// readies it (runtime/chan.cpp); with one P that is one goroutine switch.
//
//   demos/run thread_ring                  # N = 1,000,000
//   demos/run thread_ring 50000000         # the benchmarks game's N
//   GOMAXPROCS=1 demos/run thread_ring     # usually faster: no P to P wake-ups
//
// The last holder must be (N mod 503) + 1; it exits 1 otherwise.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <goro/goro.hpp>
#include <vector>

int main(int argc, char** argv) {
  constexpr int kRing = 503;
  const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  if (n < 0) {
    std::fprintf(stderr, "usage: thread_ring [N >= 0]\n");
    return 2;
  }
  int last = 0;
  double ms = 0;
  goro::run([&] {
    std::vector<goro::Chan<long>> ring;
    for (int i = 0; i < kRing; i++) ring.push_back(goro::make_chan<long>());
    auto done = goro::make_chan<int>();
    for (int i = 0; i < kRing; i++) {
      // Goroutine i + 1 receives on ring[i] and passes to ring[i + 1].
      goro::go([id = i + 1, in = ring[i], out = ring[(i + 1) % kRing], done] {
        for (;;) {
          const long token = *in.recv();
          if (token == 0) {
            done.send(id);
            return;
          }
          out.send(token - 1);
        }
      });
    }
    const auto t0 = std::chrono::steady_clock::now();
    ring[0].send(n);
    last = *done.recv();
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    // The other 502 goroutines are still parked in recv: abandoned, as
    // Go's main abandons them.
  });
  std::printf("%d\n", last);
  std::printf("(%ld hops over %d goroutines in %.0f ms, %.0f ns per hop)\n", n, kRing, ms,
              n > 0 ? ms * 1e6 / static_cast<double>(n) : 0.0);
  const int expect = static_cast<int>(n % kRing) + 1;
  if (last != expect) {
    std::printf("FAIL: expected %d\n", expect);
    return 1;
  }
  return 0;
}
