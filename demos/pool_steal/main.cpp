// pool_steal — a Get served by stealing from another P (lesson 12).
//
// Each P has its own poolLocal: a `private` slot and a `shared` poolChain.
// Put fills private first, then pushes onto the head of shared. Get takes
// private, then pops the head of its own shared (the newest), and only then
// (getSlow) pops the *tail* of the other Ps' shared chains (the oldest):
// stealing, as the scheduler steals goroutines.
//
// The putter pins itself (so it holds its P and cannot move) and puts Bufs
// 1, 2, 3, 4: Buf 1 lands in private, 2, 3, 4 in shared (head = 4, tail = 2).
// The getter necessarily runs on the other P, where the pool is empty: its
// Get steals from the putter's shared tail, Buf 2. Back on its own P the
// putter gets Buf 1 (private), then Buf 4 (the head), then Buf 3.
//
//   demos/run pool_steal        (two Ps: Options.procs = 2)
#include <goro/goro.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>

namespace {

struct Buf {
  int id;
};

using clk = std::chrono::steady_clock;

int id_of(Buf* b) { return b != nullptr ? b->id : 0; }

}  // namespace

int main() {
  int status = 0;
  goro::run({.procs = 2}, [&] {
    goro::Pool<Buf> pool;  // no New: an empty pool's get() returns nullptr
    Buf* bufs[4];
    for (int i = 0; i < 4; i++) bufs[i] = goro::gc::make<Buf>(Buf{i + 1});
    std::atomic<int> stage{0};
    int putter_p = -1;
    int getter_p = -1;
    int stolen = -1;
    int own[4] = {-1, -1, -1, -1};
    goro::WaitGroup wg;
    goro::WaitGroup gate;  // the getter waits here until the puts are done
    wg.add(2);
    gate.add(1);
    goro::go([&] {  // the putter
      putter_p = goro::proc_pin();
      for (Buf* b : bufs) pool.put(b);
      // Ready the getter: it lands in this P's runnext, and since this P is
      // busy, the other P's M steals it from there.
      gate.done();
      // Hold this P (pinned, no runtime call) until the getter is done.
      const auto until = clk::now() + std::chrono::seconds(10);
      while (stage.load() != 2 && clk::now() < until) {
      }
      goro::proc_unpin();
      for (int& x : own) x = id_of(pool.get());
      wg.done();
    });
    goro::go([&] {  // the getter
      gate.wait();
      getter_p = goro::proc_pin();  // our P, for the whole get()
      stolen = id_of(pool.get());
      goro::proc_unpin();
      stage = 2;
      wg.done();
    });
    wg.wait();
    std::printf("1. the putter, pinned to P%d, puts Bufs 1 2 3 4\n", putter_p);
    std::printf("   P%d: private = Buf 1, shared = [2 3 4] (tail 2 .. head 4)\n", putter_p);
    std::printf("2. the getter runs on P%d, whose private and shared are empty\n", getter_p);
    std::printf("   get() -> Buf %d: stolen from the tail of P%d's shared (getSlow, popTail)\n",
                stolen, putter_p);
    std::printf("3. the putter, back on P%d: get() -> Buf %d (private), Buf %d (head of shared),"
                " Buf %d, then %s\n",
                putter_p, own[0], own[1], own[2], own[3] == 0 ? "empty" : "??");
    if (getter_p == putter_p || stolen != 2 || own[0] != 1 || own[1] != 4 || own[2] != 3 ||
        own[3] != 0)
      status = 1;
  });
  if (status != 0) std::printf("unexpected result\n");
  return status;
}
