// spread — watch work stealing happen.
//
// main (on one P) spawns 64 goroutines in a burst. They all land in main's
// P's run queue (the newest in runnext, the rest in the ring). Idle Ps are
// woken one at a time (wakep), find that queue, and steal half of it
// (runqsteal). Each goroutine records which P ran it, so the table at the
// end shows how the burst spread. Run it with the scheduler's trace on to
// see the queues drain:
//
//   GORO_DEBUG=schedtrace=20 demos/run spread
//   GOMAXPROCS=4 GORO_DEBUG=schedtrace=20,scheddetail=1 demos/run spread
#include <goro/goro.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <vector>

namespace {

// busy burns about `ms` of CPU, passing safepoints so the runtime can still
// stop the world or preempt it.
void busy(int ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) goro::preempt_point();
}

}  // namespace

int main() {
  goro::run([] {
    const int procs = goro::gomaxprocs();
    constexpr int kGoroutines = 64;
    const int spawner = goro::proc_pin();
    goro::proc_unpin();
    std::vector<std::atomic<int>> ran(static_cast<std::size_t>(procs));
    goro::WaitGroup wg;
    std::printf("main spawns %d goroutines from P%d, GOMAXPROCS=%d\n", kGoroutines, spawner, procs);
    for (int i = 0; i < kGoroutines; i++) {
      wg.add(1);
      goro::go([&] {
        busy(5);
        const int p = goro::proc_pin();  // which P is running us right now
        goro::proc_unpin();
        ran[static_cast<std::size_t>(p)]++;
        wg.done();
      });
    }
    wg.wait();
    for (int p = 0; p < procs; p++) {
      std::printf("P%d ran %2d goroutines%s\n", p, ran[static_cast<std::size_t>(p)].load(),
                  p == spawner ? "  (the spawner's P)" : "  (stolen)");
    }
  });
}
