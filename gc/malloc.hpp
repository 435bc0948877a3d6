// malloc.hpp — the GC heap's data structures, shared by gc/*.cpp (Go's
// malloc.go, mheap.go, mcache.go, mcentral.go, mbitmap.go in one header).
//
// Glossary (Go's names):
//   arena      one big virtual reservation (MAP_NORESERVE): pages are committed
//              by touching them, so "is p a heap pointer?" is a range check.
//   page       8 KiB, the unit of the page map and of span sizes.
//   pagemap    page index -> the mspan owning that page (nullptr: free page).
//   sizeclass  small objects (<= 32 KiB) are rounded up to one of ~40 sizes;
//              each class has a fixed span size and so a fixed object count.
//   spanclass  sizeclass*2 + noscan: pointer-free objects live in their own
//              spans so the marker never scans them.
//   mspan      a run of pages holding objects of one spanclass, or one large
//              object. Its bitmaps (allocBits, gcmarkBits, dtorBits) have one
//              bit per object slot; a span never holds more than 512 slots.
//   mcache     per-P cache: one span per spanclass to allocate from with no
//              lock and no atomic read-modify-write (the P owns it).
//   mcentral   per-spanclass lists of spans: partial (swept, has free slots),
//              full (swept, no free slot), unswept (marked last cycle, waiting
//              for sweep). Guarded by its own lock.
//   mheap      the arena, the page map and the free page ranges; guarded by
//              mheap.lock. One per run, in GcState (gc/mgc.hpp): mheap_().
//
// Designs rejected: a header per object (costs 16 bytes on a 16-byte object
// and makes interior pointers expensive), a free list threaded through free
// objects (sweeping must then write every dead object; the bitmaps make sweep
// a few word operations per span), Go's sweepgen counters (here a span is
// unswept exactly when it sits on an unswept list or in the mark-termination
// snapshot, which the lists make explicit).
//
// Invariants:
//   - A span with state inuse has pagemap entries for all its pages; free
//     pages map to nullptr.
//   - A span is in at most one place: one mcache, one mcentral list, the large
//     lists, or in the hands of one sweeper.
//   - Outside a GC pause every gcmarkBits word of every span is zero, except
//     on spans not yet swept since the last mark.
//   - allocBits are written only by the span's owner (its mcache's P, or the
//     sweeper holding it), or under the world stopped.
//   - Locks (noplock, mcentral.lock, mheap.lock) are ranked Locks; their
//     order is the table in sched/lockrank.hpp.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "goro/gc.hpp"
#include "sched/lockrank.hpp"

namespace goro::detail {

struct G;
struct P;
struct Runtime;

inline constexpr std::size_t pageShift = 13;
inline constexpr std::size_t pageSize = std::size_t(1) << pageShift;
inline constexpr std::size_t maxSmallSize = 32 << 10;
inline constexpr std::size_t maxSlots = 512;  // pageSize / 16
inline constexpr std::size_t bitWords = maxSlots / 64;
inline constexpr std::size_t dtorHeader = 16;  // {DtorFn, n} in front of a finalizable object

// class_to_size etc. (sizeclasses.go). Class 0 is "large".
extern const std::uint32_t class_to_size[];
extern const std::uint8_t class_to_npages[];
extern const int numSizeClasses;
inline constexpr int maxSizeClasses = 48;
inline constexpr int numSpanClasses = maxSizeClasses * 2;
int size_to_class(std::size_t size);  // size <= maxSmallSize

struct mspan {
  std::uintptr_t base = 0;
  std::size_t npages = 0;
  std::size_t elemsize = 0;
  std::uint32_t nelems = 0;
  std::uint32_t divmul = 0;  // offset*divmul >> 32 == offset / elemsize
  std::uint8_t spanclass = 0;
  bool noscan = false;
  bool large = false;
  bool inuse = false;
  bool needzero = false;  // slots may hold old data: zero on allocation
  bool hasdtor = false;   // some dtorBits may be set
  std::uint32_t freeindex = 0;
  std::uint32_t allocCount = 0;
  mspan* next = nullptr;  // list links (mcentral/large lists)
  mspan* prev = nullptr;
  std::uint64_t allocBits[bitWords] = {};
  std::atomic<std::uint64_t> gcmarkBits[bitWords] = {};
  std::uint64_t dtorBits[bitWords] = {};  // object has a finalizer not yet queued

  std::size_t objindex(std::uintptr_t p) const {
    return large ? 0
                 : static_cast<std::size_t>((static_cast<std::uint64_t>(p - base) * divmul) >> 32);
  }
  // isAllocated may run in a concurrent marker while the owner allocates:
  // an atomic load (a plain one on x86), paired with nextFree's store.
  bool isAllocated(std::size_t i) const {
    const std::uint64_t w =
        std::atomic_ref<std::uint64_t>(const_cast<std::uint64_t&>(allocBits[i / 64]))
            .load(std::memory_order_relaxed);
    return (w >> (i % 64)) & 1;
  }
};

// SpanList is an intrusive doubly-linked list of spans (mSpanList).
struct SpanList {
  mspan* first = nullptr;
  mspan* last = nullptr;
  std::size_t n = 0;
  void push(mspan* s);
  void remove(mspan* s);
  mspan* pop();
  void splice(SpanList& o);  // append all of o, leaving it empty
  bool empty() const { return first == nullptr; }
};

struct mcentral {
  Lock lock{LockRank::mcentral};  // guards the three lists
  SpanList partial;               // swept, with free slots
  SpanList full;                  // swept, no free slot
  SpanList unswept;               // marked in the last cycle, not swept yet
};

struct mcache {
  mspan* alloc[numSpanClasses] = {};
  // Counters flushed into mheap at refill and under the world stopped.
  std::uint64_t nmalloc = 0;
  std::uint64_t nbytes = 0;
};

struct FreeRange {
  std::size_t npages;
  bool scavenged;     // returned to the OS (reads as zeros)
  std::uint64_t gen;  // the GC cycle it was freed in
};

// noplockRecent is how many of the last objects allocated without a P are
// kept as roots (malloc.cpp).
inline constexpr std::size_t noplockRecent = 256;

struct mheap {
  Lock lock{LockRank::heap};  // guards everything below down to `allmcaches`
  std::uintptr_t arena_lo = 0, arena_hi = 0;
  std::atomic<std::uintptr_t> arena_used{0};  // [arena_lo, arena_used) has ever been handed out
  mspan** pagemap = nullptr;                  // (arena_hi-arena_lo) >> pageShift entries
  void* raw_mem = nullptr;                    // the arena mapping as mmap returned it (munmap)
  std::size_t raw_size = 0;
  std::map<std::uintptr_t, FreeRange> free_by_addr;
  std::set<std::pair<std::size_t, std::uintptr_t>> free_by_size;
  std::vector<mspan*> spanpool;  // unused mspan structs
  std::vector<mspan*> allspans;  // every mspan struct ever made (h.allspans), freed at teardown
  std::size_t released_pages = 0;
  SpanList large;          // large spans, swept
  SpanList large_unswept;  // large spans, marked last cycle
  std::vector<mcache*> allmcaches;  // every P's mcache (made on demand), freed at teardown

  mcentral central[numSpanClasses];

  // Allocation without a P (inside blocking(), or after the preemption
  // signal took the P) goes through central_cache under noplock. The
  // collector holds noplock from stopping the world to starting it, so such
  // an allocation waits for the mark instead of racing it. The last objects
  // it returned are roots (noprecent), guarded by noplock too.
  Lock noplock{LockRank::noplock};
  mcache central_cache;
  std::uintptr_t noprecent[noplockRecent] = {};
  std::size_t noprecentx = 0;

  // Statistics (atomics: updated by sweepers and without a P).
  std::atomic<std::uint64_t> heap_live{0};  // bytes counted for pacing since the last mark
  std::atomic<std::uint64_t> nmalloc{0}, total_alloc{0}, nfree{0}, freed_bytes{0};
  std::atomic<std::uint64_t> heap_sys_bytes{0};
};

// mheap.cpp
bool mheap_init(mheap& h);     // reserve the arena; false if it cannot
void mheap_release(mheap& h);  // unmap everything (teardown)
mspan* mheap_alloc(std::size_t npages, int spanclass, bool noscan, bool large);  // inuse span
void mheap_free(mspan* s);               // return its pages (mheap.lock not held)
void mheap_scavenge(std::uint64_t gen);  // release ranges free since before gen
// peek_alloc_count reads a span's allocCount while its owner may be
// allocating: a hint (start_tracking's "is it full?"), never relied on.
[[gnu::noinline]] __attribute__((no_sanitize("thread"))) inline std::uint32_t peek_alloc_count(
    const mspan* s) {
  return *static_cast<const volatile std::uint32_t*>(&s->allocCount);
}
inline mspan* spanOf(const mheap& h, std::uintptr_t p) {
  if (p < h.arena_lo || p >= h.arena_used.load(std::memory_order_relaxed)) return nullptr;
  // Acquire, paired with mheap_alloc's release: a concurrent marker that
  // finds a new span sees it initialised.
  return __atomic_load_n(&h.pagemap[(p - h.arena_lo) >> pageShift], __ATOMIC_ACQUIRE);
}

// malloc.cpp
void mcache_release_all();  // world stopped: return every P's cached spans to mcentral
void mcache_flush_stats(mcache* c);
mcache* mcache_of(P* p);
void mcache_flush_all_stats();  // world stopped, noplock held
void mcache_free_all(mheap& h);  // teardown
void noplock_recent_for_each(const std::function<void(std::uintptr_t lo, std::uintptr_t hi)>& fn);

// mgcsweep.cpp
bool sweepspan(mspan* s, bool preserve);  // false: the span was freed to the heap
bool sweepone();                          // sweep one span from any unswept list; false: none left
void finish_sweep();                      // sweep everything left (outside the pause)
void sweeper_wake();
void bgsweep();  // the background sweeper goroutine

// mgcmark.cpp
std::uint64_t gc_mark_roots_and_heap(G* self);  // returns the marked bytes
// The concurrent mark: begin and end with the world stopped; the
// concurrent part runs on the collecting goroutine with the world running;
// termination (world stopped) returns the bytes marked by the whole mark.
void gc_mark_begin(G* self, std::uint32_t gen);
void gc_mark_concurrent(G* self, const void* callers);  // callers: see gc_cycle_locked
std::uint64_t gc_mark_termination(G* self);
void gc_mark_end();
struct workType;
struct GcState;
void gc_mark_prepare(GcState& gc);              // start the mark's threads (world running)
// gc_nomalloc_window is non-zero while hogs are suspended for the mark, when
// the collector must not call malloc (sysalloc.hpp); tests read it.
extern std::atomic<int> gc_nomalloc_window;
void gc_mark_stop_helpers(workType& work);      // teardown: join the mark threads
void scrub_stack_below();  // zero the stack under the caller's frame (stale pointers)

// roots.cpp: the registry of extra roots (goro/gc.hpp RootNode).
void roots_lock_all();  // every shard, in index order (the collector)
void roots_unlock_all();
void roots_for_each(
    const std::function<void(std::uintptr_t lo, std::uintptr_t hi)>& fn);  // all shards locked

// mfinal.cpp
void finq_push(void* obj);  // queue a dead finalizable object
void finq_for_each(
    const std::function<void(std::uintptr_t lo, std::uintptr_t hi)>& fn);  // finq_lock held
void finq_lock();
void finq_unlock();
void runfinq();  // the finalizer goroutine
bool finq_have_specials();  // some set_finalizer finalizer is pending
void finq_sweep_specials(mspan* s, std::size_t w, std::uint64_t* dead, std::uint64_t* mark);
void finq_specials_for_each(  // finq_lock held, world stopped
    const std::function<void(std::uintptr_t closure, std::uintptr_t lo, std::uintptr_t hi)>& fn);

// mgc.cpp
void gc_maybe_trigger();  // allocating goroutine: heap over the goal?
void gc_start_workers();
void go_system(void (*fn)());  // start a runtime goroutine (not counted)

}  // namespace goro::detail
