// pool_pin — pinning holds off stop-the-world (lesson 12; sync.Pool's pin).
//
// sync.Pool's Get and Put run pinned (runtime_procPin, goro::proc_pin): the
// M's `locks` count is raised, so the goroutine is not preempted, does not
// move to another P, and a stop-the-world waits until it unpins. That is why
// poolCleanup, which runs with the world stopped, never sees a Get or Put
// half-way. Pinning does NOT bind the P to the M in any new way: it only
// keeps this goroutine from leaving the P it is on.
//
// Here a goroutine pins and keeps the pin while main calls gc::collect(),
// which stops the world and runs the cleanup hooks (as poolCleanup runs).
// The hook records whether the goroutine was still pinned: it never is.
// The pinned goroutine unpins only 20 ms after it has seen main start the
// collection, so the stop-the-world must have waited at least that long.
//
//   demos/run pool_pin          (two Ps: Options.procs = 2)
#include <goro/goro.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>

namespace {

using clk = std::chrono::steady_clock;

double ms_since(clk::time_point t0) {
  return std::chrono::duration<double, std::milli>(clk::now() - t0).count();
}

}  // namespace

int main() {
  int status = 0;
  goro::run({.procs = 2}, [&] {
    std::atomic<bool> pinned{false};
    std::atomic<bool> collecting{false};
    std::atomic<int> hook_saw_pinned{-1};
    auto id = goro::gc::register_cleanup([&] { hook_saw_pinned = pinned.load() ? 1 : 0; });
    goro::WaitGroup wg;
    goro::WaitGroup ready;  // main waits here until the goroutine is pinned
    wg.add(1);
    ready.add(1);
    bool timed_out = false;
    goro::go([&] {
      const int p = goro::proc_pin();
      pinned = true;
      std::printf("1. a goroutine pins itself to P%d (proc_pin: m.locks++)\n", p);
      std::fflush(stdout);
      // Ready main: it lands in this P's runnext, and since this P is busy,
      // the other P's M steals it from there.
      ready.done();
      // Wait (pinned, without any runtime call) until main starts the
      // collection, then hold the pin 20 ms more. Bounded: 10 s.
      const auto start = clk::now();
      while (!collecting.load() && ms_since(start) < 10000) {
      }
      timed_out = !collecting.load();
      const auto seen = clk::now();
      while (ms_since(seen) < 20) {
      }
      pinned = false;  // before the unpin: the hook must see this
      goro::proc_unpin();
      wg.done();
    });
    ready.wait();
    std::printf("2. main calls gc::collect(): stop the world, run the cleanup hooks\n");
    std::fflush(stdout);
    const auto t0 = clk::now();
    collecting = true;
    goro::gc::collect();
    const double waited = ms_since(t0);
    wg.wait();
    goro::gc::unregister_cleanup(id);
    std::printf("3. collect() returned after %.0f ms: the stop-the-world waited for the unpin\n",
                waited);
    std::printf("   the cleanup hook saw the goroutine pinned: %s\n",
                hook_saw_pinned.load() == 0 ? "no" : hook_saw_pinned.load() == 1 ? "YES" : "?");
    if (timed_out || hook_saw_pinned.load() != 0 || waited < 20) status = 1;
  });
  if (status != 0) std::printf("unexpected result\n");
  return status;
}
