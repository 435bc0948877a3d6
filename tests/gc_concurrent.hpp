// gc_concurrent.hpp — what the tests of gc_concurrent_test.cpp share: the
// collector modes and the fixture, objects that know whether they are intact
// (a magic number and a checksum of a payload only they point to), the
// collector loop the mutators run against, and the final count by id.
// See gc_concurrent_test.cpp for the invariant and the tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace gcmark {

using goro::test::Deadline;
using goro::test::kSanitized;
using goro::test::scaled;
using namespace std::chrono_literals;

// ---- the collector modes and the fixture ------------------------------------

enum class Mode { concurrent, stoptheworld, nouffd };

inline const char* mode_env(Mode m) {
  switch (m) {
    case Mode::stoptheworld: return "gcstoptheworld=1";
    case Mode::nouffd: return "gcuffd=0";
    case Mode::concurrent: break;
  }
  return nullptr;  // GORO_DEBUG unset: the default collector
}

inline const char* mode_name(Mode m) {
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
inline const long kMinCycles = kSanitized ? 10 : 50;
inline const long kMaxCycles = scaled(400);
inline const auto kBudget = kSanitized ? 900ms : 550ms;
inline const auto kHard = 60s;
constexpr int kMutators = 4;

// cycle_starts counts the cycles that began, whatever started them (a
// cleanup hook: it runs at the start of every cycle).
inline std::atomic<long> cycle_starts{0};

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
    const goro::gc::HookId hook =
        goro::gc::register_cleanup([] { cycle_starts.fetch_add(1, std::memory_order_relaxed); });
    goro::run(o, body);
    goro::gc::unregister_cleanup(hook);
  }
  void kernel_writes(bool loopback);
};

inline std::string ParamName(const ::testing::TestParamInfo<std::tuple<int, Mode>>& info) {
  return "procs" + std::to_string(std::get<0>(info.param)) + "_" +
         mode_name(std::get<1>(info.param));
}

// ---- objects that know whether they are intact ------------------------------

constexpr std::uint64_t kMagic = 0x676f726f2d676321ull;    // "goro-gc!"
constexpr std::uint64_t kGarbage = 0xdeadbeefdeadbeefull;  // what churn writes
constexpr int kLeaves = 2;

inline std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
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
  std::uint64_t sum;                 // checksum of magic, id, gen and the leaves
  std::atomic<std::uint64_t> owner;  // the Pool test: who has it checked out
};

inline std::uint64_t word_of(const Obj* p, int leaf, int i) {
  return mix(p->id * 1000003 + p->gen * 131 + static_cast<std::uint64_t>(leaf * 8 + i));
}

inline std::uint64_t sum_of(const Obj* p) {
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
inline Verdict verdict;

inline void report(const char* where, const void* p, const char* what) {
  if (verdict.bad.fetch_add(1) < 5)
    std::fprintf(stderr, "gc_concurrent_test: %s: object %p %s\n", where, p, what);
}

// check verifies everything reachable from p: its magic, its leaves' magic
// and payload, and the checksum. It follows a pointer only after the magic of
// the object holding it matched, so a reused slot cannot send it astray.
inline const char* flaw(const Obj* p) {
  if (p == nullptr) return "is null";
  if (p->magic != kMagic) return "lost its magic (freed?)";
  const Leaf* l = p->leaf;
  for (int k = 0; k < kLeaves; k++, l = l->next) {
    if (l == nullptr || l->magic != kMagic) return "has a broken leaf";
    for (int i = 0; i < 5; i++)
      if (l->word[i] != word_of(p, k, i)) return "has a corrupt payload";
  }
  if (p->sum != sum_of(p)) return "fails its checksum";
  return nullptr;
}

inline bool check(const Obj* p, const char* where) {
  verdict.verified.fetch_add(1, std::memory_order_relaxed);
  const char* what = flaw(p);
  if (what != nullptr) report(where, p, what);
  return what == nullptr;
}

// Allocation happens in frames of their own, so that stale copies of the new
// pointers do not linger in the callers' frames.
[[gnu::noinline]] inline void fill(Obj* p) {
  for (int k = 0; k < kLeaves; k++)
    for (int i = 0; i < 5; i++) {
      Leaf* l = p->leaf;
      for (int j = 0; j < k; j++) l = l->next;
      l->word[i] = word_of(p, k, i);
    }
  p->sum = sum_of(p);
}

[[gnu::noinline]] inline Obj* new_obj(std::uint64_t id) {
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
// leaves while a mark may be running) and keeps it consistent. A broken
// object (already reported) is left alone: its links lead anywhere.
inline void touch(Obj* p) {
  if (flaw(p) != nullptr) return;
  p->gen++;
  fill(p);
}

// churn allocates garbage of the objects' size classes, so that a slot freed
// by mistake is soon reused and the mistake shows; and enough of it that the
// heap starts cycles of its own at the small GOGC.
[[gnu::noinline]] inline void churn(int n) {
  for (int i = 0; i < n; i++) {
    Obj* g = goro::gc::make<Obj>();
    g->magic = kGarbage;
    g->id = kGarbage;
    goro::gc::make<Leaf>()->magic = kGarbage;
  }
  goro::gc::make_array<std::uint64_t>(512)[0] = kGarbage;
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
  std::atomic<long> done{0};       // cycles the loop saw finish
  std::atomic<long> triggered{0};  // of which the heap started (GOGC)
  Deadline hard{kHard};
  // running: the mutators go on (bounded in time by kHard in any case).
  bool running() const { return !stop.load(std::memory_order_relaxed) && !hard.passed(); }
};

// allocate_until_a_cycle allocates garbage until a cycle starts: at the
// small GOGC the heap's own trigger fires within a few MiB (the mutators'
// allocations may get there first). Returns whether one started.
[[gnu::noinline]] inline bool allocate_until_a_cycle(const Cycles& c) {
  const long before = cycle_starts.load();
  for (long i = 0; i < (64l << 20) / 4096 && !c.hard.passed(); i++) {
    if (cycle_starts.load() != before) return true;
    goro::gc::make_array<std::uint64_t>(512)[0] = kGarbage;
  }
  return cycle_starts.load() != before;
}

// start_collector runs cycles in a loop on its own goroutine, then sets
// stop: gc::collect() and, every other time, a cycle the heap starts by
// itself.
inline void start_collector(Cycles& c, goro::WaitGroup& wg) {
  wg.add(1);
  goro::go([&c, &wg] {
    Deadline budget(kBudget);
    for (long i = 0; i < kMaxCycles && (i < kMinCycles || !budget.passed()) && !c.hard.passed();
         i++) {
      if (i % 2 == 0)
        goro::gc::collect();
      else if (allocate_until_a_cycle(c))
        c.triggered.fetch_add(1);
      c.done.fetch_add(1);
      goro::yield();
    }
    c.stop = true;
    wg.done();
  });
}

// finish ends every test the same way: a last cycle with the mutators gone,
// garbage to reuse what it freed, then the caller's final walk.
inline void finish(const Cycles& c) {
  EXPECT_GE(c.done.load(), kMinCycles) << "the collector loop was cut short by the hard deadline";
  EXPECT_EQ(c.triggered.load(), c.done.load() / 2) << "the heap did not start a cycle at GOGC=10";
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
    if (p->id >= seen.size())
      out_of_range++;
    else if (seen[p->id]++)
      dup++;
  }
};

using Slot = std::atomic<Obj*>;
constexpr std::size_t kSlots = 256;  // the slot arrays' length

// place stores p, which the caller holds as the only pointer, into the first
// empty slot from `from` on (wrapping around); false if every slot is full.
inline bool place(Slot* slots, std::size_t n, std::size_t from, Obj* p) {
  for (std::size_t k = 0; k < n; k++) {
    Obj* expected = nullptr;
    if (slots[(from + k) % n].compare_exchange_strong(expected, p, std::memory_order_acq_rel))
      return true;
  }
  return false;
}

[[gnu::noinline]] inline Slot* new_slots(std::size_t n, std::size_t filled,
                                         std::uint64_t first_id) {
  Slot* s = goro::gc::make_array<Slot>(n);
  for (std::size_t i = 0; i < filled; i++) s[i * (n / filled)].store(new_obj(first_id + i));
  return s;
}

// ---- the kernel-write test's messages and pipes ------------------------------

// Msg is a scanned object (it holds a pointer) that read(2) writes into.
struct Msg {
  Obj* link;
  std::uint64_t seq;
  std::uint8_t bytes[4000];
};

// The byte at offset off of stream s.
inline std::uint8_t pattern(std::uint64_t s, std::uint64_t off) {
  return static_cast<std::uint8_t>(mix(s * 0x100000001ull + off / 8) >> (off % 8 * 8));
}

// write_all and read_full are write(2) and read(2) inside blocking(): the
// goroutine may block in the kernel, without its P, while a cycle runs.
inline bool write_all(int fd, const void* p, std::size_t n) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  for (std::size_t done = 0; done < n;) {
    const ssize_t k = goro::blocking([&] { return ::write(fd, b + done, n - done); });
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    done += static_cast<std::size_t>(k);
  }
  return true;
}
// read_full reads until n bytes or end of file; returns how many it read.
inline std::size_t read_full(int fd, void* p, std::size_t n) {
  auto* b = static_cast<std::uint8_t*>(p);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t k = goro::blocking([&] { return ::read(fd, b + done, n - done); });
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    done += static_cast<std::size_t>(k);
  }
  return done;
}

// ---- the deep-structure test's lists and trees -------------------------------

struct LNode {
  std::uint64_t magic, id, check;
  LNode* next;
};
struct TNode {
  std::uint64_t magic, id, check;
  TNode* kid[2];
};
constexpr int kLists = 8, kTrees = 4;
struct Forest {
  LNode* list[kLists];
  TNode* tree[kTrees];
};

template <class N>
bool good(const N* n, const char* where) {
  verdict.verified.fetch_add(1, std::memory_order_relaxed);
  if (n->magic == kMagic && n->check == mix(n->id ^ 0x1157)) return true;
  report(where, n, "is not the node it was (freed?)");
  return false;
}

template <class N>
[[gnu::noinline]] N* new_node(std::uint64_t id) {
  N* n = goro::gc::make<N>();
  n->magic = kMagic;
  n->id = id;
  n->check = mix(id ^ 0x1157);
  return n;
}

// build_forest: list nodes 0..nl-1 dealt round the lists; trees of nt nodes
// each, complete binary trees (heap order) with ids t * nt + i.
[[gnu::noinline]] inline Forest* build_forest(long nl, long nt) {
  Forest* f = goro::gc::make<Forest>();
  for (long i = nl - 1; i >= 0; i--) {
    LNode* n = new_node<LNode>(static_cast<std::uint64_t>(i));
    n->next = f->list[i % kLists];
    f->list[i % kLists] = n;
  }
  TNode** tmp = goro::gc::make_array<TNode*>(static_cast<std::size_t>(nt));
  for (int t = 0; t < kTrees; t++) {
    for (long i = 0; i < nt; i++) tmp[i] = new_node<TNode>(static_cast<std::uint64_t>(t * nt + i));
    for (long i = 1; i < nt; i++) tmp[(i - 1) / 2]->kid[(i - 1) % 2] = tmp[i];
    f->tree[t] = tmp[0];
  }
  return f;
}

// walk_tree checks every node of the subtree at root and counts them; ids
// (if given) records each id.
inline long walk_tree(const TNode* root, const char* where, std::vector<char>* ids = nullptr) {
  std::vector<const TNode*> todo{root};  // malloc'd, but every node is reachable from root
  long n = 0;
  while (!todo.empty()) {
    const TNode* x = todo.back();
    todo.pop_back();
    if (!good(x, where)) continue;
    n++;
    if (ids != nullptr && x->id < ids->size()) (*ids)[x->id]++;
    for (const TNode* k : x->kid)
      if (k != nullptr) todo.push_back(k);
  }
  return n;
}

// park is what a mutator does while it holds the only pointer to a segment
// or a subtree.
inline void park(Rng& rng) {
  if (rng.below(2) == 0)
    goro::yield();
  else
    churn(16);
}

}  // namespace gcmark
