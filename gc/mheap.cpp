// mheap.cpp — the page heap: the arena, the page map, free page ranges and
// returning memory to the OS (Go's mheap.go, mpagealloc.go, mgcscavenge.go
// and sizeclasses.go, much simplified).
//
// The arena is one MAP_NORESERVE reservation made when the runtime starts:
// nothing is committed until a page is first written, and a heap pointer test
// is `arena_lo <= p < arena_used` plus one page-map load. Pages are handed out
// by bumping arena_used, or from the free ranges, which are kept twice: by
// address (to coalesce neighbours when a span is freed) and by size (best fit).
// Go uses a radix tree of bitmaps for the same job; two std:: maps under one
// lock are enough here because pages are asked for a span at a time (8 KiB and
// up), not per object.
//
// Scavenging: a free range that stays free for a whole GC cycle is returned to
// the OS with madvise(MADV_DONTNEED); it then reads as zeros, so a span made
// from it needs no zeroing. heap_sys counts the arena bytes handed out minus
// those returned (Go's HeapSys - HeapReleased).
//
// Invariants:
//   - free_by_addr and free_by_size describe the same ranges; no two ranges
//     in free_by_addr touch (they are coalesced), except a scavenged and an
//     unscavenged one, which are merged as unscavenged.
//   - Every page in [arena_lo, arena_used) is either in a free range or owned
//     by exactly one inuse span, whose pagemap entries point at it.
#include <sys/mman.h>

#include <cstdio>
#include <cstring>

#include "gc/malloc.hpp"
#include "gc/mgc.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

#if GORO_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace goro::detail {

// Size classes: 16-byte steps to 128, then about 4 classes per doubling, so
// the worst-case internal waste stays under 25% (Go's table is finer, 68
// classes, and also bounds tail waste per span).
const std::uint32_t class_to_size[] = {
    0,    16,   32,   48,   64,   80,    96,    112,   128,   160,   192,   224,   256,  320,
    384,  448,  512,  640,  768,  896,   1024,  1280,  1536,  1792,  2048,  2560,  3072, 3584,
    4096, 5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768};
const int numSizeClasses = sizeof class_to_size / sizeof class_to_size[0];
static_assert(sizeof class_to_size / sizeof class_to_size[0] <= maxSizeClasses);

const std::uint8_t class_to_npages[] = {0, 1, 1, 1, 1, 1,  1,  1,  1,  1,  1,  1,  1, 1,
                                        1, 1, 1, 1, 1, 1,  1,  2,  2,  2,  2,  3,  3, 4,
                                        4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32};
static_assert(sizeof class_to_npages == sizeof class_to_size / sizeof class_to_size[0]);

namespace {

// size_to_class8 is computed once per process from class_to_size (a table,
// not state).
std::uint8_t size_to_class8[maxSmallSize / 16 + 1];

struct ClassInit {
  ClassInit() {
    int c = 1;
    for (std::size_t i = 0; i <= maxSmallSize / 16; i++) {
      const std::size_t size = i * 16;
      while (class_to_size[c] < size) c++;
      size_to_class8[i] = static_cast<std::uint8_t>(c);
    }
  }
} class_init;

void pagemap_set(mheap& h, mspan* s, mspan* v) {
  const std::size_t first = (s->base - h.arena_lo) >> pageShift;
  for (std::size_t i = 0; i < s->npages; i++)
    __atomic_store_n(&h.pagemap[first + i], v, __ATOMIC_RELEASE);
}

void free_insert(mheap& h, std::uintptr_t base, FreeRange r) {
  h.free_by_addr.emplace(base, r);
  h.free_by_size.emplace(r.npages, base);
}

void free_erase(mheap& h, std::map<std::uintptr_t, FreeRange>::iterator it) {
  h.free_by_size.erase({it->second.npages, it->first});
  h.free_by_addr.erase(it);
}

}  // namespace

int size_to_class(std::size_t size) {
  return size_to_class8[(size + 15) / 16];
}

void SpanList::push(mspan* s) {
  s->next = nullptr;
  s->prev = last;
  if (last != nullptr)
    last->next = s;
  else
    first = s;
  last = s;
  n++;
}

void SpanList::remove(mspan* s) {
  if (s->prev != nullptr)
    s->prev->next = s->next;
  else
    first = s->next;
  if (s->next != nullptr)
    s->next->prev = s->prev;
  else
    last = s->prev;
  s->next = s->prev = nullptr;
  n--;
}

mspan* SpanList::pop() {
  mspan* s = first;
  if (s != nullptr) remove(s);
  return s;
}

void SpanList::splice(SpanList& o) {
  if (o.first == nullptr) return;
  if (last != nullptr) {
    last->next = o.first;
    o.first->prev = last;
  } else {
    first = o.first;
  }
  last = o.last;
  n += o.n;
  o.first = o.last = nullptr;
  o.n = 0;
}

// mheap_init reserves the arena and its page map for the freshly constructed
// h. The reservation shrinks until the kernel accepts it
// (vm.overcommit_memory=2 refuses huge ones).
bool mheap_init(mheap& h) {
  static constexpr std::size_t sizes[] = {std::size_t(64) << 30, std::size_t(16) << 30,
                                          std::size_t(4) << 30, std::size_t(1) << 30};
  for (std::size_t size : sizes) {
    void* mem = mmap(nullptr, size + pageSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) continue;
    const std::size_t npages = size >> pageShift;
    void* pm = mmap(nullptr, npages * sizeof(mspan*), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (pm == MAP_FAILED) {
      munmap(mem, size + pageSize);
      continue;
    }
    // Transparent huge pages where the kernel allows them (Go does the
    // same): the marker walks the heap with few TLB misses.
    madvise(mem, size + pageSize, MADV_HUGEPAGE);
    const auto lo = (reinterpret_cast<std::uintptr_t>(mem) + pageSize - 1) & ~(pageSize - 1);
    h.arena_lo = lo;
    h.arena_hi = lo + size;
    h.arena_used.store(lo, std::memory_order_relaxed);
    h.pagemap = static_cast<mspan**>(pm);
    h.raw_mem = mem;  // the real mapping's bounds, for munmap
    h.raw_size = size + pageSize;
    return true;
  }
  return false;
}

// mheap_release unmaps the arena and the page map and frees the span structs
// (teardown: no thread uses h any more).
void mheap_release(mheap& h) {
  if (h.arena_lo == 0) return;
  const std::size_t size = h.arena_hi - h.arena_lo;
  munmap(h.raw_mem, h.raw_size);
  munmap(h.pagemap, (size >> pageShift) * sizeof(mspan*));
  for (mspan* s : h.allspans) delete s;
  h.allspans.clear();
}

// mheap_alloc returns an inuse span of npages, set up for spanclass (or a
// large object when large). Its gcmarkBits are zero; allocBits are zero.
mspan* mheap_alloc(std::size_t npages, int spanclass, bool noscan, bool large) {
  mheap& h = mheap_();
  std::uintptr_t base = 0;
  bool needzero = false;
  mspan* s = nullptr;
  {
    std::lock_guard<Lock> lk(h.lock);
    auto it = h.free_by_size.lower_bound({npages, 0});
    if (it != h.free_by_size.end()) {
      base = it->second;
      auto ai = h.free_by_addr.find(base);
      FreeRange r = ai->second;
      free_erase(h, ai);
      if (r.npages > npages)
        free_insert(h, base + (npages << pageShift), {r.npages - npages, r.scavenged, r.gen});
      needzero = !r.scavenged;
      if (r.scavenged) {
        h.released_pages -= npages;
        h.heap_sys_bytes.fetch_add(npages << pageShift, std::memory_order_relaxed);
      }
    } else {
      base = h.arena_used.load(std::memory_order_relaxed);
      if (base + (npages << pageShift) > h.arena_hi)
        fatal("out of memory: GC arena exhausted");
      h.arena_used.store(base + (npages << pageShift), std::memory_order_release);
      h.heap_sys_bytes.fetch_add(npages << pageShift, std::memory_order_relaxed);
    }
    if (!h.spanpool.empty()) {
      s = h.spanpool.back();
      h.spanpool.pop_back();
    }
  }
  if (s == nullptr) {
    s = new mspan();
    std::lock_guard<Lock> lk(h.lock);
    h.allspans.push_back(s);
  }
  s->base = base;
  s->npages = npages;
  s->spanclass = static_cast<std::uint8_t>(spanclass);
  s->noscan = noscan;
  s->large = large;
  s->needzero = needzero;
  s->hasdtor = false;
  s->freeindex = 0;
  s->allocCount = 0;
  s->next = s->prev = nullptr;
  if (large) {
    s->elemsize = npages << pageShift;
    s->nelems = 1;
    s->divmul = 0;
  } else {
    s->elemsize = class_to_size[spanclass >> 1];
    s->nelems = static_cast<std::uint32_t>((npages << pageShift) / s->elemsize);
    s->divmul = static_cast<std::uint32_t>(~std::uint32_t(0) / s->elemsize + 1);
  }
  for (std::size_t i = 0; i < bitWords; i++) {
    s->allocBits[i] = 0;
    s->gcmarkBits[i].store(0, std::memory_order_relaxed);
    s->dtorBits[i] = 0;
  }
  s->inuse = true;
#if GORO_ASAN
  // Every slot not allocated is poisoned; mallocgc unpoisons what it hands out.
  ASAN_POISON_MEMORY_REGION(reinterpret_cast<void*>(base), npages << pageShift);
#endif
  pagemap_set(h, s, s);
  return s;
}

// mheap_free returns s's pages to the free ranges, merging with neighbours.
void mheap_free(mspan* s) {
  mheap& h = mheap_();
#if GORO_ASAN
  ASAN_POISON_MEMORY_REGION(reinterpret_cast<void*>(s->base), s->npages << pageShift);
#endif
  s->inuse = false;
  pagemap_set(h, s, nullptr);
  std::uintptr_t base = s->base;
  std::size_t npages = s->npages;
  const std::uint64_t gen = gcs().work.cycles.load(std::memory_order_relaxed);
  std::lock_guard<Lock> lk(h.lock);
  bool scavenged = false;
  auto next = h.free_by_addr.find(base + (npages << pageShift));
  if (next != h.free_by_addr.end()) {
    if (next->second.scavenged) {
      h.released_pages -= next->second.npages;
      h.heap_sys_bytes.fetch_add(next->second.npages << pageShift, std::memory_order_relaxed);
    }
    npages += next->second.npages;
    free_erase(h, next);
  }
  auto prev = h.free_by_addr.lower_bound(base);
  if (prev != h.free_by_addr.begin()) {
    --prev;
    if (prev->first + (prev->second.npages << pageShift) == base) {
      if (prev->second.scavenged) {
        h.released_pages -= prev->second.npages;
        h.heap_sys_bytes.fetch_add(prev->second.npages << pageShift,
                                        std::memory_order_relaxed);
      }
      base = prev->first;
      npages += prev->second.npages;
      free_erase(h, prev);
    }
  }
  free_insert(h, base, {npages, scavenged, gen});
  h.spanpool.push_back(s);
}

// mheap_scavenge returns to the OS the free ranges that were already free
// before cycle gen-1 (Go's background scavenger, without its pacing).
void mheap_scavenge(std::uint64_t gen) {
  mheap& h = mheap_();
  std::lock_guard<Lock> lk(h.lock);
  for (auto& [base, r] : h.free_by_addr) {
    if (r.scavenged || r.gen + 1 >= gen) continue;
    madvise(reinterpret_cast<void*>(base), r.npages << pageShift, MADV_DONTNEED);
    r.scavenged = true;
    h.released_pages += r.npages;
    h.heap_sys_bytes.fetch_sub(r.npages << pageShift, std::memory_order_relaxed);
  }
}

}  // namespace goro::detail
