// gc_concurrent_test.cpp — the collector's correctness invariant under
// mutation: every object reachable at the end of a mark is marked, so no
// object is ever freed while the program can still reach it.
//
// A stop-the-world mark gets this for free; a mostly-concurrent mark (goroutines
// run while the heap is marked, the written pages and the stacks that ran are
// rescanned at mark termination) gets it only if every way a program can move
// a pointer is covered. So each test keeps mutator goroutines moving the ONLY
// pointer to objects between places — heap slot to heap slot, heap to stack
// and back across a park, through channels and select, through sync.Pool,
// through a kernel write (read(2) into the heap), and inside a deep list and
// tree — while one goroutine runs gc::collect() in a loop and a small GOGC
// lets allocation start cycles of its own. Everything is written against the
// public API only, so the same suite checks today's collector and the
// concurrent one.
//
// Every object carries a magic number and a checksum of its payload (a small
// chain of GC objects only it points to), checked whenever a mutator reaches
// it and once more at the end, when the objects are also counted by id: none
// lost, none duplicated. A freed object is caught either way: under ASan the
// sweep poisons it (a use-after-poison report), in the other builds its slot
// is reused by the garbage every mutator allocates, which breaks the magic or
// the checksum.
//
// Each test runs for GOMAXPROCS 1, 2, 4, 8 and three collector modes: the
// default, GORO_DEBUG=gcstoptheworld=1 (the whole mark in the pause) and
// GORO_DEBUG=gcuffd=0 (as if userfaultfd were unavailable: the fallback).
// Every loop is bounded in count and in time; nothing sleeps to synchronise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace {

using goro::test::Deadline;
using goro::test::kSanitized;
using goro::test::scaled;
using namespace std::chrono_literals;

// ---- the collector modes and the fixture ------------------------------------

enum class Mode { concurrent, stoptheworld, nouffd };

const char* mode_env(Mode m) {
  switch (m) {
    case Mode::stoptheworld: return "gcstoptheworld=1";
    case Mode::nouffd: return "gcuffd=0";
    case Mode::concurrent: break;
  }
  return nullptr;  // GORO_DEBUG unset: the default collector
}

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::stoptheworld: return "stoptheworld";
    case Mode::nouffd: return "nouffd";
    case Mode::concurrent: break;
  }
  return "concurrent";
}

// How long the collector loop runs: at least kMinCycles cycles, then on until
// kMaxCycles or the time budget, whichever comes first. kHard bounds every
// loop of a test, so a broken runtime fails instead of hanging.
const long kMinCycles = kSanitized ? 10 : 50;
const long kMaxCycles = scaled(400);
const auto kBudget = kSanitized ? 900ms : 550ms;
const auto kHard = 60s;
constexpr int kMutators = 4;

class GcConcurrent : public goro::test::RuntimeTest,
                     public ::testing::WithParamInterface<std::tuple<int, Mode>> {
 protected:
  // run_mode runs body as goroutine 1 with this test's GOMAXPROCS, a small
  // GOGC (so allocation starts cycles too) and GORO_DEBUG set for the mode.
  template <class F>
  void run_mode(F body) {
    goro::test::ScopedEnv env("GORO_DEBUG", mode_env(std::get<1>(GetParam())));
    goro::Options o;
    o.procs = std::get<0>(GetParam());
    o.gc_percent = 10;
    goro::run(o, body);
  }
};

std::string ParamName(const ::testing::TestParamInfo<std::tuple<int, Mode>>& info) {
  return "procs" + std::to_string(std::get<0>(info.param)) + "_" + mode_name(std::get<1>(info.param));
}

// ---- objects that know whether they are intact ------------------------------

constexpr std::uint64_t kMagic = 0x676f726f2d676321ull;    // "goro-gc!"
constexpr std::uint64_t kGarbage = 0xdeadbeefdeadbeefull;  // what churn writes
constexpr int kLeaves = 2;

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Leaf is the payload: a chain of kLeaves leaves that only its Obj points to,
// so an Obj moved into an already-scanned place must bring them along.
struct Leaf {
  std::uint64_t magic;
  std::uint64_t word[5];
  Leaf* next;
};

struct Obj {
  std::uint64_t magic;
  std::uint64_t id;
  std::uint64_t gen;  // bumped by every touch
  Leaf* leaf;
  std::uint64_t sum;  // checksum of magic, id, gen and the leaves
  std::atomic<std::uint64_t> owner;  // the Pool test: who has it checked out
};

std::uint64_t word_of(const Obj* p, int leaf, int i) {
  return mix(p->id * 1000003 + p->gen * 131 + static_cast<std::uint64_t>(leaf * 8 + i));
}

std::uint64_t sum_of(const Obj* p) {
  std::uint64_t s = mix(p->magic ^ p->id) ^ mix(p->gen + 7);
  int n = 0;
  for (const Leaf* l = p->leaf; l != nullptr && n < kLeaves; l = l->next, n++) {
    s = mix(s ^ l->magic);
    for (std::uint64_t w : l->word) s = mix(s ^ w);
  }
  return s ^ static_cast<std::uint64_t>(n);
}

// Verdict counts the objects checked and the ones found broken; the first
// broken one is described on stderr.
struct Verdict {
  std::atomic<long> verified{0};
  std::atomic<long> bad{0};
};
Verdict verdict;

void report(const char* where, const void* p, const char* what) {
  if (verdict.bad.fetch_add(1) < 5)
    std::fprintf(stderr, "gc_concurrent_test: %s: object %p %s\n", where, p, what);
}

// check verifies everything reachable from p: its magic, its leaves' magic
// and payload, and the checksum. It follows a pointer only after the magic of
// the object holding it matched, so a reused slot cannot send it astray.
bool check(const Obj* p, const char* where) {
  verdict.verified.fetch_add(1, std::memory_order_relaxed);
  if (p == nullptr) return report(where, p, "is null"), false;
  if (p->magic != kMagic) return report(where, p, "lost its magic (freed?)"), false;
  const Leaf* l = p->leaf;
  for (int k = 0; k < kLeaves; k++, l = l->next) {
    if (l == nullptr || l->magic != kMagic) return report(where, p, "has a broken leaf"), false;
    for (int i = 0; i < 5; i++)
      if (l->word[i] != word_of(p, k, i)) return report(where, p, "has a corrupt payload"), false;
  }
  if (p->sum != sum_of(p)) return report(where, p, "fails its checksum"), false;
  return true;
}

// Allocation happens in frames of their own, so that stale copies of the new
// pointers do not linger in the callers' frames.
[[gnu::noinline]] void fill(Obj* p) {
  for (int k = 0; k < kLeaves; k++)
    for (int i = 0; i < 5; i++) {
      Leaf* l = p->leaf;
      for (int j = 0; j < k; j++) l = l->next;
      l->word[i] = word_of(p, k, i);
    }
  p->sum = sum_of(p);
}

[[gnu::noinline]] Obj* new_obj(std::uint64_t id) {
  Obj* p = goro::gc::make<Obj>();
  p->magic = kMagic;
  p->id = id;
  for (int k = 0; k < kLeaves; k++) {
    Leaf* l = goro::gc::make<Leaf>();
    l->magic = kMagic;
    l->next = p->leaf;
    p->leaf = l;
  }
  fill(p);
  return p;
}

// touch changes the payload in place (heap writes into the object and its
// leaves while a mark may be running) and keeps it consistent.
void touch(Obj* p) {
  p->gen++;
  fill(p);
}

// churn allocates garbage of the objects' size classes, so that a slot freed
// by mistake is soon reused and the mistake shows; and enough of it that the
// heap starts cycles of its own at the small GOGC.
[[gnu::noinline]] void churn(int n) {
  for (int i = 0; i < n; i++) {
    Obj* g = goro::gc::make<Obj>();
    g->magic = kGarbage;
    g->id = kGarbage;
    goro::gc::make<Leaf>()->magic = kGarbage;
  }
  goro::gc::make_array<std::uint64_t>(64)[0] = kGarbage;
}

// Rng is a per-goroutine xorshift64*: the choices vary, the assertions do not
// depend on them.
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(mix(seed) | 1) {}
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dull;
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

// ---- the collector loop -------------------------------------------------------

// Cycles is the collector goroutine and the stop flag of the mutators.
struct Cycles {
  std::atomic<bool> stop{false};
  std::atomic<long> done{0};
  Deadline hard{kHard};
  // running: the mutators go on (bounded in time by kHard in any case).
  bool running() const { return !stop.load(std::memory_order_relaxed) && !hard.passed(); }
};

// start_collector runs gc::collect() in a loop on its own goroutine, then
// sets stop.
void start_collector(Cycles& c, goro::WaitGroup& wg) {
  wg.add(1);
  goro::go([&c, &wg] {
    Deadline budget(kBudget);
    for (long i = 0; i < kMaxCycles && (i < kMinCycles || !budget.passed()) && !c.hard.passed(); i++) {
      goro::gc::collect();
      c.done.fetch_add(1);
      goro::yield();
    }
    c.stop = true;
    wg.done();
  });
}

// finish ends every test the same way: a last cycle with the mutators gone,
// garbage to reuse what it freed, then the caller's final walk.
void finish(const Cycles& c) {
  EXPECT_GE(c.done.load(), kMinCycles) << "the collector loop was cut short by the hard deadline";
  goro::gc::collect();
  churn(2000);
}

// IdSet counts objects by id at the end: each exactly once.
struct IdSet {
  std::vector<char> seen;
  long count = 0, dup = 0, out_of_range = 0;
  explicit IdSet(std::size_t n) : seen(n, 0) {}
  void add(const Obj* p) {
    if (!check(p, "final walk")) return;
    count++;
    if (p->id >= seen.size()) out_of_range++;
    else if (seen[p->id]++) dup++;
  }
};

using Slot = std::atomic<Obj*>;
constexpr std::size_t kSlots = 256;  // the slot arrays' length

// place stores p, which the caller holds as the only pointer, into the first
// empty slot from `from` on (wrapping around); false if every slot is full.
bool place(Slot* slots, std::size_t n, std::size_t from, Obj* p) {
  for (std::size_t k = 0; k < n; k++) {
    Obj* expected = nullptr;
    if (slots[(from + k) % n].compare_exchange_strong(expected, p, std::memory_order_acq_rel)) return true;
  }
  return false;
}

[[gnu::noinline]] Slot* new_slots(std::size_t n, std::size_t filled, std::uint64_t first_id) {
  Slot* s = goro::gc::make_array<Slot>(n);
  for (std::size_t i = 0; i < filled; i++) s[i * (n / filled)].store(new_obj(first_id + i));
  return s;
}

// ---- 1. heap -> heap ---------------------------------------------------------

// The only pointer to an object jumps between two GC arrays, from a slot the
// mark may have scanned already to one it may not have, and back; now and
// then an object is dropped and a new one (allocated during the mark) takes
// its place.
TEST_P(GcConcurrent, HeapToHeap) {
  verdict.verified = 0;
  verdict.bad = 0;
  run_mode([] {
    constexpr std::size_t kObjects = 128;
    Slot* a = new_slots(kSlots, kObjects, 0);
    Slot* b = goro::gc::make_array<Slot>(kSlots);
    std::atomic<std::uint64_t> next_id{kObjects};
    std::atomic<long> dropped{0}, moves{0};
    Cycles cycles;
    goro::WaitGroup wg;
    for (int w = 0; w < kMutators; w++) {
      wg.add(1);
      goro::go([&, w] {
        Rng rng(static_cast<std::uint64_t>(w) + 1);
        for (long op = 0; op < 50'000'000 && cycles.running(); op++) {
          const bool ab = rng.next() & 1;
          Slot* from = ab ? a : b;
          Slot* to = ab ? b : a;
          Obj* p = from[rng.below(kSlots)].exchange(nullptr, std::memory_order_acq_rel);
          if (p != nullptr) {
            check(p, "heap->heap take");
            if (rng.below(64) == 0) {
              dropped.fetch_add(1);
              p = new_obj(next_id.fetch_add(1));
            } else {
              touch(p);
            }
            // Always room: 512 slots, at most kObjects objects.
            if (!place(to, kSlots, rng.below(kSlots), p) && !place(from, kSlots, 0, p))
              report("heap->heap", p, "found no free slot");
            moves.fetch_add(1, std::memory_order_relaxed);
          }
          if (op % 32 == 0) churn(4);
          if (op % 64 == 0) goro::yield();
        }
        wg.done();
      });
    }
    start_collector(cycles, wg);
    wg.wait();
    finish(cycles);
    IdSet ids(next_id.load());
    for (std::size_t i = 0; i < kSlots; i++) {
      if (Obj* p = a[i].load()) ids.add(p);
      if (Obj* p = b[i].load()) ids.add(p);
    }
    EXPECT_EQ(ids.count, static_cast<long>(next_id.load()) - dropped.load()) << "objects lost";
    EXPECT_EQ(ids.dup, 0);
    EXPECT_EQ(ids.out_of_range, 0);
    EXPECT_GT(moves.load(), 0);
  });
  EXPECT_EQ(verdict.bad.load(), 0) << "of " << verdict.verified.load() << " checks";
}

// ---- 2. heap -> stack -> heap ------------------------------------------------

// A goroutine takes the only pointers to a few objects out of heap slots into
// locals, parks (yield, a channel round trip, a timer, allocating enough to
// start a cycle, or handing them to a new goroutine's closure) and puts them
// back into other slots.
TEST_P(GcConcurrent, StackToHeapAndBack) {
  verdict.verified = 0;
  verdict.bad = 0;
  run_mode([] {
    constexpr std::size_t kObjects = 96;
    Slot* slots = new_slots(kSlots, kObjects, 0);
    std::atomic<long> parks{0};
    Cycles cycles;
    goro::WaitGroup wg;
    for (int w = 0; w < kMutators; w++) {
      wg.add(1);
      goro::go([&, w] {
        Rng rng(static_cast<std::uint64_t>(w) + 100);
        auto ping = goro::make_chan<int>();
        auto pong = goro::make_chan<int>();
        goro::WaitGroup echo;
        echo.add(1);
        goro::go([ping, pong, &echo] {
          for (int v : ping) pong.send(v);
          echo.done();
        });
        for (long op = 0; op < 10'000'000 && cycles.running(); op++) {
          Obj* held[3] = {};
          for (Obj*& h : held) {
            h = slots[rng.below(kSlots)].exchange(nullptr, std::memory_order_acq_rel);
            if (h != nullptr) check(h, "heap->stack take");
          }
          switch (rng.below(5)) {
            case 0: goro::yield(); break;
            case 1:
              ping.send(1);
              pong.recv();
              break;
            case 2: goro::sleep_for(20us); break;
            case 3: churn(64); break;
            case 4: {
              // The new goroutine's closure is the only holder until it runs.
              auto back = goro::make_chan<int>();
              goro::go([h0 = held[0], h1 = held[1], h2 = held[2], back, &rng, &slots] {
                for (Obj* h : {h0, h1, h2}) {
                  if (h == nullptr) continue;
                  check(h, "closure");
                  touch(h);
                  if (!place(slots, kSlots, rng.below(kSlots), h)) report("closure", h, "found no free slot");
                }
                back.send(1);
              });
              held[0] = held[1] = held[2] = nullptr;
              back.recv();
              break;
            }
          }
          parks.fetch_add(1, std::memory_order_relaxed);
          for (Obj* h : held) {
            if (h == nullptr) continue;
            check(h, "stack->heap put");
            touch(h);
            if (!place(slots, kSlots, rng.below(kSlots), h)) report("stack->heap", h, "found no free slot");
          }
          if (op % 16 == 0) churn(4);
        }
        ping.close();
        echo.wait();
        wg.done();
      });
    }
    start_collector(cycles, wg);
    wg.wait();
    finish(cycles);
    IdSet ids(kObjects);
    for (std::size_t i = 0; i < kSlots; i++)
      if (Obj* p = slots[i].load()) ids.add(p);
    EXPECT_EQ(ids.count, static_cast<long>(kObjects)) << "objects lost";
    EXPECT_EQ(ids.dup, 0);
    EXPECT_EQ(ids.out_of_range, 0);
    EXPECT_GT(parks.load(), 0);
  });
  EXPECT_EQ(verdict.bad.load(), 0) << "of " << verdict.verified.load() << " checks";
}

// ---- 3. channels -------------------------------------------------------------

// ring runs one ring of stages that pass the only pointer to each object
// along: a buffered channel (the ring itself), an unbuffered hop, a buffered
// hop, a select that sends on an unbuffered or a buffered channel, and a
// select that receives from both. Each stage checks and touches what it
// receives. Once the collector stops, the head keeps what comes back in
// `home` instead of sending it round again; then the stages are closed down.
[[gnu::noinline]] void fill_ring(const goro::Chan<Obj*>& ring, std::uint64_t first, std::size_t n) {
  for (std::size_t i = 0; i < n; i++) ring.send(new_obj(first + i));
}

void run_ring(int r, std::size_t n, Obj** home, Cycles& cycles, std::atomic<long>& hops) {
  auto ring = goro::make_chan<Obj*>(n);
  auto c1 = goro::make_chan<Obj*>();
  auto c2 = goro::make_chan<Obj*>(4);
  auto c3a = goro::make_chan<Obj*>();
  auto c3b = goro::make_chan<Obj*>(2);
  fill_ring(ring, static_cast<std::uint64_t>(r) * n, n);
  goro::WaitGroup stages;
  stages.add(3);
  goro::go([c1, c2, &stages] {
    for (Obj* p : c1) {
      check(p, "unbuffered hop");
      touch(p);
      c2.send(p);
    }
    c2.close();
    stages.done();
  });
  goro::go([c2, c3a, c3b, &stages] {
    for (Obj* p : c2) {
      check(p, "buffered hop");
      touch(p);
      goro::select(goro::case_send(c3a, p), goro::case_send(c3b, p));
    }
    c3a.close();
    c3b.close();
    stages.done();
  });
  goro::go([c3a, c3b, ring, r, &stages, &hops] {
    Rng rng(static_cast<std::uint64_t>(r) + 200);
    goro::Chan<Obj*> a = c3a, b = c3b;  // nil once closed: select skips them
    for (long i = 0; i < 100'000'000 && (a || b); i++) {
      std::optional<Obj*> got;
      bool a_closed = false, b_closed = false;
      goro::select(goro::case_recv(a, [&](std::optional<Obj*> v) { v ? void(got = v) : void(a_closed = true); }),
                   goro::case_recv(b, [&](std::optional<Obj*> v) { v ? void(got = v) : void(b_closed = true); }));
      if (a_closed) a = {};
      if (b_closed) b = {};
      if (!got) continue;
      check(*got, "select receive");
      if (rng.below(8) == 0) goro::yield();  // parked with the only pointer
      touch(*got);
      hops.fetch_add(1, std::memory_order_relaxed);
      ring.send(*got);
    }
    stages.done();
  });
  std::size_t kept = 0;
  std::optional<goro::Timer> give_up;
  for (long i = 0; i < 100'000'000 && kept < n; i++) {
    if (cycles.running()) {
      Obj* p = *ring.recv();
      check(p, "ring head");
      touch(p);
      c1.send(p);
      if (i % 16 == 0) churn(4);
      continue;
    }
    // Draining: every object comes back to the head exactly once.
    if (!give_up) give_up.emplace(30s);
    std::optional<Obj*> p;
    bool timed_out = false;
    goro::select(goro::case_recv(ring, [&](std::optional<Obj*> v) { p = v; }),
                 goro::case_recv(give_up->c(), [&] { timed_out = true; }));
    if (timed_out) {
      ADD_FAILURE() << "ring " << r << ": " << n - kept << " objects did not come back";
      break;
    }
    if (p && check(*p, "ring drain")) home[kept++] = *p;
  }
  if (give_up) give_up->stop();
  c1.close();
  stages.wait();
}

TEST_P(GcConcurrent, ChannelsCarryTheOnlyPointer) {
  verdict.verified = 0;
  verdict.bad = 0;
  run_mode([] {
    constexpr std::size_t kObjects = 64;
    constexpr int kRings = 3;
    Obj** home[kRings];
    for (auto& h : home) h = goro::gc::make_array<Obj*>(kObjects);
    std::atomic<long> hops{0};
    Cycles cycles;
    goro::WaitGroup wg;
    for (int r = 0; r < kRings; r++) {
      wg.add(1);
      goro::go([&, r] {
        run_ring(r, kObjects, home[r], cycles, hops);
        wg.done();
      });
    }
    start_collector(cycles, wg);
    wg.wait();
    finish(cycles);
    IdSet ids(kObjects * kRings);
    for (Obj** h : home)
      for (std::size_t i = 0; i < kObjects; i++)
        if (h[i] != nullptr) ids.add(h[i]);
    EXPECT_EQ(ids.count, static_cast<long>(kObjects * kRings)) << "objects lost";
    EXPECT_EQ(ids.dup, 0);
    EXPECT_EQ(ids.out_of_range, 0);
    EXPECT_GT(hops.load(), 0);
  });
  EXPECT_EQ(verdict.bad.load(), 0) << "of " << verdict.verified.load() << " checks";
}

// ---- 4. sync.Pool --------------------------------------------------------------

// claim and release keep Obj::owner: an object checked out of the Pool has
// exactly one owner; getting one that has an owner means it was handed out
// twice (or freed and made again).
void claim(Obj* p, std::uint64_t me) {
  std::uint64_t none = 0;
  if (!p->owner.compare_exchange_strong(none, me)) report("pool get", p, "is already checked out");
}
void release(Obj* p, std::uint64_t me) {
  if (!p->owner.compare_exchange_strong(me, 0)) report("pool put", p, "changed owner while checked out");
}

// Mutators get objects from a Pool, hold up to four at a time across parks,
// and put them back; one goroutine holds eight across three whole cycles, in
// which the Pool's caches move to the victim cache and are dropped: nothing
// checked out may be freed with them.
TEST_P(GcConcurrent, PoolGetPut) {
  verdict.verified = 0;
  verdict.bad = 0;
  run_mode([] {
    std::atomic<std::uint64_t> next_id{0};
    goro::Pool<Obj> pool([&next_id] { return new_obj(next_id.fetch_add(1)); });
    std::atomic<long> gets{0}, puts{0}, long_holds{0};
    Cycles cycles;
    goro::WaitGroup wg;
    for (int w = 0; w < kMutators; w++) {
      wg.add(1);
      goro::go([&, w] {
        const std::uint64_t me = static_cast<std::uint64_t>(w) + 1;
        Rng rng(me + 300);
        Obj* held[4] = {};
        for (long op = 0; op < 50'000'000 && cycles.running(); op++) {
          Obj*& h = held[rng.below(4)];
          if (h != nullptr) {
            check(h, "pool put");
            release(h, me);
            touch(h);
            pool.put(h);
            h = nullptr;
            puts.fetch_add(1, std::memory_order_relaxed);
          } else {
            h = pool.get();
            gets.fetch_add(1, std::memory_order_relaxed);
            if (check(h, "pool get")) claim(h, me);
          }
          if (op % 16 == 0) goro::yield();
          if (op % 32 == 0) churn(4);
        }
        for (Obj*& h : held) {
          if (h == nullptr) continue;
          if (check(h, "pool final put")) release(h, me);
          pool.put(h);
          puts.fetch_add(1, std::memory_order_relaxed);
        }
        wg.done();
      });
    }
    wg.add(1);
    goro::go([&] {
      constexpr std::uint64_t me = 1000;
      for (long round = 0; round < 1000 && cycles.running(); round++) {
        Obj* held[8];
        for (Obj*& h : held) {
          h = pool.get();
          gets.fetch_add(1, std::memory_order_relaxed);
          if (check(h, "long hold get")) claim(h, me);
        }
        const long start = cycles.done.load();
        for (long i = 0; i < 10'000'000 && cycles.done.load() < start + 3 && cycles.running(); i++) goro::yield();
        long_holds.fetch_add(1, std::memory_order_relaxed);
        for (Obj* h : held) {
          if (check(h, "long hold put")) release(h, me);
          pool.put(h);
          puts.fetch_add(1, std::memory_order_relaxed);
        }
      }
      wg.done();
    });
    start_collector(cycles, wg);
    wg.wait();
    finish(cycles);
    EXPECT_GT(gets.load(), 0);
    EXPECT_EQ(gets.load(), puts.load());
    EXPECT_GT(long_holds.load(), 0);
    // What the Pool still has (nothing, or whatever survived the last
    // cycles) is intact too.
    for (int i = 0; i < 64; i++) {
      Obj* p = pool.get();
      if (check(p, "pool after the cycles")) {
        EXPECT_EQ(p->owner.load(), 0u);
      }
    }
  });
  EXPECT_EQ(verdict.bad.load(), 0) << "of " << verdict.verified.load() << " checks";
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Modes, GcConcurrent,
                         ::testing::Combine(::testing::Values(1, 2, 4, 8),
                                            ::testing::Values(Mode::concurrent, Mode::stoptheworld,
                                                              Mode::nouffd)),
                         ParamName);
