// runnext — the order goroutines run in on one P (lessons 2 and 4).
//
// With GOMAXPROCS=1 there is no stealing and no parallelism, so the order is
// decided by the run queues alone and is the same on every run:
//   1. go() puts the new goroutine in runnext, pushing the previous one to
//      the tail of the local ring: spawn A, B, C and block, and they run
//      C, A, B (Go's runqput(p, g, next=true)).
//   2. yield() puts the caller on the *global* queue (Go's Gosched,
//      goschedImpl -> globrunqput): it runs after the local work.
//   3. The global queue is not starved by local work: every 61st schedule
//      (schedtick % 61 == 0) looks at it first (findrunnable).
// The demo checks each order itself and exits 1 if one is wrong. main
// spawns while pinned (proc_pin): on a loaded machine sysmon could otherwise
// preempt it between two go() calls (it would go to the global queue and
// run later), which would change the order for a reason this demo is not
// about.
//
//   demos/run runnext           (always one P: Options.procs = 1)
#include <goro/goro.hpp>

#include <atomic>
#include <cstdio>
#include <string>

int main() {
  int status = 0;
  goro::run({.procs = 1}, [&] {
    // 1. runnext and the ring.
    std::string order;
    goro::WaitGroup wg;
    wg.add(3);
    std::printf("1. main spawns A, B, C on its one P, then waits\n");
    goro::proc_pin();
    for (char c : {'A', 'B', 'C'}) {
      goro::go([&order, &wg, c] {
        std::printf("   %c runs\n", c);
        order += c;
        wg.done();
      });
    }
    goro::proc_unpin();
    wg.wait();
    std::printf("   order %s: C was in runnext, A and B in the ring (FIFO)\n", order.c_str());
    if (order != "CAB") status = 1;

    // 2. yield() goes to the global queue, behind the local work.
    order.clear();
    wg.add(2);
    std::printf("2. main spawns D, E, then yields\n");
    goro::proc_pin();
    for (char c : {'D', 'E'}) {
      goro::go([&order, &wg, c] {
        std::printf("   %c runs\n", c);
        order += c;
        wg.done();
      });
    }
    goro::proc_unpin();
    goro::yield();
    std::printf("   main runs again\n");
    order += 'M';
    wg.wait();
    std::printf("   order %s: E (runnext), D (ring), then main from the global queue\n",
                order.c_str());
    if (order != "EDM") status = 1;

    // 3. The 1-in-61 check: L yields (to the global queue) while 200
    // workers wait in the local ring.
    constexpr int kWorkers = 200;
    std::atomic<int> ran{0};
    int seen = -1;
    wg.add(kWorkers + 1);
    goro::proc_pin();
    goro::go([&] {
      goro::yield();  // to the global queue, behind 199 local goroutines
      seen = ran.load();
      wg.done();
    });
    for (int i = 0; i < kWorkers; i++) {
      goro::go([&] {
        ran.fetch_add(1, std::memory_order_relaxed);
        wg.done();
      });
    }
    goro::proc_unpin();
    std::printf("3. L yields to the global queue while %d workers wait in the local queue\n",
                kWorkers);
    wg.wait();
    std::printf("   L ran again after %d of the %d workers: the global queue was checked on a\n"
                "   schedtick that is a multiple of 61, before the local queue was empty\n",
                seen, kWorkers);
    // Usually fewer than 61. More only if something else was on the global
    // queue first (main, preempted by sysmon on a loaded machine): each
    // check takes one G from it.
    if (seen < 1 || seen >= kWorkers) status = 1;
  });
  if (status != 0) std::printf("unexpected order\n");
  return status;
}
