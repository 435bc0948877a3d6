// preemption — a goroutine that will not yield cannot starve the others.
//
// GOMAXPROCS=1, one P. Part 1: a hot loop that calls goro::preempt_point();
// sysmon asks it to yield after its 10 ms slice and it does, at that call.
// Part 2: a loop with no runtime call at all. sysmon asks, waits a slice,
// then signals its thread; the handler gives the P up (like a system call)
// and sysmon hands the P to another thread: the other goroutine keeps
// running, and gomaxprocs() — which stops the world — completes while the
// loop spins. Watch `threads=` grow by one in the schedtrace lines.
//
//   demos/run preemption               (schedtrace is on every 20 ms)
#include <goro/goro.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

using clk = std::chrono::steady_clock;

double ms_since(clk::time_point t0) {
  return std::chrono::duration<double, std::milli>(clk::now() - t0).count();
}

// race runs `hog` beside a goroutine that counts how often it gets to run
// in 100 ms, and reports both.
template <class Hog>
void race(const char* title, Hog hog) {
  std::atomic<bool> stop{false};
  std::atomic<long> ticks{0};
  goro::WaitGroup wg;
  wg.add(2);
  goro::go([&] {
    hog(stop);
    wg.done();
  });
  goro::go([&] {
    while (!stop) {
      ticks++;
      goro::sleep_for(std::chrono::milliseconds(1));
    }
    wg.done();
  });
  const auto t0 = clk::now();
  goro::sleep_for(std::chrono::milliseconds(100));
  std::printf("%s\n  main woke after %.0f ms; the other goroutine ran %ld times\n", title,
              ms_since(t0), ticks.load());
  const auto t1 = clk::now();
  goro::gomaxprocs(1);  // same value: no stop; use 2 then 1 to stop the world twice
  goro::gomaxprocs(2);
  goro::gomaxprocs(1);
  std::printf("  two stop-the-worlds (gomaxprocs 2, then 1) took %.1f ms\n", ms_since(t1));
  stop = true;
  wg.wait();
  std::fflush(stdout);
}

}  // namespace

int main() {
  if (std::getenv("GORO_DEBUG") == nullptr) setenv("GORO_DEBUG", "schedtrace=20", 1);
  goro::run({.procs = 1}, [] {
    race("1. hot loop with goro::preempt_point():", [](std::atomic<bool>& stop) {
      volatile unsigned long n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        n = n + 1;
        goro::preempt_point();
      }
    });
    race("2. hot loop with no safepoint at all:", [](std::atomic<bool>& stop) {
      volatile unsigned long n = 0;
      while (!stop.load(std::memory_order_relaxed)) n = n + 1;
    });
  });
}
