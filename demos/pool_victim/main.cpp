// pool_victim — an object survives exactly one GC cycle in a sync.Pool
// (lesson 12; poolCleanup and the victim cache).
//
// At the start of every cycle poolCleanup (run with the world stopped) drops
// each pool's victim and moves its primary cache (`local`) into the victim.
// So an object put before one cycle is still found by Get (in the victim);
// an object that nobody took back is gone after the second cycle, and Get
// calls New.
//
//   demos/run pool_victim       (one P: Options.procs = 1)
#include <goro/goro.hpp>

#include <cstdio>

namespace {

struct Buf {
  int id;
};

}  // namespace

int main() {
  int status = 0;
  goro::run({.procs = 1}, [&] {
    int news = 0;
    goro::Pool<Buf> pool([&] { return goro::gc::make<Buf>(Buf{100 + news++}); });
    Buf* a = goro::gc::make<Buf>(Buf{1});

    std::printf("1. put(Buf 1): it goes to P0's private slot (the primary cache)\n");
    pool.put(a);
    goro::gc::collect();
    std::printf("   cycle 1: poolCleanup moves the primary cache to the victim\n");
    Buf* got = pool.get();
    std::printf("   get() -> Buf %d: %s\n", got->id,
                got == a ? "served by the victim (the primary cache is empty after a cycle)"
                         : "made by New");
    if (got != a) status = 1;

    std::printf("2. put(Buf 1) again, then two cycles without a get()\n");
    pool.put(a);
    goro::gc::collect();
    std::printf("   cycle 2: Buf 1 moves to the victim\n");
    goro::gc::collect();
    std::printf("   cycle 3: the victim is dropped; Buf 1 is no longer in the pool\n");
    got = pool.get();
    std::printf("   get() -> Buf %d: %s\n", got->id,
                got == a ? "still in the pool?" : "made by New (the pool was empty)");
    if (got == a || news != 1) status = 1;
  });
  if (status != 0) std::printf("unexpected result\n");
  return status;
}
