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
//   - the root registry (Root<T>, channel buffers, gc_add_root);
//   - the last 256 objects allocated without a P (malloc.cpp noprecent): a
//     goroutine in blocking() is not stopped, and holds a new object only in
//     a register until it stores it;
//   - the finalizer queue, and what objects with pending finalizers point
//     to (not the objects themselves: mark_finalizable, Go's markrootSpans).
//
// Parallel marking: the collecting goroutine scans the roots, then it and
// min(GOMAXPROCS, CPUs, 8) - 1 helper threads drain together. Each worker has
// its own mark stack; one with a long stack, seeing others idle, gives half
// to a shared list (Go's work.full) from which idle workers take. Greying is
// a fetch_or then, so of two workers racing on an object exactly one pushes
// it. The mark ends when all workers wait on an empty list. With one worker
// the mark bit is set with a plain load/store (no locked instruction).
//
// Invariants:
//   - Only allocated slots are marked (allocBits checked), so sweep never
//     resurrects a free slot.
//   - A marked object in a scan span is pushed exactly once.
//   - The root scan holds finlock, allglock and rootlock (in rank order),
//     taken after the hogs are suspended, then mheap.lock alone for the
//     finalizable objects; the drain holds none.
#include <algorithm>
#include <condition_variable>
#include <thread>

#include "gc/malloc.hpp"
#include "runtime/config.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

namespace {

#define GORO_NO_SANITIZE __attribute__((no_sanitize("address", "thread"), noinline))

// gcWork is one worker's mark stack (a vector of object bases).
struct Grey {
  std::uintptr_t obj, size;
};

struct alignas(64) gcWork {
  std::vector<Grey> stack;
  std::uint64_t marked_bytes = 0;
  bool parallel = false;  // other workers mark too: set bits with fetch_or
};

constexpr int maxMarkWorkers = 8;
gcWork works[maxMarkWorkers];

// The shared work list (Go's work.full): batches of grey objects a worker
// with plenty gives away for idle workers to take. Guarded by wlock.
std::mutex wlock;
std::condition_variable wcv;
std::vector<std::vector<Grey>> wfull;
int nwait = 0;     // workers waiting for a batch
int nmarking = 0;  // workers in this drain
bool mark_done = false;
std::atomic<int> nwait_hint{0};  // nwait, readable without wlock

// The helper threads (gcBgMarkWorker, as threads: the world is stopped, so
// no M is free to run a goroutine). Guarded by hlock.
std::mutex hlock;
std::condition_variable hcv, hdone;
std::vector<std::thread> helpers;
std::uint64_t hepoch = 0;
int hrunning = 0;
bool hquit = false;

inline void greyobject(gcWork& w, std::uintptr_t p) {
  mspan* s = spanOf(p);
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

GORO_NO_SANITIZE void scanblock(gcWork& w, std::uintptr_t lo, std::uintptr_t hi) {
  lo = (lo + 7) & ~std::uintptr_t(7);
  const std::uintptr_t alo = mheap_.arena_lo;
  const std::uintptr_t ahi = mheap_.arena_used.load(std::memory_order_relaxed);
  for (std::uintptr_t a = lo; a + 8 <= hi; a += 8) {
    const std::uintptr_t v = *reinterpret_cast<const volatile std::uintptr_t*>(a);
    if (v >= alo && v < ahi) greyobject(w, v);
  }
}

// drain_local scans grey objects until w's own stack is empty. Objects pass
// through a small FIFO between the stack and the scan: each is prefetched
// when it enters, so its cache miss overlaps the scanning of the ones ahead
// of it (marking is bound by memory latency). With other workers waiting,
// half of a long stack is handed to the shared list.
void drain_local(gcWork& w) {
  constexpr unsigned kAhead = 8;
  Grey ring[kAhead];
  unsigned head = 0, n = 0;
  for (;;) {
    while (n < kAhead && !w.stack.empty()) {
      const Grey g = w.stack.back();
      w.stack.pop_back();
      __builtin_prefetch(reinterpret_cast<const void*>(g.obj));
      ring[(head + n) % kAhead] = g;
      n++;
    }
    if (n == 0) return;
    const Grey g = ring[head];
    head = (head + 1) % kAhead;
    n--;
    scanblock(w, g.obj, g.obj + g.size);
    if (w.parallel && w.stack.size() >= 64 && nwait_hint.load(std::memory_order_relaxed) > 0) {
      const std::size_t half = w.stack.size() / 2;
      std::vector<Grey> batch(w.stack.begin(), w.stack.begin() + static_cast<std::ptrdiff_t>(half));
      w.stack.erase(w.stack.begin(), w.stack.begin() + static_cast<std::ptrdiff_t>(half));
      std::lock_guard<std::mutex> lk(wlock);
      wfull.push_back(std::move(batch));
      wcv.notify_one();
    }
  }
}

// drain is gcDrain: scan locally, then take batches from the shared list;
// the mark ends when every worker waits and the list is empty.
void drain(gcWork& w) {
  if (!w.parallel) {
    drain_local(w);
    return;
  }
  for (;;) {
    drain_local(w);
    std::unique_lock<std::mutex> lk(wlock);
    nwait++;
    nwait_hint.store(nwait, std::memory_order_relaxed);
    while (wfull.empty() && !mark_done) {
      if (nwait == nmarking) {
        mark_done = true;
        wcv.notify_all();
        break;
      }
      wcv.wait(lk);
    }
    if (mark_done) return;
    nwait--;
    nwait_hint.store(nwait, std::memory_order_relaxed);
    w.stack.swap(wfull.back());
    wfull.pop_back();
  }
}

void helper_loop(int id) {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(hlock);
      hcv.wait(lk, [&] { return hquit || hepoch != seen; });
      if (hquit) return;
      seen = hepoch;
    }
    gcWork& w = works[id];
    w.marked_bytes = 0;
    drain(w);
    std::lock_guard<std::mutex> lk(hlock);
    if (--hrunning == 0) hdone.notify_all();
  }
}

// nmarkworkers: how many threads mark (GOMAXPROCS, the CPUs, at most 8).
int nmarkworkers() {
  int n = std::min(rt()->gomaxprocs.load(std::memory_order_relaxed), ncpu());
  return std::max(1, std::min(n, maxMarkWorkers));
}

GORO_NO_SANITIZE void scan_g(gcWork& w, G* g, G* self) {
  const Gstatus st = g->status.load(std::memory_order_acquire);
  if (g == self || st == Gstatus::dead || st == Gstatus::idle) return;
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
  scanblock(w, lo, hi);
}

// scanobject_except scans [lo, hi) but greys nothing inside [lo, hi) itself:
// an object's pointers into its own memory (a std::string's small buffer,
// a list's sentinel) must not keep it alive.
GORO_NO_SANITIZE void scanobject_except(gcWork& w, std::uintptr_t lo, std::uintptr_t hi) {
  const std::uintptr_t alo = mheap_.arena_lo;
  const std::uintptr_t ahi = mheap_.arena_used.load(std::memory_order_relaxed);
  for (std::uintptr_t a = lo; a + 8 <= hi; a += 8) {
    const std::uintptr_t v = *reinterpret_cast<const volatile std::uintptr_t*>(a);
    if (v >= alo && v < ahi && (v < lo || v >= hi)) greyobject(w, v);
  }
}

// mark_finalizable is Go's markrootSpans: everything an object with a
// pending finalizer points to is live, but not the object itself. So of A
// and B dying together with A pointing to B, only A is found dead this
// cycle, and its finalizer (~A, or set_finalizer's fn) runs while B is
// still whole; B dies in a later cycle (mfinal.cpp). World stopped,
// mheap.lock held; every span is swept, so allocBits and dtorBits are this
// cycle's.
void mark_finalizable(gcWork& w) {
  for (mspan* s : mheap_.allspans) {
    if (!s->inuse || !s->hasdtor || s->noscan) continue;
    for (std::size_t k = 0; k < bitWords; k++) {
      for (std::uint64_t b = s->dtorBits[k] & s->allocBits[k]; b != 0; b &= b - 1) {
        const std::uintptr_t slot = s->base + (k * 64 + __builtin_ctzll(b)) * s->elemsize;
        scanobject_except(w, slot, slot + s->elemsize);
      }
    }
  }
}

// scan_self scans the collecting goroutine's own stack from here up, after
// forcing its callee-saved registers into this frame.
GORO_NO_SANITIZE void scan_self(gcWork& w, G* self) {
  __builtin_unwind_init();
  void* volatile sp = __builtin_frame_address(0);
  scanblock(w, reinterpret_cast<std::uintptr_t>(sp) - 256,
            reinterpret_cast<std::uintptr_t>(self->fiber.stack_hi));
}

}  // namespace

namespace {
std::uint64_t mark_drain(gcWork& w);
}  // namespace

namespace {

// scrub_below zeroes the stack just below the caller's frame. The
// collecting goroutine has just swept (finish_sweep) on this same stack,
// and sweep's frames hold the addresses of the objects it queued for
// finalization; scan_self scans the frames that will overlay them,
// uninitialised slots included. A finalized object found there would be kept
// alive cycle after cycle (nothing else writes those slots), and with it
// everything it points to: Go's order (A first, then B) would stall.
[[gnu::noinline]] void scrub_below() {
  volatile char buf[3072];
  for (std::size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}

std::uint64_t mark_roots_and_heap(G* self);

}  // namespace

// gc_mark_roots_and_heap marks everything reachable (world stopped) and
// returns the bytes marked. A small frame over the mark's, so that the
// scrubbed region is where the mark's frames go.
std::uint64_t gc_mark_roots_and_heap(G* self) {
  scrub_below();
  return mark_roots_and_heap(self);
}

namespace {

[[gnu::noinline]] std::uint64_t mark_roots_and_heap(G* self) {
  gcWork& w = works[0];
  w.marked_bytes = 0;
  w.stack.clear();
  Runtime* r = rt();
  // Goroutines that lost their P to the preemption signal still run: stop
  // them (sched/preempt.cpp suspend_hogs: a signal whose handler saves the
  // registers and waits, as Boehm GC's). It only suspends a thread outside
  // goro's code and the libraries goro calls, so a suspended hog holds none
  // of the locks taken below; take them only afterwards.
  static M* hogs[10000];  // sched.maxmcount; one cycle at a time (gcsema)
  const int nhogs = std::min(suspend_hogs(hogs, 10000), 10000);
  finq_lock();
  r->allglock.lock();
  roots_lock();
  scan_self(w, self);
  for (G* g = r->allgs; g != nullptr; g = g->alllink) scan_g(w, g, self);
  roots_for_each([&](std::uintptr_t lo, std::uintptr_t hi) { scanblock(w, lo, hi); });
  finq_for_each([&](std::uintptr_t lo, std::uintptr_t hi) { scanblock(w, lo, hi); });
  // set_finalizer's pending finalizers: the closure (fn's captures) is a
  // root; the object is scanned as in mark_finalizable.
  finq_specials_for_each([&](std::uintptr_t closure, std::uintptr_t lo, std::uintptr_t hi) {
    greyobject(w, closure);
    scanobject_except(w, lo, hi);
  });
  noplock_recent_for_each([&](std::uintptr_t lo, std::uintptr_t hi) { scanblock(w, lo, hi); });
  for (int i = 0; i < nhogs; i++) {
    const auto lo = reinterpret_cast<std::uintptr_t>(&hogs[i]->suspend_regs[0]);
    scanblock(w, lo, lo + sizeof hogs[i]->suspend_regs);
  }
  roots_unlock();
  r->allglock.unlock();
  finq_unlock();
  // After scan_self, not before: mark_finalizable's frames leave the
  // finalizable objects' addresses on this stack, just below the frame that
  // scan_self scans from, and would keep every one of them alive.
  {
    std::lock_guard<std::mutex> lk(mheap_.lock);
    mark_finalizable(w);
  }
  const std::uint64_t marked = mark_drain(w);
  resume_hogs(hogs, nhogs);
  return marked;
}

// mark_drain empties the mark stacks, in parallel when there are CPUs for it.
std::uint64_t mark_drain(gcWork& w) {
  const int n = nmarkworkers();
  if (n == 1 || w.stack.size() < 2) {
    drain(w);
    return w.marked_bytes;
  }
  // Parallel: seed the shared list with half the roots' grey objects, start
  // the helpers and drain alongside them.
  {
    std::lock_guard<std::mutex> lk(hlock);
    while (static_cast<int>(helpers.size()) < n - 1) {
      const int id = static_cast<int>(helpers.size()) + 1;
      helpers.emplace_back(helper_loop, id);
    }
  }
  {
    std::lock_guard<std::mutex> lk(wlock);
    wfull.clear();
    nwait = 0;
    nwait_hint.store(0, std::memory_order_relaxed);
    nmarking = n;
    mark_done = false;
    const std::size_t half = w.stack.size() / 2;
    wfull.emplace_back(w.stack.begin(), w.stack.begin() + static_cast<std::ptrdiff_t>(half));
    w.stack.erase(w.stack.begin(), w.stack.begin() + static_cast<std::ptrdiff_t>(half));
  }
  for (int i = 0; i < n; i++) works[i].parallel = true;
  {
    std::lock_guard<std::mutex> lk(hlock);
    hrunning = n - 1;
    hepoch++;
    hcv.notify_all();
  }
  drain(w);
  {
    std::unique_lock<std::mutex> lk(hlock);
    hdone.wait(lk, [] { return hrunning == 0; });
  }
  std::uint64_t total = 0;
  for (int i = 0; i < n; i++) {
    total += works[i].marked_bytes;
    works[i].parallel = false;
  }
  return total;
}

}  // namespace

// gc_mark_stop_helpers ends the helper threads (teardown).
void gc_mark_stop_helpers() {
  {
    std::lock_guard<std::mutex> lk(hlock);
    hquit = true;
    hcv.notify_all();
  }
  for (std::thread& t : helpers) t.join();
  std::lock_guard<std::mutex> lk(hlock);
  helpers.clear();
  hquit = false;
  hepoch = 0;
}

}  // namespace goro::detail
