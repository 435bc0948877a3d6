// gc_hooks — the garbage collector's cycle, seen from a program: cleanup
// hooks run with the world stopped at the start of every cycle (sync.Pool's
// poolCleanup uses this), finalizers run afterwards on their own goroutine,
// and gctrace shows each cycle.
//
//   demos/run gc_hooks [N]                  # N cycles (default 5)
//   GORO_DEBUG=gctrace=1 demos/run gc_hooks
//   GOGC=50 demos/run gc_hooks              # more cycles for the same garbage
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <goro/goro.hpp>

namespace {

std::atomic<int> finalized{0};

struct Buffer {
  char bytes[200] = {};
  ~Buffer() {
    finalized.fetch_add(1, std::memory_order_relaxed);
  }  // runs on the finalizer goroutine
};

struct Node {
  Node* next;
  long value;
};

}  // namespace

int main(int argc, char** argv) {
  const int cycles = argc > 1 ? std::atoi(argv[1]) : 5;
  int status = 0;
  goro::run([&] {
    std::atomic<long> work{0};
    std::atomic<bool> stop{false};
    int hook_calls = 0;
    int hook_saw_motion = 0;
    // The hook reads the workers' counter twice: with the world stopped, no
    // goroutine runs in between, so the two reads agree.
    auto id = goro::gc::register_cleanup([&] {
      hook_calls++;
      const long a = work.load();
      for (int i = 0; i < 100000; i++) asm volatile("");  // let time pass
      if (work.load() != a) hook_saw_motion++;
    });
    goro::WaitGroup wg;
    for (int w = 0; w < 2; w++) {
      wg.add(1);
      goro::go([&] {
        Node* list = nullptr;  // live: on this goroutine's stack
        while (!stop.load()) {
          goro::gc::make<Buffer>();  // garbage with a destructor
          list = goro::gc::make<Node>(Node{list, work.fetch_add(1)});
          if (work.load() % 512 == 0) list = nullptr;  // drop the list now and then
        }
        wg.done();
      });
    }
    const auto s0 = goro::gc::stats();
    for (int i = 0; i < cycles; i++) {
      goro::gc::collect();
      goro::yield();
    }
    stop = true;
    wg.wait();
    goro::gc::unregister_cleanup(id);
    goro::gc::collect();
    const auto s1 = goro::gc::stats();
    std::printf("cycles: %llu (%d by collect()), hook ran %d times, saw the world move %d times\n",
                static_cast<unsigned long long>(s1.num_gc - s0.num_gc), cycles + 1, hook_calls,
                hook_saw_motion);
    std::printf("allocated %llu objects, freed %llu, finalized %d; heap %llu KiB, goal %llu KiB\n",
                static_cast<unsigned long long>(s1.mallocs),
                static_cast<unsigned long long>(s1.frees), finalized.load(),
                static_cast<unsigned long long>(s1.heap_alloc >> 10),
                static_cast<unsigned long long>(s1.next_gc >> 10));
    std::printf("pauses: last %.3f ms, total %.3f ms\n", s1.last_pause_ns / 1e6,
                s1.pause_total_ns / 1e6);
    if (hook_saw_motion != 0 || hook_calls < cycles) status = 1;
  });
  return status;
}
