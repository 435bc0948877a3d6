// malloc.cpp — allocation: mallocgc, the per-P mcache and the mcentral lists
// (Go's malloc.go, mcache.go, mcentral.go).
//
// The common case, a small object with a cached span that has a free slot,
// touches only the P's mcache and the span it caches: find the next zero bit
// in allocBits from freeindex, set it, zero the slot if the span's memory may
// be dirty. No lock, no atomic read-modify-write; the P is reached through
// getm()->p, and the world cannot stop while the goroutine is inside (a stop
// waits for a safepoint, and mallocgc is one only at its entry).
//
// When the cached span is full, mcache_refill hands it back to its mcentral
// and takes another: a swept span with free slots, else an unswept one that it
// sweeps itself (lazy sweeping, Go's "sweep on allocation"), else a new span
// from the mheap. The refill is also where pacing is checked: like Go, the
// whole free part of a span is counted in heap_live when the span is cached,
// so the per-object path keeps no shared counter.
//
// A goroutine without a P (inside blocking(), or running on after the
// preemption signal took its P) allocates through mheap_.central_cache under
// mheap_.noplock. The collector holds noplock while it marks, so such an
// allocation waits for the mark to end instead of racing it. A goroutine
// inside blocking() is not stopped by the collector, so between mallocgc
// returning and the pointer being stored somewhere scanned, the object is
// known only to a register of a running thread: the last noplockRecent such
// objects are roots (noprecent) so that window is covered.
//
// Invariants:
//   - A span cached in an mcache is on no mcentral list; only its P allocates
//     from it. mcache_release_all (world stopped) returns them all.
//   - Every allocated slot is zeroed beyond what the caller constructs:
//     needzero spans are cleared per slot, fresh and scavenged memory is zero.
//   - heap_live counts, for cached spans, their free slots too.
#include "gc/malloc.hpp"

#include <cstring>

#include "gc/mgc.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

#if GORO_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace goro::detail {

namespace {

inline void* remember(mheap& h, void* p) {
  h.noprecent[h.noprecentx++ % noplockRecent] = reinterpret_cast<std::uintptr_t>(p);
  return p;
}

// nextFree takes the next free slot of s, or returns 0 if s is full.
inline std::uintptr_t nextFree(mspan* s) {
  std::uint32_t i = s->freeindex;
  while (i < s->nelems) {
    const std::uint64_t bits = ~s->allocBits[i / 64] >> (i % 64);
    if (bits == 0) {
      i = (i / 64 + 1) * 64;
      continue;
    }
    i += static_cast<std::uint32_t>(__builtin_ctzll(bits));
    if (i >= s->nelems) break;
    // An atomic store: a concurrent marker may be reading the word.
    std::atomic_ref<std::uint64_t>(s->allocBits[i / 64])
        .store(s->allocBits[i / 64] | (std::uint64_t(1) << (i % 64)), std::memory_order_relaxed);
    s->freeindex = i + 1;
    s->allocCount++;
    return s->base + i * s->elemsize;
  }
  s->freeindex = s->nelems;
  return 0;
}

// uncache returns a span the mcache is done with to its mcentral.
void uncache(mheap& h, mspan* s) {
  mcentral& c = h.central[s->spanclass];
  const std::uint64_t unused = (s->nelems - s->allocCount) * s->elemsize;
  h.heap_live.fetch_sub(unused, std::memory_order_relaxed);
  std::lock_guard<Lock> lk(c.lock);
  if (s->allocCount < s->nelems)
    c.partial.push(s);
  else
    c.full.push(s);
}

// cacheSpan finds a span of spanclass with a free slot (mcentral.cacheSpan).
mspan* cacheSpan(mheap& h, int spanclass) {
  std::atomic<int>& inflight = gcs().sweep.inflight;
  mcentral& c = h.central[spanclass];
  mspan* s = nullptr;
  {
    std::unique_lock<Lock> lk(c.lock);
    s = c.partial.pop();
    // Sweep a bounded number of unswept spans looking for space (Go: 100).
    for (int tries = 0; s == nullptr && tries < 100; tries++) {
      mspan* u = c.unswept.pop();
      if (u == nullptr) break;
      inflight.fetch_add(1, std::memory_order_acq_rel);
      lk.unlock();
      const bool kept = sweepspan(u, true);
      lk.lock();
      inflight.fetch_sub(1, std::memory_order_acq_rel);
      if (!kept) continue;
      if (u->allocCount < u->nelems)
        s = u;
      else
        c.full.push(u);
    }
  }
  if (s == nullptr) {
    const int sizeclass = spanclass >> 1;
    s = mheap_alloc(class_to_npages[sizeclass], spanclass, spanclass & 1, false);
  }
  // Restart the free-slot search from the beginning: sweep may have freed
  // slots anywhere.
  s->freeindex = 0;
  h.heap_live.fetch_add((s->nelems - s->allocCount) * s->elemsize, std::memory_order_relaxed);
  return s;
}

// finish completes an allocation. Every write to the span comes before the
// memset: memset is libc code, where the preemption signal may take the P,
// after which the span may already belong to someone else.
inline void* finish(mspan* s, std::uintptr_t v, DtorFn dtor, std::size_t n) {
  if (dtor != nullptr) {
    const std::size_t i = s->objindex(v);
    s->dtorBits[i / 64] |= std::uint64_t(1) << (i % 64);
    s->hasdtor = true;
  }
#if GORO_ASAN
  ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<void*>(v), s->elemsize);
#endif
  if (s->needzero) std::memset(reinterpret_cast<void*>(v), 0, s->elemsize);
  if (dtor == nullptr) return reinterpret_cast<void*>(v);
  auto* hdr = reinterpret_cast<std::uintptr_t*>(v);
  hdr[0] = reinterpret_cast<std::uintptr_t>(dtor);
  hdr[1] = n;
  return reinterpret_cast<void*>(v + dtorHeader);
}

void* mallocsmall(mheap& h, mcache* c, std::size_t total, bool noscan, DtorFn dtor,
                  std::size_t n) {
  const int sc = size_to_class(total) * 2 + (noscan ? 1 : 0);
  mspan* s = c->alloc[sc];
  std::uintptr_t v = s != nullptr ? nextFree(s) : 0;
  if (v == 0) {
    if (s != nullptr) uncache(h, s);
    mcache_flush_stats(c);
    s = cacheSpan(h, sc);
    c->alloc[sc] = s;
    v = nextFree(s);
  }
  c->nmalloc++;
  c->nbytes += s->elemsize;
  return finish(s, v, dtor, n);
}

void* malloclarge(mheap& h, std::size_t total, bool noscan, DtorFn dtor, std::size_t n) {
  const std::size_t npages = (total + pageSize - 1) >> pageShift;
  mspan* s = mheap_alloc(npages, 0, noscan, true);
  std::atomic_ref<std::uint64_t>(s->allocBits[0]).store(1, std::memory_order_relaxed);
  s->allocCount = 1;
  h.heap_live.fetch_add(npages << pageShift, std::memory_order_relaxed);
  h.nmalloc.fetch_add(1, std::memory_order_relaxed);
  h.total_alloc.fetch_add(npages << pageShift, std::memory_order_relaxed);
  void* p = finish(s, s->base, dtor, n);
  std::lock_guard<Lock> lk(h.lock);
  h.large.push(s);
  return p;
}

// mallocgc_slow: the cached span is full, the object is large, or there is
// no P. Pacing is checked here, before anything is half-done.
[[gnu::noinline]] void* mallocgc_slow(std::size_t total, bool noscan, DtorFn dtor, std::size_t n) {
  gc_maybe_trigger();
  M* m = getm();
  mheap& h = mheap_();
  if (total > maxSmallSize) {
    if (m->p != nullptr) return malloclarge(h, total, noscan, dtor, n);
    std::lock_guard<Lock> lk(h.noplock);
    return remember(h, malloclarge(h, total, noscan, dtor, n));
  }
  if (m->p != nullptr) return mallocsmall(h, mcache_of(m->p), total, noscan, dtor, n);
  std::lock_guard<Lock> lk(h.noplock);
  return remember(h, mallocsmall(h, &h.central_cache, total, noscan, dtor, n));
}

}  // namespace

// noplock_recent_for_each: the recent P-less allocations as a root range
// (noplock held by the caller).
void noplock_recent_for_each(const std::function<void(std::uintptr_t, std::uintptr_t)>& fn) {
  const mheap& h = mheap_();
  const auto lo = reinterpret_cast<std::uintptr_t>(&h.noprecent[0]);
  fn(lo, lo + sizeof h.noprecent);
}

void* mallocgc(std::size_t size, bool noscan, DtorFn dtor, std::size_t n) {
  Entry e("goro::gc::make");  // its safepoint lets a pending stop-the-world (or GC) in
  M* m = e.m();
  std::size_t total = size + (dtor != nullptr ? dtorHeader : 0);
  if (total == 0) total = 1;
  P* p = m->p;
  if (p != nullptr && total <= maxSmallSize) {
    mcache* c = p->mcache;
    if (c != nullptr) {
      const int sc = size_to_class(total) * 2 + (noscan ? 1 : 0);
      mspan* s = c->alloc[sc];
      if (s != nullptr) {
        if (const std::uintptr_t v = nextFree(s)) {
          c->nmalloc++;
          c->nbytes += s->elemsize;
          return finish(s, v, dtor, n);
        }
      }
    }
  }
  return mallocgc_slow(total, noscan, dtor, n);
}

// mcache_of returns p's mcache, making it on first use (Go makes it in
// procresize; here a P that never allocates never has one).
mcache* mcache_of(P* p) {
  if (p->mcache == nullptr) {
    auto* c = new mcache();
    mheap& h = mheap_();
    std::lock_guard<Lock> lk(h.lock);
    h.allmcaches.push_back(c);
    p->mcache = c;
  }
  return p->mcache;
}

void mcache_flush_stats(mcache* c) {
  if (c->nmalloc == 0) return;
  mheap& h = mheap_();
  h.nmalloc.fetch_add(c->nmalloc, std::memory_order_relaxed);
  h.total_alloc.fetch_add(c->nbytes, std::memory_order_relaxed);
  c->nmalloc = 0;
  c->nbytes = 0;
}

namespace {
void release_one(mheap& h, mcache* c) {
  mcache_flush_stats(c);
  for (mspan*& s : c->alloc) {
    if (s == nullptr) continue;
    uncache(h, s);
    s = nullptr;
  }
}
}  // namespace

// mcache_release_all (world stopped, noplock held): every cached span goes
// back to its mcentral so that the coming mark/sweep sees it on a list.
void mcache_release_all() {
  Runtime* r = rt();
  mheap& h = r->gc->heap;
  for (int i = 0; i < maxProcs; i++) {
    P* p = r->allp[i].load(std::memory_order_relaxed);
    if (p == nullptr) break;
    if (p->mcache != nullptr) release_one(h, p->mcache);
  }
  release_one(h, &h.central_cache);
}

// mcache_flush_all_stats (world stopped): fold every P's counters in.
void mcache_flush_all_stats() {
  Runtime* r = rt();
  for (int i = 0; i < maxProcs; i++) {
    P* p = r->allp[i].load(std::memory_order_relaxed);
    if (p == nullptr) break;
    if (p->mcache != nullptr) mcache_flush_stats(p->mcache);
  }
  mcache_flush_stats(&r->gc->heap.central_cache);
}

// mcache_free_all frees every mcache (teardown: the Ps are gone).
void mcache_free_all(mheap& h) {
  for (mcache* c : h.allmcaches) delete c;
  h.allmcaches.clear();
}

}  // namespace goro::detail
