// gc_test.cpp — the garbage collector (gc/): reachability from stacks,
// Roots, Allocator and channel buffers; finalizers; cleanup hooks; the mark
// stack on long lists; concurrent mutators; pacing; forcegc; Stats.
// The root registry (registration from many goroutines, Roots and hooks across
// run() calls, pointer-free channel buffers that are not roots); the
// background sweeper's wait reason.
// Parameterised over GOMAXPROCS where scheduling matters. No sleeps as
// synchronisation: waiting is a bounded loop of collect() + yield, as Go's
// tests do for finalizers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace {

using goro::test::kSanitized;

struct Node {
  Node* next = nullptr;
  std::uint64_t value = 0;
  std::uint64_t check = 0;
};

std::atomic<int> destroyed{0};

struct Tracked {
  std::uint64_t payload[4] = {1, 2, 3, 4};
  ~Tracked() { destroyed.fetch_add(1, std::memory_order_relaxed); }
};

goro::Options opts(int procs) {
  goro::Options o;
  o.procs = procs;
  return o;
}

// wait_until runs collect() + yield until pred holds: at least n rounds,
// and on until 30 s have passed (on a loaded machine the finalizer goroutine
// may get little CPU between the cycles).
template <class F>
bool wait_until(F pred, int n = 200) {
  goro::test::Deadline deadline(std::chrono::seconds(30));
  for (int i = 0; i < n || !deadline.passed(); i++) {
    if (pred()) return true;
    goro::gc::collect();
    goro::yield();
  }
  return pred();
}

// Allocating in a separate non-inlined frame keeps stale copies of the
// pointer out of the test's own frame.
[[gnu::noinline]] void make_garbage_tracked(int n) {
  for (int i = 0; i < n; i++) goro::gc::make<Tracked>();
}

// Clobber a stack region below the caller so old frames do not keep garbage.
// Not instrumented by ASan: an instrumented frame puts buf under a redzone
// and leaves a few hundred bytes at its top unwritten, where the frame of
// the function called before it kept its pointers.
[[gnu::noinline, gnu::no_sanitize_address]] void scrub_stack() {
  volatile char buf[8192];
  for (std::size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}

class GcProcs : public ::testing::TestWithParam<int> {};

TEST_P(GcProcs, ParkedStackKeepsObjectAlive) {
  goro::run(opts(GetParam()), [] {
    auto ready = goro::make_chan<int>();
    auto done = goro::make_chan<int>();
    auto result = goro::make_chan<bool>(1);
    goro::go([=]() mutable {
      Node* head = nullptr;
      for (int i = 0; i < 100; i++) {
        Node* n = goro::gc::make<Node>();
        n->value = i;
        n->check = i * 7 + 1;
        n->next = head;
        head = n;
      }
      ready.send(1);
      done.recv();  // parked: only this stack holds head
      bool ok = true;
      int count = 0;
      for (Node* n = head; n != nullptr; n = n->next, count++)
        if (n->check != n->value * 7 + 1) ok = false;
      result.send(ok && count == 100);
    });
    ready.recv();
    for (int i = 0; i < 10; i++) {
      // Garbage of the same size class to reuse any wrongly freed slot.
      for (int k = 0; k < 1000; k++) goro::gc::make<Node>()->value = 0xdeadbeef;
      goro::gc::collect();
    }
    done.send(1);
    EXPECT_TRUE(*result.recv());
  });
}

TEST_P(GcProcs, DroppedObjectIsFinalized) {
  destroyed = 0;
  goro::run(opts(GetParam()), [] {
    auto done = goro::make_chan<int>();
    goro::go([=]() mutable {
      make_garbage_tracked(100);
      done.send(1);
    });
    done.recv();
    EXPECT_TRUE(wait_until([] { return destroyed.load() == 100; })) << destroyed.load();
  });
}

// Children write the only pointers to new objects into their parked
// parent's stack (results[i] = gc::make(...), then wg.done()) while another
// goroutine runs cycles: the parent neither runs nor is readied between the
// write and the last done, so only a rescan of its stack in the pause keeps
// those objects (the concurrent mark's termination rescans every stack).
struct Boxed {
  std::uint64_t magic;
  std::uint64_t id;
};
TEST_P(GcProcs, ChildrenWriteIntoTheirParkedParentsStack) {
  goro::run(opts(GetParam()), [] {
    std::atomic<bool> stop{false};
    goro::WaitGroup collector;
    collector.add(1);
    goro::go([&] {
      while (!stop.load()) goro::gc::collect();
      collector.done();
    });
    constexpr int kKids = 8;
    const int rounds = kSanitized ? 60 : 400;
    int bad = 0;
    for (int round = 0; round < rounds; round++) {
      Boxed* results[kKids] = {};
      goro::WaitGroup wg;
      wg.add(kKids);
      for (int i = 0; i < kKids; i++) {
        goro::go([&results, &wg, i] {
          results[i] = goro::gc::make<Boxed>(Boxed{0xb0c5ed, static_cast<std::uint64_t>(i)});
          // Garbage after the write: a cycle may end while the parent is
          // parked and this goroutine has forgotten the pointer.
          for (int k = 0; k < 64; k++) (void)goro::gc::make<Boxed>(Boxed{0, 0});
          goro::yield();
          wg.done();
        });
      }
      wg.wait();
      for (int k = 0; k < 64; k++) (void)goro::gc::make<Boxed>(Boxed{0, 0});  // reuse freed slots
      for (int i = 0; i < kKids; i++)
        bad += results[i]->magic != 0xb0c5ed || results[i]->id != static_cast<std::uint64_t>(i);
    }
    stop = true;
    collector.wait();
    EXPECT_EQ(bad, 0);
  });
}

TEST(Gc, InteriorPointerKeepsObjectAlive) {
  destroyed = 0;
  goro::run(opts(2), [] {
    Tracked* t = goro::gc::make<Tracked>();
    std::uint64_t* volatile inner = &t->payload[3];
    t = nullptr;
    for (int i = 0; i < 5; i++) goro::gc::collect();
    EXPECT_EQ(destroyed.load(), 0);
    EXPECT_EQ(*inner, 4u);
    EXPECT_TRUE(goro::detail::gc_is_object_start(inner - 3));
    EXPECT_FALSE(goro::detail::gc_is_object_start(inner));
  });
}

TEST(Gc, RootAndAllocatorKeepAlive) {
  destroyed = 0;
  goro::run(opts(2), [] {
    using Vec = std::vector<Tracked*, goro::gc::Allocator<Tracked*>>;
    // Held only from malloc'd memory, which the GC does not scan: a Root, and
    // a vector whose GC-heap buffer is kept by a Root.
    static goro::gc::Root<Tracked>* holder;
    static Vec* vec;
    static goro::gc::Root<Tracked*>* vroot;
    auto done = goro::make_chan<int>();
    // A goroutine that exits takes its stack out of the roots: nothing stale
    // on the test's own stack can keep the objects alive afterwards.
    goro::go([=]() mutable {
      holder = new goro::gc::Root<Tracked>(goro::gc::make<Tracked>());
      vec = new Vec();
      vroot = new goro::gc::Root<Tracked*>(nullptr);
      for (int i = 0; i < 10; i++) vec->push_back(goro::gc::make<Tracked>());
      vroot->reset(vec->data());
      done.send(1);
    });
    done.recv();
    goro::go([=]() mutable {
      for (int i = 0; i < 5; i++) goro::gc::collect();
      EXPECT_EQ(destroyed.load(), 0);
      EXPECT_EQ((*holder)->payload[2], 3u);
      for (Tracked* t : *vec) EXPECT_EQ(t->payload[0], 1u);
      delete holder;
      vroot->reset(nullptr);
      delete vec;
      delete vroot;
      done.send(1);
    });
    done.recv();
    EXPECT_TRUE(wait_until([] { return destroyed.load() == 11; })) << destroyed.load();
  });
}

TEST(Gc, HooksRunOncePerCycleInOrderWorldStopped) {
  goro::run(opts(4), [] {
    static std::atomic<std::uint64_t> counter{0};
    static std::vector<int> order;
    static int bad = 0;
    static std::atomic<bool> stop{false};
    counter = 0;
    order.clear();
    bad = 0;
    stop = false;
    auto h1 = goro::gc::register_cleanup([] {
      const auto a = counter.load();
      for (int i = 0; i < 1000; i++) goro::test::spin(10);
      if (counter.load() != a) bad++;
      order.push_back(1);
    });
    auto h2 = goro::gc::register_cleanup([] { order.push_back(2); });
    goro::WaitGroup wg;
    for (int i = 0; i < 3; i++) {
      wg.add(1);
      goro::go([&] {
        while (!stop.load()) {
          counter.fetch_add(1);
          goro::preempt_point();
        }
        wg.done();
      });
    }
    const auto n0 = goro::gc::stats().num_gc;
    for (int i = 0; i < 5; i++) goro::gc::collect();
    const auto n1 = goro::gc::stats().num_gc;
    stop = true;
    wg.wait();
    goro::gc::unregister_cleanup(h1);
    goro::gc::unregister_cleanup(h2);
    goro::gc::collect();
    EXPECT_EQ(bad, 0);
    ASSERT_EQ(order.size(), 2 * (n1 - n0));
    for (std::size_t i = 0; i < order.size(); i++) EXPECT_EQ(order[i], i % 2 == 0 ? 1 : 2);
  });
}

[[gnu::noinline]] Node* build_list(long n) {
  Node* head = nullptr;
  for (long i = 0; i < n; i++) {
    Node* x = goro::gc::make<Node>();
    x->value = static_cast<std::uint64_t>(i);
    x->check = x->value ^ 0x5555;
    x->next = head;
    head = x;
  }
  return head;
}

TEST(Gc, LongLinkedListSurvives) {
  goro::run(opts(2), [] {
    const long n = kSanitized ? 100000 : 1000000;
    Node* volatile head = build_list(n);
    goro::gc::collect();
    goro::gc::collect();
    long count = 0;
    bool ok = true;
    for (Node* x = head; x != nullptr; x = x->next, count++)
      if (x->check != (x->value ^ 0x5555)) ok = false;
    EXPECT_TRUE(ok);
    EXPECT_EQ(count, n);
  });
}

TEST_P(GcProcs, ConcurrentMutatorsKeepChecksums) {
  goro::run(opts(GetParam()), [] {
    constexpr int kWorkers = 4;
    const int rounds = kSanitized ? 3000 : 30000;
    std::atomic<int> bad{0};
    goro::WaitGroup wg;
    for (int w = 0; w < kWorkers; w++) {
      wg.add(1);
      goro::go([&, w] {
        // A ring of 64 lists; each step replaces a node in one list.
        Node* lists[64] = {};
        for (int i = 0; i < rounds; i++) {
          const int k = (i * 7 + w) % 64;
          Node* n = goro::gc::make<Node>();
          n->value = static_cast<std::uint64_t>(i) * 31 + w;
          n->check = ~n->value;
          n->next = lists[k];
          // Keep each list at most 8 long: drop the tail (garbage).
          int len = 0;
          for (Node* x = n; x != nullptr; x = x->next) {
            if (x->check != ~x->value) bad++;
            if (++len == 8) {
              x->next = nullptr;
              break;
            }
          }
          lists[k] = n;
          if (i % 1000 == 0) goro::yield();
        }
        for (Node* l : lists)
          for (Node* x = l; x != nullptr; x = x->next)
            if (x->check != ~x->value) bad++;
        wg.done();
      });
    }
    // The main goroutine forces cycles while they run.
    for (int i = 0; i < 10; i++) {
      goro::gc::collect();
      goro::yield();
    }
    wg.wait();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_GE(goro::gc::stats().num_gc, 10u);
  });
}

[[gnu::noinline]] void churn(std::size_t bytes) {
  for (std::size_t done = 0; done < bytes; done += 1024) goro::gc::make_array<char>(1024)[0] = 1;
}

TEST(Gc, GogcChangesCycleCount) {
  std::uint64_t cycles[2] = {};
  const int pcts[2] = {100, 400};
  for (int k = 0; k < 2; k++) {
    goro::Options o = opts(1);
    o.gc_percent = pcts[k];
    goro::run(o, [&] {
      // 8 MiB live: the goal is 16 MiB at GOGC=100 and 40 MiB at GOGC=400.
      auto* live = goro::gc::make_array<Node*>(8192);
      for (int i = 0; i < 8192; i++)
        live[i] = reinterpret_cast<Node*>(goro::gc::make_array<char>(1024));
      goro::gc::collect();
      const auto n0 = goro::gc::stats().num_gc;
      churn(kSanitized ? (64u << 20) : (256u << 20));
      cycles[k] = goro::gc::stats().num_gc - n0;
      EXPECT_NE(live[100], nullptr);
    });
  }
  // Each cycle lets ~8 MiB (GOGC=100) or ~32 MiB (GOGC=400) be allocated.
  EXPECT_GT(cycles[0], 2 * cycles[1]) << cycles[0] << " vs " << cycles[1];
  EXPECT_GE(cycles[1], 1u);
}

TEST(Gc, GogcOffRunsNoCycleButCollectDoes) {
  goro::Options o = opts(1);
  o.gc_percent = -1;
  goro::run(o, [] {
    churn(32u << 20);
    EXPECT_EQ(goro::gc::stats().num_gc, 0u);
    goro::gc::collect();
    EXPECT_EQ(goro::gc::stats().num_gc, 1u);
    EXPECT_EQ(goro::gc::set_percent(100), -1);
    churn(64u << 20);
    EXPECT_GT(goro::gc::stats().num_gc, 2u);
  });
}

TEST(Gc, ForcegcFires) {
  setenv("GORO_DEBUG", "forcegc=20", 1);
  goro::run(opts(2), [] {
    goro::gc::make<Node>();  // the GC's goroutines start with the first allocation
    bool fired = false;
    for (int i = 0; i < 500 && !fired; i++) {
      goro::sleep_for(std::chrono::milliseconds(5));
      fired = goro::gc::stats().num_gc >= 2;
    }
    EXPECT_TRUE(fired);
  });
  unsetenv("GORO_DEBUG");
}

// pause_ns is Go's PauseNs ring: cycle n at [(n - 1) % 256], the latest
// equal to last_pause_ns, the ring's sum over the first cycles equal to
// pause_total_ns, and slots of cycles that did not run yet zero.
TEST(Gc, PauseNsRing) {
  goro::run(opts(2), [] {
    const auto s0 = goro::gc::stats();
    for (int i = 0; i < 3; i++) goro::gc::collect();
    const auto s = goro::gc::stats();
    ASSERT_GE(s.num_gc, s0.num_gc + 3);
    ASSERT_LT(s.num_gc, 256u) << "this run started with a fresh ring";
    EXPECT_EQ(s.pause_ns[(s.num_gc + 255) % 256], s.last_pause_ns);
    std::uint64_t sum = 0;
    for (std::uint64_t n = 1; n <= s.num_gc; n++) {
      EXPECT_GT(s.pause_ns[(n - 1) % 256], 0u) << "cycle " << n;
      sum += s.pause_ns[(n - 1) % 256];
    }
    EXPECT_EQ(sum, s.pause_total_ns);
    for (std::uint64_t n = s.num_gc + 1; n <= 256; n++) EXPECT_EQ(s.pause_ns[n - 1], 0u);
  });
}

TEST(Gc, StatsMove) {
  goro::run(opts(2), [] {
    const auto s0 = goro::gc::stats();
    [] __attribute__((noinline)) {
      for (int i = 0; i < 10000; i++) goro::gc::make<Node>();
    }
    ();
    const auto s1 = goro::gc::stats();
    EXPECT_GE(s1.mallocs - s0.mallocs, 10000u);
    EXPECT_GE(s1.total_alloc - s0.total_alloc, 10000u * sizeof(Node));
    EXPECT_GE(s1.heap_objects, 10000u);
    EXPECT_GT(s1.heap_sys, 0u);
    scrub_stack();
    goro::gc::collect();
    const auto s2 = goro::gc::stats();
    EXPECT_EQ(s2.num_gc, s1.num_gc + 1);
    EXPECT_GE(s2.frees - s1.frees, 9000u);
    EXPECT_LT(s2.heap_alloc, s1.heap_alloc);
    EXPECT_GT(s2.last_pause_ns, 0u);
    EXPECT_GE(s2.pause_total_ns, s2.last_pause_ns);
    EXPECT_GE(s2.next_gc, 4u << 20);
    // A large free heap is returned to the OS within a few cycles.
    [] __attribute__((noinline)) {
      for (int i = 0; i < 64; i++) goro::gc::make_array<char>(1 << 20);
    }
    ();
    scrub_stack();
    const auto s3 = goro::gc::stats();
    for (int i = 0; i < 4; i++) goro::gc::collect();  // collect() scavenges ranges free for a cycle
    const auto s4 = goro::gc::stats();
    EXPECT_LT(s4.heap_sys, s3.heap_sys);
  });
}

TEST_P(GcProcs, ChannelBufferKeepsObjectsAlive) {
  destroyed = 0;
  goro::run(opts(GetParam()), [] {
    auto ch = goro::make_chan<Tracked*>(16);
    [&]() __attribute__((noinline)) {
      for (int i = 0; i < 16; i++) ch.send(goro::gc::make<Tracked>());
    }
    ();
    scrub_stack();
    for (int i = 0; i < 5; i++) goro::gc::collect();
    EXPECT_EQ(destroyed.load(), 0);
    for (int i = 0; i < 16; i++) {
      Tracked* t = *ch.recv();
      EXPECT_EQ(t->payload[1], 2u);
    }
  });
}

TEST(Gc, BlockingGoroutineKeepsObjectAlive) {
  goro::run(opts(2), [] {
    Node* n = goro::gc::make<Node>();
    n->value = 42;
    n->check = 43;
    std::atomic<bool> in{false}, release{false};
    goro::go([&] {
      while (!in.load()) goro::yield();
      for (int i = 0; i < 3; i++) goro::gc::collect();
      release = true;
    });
    Node* volatile keep = nullptr;
    goro::blocking([&] {
      in = true;
      while (!release.load()) goro::test::spin(100);
    });
    keep = n;
    EXPECT_EQ(keep->value, 42u);
    EXPECT_EQ(keep->check, 43u);
  });
}

// A goroutine that loops with no safepoint loses its P to the preemption
// signal and keeps running; the collector must suspend it (suspend_hogs)
// and see the pointers it holds.
TEST(Gc, HogWithoutSafepointsKeepsItsObjects) {
  if (GORO_TSAN)
    GTEST_SKIP() << "no signal preemption under TSan: a hog would block stop-the-world";
  goro::run(opts(2), [] {
    std::atomic<bool> stop{false};
    std::atomic<long> bad{0}, laps{0};
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      Node* head = build_list(2000);
      while (!stop.load(std::memory_order_relaxed)) {
        long n = 0;
        for (Node* x = head; x != nullptr; x = x->next, n++)
          if (x->check != (x->value ^ 0x5555)) bad.fetch_add(1, std::memory_order_relaxed);
        if (n != 2000) bad.fetch_add(1, std::memory_order_relaxed);
        laps.fetch_add(1, std::memory_order_relaxed);
      }
      wg.done();
    });
    while (laps.load() == 0) goro::yield();
    for (int i = 0; i < 5; i++) {
      // Garbage of the nodes' size class, to reuse any slot freed by mistake.
      [] __attribute__((noinline)) {
        for (int k = 0; k < 5000; k++) goro::gc::make<Node>()->check = 1;
      }
      ();
      goro::gc::collect();
    }
    stop = true;
    wg.wait();
    EXPECT_EQ(bad.load(), 0);
  });
}

// Allocation without a P (inside blocking()) goes through the shared mcache
// under noplock and waits while a mark runs.
TEST(Gc, AllocationInsideBlocking) {
  goro::run(opts(2), [] {
    std::atomic<bool> stop{false};
    goro::WaitGroup wg;  // main must not return while a collection stops the world
    wg.add(1);
    goro::go([&] {
      while (!stop.load()) {
        goro::gc::collect();
        goro::yield();
      }
      wg.done();
    });
    Node* volatile head =
        nullptr;  // in memory: blocking()'s own frames are scanned, registers are not
    goro::blocking([&] {
      for (int i = 0; i < (kSanitized ? 5000 : 50000); i++) {
        Node* n = goro::gc::make<Node>();
        n->value = static_cast<std::uint64_t>(i);
        n->check = ~n->value;
        n->next = head;
        head = n;
      }
    });
    stop = true;
    wg.wait();
    long count = 0;
    bool ok = true;
    for (Node* x = head; x != nullptr; x = x->next, count++)
      if (x->check != ~x->value) ok = false;
    EXPECT_TRUE(ok);
    EXPECT_EQ(count, kSanitized ? 5000 : 50000);
  });
}

TEST(Gc, MakeArrayAndLargeObjects) {
  goro::run(opts(1), [] {
    auto* a = goro::gc::make_array<std::uint64_t>(100000);  // large, noscan
    for (int i = 0; i < 100000; i++) EXPECT_EQ(a[i], 0u) << i;
    a[99999] = 7;
    auto* p = goro::gc::make_array<Node*>(10000);  // large, scanned
    for (int i = 0; i < 10000; i++) p[i] = goro::gc::make<Node>();
    for (int i = 0; i < 10000; i++) p[i]->value = static_cast<std::uint64_t>(i);
    goro::gc::collect();
    goro::gc::collect();
    for (int i = 0; i < 10000; i++) ASSERT_EQ(p[i]->value, static_cast<std::uint64_t>(i));
    EXPECT_EQ(a[99999], 7u);
  });
}

// --- the root registry ---

// Point is a user struct declared pointer-free: channel buffers and objects of
// it are never scanned.
struct Point {
  std::int64_t x, y;
};

}  // namespace

template <>
struct goro::gc::pointer_free<Point> : std::true_type {};

namespace {

static_assert(goro::detail::ChanTypeOf<std::uintptr_t>::type.noscan);
static_assert(goro::detail::ChanTypeOf<double>::type.noscan);
static_assert(goro::detail::ChanTypeOf<Point>::type.noscan);
static_assert(goro::gc::pointer_free_v<std::int32_t[4]>);
static_assert(!goro::gc::pointer_free_v<Tracked*[4]>);
static_assert(!goro::detail::ChanTypeOf<Tracked*>::type.noscan);
static_assert(!goro::detail::ChanTypeOf<Node>::type.noscan);
static_assert(!goro::detail::ChanTypeOf<goro::gc::Root<Node>>::type.noscan);
static_assert(std::is_nothrow_move_constructible_v<goro::gc::Root<Node>>);
static_assert(std::is_nothrow_default_constructible_v<goro::gc::Root<Node>>);

// send_only_copies allocates two Tracked objects and sends them, one as an
// integer, one as a pointer; the channels then hold the only copies.
[[gnu::noinline]] void send_only_copies(goro::Chan<std::uintptr_t> ci, goro::Chan<Tracked*> cp) {
  ci.send(reinterpret_cast<std::uintptr_t>(goro::gc::make<Tracked>()));
  cp.send(goro::gc::make<Tracked>());
}

// A Chan<std::uintptr_t> is pointer-free: its buffer is not a root, so the
// address it holds does not keep the object alive (like Go's uintptr). The
// same object in a Chan<Tracked*> stays alive.
TEST_P(GcProcs, PointerFreeChannelBufferIsNotScanned) {
  destroyed = 0;
  goro::run(opts(GetParam()), [] {
    auto ci = goro::make_chan<std::uintptr_t>(4);
    auto cp = goro::make_chan<Tracked*>(4);
    auto done = goro::make_chan<int>();
    // On a goroutine that exits, so no stale copy stays on a live stack.
    goro::go([=]() mutable {
      send_only_copies(ci, cp);
      done.send(1);
    });
    done.recv();
    scrub_stack();
    EXPECT_TRUE(wait_until([] { return destroyed.load() == 1; })) << destroyed.load();
    for (int i = 0; i < 3; i++) goro::gc::collect();
    EXPECT_EQ(destroyed.load(), 1) << "the object behind the Tracked* was freed";
    Tracked* t = *cp.recv();
    EXPECT_EQ(t->payload[3], 4u);
    EXPECT_NE(*ci.recv(), 0u);  // the integer is intact; its object is gone
  });
}

// Roots and buffered channels registered and dropped from many goroutines at
// once (TSan checks the registry's locking), while collections run: every
// object a Root or a channel holds survives, checked by value.
TEST_P(GcProcs, RootRegistrationStress) {
  goro::run(opts(GetParam()), [] {
    constexpr int kG = 8;
    const int rounds = kSanitized ? 1000 : 10000;
    std::atomic<int> bad{0}, running{kG};
    goro::WaitGroup wg;
    for (int w = 0; w < kG; w++) {
      wg.add(1);
      goro::go([&, w] {
        // Roots in malloc'd memory (not scanned), moved around.
        std::vector<goro::gc::Root<Node>> roots;
        for (int i = 0; i < rounds; i++) {
          Node* n = goro::gc::make<Node>();
          n->value = static_cast<std::uint64_t>(i) * 131 + w;
          n->check = ~n->value;
          roots.emplace_back(n);  // may move every Root to a new buffer
          if (roots.size() > 32) {
            goro::gc::Root<Node> r(std::move(roots.front()));
            roots.erase(roots.begin());
            if (r->check != ~r->value) bad++;
          }
          // A buffered channel of pointers: a root while it lives.
          auto ch = goro::make_chan<Node*>(2);
          ch.send(n);
          if (*ch.recv() != n) bad++;
          if (i % 64 == 0) goro::yield();
        }
        for (auto& r : roots)
          if (r->check != ~r->value) bad++;
        running--;
        wg.done();
      });
    }
    for (int i = 0; i < 1000 && running.load() > 0; i++) {
      [] __attribute__((noinline)) {
        for (int k = 0; k < 2000; k++) goro::gc::make<Node>()->check = 1;  // reuse freed slots
      }
      ();
      goro::gc::collect();
      goro::yield();
    }
    wg.wait();
    EXPECT_EQ(bad.load(), 0);
  });
}

// Roots and cleanup hooks belong to the process: a Root made before run()
// and a hook registered in one run are still registered in the next run.
TEST(Gc, RootsAndHooksAcrossRuns) {
  destroyed = 0;
  static std::atomic<int> hook_runs{0};
  hook_runs = 0;
  goro::gc::Root<Tracked> root;  // outside any run: on this thread's stack, registered
  goro::gc::HookId id = 0;
  goro::run(opts(2), [&] {
    id = goro::gc::register_cleanup([] { hook_runs++; });
    auto done = goro::make_chan<int>();
    goro::go([&] {
      root.reset(goro::gc::make<Tracked>());
      done.send(1);
    });
    done.recv();
    for (int i = 0; i < 3; i++) goro::gc::collect();
    EXPECT_EQ(destroyed.load(), 0);  // only the Root holds it
    EXPECT_EQ(root->payload[2], 3u);
    EXPECT_EQ(hook_runs.load(), 3);
  });
  // The run's heap is gone: the pointer in the Root is stale. Reset it.
  root.reset();
  EXPECT_EQ(hook_runs.load(), 3);
  goro::run(opts(2), [&] {
    auto done = goro::make_chan<int>();
    goro::go([&] {
      root.reset(goro::gc::make<Tracked>());
      done.send(1);
    });
    done.recv();
    for (int i = 0; i < 3; i++) goro::gc::collect();
    EXPECT_EQ(hook_runs.load(), 6);  // the hook of the first run, still registered
    EXPECT_EQ(destroyed.load(), 0);  // the Root made before both runs still counts
    // Read and drop it on a goroutine that exits: no stale copy on our stack.
    goro::go([&] {
      EXPECT_EQ(root->payload[0], 1u);
      root.reset();
      done.send(1);
    });
    done.recv();
    EXPECT_TRUE(wait_until([] { return destroyed.load() == 1; })) << destroyed.load();
    goro::gc::unregister_cleanup(id);
    const int n = hook_runs.load();
    goro::gc::collect();
    EXPECT_EQ(hook_runs.load(), n);
  });
}

// The background sweeper parks with Go's wait reason, so dumps name it.
TEST(Gc, BackgroundSweeperWaitReason) {
  EXPECT_STREQ(goro::detail::wait_reason_string(goro::detail::WaitReason::gc_sweep_wait),
               "GC sweep wait");
  goro::run(opts(2), [] {
    goro::gc::collect();
    goro::detail::Runtime* r = goro::detail::rt();
    bool parked = false;
    // The sweeper parks once it has swept everything: give it up to 20 s of
    // a loaded machine, yielding.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!parked && std::chrono::steady_clock::now() < until) {
      {
        std::lock_guard<goro::detail::Lock> lk(r->allglock);
        for (goro::detail::G* g = r->allgs; g != nullptr; g = g->alllink)
          parked |= g->status.load() == goro::detail::Gstatus::waiting &&
                    g->waitreason == goro::detail::WaitReason::gc_sweep_wait;
      }
      goro::yield();
    }
    EXPECT_TRUE(parked);
  });
}

// ---------------------------------------------------------------------------
// Finalizer order and set_finalizer (Go's runtime.SetFinalizer, mfinal.go).

// Ordered logs its id on a channel when destroyed, negated if the object it
// points to was already destroyed (Go guarantees it is not).
struct Ordered {
  Ordered* next = nullptr;
  int id = 0;
  bool alive = true;
  goro::Chan<int> log;
  ~Ordered() {
    const bool ok = next == nullptr || next->alive;
    alive = false;
    log.try_send(ok ? id : -id);
  }
};

// make_chain makes 1 -> 2 -> ... -> n, all unreachable on return.
[[gnu::noinline]] void make_chain(goro::Chan<int> log, int n) {
  Ordered* next = nullptr;
  for (int id = n; id >= 1; id--) {
    auto* o = goro::gc::make<Ordered>();
    o->id = id;
    o->next = next;
    o->log = log;
    next = o;
  }
}

// Go's order: when A points to B and both die in one cycle, A is finalized
// first and B stays whole until then; B goes in a later cycle. So a chain
// 1 -> 2 -> 3 is destroyed in that order, one object per cycle at most.
TEST_P(GcProcs, FinalizersRunInPointerOrder) {
  goro::run(opts(GetParam()), [] {
    auto log = goro::make_chan<int>(16);
    make_chain(log, 3);
    scrub_stack();
    std::vector<int> order;
    // Not asserted per cycle: the finalizer goroutine runs ~1 after the
    // cycle that queued it, possibly while the next cycle runs, so ~1 and ~2
    // can both be seen after one collect(). What the runtime guarantees is
    // that ~2 waits for ~1 to have finished (Ordered logs -id otherwise), and
    // so the order.
    // At least 400 rounds, and on until 30 s (a starved finalizer goroutine).
    goro::test::Deadline deadline(std::chrono::seconds(30));
    for (int i = 0; order.size() < 3 && (i < 400 || !deadline.passed()); i++) {
      goro::gc::collect();
      goro::yield();
      while (auto v = log.try_recv()) order.push_back(*v);
    }
    ASSERT_EQ(order.size(), 3u);
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3})) << "a negative id was destroyed after what it points to";
  });
}

// An object pointing into itself (here a std::string's small buffer) is
// still collected: its own range does not count as a reference to it.
struct WithString {
  std::string s = "short";  // SSO: points into the object itself
  Tracked* t = nullptr;
};

// A named non-inlined function, not a lambda: GCC may inline a lambda's body
// into the test's frame whatever its attribute, and a sanitizer build then
// keeps a spilled copy of the pointer there for the whole test.
[[gnu::noinline]] void make_with_string() {
  auto* w = goro::gc::make<WithString>();
  w->t = goro::gc::make<Tracked>();
}

TEST(Gc, SelfPointerDoesNotKeepAFinalizableObjectAlive) {
  destroyed = 0;
  goro::run(opts(1), [] {
    make_with_string();
    scrub_stack();
    // ~WithString first, then (a cycle later) ~Tracked.
    EXPECT_TRUE(wait_until([] { return destroyed.load() == 1; })) << destroyed.load();
  });
}

std::atomic<int> fin_runs{0};

[[gnu::noinline]] void make_with_finalizer(goro::Chan<std::uint64_t>* log, std::uint64_t v) {
  Node* n = goro::gc::make<Node>();
  n->value = v;
  goro::gc::set_finalizer(n, [log](Node* x) {
    fin_runs.fetch_add(1);
    log->try_send(x->value);
  });
}

// set_finalizer: fn(obj) runs once, on the finalizer goroutine, with the
// object whole.
TEST_P(GcProcs, SetFinalizerRunsOnceWithTheObject) {
  fin_runs = 0;
  goro::run(opts(GetParam()), [] {
    auto log = goro::make_chan<std::uint64_t>(8);
    make_with_finalizer(&log, 42);
    scrub_stack();
    EXPECT_TRUE(wait_until([&] { return log.len() == 1; }));
    EXPECT_EQ(log.try_recv(), std::optional<std::uint64_t>(42));
    for (int i = 0; i < 5; i++) goro::gc::collect();
    goro::yield();
    EXPECT_EQ(fin_runs.load(), 1) << "a finalizer runs once";
  });
}

// The same order with set_finalizer: A's fn first, B's in a later cycle.
// The closures capture a pointer to the test's channel, not a copy: a
// closure still waiting for its destructor when run() ends would otherwise
// keep the channel (malloc memory) alive, and LeakSanitizer would say so.
[[gnu::noinline]] void make_fin_pair(goro::Chan<std::uint64_t>* log) {
  Node* b = goro::gc::make<Node>();
  b->value = 2;
  Node* a = goro::gc::make<Node>();
  a->value = 1;
  a->next = b;
  auto fn = [log](Node* x) {
    // A's finalizer sees B whole (B's fn has not run: it would zero value).
    const bool ok = x->next == nullptr || x->next->value == 2;
    log->try_send(ok ? x->value : 100 + x->value);
    x->value = 0;
  };
  goro::gc::set_finalizer(b, fn);
  goro::gc::set_finalizer(a, fn);
}

TEST(Gc, SetFinalizerOrderAThenB) {
  goro::run(opts(2), [] {
    auto log = goro::make_chan<std::uint64_t>(8);
    make_fin_pair(&log);
    scrub_stack();
    EXPECT_TRUE(wait_until([&] { return log.len() == 2; }));
    EXPECT_EQ(log.try_recv(), std::optional<std::uint64_t>(1));
    EXPECT_EQ(log.try_recv(), std::optional<std::uint64_t>(2));
  });
}

// A T with a destructor: fn runs first, ~T when the memory is reclaimed.
struct FinAndDtor {
  goro::Chan<int> log;
  ~FinAndDtor() { log.try_send(2); }
};

[[gnu::noinline]] void make_fin_and_dtor(goro::Chan<int>* log) {
  auto* o = goro::gc::make<FinAndDtor>();
  o->log = *log;
  goro::gc::set_finalizer(o, [log](FinAndDtor*) { log->try_send(1); });
}

TEST(Gc, SetFinalizerRunsBeforeTheDestructor) {
  goro::run(opts(1), [] {
    auto log = goro::make_chan<int>(8);
    make_fin_and_dtor(&log);
    scrub_stack();
    EXPECT_TRUE(wait_until([&] { return log.len() == 2; }));
    EXPECT_EQ(log.try_recv(), std::optional<int>(1));
    EXPECT_EQ(log.try_recv(), std::optional<int>(2));
  });
}

[[gnu::noinline]] void make_cleared(std::atomic<int>* freed_probe) {
  Node* n = goro::gc::make<Node>();
  goro::gc::set_finalizer(n, [](Node*) { fin_runs.fetch_add(1); });
  goro::gc::set_finalizer(n, nullptr);  // cleared: never runs
  goro::gc::set_finalizer(n, nullptr);  // clearing none is fine
  (void)freed_probe;
}

TEST(Gc, SetFinalizerNullptrClears) {
  fin_runs = 0;
  goro::run(opts(1), [] {
    const auto frees0 = goro::gc::stats().frees;
    make_cleared(nullptr);
    scrub_stack();
    // The object (and its discarded closure) are freed like any garbage.
    EXPECT_TRUE(wait_until([&] { return goro::gc::stats().frees >= frees0 + 2; }));
    for (int i = 0; i < 3; i++) goro::gc::collect();
    goro::yield();
    EXPECT_EQ(fin_runs.load(), 0);
  });
}

// Go's panics for a bad first argument and for a second finalizer.
TEST(Gc, SetFinalizerPanicsAsGo) {
  goro::run(opts(1), [] {
    auto expect_panic = [](auto fn, const char* msg) {
      try {
        fn();
        ADD_FAILURE() << "no panic, expected " << msg;
      } catch (const goro::Panic& p) {
        EXPECT_EQ(std::string(p.what()), msg);
      }
    };
    auto noop = [](Node*) {};
    Node* n = goro::gc::make<Node>();
    expect_panic([&] { goro::gc::set_finalizer(&n->value, [](std::uint64_t*) {}); },
                 "runtime.SetFinalizer: pointer not at beginning of allocated block");
    Node local;
    expect_panic([&] { goro::gc::set_finalizer(&local, noop); },
                 "runtime.SetFinalizer: pointer not in allocated block");
    expect_panic([&] { goro::gc::set_finalizer(static_cast<Node*>(nullptr), noop); },
                 "runtime.SetFinalizer: first argument is nil");
    goro::gc::set_finalizer(n, noop);
    expect_panic([&] { goro::gc::set_finalizer(n, noop); },
                 "runtime.SetFinalizer: finalizer already set");
    goro::gc::set_finalizer(n, nullptr);
    goro::gc::set_finalizer(n, noop);  // set again after clearing: fine
    // With a destructor header in front, the pointer make returned is the start.
    auto* t = goro::gc::make<Tracked>();
    goro::gc::set_finalizer(t, [](Tracked*) {});
    expect_panic([&] { goro::gc::set_finalizer(&t->payload[1], [](std::uint64_t*) {}); },
                 "runtime.SetFinalizer: pointer not at beginning of allocated block");
    // Arrays: the first element only.
    auto* arr = goro::gc::make_array<Node>(4);
    goro::gc::set_finalizer(arr, noop);
    expect_panic([&] { goro::gc::set_finalizer(arr + 1, noop); },
                 "runtime.SetFinalizer: pointer not at beginning of allocated block");
  });
  EXPECT_THROW(goro::gc::set_finalizer(reinterpret_cast<Node*>(8), [](Node*) {}), goro::Error);
}

// fn's captures are roots: capturing obj keeps it alive for ever.
TEST(Gc, SetFinalizerCapturingTheObjectKeepsIt) {
  fin_runs = 0;
  goro::run(opts(1), [] {
    [&]() __attribute__((noinline)) {
      Node* n = goro::gc::make<Node>();
      goro::gc::set_finalizer(n, [n](Node*) { fin_runs.fetch_add(1 + static_cast<int>(n->value)); });
    }();
    scrub_stack();
    for (int i = 0; i < 6; i++) {
      goro::gc::collect();
      goro::yield();
    }
    EXPECT_EQ(fin_runs.load(), 0);
  });
}

INSTANTIATE_TEST_SUITE_P(Procs, GcProcs, ::testing::Values(1, 2, 4, 8));

}  // namespace
