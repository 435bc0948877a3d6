// mgcsweep.cpp — gcSweep: turning mark bits into free slots, after the world
// has started again (Go's mgcsweep.go).
//
// Mark termination moves every span onto an unswept list (per mcentral, plus
// mheap.large_unswept) in O(number of size classes), never touching the spans
// themselves: the pause does no per-span work. Spans are then swept by
//   - the allocating goroutine that needs a span of that class (lazy sweep,
//     mcache refill -> cacheSpan),
//   - the background sweeper goroutine (bgsweep), woken after each cycle,
//   - the goroutine starting the next cycle, which finishes whatever is left
//     before it stops the world (Go's sweep termination, here outside the
//     pause because nothing new becomes unswept until the next mark).
// Whoever pops a span off an unswept list owns it until it puts it on
// partial/full or frees it; sweep.inflight counts those in hand.
//
// Sweeping a span: a slot that is allocated but not marked is dead. A dead
// slot with a set_finalizer finalizer, or else a destructor (dtorBits), is not freed: it is queued for the
// finalizer goroutine and kept (its mark bit is treated as set, its dtor bit
// cleared), so it is freed by a later cycle once ~T has run and nothing
// points at it. Otherwise allocBits = gcmarkBits (the live set becomes the
// allocated set, Go's trick), gcmarkBits are cleared for the next cycle, and
// dead slots are poisoned under ASan. An empty span goes back to the mheap.
//
// Invariants:
//   - A span is swept at most once per cycle, by the one who popped it.
//   - After finish_sweep returns (and sweep.inflight is 0) no span has a
//     non-zero gcmarkBits word.
//   - The sweeper's state is the run's (GcState::sweep): a new run() starts
//     with no sweeper and nothing in flight.
#include "gc/malloc.hpp"
#include "gc/mgc.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

#if GORO_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace goro::detail {

namespace {

void place(mheap& h, mspan* s) {
  mcentral& c = h.central[s->spanclass];
  std::lock_guard<Lock> lk(c.lock);
  if (s->allocCount < s->nelems)
    c.partial.push(s);
  else
    c.full.push(s);
}

}  // namespace

// sweepspan sweeps s, which the caller owns. preserve: keep s even if it
// turns out empty (the caller is about to allocate from it). Returns false if
// s went back to the mheap. A kept small span is NOT placed on any list; a
// kept large span is put back on mheap.large.
bool sweepspan(mspan* s, bool preserve) {
  std::uint64_t nfreed = 0;
  std::uint32_t count = 0;
  for (std::size_t w = 0; w < bitWords; w++) {
    const std::uint64_t alloc = s->allocBits[w];
    std::uint64_t mark = s->gcmarkBits[w].load(std::memory_order_relaxed);
    std::uint64_t dead = alloc & ~mark;
    if (dead == 0 && alloc == 0) continue;
    // A dead object with a set_finalizer finalizer is queued and kept; its
    // destructor (if any) waits for a later cycle (mfinal.cpp).
    if (dead != 0 && finq_have_specials()) finq_sweep_specials(s, w, &dead, &mark);
    if (s->hasdtor) {
      std::uint64_t fin = dead & s->dtorBits[w];
      s->dtorBits[w] &= ~fin;
      mark |= fin;
      dead &= ~fin;
      while (fin != 0) {
        const int b = __builtin_ctzll(fin);
        fin &= fin - 1;
        finq_push(reinterpret_cast<void*>(s->base + (w * 64 + b) * s->elemsize));
      }
    }
#if GORO_ASAN
    for (std::uint64_t d = dead; d != 0; d &= d - 1) {
      const std::size_t i = w * 64 + __builtin_ctzll(d);
      ASAN_POISON_MEMORY_REGION(reinterpret_cast<void*>(s->base + i * s->elemsize), s->elemsize);
    }
#endif
    nfreed += __builtin_popcountll(dead);
    s->allocBits[w] = mark;
    s->gcmarkBits[w].store(0, std::memory_order_relaxed);
    count += __builtin_popcountll(mark);
  }
  s->allocCount = count;
  s->freeindex = 0;
  mheap& h = mheap_();
  if (nfreed != 0) {
    s->needzero = true;
    h.nfree.fetch_add(nfreed, std::memory_order_relaxed);
    h.freed_bytes.fetch_add(nfreed * s->elemsize, std::memory_order_relaxed);
  }
  if (count == 0 && !preserve) {
    mheap_free(s);
    return false;
  }
  if (s->large) {
    std::lock_guard<Lock> lk(h.lock);
    h.large.push(s);
  }
  return true;
}

// sweepone sweeps one span from any unswept list; false when none is left.
bool sweepone() {
  GcState& gc = gcs();
  mheap& h = gc.heap;
  std::atomic<int>& inflight = gc.sweep.inflight;
  for (int sc = 2; sc < numSpanClasses; sc++) {
    mcentral& c = h.central[sc];
    mspan* s;
    {
      std::lock_guard<Lock> lk(c.lock);
      s = c.unswept.pop();
      if (s == nullptr) continue;
      inflight.fetch_add(1, std::memory_order_acq_rel);
    }
    if (sweepspan(s, false)) place(h, s);
    inflight.fetch_sub(1, std::memory_order_acq_rel);
    return true;
  }
  mspan* s;
  {
    std::lock_guard<Lock> lk(h.lock);
    s = h.large_unswept.pop();
    if (s == nullptr) return false;
    inflight.fetch_add(1, std::memory_order_acq_rel);
  }
  sweepspan(s, false);
  inflight.fetch_sub(1, std::memory_order_acq_rel);
  return true;
}

// finish_sweep sweeps everything still unswept, then waits for sweeps other
// goroutines have in hand (they are short and never park).
void finish_sweep() {
  while (sweepone()) {
  }
  // sweepone's frames held the objects it queued for finalization; this
  // goroutine may park (below) or return to a collect() caller that parks.
  scrub_stack_below();
  while (gcs().sweep.inflight.load(std::memory_order_acquire) != 0) gosched();
}

void sweeper_wake() {
  sweepState& sw = gcs().sweep;
  G* g = nullptr;
  {
    std::lock_guard<Lock> lk(sw.lock);
    sw.pending = true;
    if (sw.parked) {
      sw.parked = false;
      g = sw.g;
    }
  }
  if (g != nullptr) goready(g);
}

// bgsweep is the background sweeper goroutine: it sweeps one span at a time,
// a safepoint between spans, then returns long-free memory to the OS.
void bgsweep() {
  GcState& gc = gcs();
  sweepState& sw = gc.sweep;
  {
    std::lock_guard<Lock> lk(sw.lock);
    sw.g = getg();
  }
  for (;;) {
    // One Entry per span: opening it is the safepoint between spans.
    for (int n = 1;; n++) {
      Entry e("goro GC sweeper");
      if (!sweepone()) break;
      if (n % 64 == 0) gosched();
    }
    Entry e("goro GC sweeper");
    mheap_scavenge(gc.work.cycles.load(std::memory_order_relaxed));
    sw.lock.lock();
    if (sw.pending) {
      sw.pending = false;
      sw.lock.unlock();
      continue;
    }
    sw.parked = true;
    goparkunlock(&sw.lock, WaitReason::gc_sweep_wait);
  }
}

}  // namespace goro::detail
