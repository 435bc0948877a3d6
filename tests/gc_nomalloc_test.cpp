// gc_nomalloc_test — the collector calls no malloc while hogs are suspended.
//
// gc/sysalloc.hpp explains why: a thread the preemption signal took the P
// from is stopped wherever it is for the root scan, possibly inside malloc
// or free with a malloc arena locked, and a collector thread calling malloc
// on that arena would wait for ever. This executable interposes malloc and
// its relatives (the executable's definitions come first in symbol lookup,
// for libgoro and libstdc++ too) and counts the calls made while the
// runtime's gc_nomalloc_window is open. Normal build only: the sanitizers
// replace malloc themselves.
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "gc/malloc.hpp"
#include "goro/goro.hpp"
#include "sched/sanitizers.hpp"
#include "test_util.hpp"

namespace {
// Calls made while the window was open (only counted in the normal build).
std::atomic<long> in_window{0};
}  // namespace

#if !GORO_ASAN && !GORO_TSAN
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {
inline void note() {
  if (goro::detail::gc_nomalloc_window.load(std::memory_order_relaxed) != 0)
    in_window.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) {
  note();
  return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
  note();
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  note();
  return __libc_realloc(p, n);
}
void free(void* p) {
  if (p != nullptr) note();
  __libc_free(p);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  note();
  return __libc_memalign(a, n);
}
void* memalign(std::size_t a, std::size_t n) {
  note();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
  note();
  void* p = __libc_memalign(a, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}
#endif

namespace {

struct Node {
  Node* left = nullptr;
  Node* right = nullptr;
  std::uint64_t check = 0;
};

Node* tree(int depth) {
  Node* n = goro::gc::make<Node>();
  n->check = static_cast<std::uint64_t>(depth);
  if (depth > 0) {
    n->left = tree(depth - 1);
    n->right = tree(depth - 1);
  }
  return n;
}

std::uint64_t sum(const Node* n) {
  return n == nullptr ? 0 : n->check + sum(n->left) + sum(n->right);
}

struct WithDtor {
  std::vector<int> v = std::vector<int>(8, 1);  // its destructor frees malloc memory
};

class NoMalloc : public ::testing::TestWithParam<int> {};

// A heap large enough that the parallel mark hands batches between workers
// (every cycle), finalizable objects dying each cycle, and a Pool emptied
// by its cleanup hook: the mark's window sees no malloc or free.
TEST_P(NoMalloc, MarkCallsNoMallocWhileHogsAreSuspended) {
#if GORO_ASAN || GORO_TSAN
  GTEST_SKIP() << "the sanitizers interpose malloc themselves";
#endif
  goro::Options o;
  o.procs = GetParam();
  goro::run(o, [] {
    goro::gc::Root<Node> keep(tree(15));
    const std::uint64_t want = sum(keep.get());
    goro::Pool<Node> pool([] { return goro::gc::make<Node>(); });
    in_window = 0;
    for (int cycle = 0; cycle < 20; cycle++) {
      for (int i = 0; i < 200; i++) goro::gc::make<WithDtor>();
      for (int i = 0; i < 8; i++) pool.put(goro::gc::make<Node>());
      goro::gc::collect();
    }
    EXPECT_EQ(in_window.load(), 0) << "malloc/free calls while hogs were suspended";
    EXPECT_EQ(sum(keep.get()), want);
  });
}

INSTANTIATE_TEST_SUITE_P(Procs, NoMalloc, ::testing::Values(1, 2, 4, 8));

}  // namespace
