// deadlock — Go's deadlock detector and goroutine dump (lesson 13).
//
// main waits on a WaitGroup that a worker would release after receiving from
// a channel nobody sends on; a third goroutine waits on a Mutex main holds.
// Once every goroutine is parked and no timer or system call can wake one,
// the M that goes idle last finds nothing running (checkdead) and the
// runtime dies as Go does: "fatal error: all goroutines are asleep -
// deadlock!", a dump of every goroutine with its wait reason and where it
// was created, exit status 2.
//
//   demos/run deadlock          (exits 2, on purpose)
#include <goro/goro.hpp>

#include <cstdio>

int main() {
  goro::run({.procs = 1}, [] {
    auto ch = goro::make_chan<int>(0);
    goro::Mutex mu;
    goro::WaitGroup wg;
    wg.add(1);
    mu.lock();
    goro::go([ch, &wg] {
      ch.recv();  // nobody will ever send
      wg.done();
    });
    goro::go([&mu] {
      mu.lock();  // main holds it and never unlocks
      mu.unlock();
    });
    std::printf("main waits for a worker that waits for a send that never comes\n");
    std::fflush(stdout);
    wg.wait();
    std::printf("unreachable\n");
  });
  return 0;
}
