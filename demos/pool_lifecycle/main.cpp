// pool_lifecycle — a sync.Pool across garbage collections: objects put in a
// pool survive one collection (in the victim cache, where get() still finds
// them) and are collected by the second, their destructors run by the
// finalizer goroutine. See docs/pool.md.
//
//   demos/run pool_lifecycle
//   demos/run pool_lifecycle 5000     # pool that many objects
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <goro/goro.hpp>

namespace {

std::atomic<int> destroyed{0};

struct Buf {
  int id;
  unsigned char data[1024] = {};
  explicit Buf(int i) : id(i) {}
  ~Buf() { destroyed.fetch_add(1); }
};

void print_stats(const char* when) {
  const goro::gc::Stats s = goro::gc::stats();
  std::printf("  %-34s num_gc=%llu heap_objects=%llu heap_alloc=%llu KiB, destructors run=%d\n",
              when, static_cast<unsigned long long>(s.num_gc),
              static_cast<unsigned long long>(s.heap_objects),
              static_cast<unsigned long long>(s.heap_alloc >> 10), destroyed.load());
}

// fill puts n fresh Bufs, ids 0..n-1, in the pool. A separate frame, so that
// no pointer to them lingers on main's stack.
[[gnu::noinline]] void fill(goro::Pool<Buf>& pool, int n) {
  for (int i = 0; i < n; i++) pool.put(goro::gc::make<Buf>(i));
}

// take gets k Bufs, says which step served each and puts them back. An id
// below n is a Buf that fill put, found in the pool: right after a collection
// the primary caches are empty, so that is the victim cache. Otherwise New
// made it.
[[gnu::noinline]] int take(goro::Pool<Buf>& pool, int n, int k) {
  Buf* got[8];
  int fromPool = 0;
  for (int i = 0; i < k; i++) {
    got[i] = pool.get();
    const bool cached = got[i]->id < n;
    fromPool += cached;
    std::printf("    get() -> Buf %d: %s\n", got[i]->id,
                cached ? "served by the victim cache (put before the collection)"
                       : "served by New (the pool was empty)");
  }
  for (int i = 0; i < k; i++) pool.put(got[i]);
  return fromPool;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  if (n < 8) {
    std::fprintf(stderr, "usage: pool_lifecycle [objects >= 8]\n");
    return 2;
  }
  int failures = 0;
  goro::run([&] {
    int news = 0;
    goro::Pool<Buf> pool([&] { return goro::gc::make<Buf>(n + news++); });

    std::printf("1. put %d Bufs (1 KiB each) in the pool\n", n);
    fill(pool, n);
    print_stats("after put:");

    std::printf("2. collect() once: the primary caches move to the victim\n");
    goro::gc::collect();
    print_stats("after one collection:");
    if (take(pool, n, 3) != 3) failures++;

    std::printf("3. collect() twice more: the victim is dropped, the Bufs die\n");
    goro::gc::collect();
    goro::gc::collect();
    // Destructors run on the finalizer goroutine after the cycle: give it
    // time, with a bound.
    for (int i = 0; i < 50 && destroyed.load() < n - 8; i++) {
      goro::gc::collect();
      goro::sleep_for(std::chrono::milliseconds(2));
    }
    print_stats("after three collections:");
    // An object with a destructor is freed by the sweep after its finalizer
    // ran (as in Go): one more cycle and the heap shrinks.
    goro::gc::collect();
    print_stats("after one more:");
    if (destroyed.load() < n - 8) failures++;  // conservative scanning may keep a few
    if (take(pool, n, 3) != 0) failures++;
    std::printf("   New ran %d times\n", news);
  });
  if (failures) std::printf("unexpected result (%d)\n", failures);
  return failures ? 1 : 0;
}
