// gc_seam.hpp — the few garbage-collector calls sync.Pool needs, behind one
// narrow seam (pool/ only).
//
// SEAM: pool/ was written before the collector (gc/) existed, so it calls
// only the functions below. gc_seam.cpp forwards them to the collector when
// GORO_POOL_HAVE_GC is 1 (the default now that gc/ is built) and otherwise
// stands in for it, so that pool/ can be built and tested on its own:
//
//   add_root/remove_root   no-ops (nothing is collected, so nothing needs
//                          to be kept alive);
//   is_object_start        always true (put's debug check is skipped);
//   register_cleanup       remembers the hook so that tests and benchmarks can
//                          run it with the world stopped
//                          (pool_cleanup_stw_for_test in pool/pool.hpp).
//
// Build pool/ without the collector: define GORO_POOL_HAVE_GC=0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

// GORO_POOL_HAVE_GC: the collector is linked in (see above). Tests use it to
// compile the collect()-based cases only when collect() exists.
#ifndef GORO_POOL_HAVE_GC
#define GORO_POOL_HAVE_GC 1
#endif

namespace goro::detail::poolgc {

// have_gc reports whether the real collector is wired in (tests that need a
// real collect() skip themselves otherwise).
bool have_gc();

// add_root registers [p, p+len) to be scanned conservatively by every cycle
// until remove_root(p): Go finds the pool locals through allPools, a global;
// goro's collector does not scan malloc memory, so the locals arrays and the
// dequeue rings announce themselves. Callable with the world stopped (the
// collector's roots lock is a leaf, see gc/malloc.hpp).
void add_root(const void* p, std::size_t len);
void remove_root(const void* p);

// is_object_start: p is exactly what gc::make returned (Pool::put's debug
// check: "x must point into the GC heap").
bool is_object_start(const void* p);

// register_cleanup installs hook to run with the world stopped at the start
// of every GC cycle (Go's runtime_registerPoolCleanup).
std::uint64_t register_cleanup(std::function<void()> hook);

// run_cleanup_hooks runs the hooks registered here; only meaningful without
// the real collector (with it, the collector runs them and this does
// nothing). The caller must have stopped the world.
void run_cleanup_hooks();

}  // namespace goro::detail::poolgc
