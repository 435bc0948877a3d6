// mgcmark.cpp — gcMark: finding the roots and marking everything reachable
// from them (Go's mgcmark.go and mgcwork.go).
//
// The collector is conservative: a root or object word is a pointer if its
// value lies inside an allocated slot of an inuse span (interior pointers
// count). The test is a range check on the arena, one page-map load, a
// multiply-shift for the slot index and one allocBits bit. Greying an object
// sets its gcmarkBits bit and, unless its span is noscan, pushes it on an
// explicit mark stack; drain pops and scans. No recursion: a million-long
// list needs a mark stack of one entry at a time, a wide tree a stack as
// deep as its breadth.
//
// Roots (the world is stopped, and noplock is held so no P-less goroutine
// allocates):
//   - every goroutine's stack: a switched-out G from its saved context
//     (fiber.ctx: the callee-saved registers sit just below the old SP) to
//     stack_hi; a G not started yet also from entry_arg, where its closure
//     lives; a G in a system call (blocking(), or a hog the preemption signal
//     took the P from) over its whole stack, which holds the registers
//     blocking() spilled at entry; a hog is first suspended by a signal and
//     its interrupted registers are scanned too (suspend_hogs); the collecting G
//     from its current SP after spilling its own registers
//     (__builtin_unwind_init);
//   - the root registry (gc/roots.cpp: Root<T>, channel buffers, gc_add_root);
//   - the last noplockRecent objects allocated without a P (noprecent): a
//     goroutine in blocking() is not stopped, and holds a new object only in
//     a register until it stores it;
//   - the finalizer queue, and what objects with pending finalizers point
//     to (not the objects themselves: mark_finalizable, Go's markrootSpans).
//
// The concurrent mark (gc_mark_concurrent; docs/gc.md "The concurrent mark"
// has the invariant and its proof sketch): the same roots are read with the
// world running — parked stacks only, roots under their locks — and drained
// by the GC goroutine in slices. What the program changes meanwhile is caught
// afterwards: heap pages written since tracking began (mdirty.hpp; every
// marked object on such a page is rescanned there, and every unmarked one with
// a finalizer), the stacks, and the roots, rescanned whole. Passes over the
// written pages and the stacks of goroutines that ran or were readied (the
// rescan list, gc_note_ran) run concurrently first; mark termination rescans
// the written pages, every stack and the roots with the world stopped, and
// drains. New objects are allocated white: the termination reaches the live
// ones.
//
// Parallel marking (in a pause): the collecting goroutine scans the roots, then it and
// min(GOMAXPROCS, CPUs, 8) - 1 helper threads drain together. Each worker has
// its own mark stack; one with a long stack, seeing others idle, gives half
// to a shared list (Go's work.full) from which idle workers take. Greying is
// a fetch_or then, so of two workers racing on an object exactly one pushes
// it. The mark ends when all workers wait on an empty list. With one worker
// the mark bit is set with a plain load/store (no locked instruction). The
// helpers have no M; they sleep on Notes (futexes) between cycles and while
// waiting for a batch, and take only work.fullLock, a ranked Lock like every
// other runtime lock.
//
// State: the workers' stacks, the shared list and the helpers are the run's
// (GcState::work, gc/mgc.hpp), joined and freed when the run ends.
//
// Invariants:
//   - Only allocated slots are marked (allocBits checked), so sweep never
//     resurrects a free slot.
//   - A marked object in a scan span is pushed exactly once.
//   - The root scan holds finlock, allglock and every root shard (in rank
//     order: sched/lockrank.hpp), taken after the hogs are suspended, then
//     mheap.lock alone for the finalizable objects; the drain holds none
//     but, briefly, work.fullLock. The concurrent mark holds finlock and the
//     shards for the roots only, allglock only to read the list's head.
//   - Every object reachable when mark termination ends is marked
//     (docs/gc.md, "The concurrent mark", has the argument): termination
//     rescans every stack and root, every page written since tracking began
//     is reported, and nothing is swept during a mark, so spans (and the page
//     map's entries) stay put.
//   - Mark bits have one writer at a time outside a parallel drain: the
//     concurrent mark's worker (allocation never sets them).
#include <algorithm>
#include <thread>

#include "gc/malloc.hpp"
#include "gc/mgc.hpp"
#include "sched/config.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

namespace goro::detail {

namespace {

#define GORO_NO_SANITIZE __attribute__((no_sanitize("address", "thread"), noinline))

inline void greyobject(const mheap& h, gcWork& w, std::uintptr_t p) {
  mspan* s = spanOf(h, p);
  if (s == nullptr) return;
  const std::size_t i = s->objindex(p);
  if (i >= s->nelems || !s->isAllocated(i)) return;
  std::atomic<std::uint64_t>& word = s->gcmarkBits[i / 64];
  const std::uint64_t bit = std::uint64_t(1) << (i % 64);
  const std::uint64_t old = word.load(std::memory_order_relaxed);
  if (old & bit) return;
  if (!w.parallel) {
    word.store(old | bit, std::memory_order_relaxed);  // one marker: no RMW needed
  } else if (word.fetch_or(bit, std::memory_order_relaxed) & bit) {
    return;  // another worker greyed it first
  }
  w.marked_bytes += s->elemsize;
  if (s->noscan) return;
  w.stack.push_back({s->base + i * s->elemsize, s->elemsize});
}

GORO_NO_SANITIZE void scanblock(const mheap& h, gcWork& w, std::uintptr_t lo, std::uintptr_t hi) {
  lo = (lo + 7) & ~std::uintptr_t(7);
  const std::uintptr_t alo = h.arena_lo;
  const std::uintptr_t ahi = h.arena_used.load(std::memory_order_relaxed);
  for (std::uintptr_t a = lo; a + 8 <= hi; a += 8) {
    const std::uintptr_t v = *reinterpret_cast<const volatile std::uintptr_t*>(a);
    if (v >= alo && v < ahi) greyobject(h, w, v);
  }
}

// handoff_half moves the older half of stack to the shared list, in a spare
// batch when there is one (fullLock held).
void handoff_half(workType& work, GreyStack& stack) {
  const auto mid = stack.begin() + static_cast<std::ptrdiff_t>(stack.size() / 2);
  if (work.spare.empty()) {
    work.full.emplace_back();
  } else {
    work.full.push_back(std::move(work.spare.back()));
    work.spare.pop_back();
  }
  work.full.back().assign(stack.begin(), mid);
  stack.erase(stack.begin(), mid);
}

// drain_local scans grey objects until w's own stack is empty. Objects pass
// through a small FIFO between the stack and the scan: each is prefetched
// when it enters, so its cache miss overlaps the scanning of the ones ahead
// of it (marking is bound by memory latency). With other workers waiting,
// half of a long stack is handed to the shared list.
// budget > 0 bounds the bytes scanned: the concurrent mark drains in
// slices. Returns true when the stack is empty, false when the budget ran
// out (the objects in flight go back on the stack).
bool drain_local(GcState& gc, gcWork& w, std::int64_t budget = 0) {
  constexpr unsigned kAhead = 8;
  workType& work = gc.work;
  Grey ring[kAhead];
  unsigned head = 0, n = 0;
  const bool limited = budget > 0;
  for (;;) {
    if (limited && budget <= 0) {
      for (; n > 0; n--, head = (head + 1) % kAhead) w.stack.push_back(ring[head]);
      return w.stack.empty();
    }
    while (n < kAhead && !w.stack.empty()) {
      const Grey g = w.stack.back();
      w.stack.pop_back();
      __builtin_prefetch(reinterpret_cast<const void*>(g.obj));
      ring[(head + n) % kAhead] = g;
      n++;
    }
    if (n == 0) return true;
    const Grey g = ring[head];
    head = (head + 1) % kAhead;
    n--;
    scanblock(gc.heap, w, g.obj, g.obj + g.size);
    budget -= static_cast<std::int64_t>(g.size);
    if (w.parallel && w.stack.size() >= 64 && work.nwaitHint.load(std::memory_order_relaxed) > 0) {
      gcWork* wake = nullptr;
      {
        std::lock_guard<Lock> lk(work.fullLock);
        handoff_half(work, w.stack);
        if (work.nsleepers > 0) wake = work.sleepers[--work.nsleepers];
      }
      if (wake != nullptr) wake->wake.wakeup();
    }
  }
}

// drain is gcDrain: scan locally, then take batches from the shared list.
// A worker with nothing to do sleeps on its note until a batch arrives; the
// mark ends when the last worker to run dry finds every other one waiting
// and the list empty (all local stacks are empty then: a worker waits only
// after draining its own), and wakes them all.
void drain(GcState& gc, gcWork& w) {
  if (!w.parallel) {
    drain_local(gc, w);
    return;
  }
  workType& work = gc.work;
  for (;;) {
    drain_local(gc, w);
    work.fullLock.lock();
    work.nwait++;
    work.nwaitHint.store(work.nwait, std::memory_order_relaxed);
    while (work.full.empty() && !work.markDone) {
      if (work.nwait == work.nmarking) {
        work.markDone = true;
        for (int i = 0; i < work.nsleepers; i++) work.sleepers[i]->wake.wakeup();
        work.nsleepers = 0;
        break;
      }
      w.wake.clear();
      work.sleepers[work.nsleepers++] = &w;  // at most nmarking - 1 sleep
      work.fullLock.unlock();
      w.wake.sleep();  // woken by a batch (and taken off sleepers) or by the end
      work.fullLock.lock();
    }
    if (work.markDone) {
      work.fullLock.unlock();
      return;
    }
    work.nwait--;
    work.nwaitHint.store(work.nwait, std::memory_order_relaxed);
    // Take the batch; w's own (empty) stack becomes a spare.
    w.stack.swap(work.full.back());
    work.spare.push_back(std::move(work.full.back()));
    work.full.pop_back();
    work.fullLock.unlock();
  }
}

// helper_loop is a mark helper thread: sleep until the collector starts a
// drain (or says quit), drain, report done.
void helper_loop(GcState* gc, markHelper* h, int id) {
  workType& work = gc->work;
  for (;;) {
    h->start.sleep();
    h->start.clear();
    if (work.helpersQuit.load(std::memory_order_acquire)) return;
    gcWork& w = work.works[id];
    w.marked_bytes = 0;
    drain(*gc, w);
    if (work.nhelping.fetch_sub(1, std::memory_order_acq_rel) == 1) work.helpersDone.wakeup();
  }
}

// nmarkworkers: how many threads mark (GOMAXPROCS, the CPUs, at most 8).
int nmarkworkers() {
  int n = std::min(rt()->gomaxprocs.load(std::memory_order_relaxed), ncpu());
  return std::max(1, std::min(n, maxMarkWorkers));
}

// scan_g scans g's stack. parked_only (the concurrent mark): only a G whose
// context is saved, parked or queued; a running one is on the rescan list
// (gc_note_ran), and so is one that starts running while this reads it.
// (Reading a running G's whole stack instead was measured: the untouched
// pages of 64 KiB stacks each cost a zero-page fault, then a copy-on-write
// fault when the G grows into them.)
GORO_NO_SANITIZE void scan_g(const mheap& h, gcWork& w, G* g, G* self, bool parked_only = false) {
  const Gstatus st = g->status.load(std::memory_order_acquire);
  if (g == self || st == Gstatus::dead || st == Gstatus::idle) return;
  if (parked_only && st != Gstatus::runnable && st != Gstatus::waiting) return;
  const auto hi = reinterpret_cast<std::uintptr_t>(g->fiber.stack_hi);
  const auto slo = reinterpret_cast<std::uintptr_t>(g->fiber.stack_lo);
  std::uintptr_t lo = hi;
  if (st == Gstatus::runnable || st == Gstatus::waiting) {
    const auto ctx = reinterpret_cast<std::uintptr_t>(g->fiber.ctx);
    if (ctx >= slo && ctx < hi) lo = ctx;
    const auto arg = reinterpret_cast<std::uintptr_t>(g->entry_arg);
    if (g->entry != nullptr && arg >= slo && arg < lo) lo = arg;
    if (lo == hi) lo = slo;  // no usable context: the whole stack
  } else {
    // syscall (blocking() or a signal-preempted hog) or running: the G may be
    // executing right now; its whole stack is scanned, including the
    // registers blocking() spilled. See docs/gc.md for what is not covered.
    lo = slo;
  }
  scanblock(h, w, lo, hi);
}

// scanobject_except scans [lo, hi) but greys nothing inside [self_lo,
// self_hi), the object itself: an object's pointers into its own memory (a
// std::string's small buffer, a list's sentinel) must not keep it alive.
GORO_NO_SANITIZE void scanobject_except(const mheap& h, gcWork& w, std::uintptr_t lo,
                                        std::uintptr_t hi, std::uintptr_t self_lo,
                                        std::uintptr_t self_hi) {
  const std::uintptr_t alo = h.arena_lo;
  const std::uintptr_t ahi = h.arena_used.load(std::memory_order_relaxed);
  for (std::uintptr_t a = lo; a + 8 <= hi; a += 8) {
    const std::uintptr_t v = *reinterpret_cast<const volatile std::uintptr_t*>(a);
    if (v >= alo && v < ahi && (v < self_lo || v >= self_hi)) greyobject(h, w, v);
  }
}
void scanobject_except(const mheap& h, gcWork& w, std::uintptr_t lo, std::uintptr_t hi) {
  scanobject_except(h, w, lo, hi, lo, hi);
}

// mark_finalizable is Go's markrootSpans: everything an object with a
// pending finalizer points to is live, but not the object itself. So of A
// and B dying together with A pointing to B, only A is found dead this
// cycle, and its finalizer (~A, or set_finalizer's fn) runs while B is
// still whole; B dies in a later cycle (mfinal.cpp). World stopped,
// mheap.lock held; every span is swept, so allocBits and dtorBits are this
// cycle's.
GORO_NO_SANITIZE void mark_finalizable(const mheap& h, gcWork& w) {
  for (mspan* s : h.allspans) {
    if (!s->inuse || !s->hasdtor || s->noscan) continue;
    for (std::size_t k = 0; k < bitWords; k++) {
      for (std::uint64_t b = s->dtorBits[k] & s->allocBits[k]; b != 0; b &= b - 1) {
        const std::uintptr_t slot = s->base + (k * 64 + __builtin_ctzll(b)) * s->elemsize;
        scanobject_except(h, w, slot, slot + s->elemsize);
      }
    }
  }
}

// rescan_range rescans, within [lo, hi) (pages the dirty tracker reported
// written), the words of every marked object and of every unmarked one with
// a pending finalizer (whose pointees mark_finalizable greyed): a word that
// changed since the mark read it lies on a written page, so scanning the
// written part of each object is enough. Free pages and noscan spans are
// skipped. Spans are not freed during a mark (nothing sweeps), so the page
// map can be read while the world runs.
GORO_NO_SANITIZE void rescan_range(const mheap& h, gcWork& w, std::uintptr_t lo,
                                   std::uintptr_t hi) {
  std::uintptr_t p = lo;
  while (p < hi) {
    const mspan* s = spanOf(h, p);
    if (s == nullptr) {
      p = (p & ~(pageSize - 1)) + pageSize;
      continue;
    }
    const std::uintptr_t e = std::min(hi, s->base + (s->npages << pageShift));
    if (!s->noscan) {
      for (std::size_t i = s->objindex(p); i < s->nelems; i++) {
        const std::uintptr_t olo = s->base + i * s->elemsize;
        if (olo >= e) break;
        const std::uintptr_t a = std::max(olo, p), b = std::min(olo + s->elemsize, e);
        const std::uint64_t bit = std::uint64_t(1) << (i % 64);
        if (s->gcmarkBits[i / 64].load(std::memory_order_relaxed) & bit)
          scanblock(h, w, a, b);
        else if (s->isAllocated(i) && (s->dtorBits[i / 64] & bit))
          scanobject_except(h, w, a, b, olo, olo + s->elemsize);
      }
    }
    p = e;
  }
}

// rescan_dirty rescans the heap pages written since tracking began: every
// page outside the protected runs counts as written. With reprotect (the
// concurrent passes) it looks only inside the runs, at the pages written
// since the last pass, and protects them again in the same walk; the pages
// outside the runs are left to mark termination. If the kernel refuses,
// every page counts as written. Returns the bytes reported.
std::uint64_t rescan_dirty(GcState& gc, gcWork& w, bool reprotect) {
  const mheap& h = gc.heap;
  DirtyTracker& t = gc.dirty;
  const std::uintptr_t used = h.arena_used.load(std::memory_order_relaxed);
  std::uint64_t bytes = 0;
  const auto rescan = [&](std::uintptr_t lo, std::uintptr_t hi) {
    bytes += hi - lo;
    rescan_range(h, w, lo, hi);
  };
  bool ok = true;
  if (reprotect) {
    for (std::size_t i = 0; ok && i < t.runs.size(); i++)
      ok = dirty_for_each(t, t.runs[i].start, t.runs[i].end, true, rescan);
  } else {
    ok = dirty_for_each(t, h.arena_lo, used, false, rescan);
  }
  if (!ok) {
    rescan_range(h, w, h.arena_lo, used);
    bytes = used - h.arena_lo;
  }
  return bytes;
}

// scan_self_from scans the collecting goroutine's stack from its own frame
// up: every live frame above it, and nothing below. Not below: the stack
// under the collector's frames holds the dead frames of its last mark
// (drain's prefetch ring, greyobject's arguments), and scanning them would
// keep last cycle's grey objects alive for ever, each mark writing them back
// to the same slots.
[[gnu::noinline]] GORO_NO_SANITIZE void scan_self_from(const mheap& h, gcWork& w, G* self) {
  void* volatile here = nullptr;
  scanblock(h, w, reinterpret_cast<std::uintptr_t>(&here),
            reinterpret_cast<std::uintptr_t>(self->fiber.stack_hi));
}

// scan_self scans the collecting goroutine's own stack after forcing its
// callee-saved registers into this frame, which scan_self_from's range covers.
GORO_NO_SANITIZE void scan_self(const mheap& h, gcWork& w, G* self) {
  __builtin_unwind_init();
  scan_self_from(h, w, self);
  __asm__ volatile("" ::: "memory");  // keep this frame (and its spills) live: no tail call
}

}  // namespace

namespace {
std::uint64_t mark_drain(GcState& gc, gcWork& w);
}  // namespace

namespace {

std::uint64_t mark_roots_and_heap(G* self, bool termination);

}  // namespace

// gc_mark_roots_and_heap marks everything reachable (world stopped) and
// returns the bytes marked. A small frame over the mark's, so that the
// scrubbed region is where the mark's frames go: scan_self scans those
// frames, uninitialised slots included.
std::uint64_t gc_mark_roots_and_heap(G* self) {
  scrub_stack_below();
  return mark_roots_and_heap(self, false);
}

// gc_mark_termination finishes a concurrent mark (world stopped) and returns
// the bytes marked by the whole mark, black allocations not included.
std::uint64_t gc_mark_termination(G* self) {
  scrub_stack_below();
  return mark_roots_and_heap(self, true);
}

namespace {

// mark_roots_and_heap is the mark with the world stopped: the whole mark
// (gcstoptheworld, or no dirty-page tracking), or the termination of a
// concurrent one, which rescans what may have changed since the concurrent
// mark looked: every stack (see the comment in the body), the heap pages
// written, and the roots (small, and not tracked), then drains.
[[gnu::noinline]] std::uint64_t mark_roots_and_heap(G* self, bool termination) {
  Runtime* r = rt();
  GcState& gc = *r->gc;
  const mheap& h = gc.heap;
  gcWork& w = gc.work.works[0];
  if (!termination) {
    w.marked_bytes = 0;
    w.stack.clear();
  }
  // Goroutines that lost their P to the preemption signal still run: stop
  // them (sched/preempt.cpp suspend_hogs: a signal whose handler saves the
  // registers and waits, as Boehm GC's). It only suspends a thread outside
  // goro's code and the libraries goro calls, so a suspended hog holds none
  // of the locks taken below; take them only afterwards.
  std::vector<M*>& hogs = gc.work.hogs;
  const int maxhogs = static_cast<int>(hogs.size());
  gc_nomalloc_window.fetch_add(1, std::memory_order_relaxed);
  const int nhogs = std::min(suspend_hogs(hogs.data(), maxhogs), maxhogs);
  finq_lock();
  r->allglock.lock();
  roots_lock_all();
  auto scan = [&](std::uintptr_t lo, std::uintptr_t hi) { scanblock(h, w, lo, hi); };
  scan_self(h, w, self);
  // Every stack, in the termination too: a parked goroutine's stack can
  // change without it running or being readied, when another goroutine
  // writes through a pointer into it (results[i] = ... before wg.done()), a
  // thing Go's escape analysis rules out and C++ allows. The rescan list
  // serves the concurrent passes, which shrink what this drain finds.
  for (G* g = r->allgs; g != nullptr; g = g->alllink) scan_g(h, w, g, self);
  if (termination) {
    std::lock_guard<Lock> lk(gc.work.ranLock);
    gc.work.ran.clear();  // keeps its capacity: no munmap, no malloc
  }
  roots_for_each(scan);
  finq_for_each(scan);
  // set_finalizer's pending finalizers: the closure (fn's captures) is a
  // root; the object is scanned as in mark_finalizable.
  finq_specials_for_each([&](std::uintptr_t closure, std::uintptr_t lo, std::uintptr_t hi) {
    greyobject(h, w, closure);
    scanobject_except(h, w, lo, hi);
  });
  noplock_recent_for_each(scan);
  for (int i = 0; i < nhogs; i++) {
    const auto lo = reinterpret_cast<std::uintptr_t>(&hogs[i]->suspend_regs[0]);
    scan(lo, lo + sizeof hogs[i]->suspend_regs);
  }
  roots_unlock_all();
  r->allglock.unlock();
  finq_unlock();
  // After scan_self, not before: mark_finalizable's frames leave the
  // finalizable objects' addresses on this stack, just below the frame that
  // scan_self scans from, and would keep every one of them alive.
  if (!termination) {
    std::lock_guard<Lock> lk(gc.heap.lock);
    mark_finalizable(h, w);
  } else {
    rescan_dirty(gc, w, false);
  }
  const std::uint64_t marked = mark_drain(gc, w);
  resume_hogs(hogs.data(), nhogs);
  gc_nomalloc_window.fetch_sub(1, std::memory_order_relaxed);
  return marked;
}

// mark_drain empties the mark stacks, in parallel when there are CPUs for it.
std::uint64_t mark_drain(GcState& gc, gcWork& w) {
  workType& work = gc.work;
  // Only the helpers gc_mark_prepare started: making one here would allocate.
  const int n = std::min(nmarkworkers(), static_cast<int>(work.helpers.size()) + 1);
  if (n == 1 || w.stack.size() < 2) {
    drain(gc, w);
    return w.marked_bytes;
  }
  // Parallel: seed the shared list with half the roots' grey objects, start
  // the helpers and drain alongside them.
  {
    std::lock_guard<Lock> lk(work.fullLock);
    // A finished drain leaves the list empty; its batches are spares.
    work.nsleepers = 0;
    work.nwait = 0;
    work.nwaitHint.store(0, std::memory_order_relaxed);
    work.nmarking = n;
    work.markDone = false;
    handoff_half(work, w.stack);
  }
  for (int i = 0; i < n; i++) work.works[i].parallel = true;
  work.nhelping.store(n - 1, std::memory_order_relaxed);
  for (int i = 0; i < n - 1; i++) work.helpers[i]->start.wakeup();
  drain(gc, w);
  work.helpersDone.sleep();  // the last helper to finish wakes us
  work.helpersDone.clear();
  std::uint64_t total = 0;
  for (int i = 0; i < n; i++) {
    total += work.works[i].marked_bytes;
    work.works[i].parallel = false;
  }
  return total;
}

}  // namespace

namespace {

// kSliceBytes is how much the concurrent mark scans between looks at the
// scheduler: about a millisecond of marking.
constexpr std::int64_t kSliceBytes = 1 << 20;

// kPasses bounds the concurrent passes over written pages.
constexpr int kPasses = 4;

// mark_yield gives the P away if the scheduler wants it: a stop-the-world
// or sysmon asked for it (preempt; the collector is inside the runtime, so
// the preemption signal leaves it alone), or goroutines wait to run. The
// mark's state is in gcWork, not on this stack, so it can resume on any M.
void mark_yield() {
  G* g = getg();
  if (g->preempt.load(std::memory_order_relaxed)) {
    g->preempt.store(false, std::memory_order_relaxed);
    gopreempt();
    return;
  }
  // With several Ps the collector is a dedicated worker (Go's
  // gcBgMarkWorker in dedicated mode): one P marks, the others run the
  // program. With one P it shares it, a slice at a time.
  Runtime* r = rt();
  if (r->gomaxprocs.load(std::memory_order_relaxed) > 1) return;
  P* p = g->m->p;
  if ((p != nullptr && !runqempty(p)) || r->sched.runqsize.load(std::memory_order_relaxed) > 0)
    gosched();
}

// drain_slices empties w's stack a slice at a time, yielding between slices.
// (Draining in parallel with the helper threads instead, as in a pause, was
// measured: longer pauses and collections on 2 CPUs, the helpers competing
// with the program for the cores.)
void drain_slices(GcState& gc, gcWork& w) {
  while (!drain_local(gc, w, kSliceBytes)) mark_yield();
}

}  // namespace

std::atomic<std::uint32_t> gc_mark_gen{0};

void gc_note_ran(G* g, std::uint32_t gen) {
  workType& work = gcs().work;
  std::lock_guard<Lock> lk(work.ranLock);
  if (g->gcrangen.load(std::memory_order_relaxed) == gen) return;
  g->gcrangen.store(gen, std::memory_order_relaxed);
  work.ran.push_back(g);
}

// gc_mark_begin (world stopped) starts a concurrent mark: the goroutines
// running without a P (in blocking(), or hogs the preemption signal took
// the P from) go on the rescan list, since no status change will put them
// there; from now on every G that runs or is readied does (casgstatus).
void gc_mark_begin(G* self, std::uint32_t gen) {
  Runtime* r = rt();
  gc_mark_gen.store(gen, std::memory_order_relaxed);
  std::lock_guard<Lock> lk(r->sched.lock);
  for (M* m = r->sched.allm; m != nullptr; m = m->alllink) {
    G* g = m->curg.load(std::memory_order_acquire);
    if (g != nullptr && g != self) gc_note_ran(g, gen);
  }
}

// gc_mark_end (world stopped) stops adding to the rescan list.
void gc_mark_end() { gc_mark_gen.store(0, std::memory_order_relaxed); }

// gc_mark_concurrent is the concurrent part of a mark, world running,
// dirty-page tracking and the rescan list on (gc_cycle_locked set them up).
// The collecting goroutine is the one worker: it scans its caller's frames,
// the roots, the stacks of parked goroutines and what finalizable objects
// point to, drains, then rescans the stacks that ran and the pages written
// meanwhile (re-protecting them) until little is left for the pause. It is
// the only writer of mark bits (new objects are white), so it sets them
// without fetch_or.
void gc_mark_concurrent(G* self, const void* callers) {
  Runtime* r = rt();
  GcState& gc = *r->gc;
  const mheap& h = gc.heap;
  gcWork& w = gc.work.works[0];
  w.marked_bytes = 0;
  w.stack.clear();
  auto scan = [&](std::uintptr_t lo, std::uintptr_t hi) { scanblock(h, w, lo, hi); };
  // The callers of the runtime entry that asked for this cycle (collect()'s
  // caller holds what it allocated): user frames, which cannot change while
  // this goroutine marks; the pause rescans them with the rest of the stack.
  // Not this goroutine's runtime frames below them: they hold stale words
  // (sweep's, of objects queued for finalization) that would keep dead
  // objects alive.
  const auto top = reinterpret_cast<std::uintptr_t>(self->fiber.stack_hi);
  const auto from = reinterpret_cast<std::uintptr_t>(callers);
  if (from > reinterpret_cast<std::uintptr_t>(self->fiber.stack_lo) && from < top) scan(from, top);
  finq_lock();
  roots_lock_all();
  roots_for_each(scan);
  finq_for_each(scan);
  finq_specials_for_each([&](std::uintptr_t closure, std::uintptr_t lo, std::uintptr_t hi) {
    greyobject(h, w, closure);
    scanobject_except(h, w, lo, hi);
  });
  roots_unlock_all();
  finq_unlock();
  drain_slices(gc, w);
  // allgs only grows at its head, and a G made from now on runs (or is
  // readied) before it can hold anything, so it is on the rescan list:
  // walking from the head taken now needs no lock.
  G* head;
  {
    std::lock_guard<Lock> lk(r->allglock);
    head = r->allgs;
  }
  int n = 0;
  for (G* g = head; g != nullptr; g = g->alllink) {
    scan_g(h, w, g, self, true);
    if (++n % 256 == 0) drain_slices(gc, w);
  }
  {
    std::lock_guard<Lock> lk(gc.heap.lock);
    mark_finalizable(h, w);
  }
  drain_slices(gc, w);
  // What the program wrote meanwhile, concurrently: the stacks that ran and
  // the written pages (protecting them again), so that mark termination
  // finds only what changes after this pass. A pass costs the program a
  // fault on each re-protected page it writes again, so passes stop when
  // little was found.
  for (int pass = 0; pass < kPasses; pass++) {
    const std::uint64_t before = w.marked_bytes;
    for (std::size_t i = 0;; i++) {
      G* g;
      {
        std::lock_guard<Lock> lk(gc.work.ranLock);  // the list may grow (and move) meanwhile
        if (i >= gc.work.ran.size()) break;
        g = gc.work.ran[i];
      }
      scan_g(h, w, g, self, true);
    }
    const std::uint64_t written = rescan_dirty(gc, w, true);
    drain_slices(gc, w);
    if (w.marked_bytes - before < (std::uint64_t(128) << 10) && written < (std::uint64_t(4) << 20)) break;
  }
}

std::atomic<int> gc_nomalloc_window{0};

// gc_mark_prepare starts the helper threads the next mark will use, before
// the world stops: creating a thread allocates (sysalloc.hpp says why the
// mark must not).
void gc_mark_prepare(GcState& gc) {
  workType& work = gc.work;
  const int n = nmarkworkers();
  while (static_cast<int>(work.helpers.size()) < n - 1) {
    const int id = static_cast<int>(work.helpers.size()) + 1;
    auto h = std::make_unique<markHelper>();
    h->thread = std::thread(helper_loop, &gc, h.get(), id);
    work.helpers.push_back(std::move(h));
  }
}

// gc_mark_stop_helpers ends the helper threads (teardown: ~GcState).
void gc_mark_stop_helpers(workType& work) {
  work.helpersQuit.store(true, std::memory_order_release);
  for (auto& h : work.helpers) h->start.wakeup();
  for (auto& h : work.helpers) h->thread.join();
  work.helpers.clear();
}

// scrub_stack_below zeroes the stack just below the caller's frame. A
// conservative scan of a goroutine's stack reads every word between its
// saved context (or the collector's own frame) and the top, the
// uninitialised slots of live frames included, so a pointer that a returned
// frame left there keeps its object alive until something overwrites it.
// Where the runtime itself has just handled dead objects on a user's stack
// (sweep queueing finalizable ones, the finalizer goroutine running one),
// it scrubs before the stack is scanned next: a finalized object found
// there would stay alive cycle after cycle, and everything it points to
// with it, so Go's order (A first, then B) would stall. Not instrumented by
// ASan: an instrumented frame puts buf under a redzone and leaves the top
// few hundred bytes unwritten, and ASan's frames are larger, so the region
// is too.
[[gnu::noinline, gnu::no_sanitize_address]] void scrub_stack_below() {
  volatile char buf[GORO_ASAN ? 12288 : 3072];
  for (std::size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}

}  // namespace goro::detail
