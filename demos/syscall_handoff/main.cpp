// syscall_handoff — what happens to a P when its M blocks in a system call.
//
// With GOMAXPROCS=1 there is one P. main enters a 300 ms blocking call
// through goro::blocking (entersyscall: the P stays attached but marked
// "in syscall"). sysmon notices the P stuck there and hands it to another
// thread (retake -> handoffp), so the ticker goroutine keeps running — on a
// different OS thread, same P. When the call returns, main takes a P back
// (exitsyscall) and continues.
//
//   demos/run syscall_handoff          (schedtrace is on every 50 ms)
#include <goro/goro.hpp>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

long tid() { return syscall(SYS_gettid); }

// where prints which P and OS thread the calling goroutine is on.
void where(const char* who) {
  const int p = goro::proc_pin();
  goro::proc_unpin();
  std::printf("  %-28s goroutine %llu on P%d, thread %ld\n", who,
              static_cast<unsigned long long>(goro::goid()), p, tid());
  std::fflush(stdout);
}

}  // namespace

int main() {
  if (std::getenv("GORO_DEBUG") == nullptr) setenv("GORO_DEBUG", "schedtrace=50", 1);
  goro::run({.procs = 1}, [] {
    std::atomic<bool> done{false};
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      for (int i = 0; !done; i++) {
        if (i % 10 == 0) where("ticker:");
        goro::sleep_for(std::chrono::milliseconds(10));
      }
      wg.done();
    });
    goro::sleep_for(std::chrono::milliseconds(30));
    std::printf("1. before the call\n");
    where("main:");
    std::printf("2. main enters blocking(usleep 300ms): its thread blocks, sysmon hands P0 off\n");
    std::fflush(stdout);
    goro::blocking([] { usleep(300 * 1000); });
    std::printf("3. the call returned: main took a P back (exitsyscall)\n");
    where("main:");
    done = true;
    wg.wait();
  });
}
