// mgc.cpp — the collector's cycle, its pacing and its public API (Go's
// mgc.go, mgcpacer.go, and the forcegc part of proc.go).
//
// A cycle (gcStart .. gcMarkTermination, stop-the-world flavour):
//   1. Sweep termination, world running: the starting goroutine sweeps
//      whatever the previous cycle left unswept (usually nothing: the
//      background sweeper got there first).
//   2. stop_the_world("GC"); take noplock so that P-less goroutines (inside
//      blocking(), or hogs the preemption signal took the P from) cannot
//      allocate while the heap is inspected.
//   3. Run the cleanup hooks, in registration order (sync.Pool drops its
//      caches here, as Go's poolCleanup does).
//   4. Return every mcache's spans to their mcentrals and mark from the roots
//      (mgcmark.cpp).
//   5. Move every span onto an unswept list (a few list splices), set the next
//      goal, release noplock and start_the_world.
//   6. Wake the background sweeper; print the gctrace line.
// The pause therefore costs the mark plus O(P + size classes), never a sweep.
//
// Pacing (gcController): after a cycle that marked `live` bytes the next one
// starts when heap_live reaches live * (1 + GOGC/100), and never before 4 MiB.
// heap_live grows when an mcache takes a span (by the span's free bytes) or a
// large object is allocated; the check happens in the allocation slow path,
// and the allocating goroutine runs the cycle itself. Goroutines that arrive
// while a cycle is running wait on gcsema and, finding num_gc moved on,
// carry on allocating. GOGC < 0 turns this off; collect() still runs.
//
// forcegc: a helper goroutine parks (force_gc_idle); sysmon readies it when
// no cycle ran for cfg.forcegc_ms (Go: forcegcperiod, 2 minutes).
//
// Invariants:
//   - One cycle at a time (gcsema); cycles are numbered by num_gc.
//   - gc_marking is true only with the world stopped and noplock held.
//   - next_gc >= heapMinimum whenever gc_percent >= 0.
#include <cstdio>
#include <map>

#include "gc/malloc.hpp"
#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

std::atomic<bool> gc_marking{false};
std::atomic<std::uint64_t> gc_cycle{0};
std::atomic<std::uint64_t> next_gc{0};
std::atomic<int> gc_percent_{100};

namespace {

constexpr std::uint64_t heapMinimum = 4 << 20;

std::atomic<std::uint64_t> heap_marked{0};  // live bytes found by the last mark
std::atomic<G*> gc_owner{nullptr};          // the goroutine running a cycle

std::atomic<std::uint32_t> gcsema{1};
std::atomic<bool> workers_started{false};
std::atomic<bool> heap_ready{false};
std::atomic<std::int64_t> last_gc_ns{0};
std::uint64_t pause_total_ns = 0;  // under gcsema
std::uint64_t pause_ns[256] = {};  // PauseNs ring, by cycle
std::int64_t gc_cpu_ns = 0;        // sum of cycle durations, for gctrace's P%

// The cleanup hooks.
std::mutex hooklock;
std::vector<std::pair<gc::HookId, std::function<void()>>> hooks;
gc::HookId nexthook = 1;

// The root registry: Roots, channel buffers, gc_add_root.
std::mutex rootlock;
std::map<const void*, std::size_t>& roots() {
  static std::map<const void*, std::size_t> m;
  return m;
}

// forcegc helper state.
Lock fglock{LockRank::sema};
bool fg_idle = false;
G* fg = nullptr;

// unlock_mutex is gopark's unlockf: the lock is released on g0, after the
// goroutine is switched out (a goroutine-aware Lock, not a std::mutex, since
// ThreadSanitizer sees g0 and the goroutine as different threads).
bool unlock_mutex(G*, void* l) {
  static_cast<Lock*>(l)->unlock();
  return true;
}

void set_goal(std::uint64_t live) {
  const int pct = gc_percent_.load(std::memory_order_relaxed);
  std::uint64_t goal =
      pct < 0 ? ~std::uint64_t(0) : live + live * static_cast<std::uint64_t>(pct) / 100;
  if (pct >= 0 && goal < heapMinimum) goal = heapMinimum;
  next_gc.store(goal, std::memory_order_relaxed);
}

// gc_cycle_locked runs one cycle; gcsema held, on a goroutine with a P.
void gc_cycle_locked(bool forced) {
  gc_start_workers();
  gc_owner.store(getg(), std::memory_order_relaxed);
  const std::int64_t t0 = nanotime();
  finish_sweep();
  // Sweeping calls into the sanitizers' runtime and madvise: the preemption
  // signal may have taken our P meanwhile. Get one back before stopping.
  safepoint(getg());
  // main has returned: the other Ms are leaving and would never stop.
  if (rt()->sched.exiting.load(std::memory_order_acquire)) {
    gc_owner.store(nullptr, std::memory_order_relaxed);
    return;
  }
  const std::int64_t t1 = nanotime();
  stop_the_world("GC");
  gc_noplock_acquire();
  gc_marking.store(true, std::memory_order_relaxed);
  const std::int64_t t2 = nanotime();
  {
    std::lock_guard<std::mutex> lk(hooklock);
    for (auto& h : hooks) h.second();
  }
  const std::int64_t t2h = trace_on ? nanotime() : 0;
  // Anything left unswept (a span popped mid-race) is swept now: rare.
  while (sweepone()) {
  }
  mcache_release_all();
  const std::uint64_t heap0 = mheap_.heap_live.load(std::memory_order_relaxed);
  const std::uint64_t marked = gc_mark_roots_and_heap(getg());
  for (mcentral& c : mheap_.central) {
    std::lock_guard<std::mutex> lk(c.lock);
    c.unswept.splice(c.partial);
    c.unswept.splice(c.full);
  }
  {
    std::lock_guard<std::mutex> lk(mheap_.lock);
    mheap_.large_unswept.splice(mheap_.large);
  }
  const std::uint64_t n = gc_cycle.fetch_add(1, std::memory_order_relaxed) + 1;
  mheap_.heap_live.store(marked, std::memory_order_relaxed);
  heap_marked.store(marked, std::memory_order_relaxed);
  set_goal(marked);
  gc_marking.store(false, std::memory_order_relaxed);
  gc_noplock_release();
  const std::int64_t t3 = nanotime();
  start_the_world();
  const std::int64_t t4 = nanotime();
  if (trace_on) {
    // The phases as slices on the GC track, the heap as counters.
    const auto cyc = static_cast<std::int64_t>(n);
    const std::uint64_t gid = getg()->goid;
    trace_emit(TraceKind::gc_phase, gid, -1, cyc, 0, 0, "GC sweep termination", t0, t1 - t0);
    trace_emit(TraceKind::gc_phase, gid, -1, cyc, 0, 0, "GC cleanup hooks", t2, t2h - t2);
    trace_emit(TraceKind::gc_phase, gid, -1, cyc, 0, 0, "GC mark", t2h, t3 - t2h);
    trace_emit(TraceKind::counter, 0, -1, static_cast<std::int64_t>(heap0), 0, 0, "heap live", t1);
    trace_emit(TraceKind::counter, 0, -1, static_cast<std::int64_t>(marked), 0, 0, "heap live", t3);
    trace_emit(TraceKind::counter, 0, -1, static_cast<std::int64_t>(next_gc.load(std::memory_order_relaxed)), 0,
               0, "heap goal", t3);
  }
  const auto pause = static_cast<std::uint64_t>(t4 - t1);
  pause_ns[(n - 1) % 256] = pause;
  pause_total_ns += pause;
  gc_cpu_ns += t4 - t0;
  last_gc_ns.store(t4, std::memory_order_relaxed);
  gc_owner.store(nullptr, std::memory_order_relaxed);
  sweeper_wake();
  Runtime* r = rt();
  if (r->cfg.gctrace) {
    const double since = static_cast<double>(t0 - r->start_time) / 1e9;
    const int pct =
        static_cast<int>(100 * gc_cpu_ns / std::max<std::int64_t>(1, t4 - r->start_time));
    std::fprintf(
        stderr,
        "gc %llu @%.3fs %d%%: %.3f+%.3f+%.3f ms clock, %llu->%llu->%llu MB, %llu MB goal, %d P%s\n",
        static_cast<unsigned long long>(n), since, pct, (t2 - t0) / 1e6, (t3 - t2) / 1e6,
        (t4 - t3) / 1e6, static_cast<unsigned long long>(heap0 >> 20),
        static_cast<unsigned long long>(heap0 >> 20), static_cast<unsigned long long>(marked >> 20),
        static_cast<unsigned long long>(next_gc.load() >> 20), r->gomaxprocs.load(),
        forced ? " (forced)" : "");
  }
}

void forcegchelper() {
  {
    std::lock_guard<Lock> lk(fglock);
    fg = getg();
  }
  for (;;) {
    safepoint(getg());
    fglock.lock();
    fg_idle = true;
    gopark(unlock_mutex, &fglock, WaitReason::force_gc_idle);
    if (gc_percent_.load(std::memory_order_relaxed) < 0) continue;
    semacquire(&gcsema, false, WaitReason::gc_stop_the_world);
    gc_cycle_locked(true);
    semrelease(&gcsema, false);
  }
}

}  // namespace

void go_system(void (*fn)()) {
  goro::go([fn] { fn(); });
  rt()->sched.ngsys.fetch_add(1, std::memory_order_relaxed);
}

// gc_start_workers starts the background sweeper, the finalizer goroutine and
// the forcegc helper, once per run, from the first goroutine that allocates.
void gc_start_workers() {
  bool f = false;
  if (workers_started.load(std::memory_order_relaxed) ||
      !workers_started.compare_exchange_strong(f, true))
    return;
  go_system(bgsweep);
  go_system(runfinq);
  go_system(forcegchelper);
}

// gc_maybe_trigger runs a cycle if the heap reached its goal (gcTrigger.test).
void gc_maybe_trigger() {
  M* m = getm();
  if (m->p == nullptr || m->locks > 0) {
    return;  // cannot stop the world from here
  }
  if (!workers_started.load(std::memory_order_relaxed)) gc_start_workers();
  if (gc_owner.load(std::memory_order_relaxed) == m->curg.load(std::memory_order_relaxed)) return;
  if (gc_percent_.load(std::memory_order_relaxed) < 0) return;
  if (mheap_.heap_live.load(std::memory_order_relaxed) < next_gc.load(std::memory_order_relaxed))
    return;
  if (rt()->sched.exiting.load(std::memory_order_relaxed)) return;
  const std::uint64_t n = gc_cycle.load(std::memory_order_relaxed);
  semacquire(&gcsema, false, WaitReason::gc_stop_the_world);
  if (gc_cycle.load(std::memory_order_relaxed) == n &&
      mheap_.heap_live.load(std::memory_order_relaxed) >= next_gc.load(std::memory_order_relaxed))
    gc_cycle_locked(false);
  semrelease(&gcsema, false);
}

// gc_sysmon_check: sysmon's forcegc test (no cycle for forcegc_ms).
void gc_sysmon_check(Runtime* r, std::int64_t now) {
  if (!heap_ready.load(std::memory_order_relaxed) ||
      gc_percent_.load(std::memory_order_relaxed) < 0)
    return;
  if (now - last_gc_ns.load(std::memory_order_relaxed) < r->cfg.forcegc_ms * 1000000) return;
  G* g = nullptr;
  {
    std::lock_guard<Lock> lk(fglock);
    if (fg_idle) {
      fg_idle = false;
      g = fg;
    }
  }
  if (g != nullptr) {
    last_gc_ns.store(now, std::memory_order_relaxed);  // one kick per period
    goready(g);
  }
}

void gc_init(Runtime* r) {
  if (!mheap_init()) fatal("gc: cannot reserve the heap arena");
  int pct = r->cfg.gc_percent;
  gc_percent_.store(pct, std::memory_order_relaxed);
  gc_cycle.store(0, std::memory_order_relaxed);
  pause_total_ns = 0;
  for (auto& p : pause_ns) p = 0;
  gc_cpu_ns = 0;
  heap_marked.store(0, std::memory_order_relaxed);
  gc_owner.store(nullptr, std::memory_order_relaxed);
  set_goal(0);
  workers_started.store(false, std::memory_order_relaxed);
  last_gc_ns.store(r->start_time, std::memory_order_relaxed);
  {
    std::lock_guard<Lock> lk(fglock);
    fg = nullptr;
    fg_idle = false;
  }
  finq_reset();
  sweep_reset();
  heap_ready.store(true, std::memory_order_release);
}

void gc_teardown(Runtime*) {
  heap_ready.store(false, std::memory_order_release);
  gc_mark_stop_helpers();
  finq_reset();
  mcache_free_all();
  mheap_release();
}

// --- the registry of extra roots ---

void gc_add_root(const void* p, std::size_t len) {
  std::lock_guard<std::mutex> lk(rootlock);
  roots()[p] = len;
}

void gc_remove_root(const void* p) {
  std::lock_guard<std::mutex> lk(rootlock);
  roots().erase(p);
}

void roots_lock() {
  rootlock.lock();
}
void roots_unlock() {
  rootlock.unlock();
}

void roots_for_each(const std::function<void(std::uintptr_t, std::uintptr_t)>& fn) {
  for (auto& [p, len] : roots()) {
    const auto lo = reinterpret_cast<std::uintptr_t>(p);
    fn(lo, lo + len);
  }
}

bool gc_is_object_start(const void* ptr) {
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  if (!heap_ready.load(std::memory_order_acquire)) return false;
  mspan* s = spanOf(p);
  if (s == nullptr) return false;
  const std::size_t i = s->objindex(p);
  if (i >= s->nelems || !s->isAllocated(i)) return false;
  const std::uintptr_t slot = s->base + i * s->elemsize;
  const bool dtor = (s->dtorBits[i / 64] >> (i % 64)) & 1;
  return dtor ? p == slot + dtorHeader : p == slot;
}

std::uint64_t gc_pause_ns(std::uint64_t n) {
  const std::uint64_t cur = gc_cycle.load(std::memory_order_relaxed);
  if (n == 0 || n > cur || n + 256 <= cur) return 0;
  return pause_ns[(n - 1) % 256];
}

}  // namespace goro::detail

namespace goro::gc {

using namespace goro::detail;

void collect() {
  require_g("goro::gc::collect");
  safepoint(getg());  // user code before us may have lost the P to the preemption signal
  semacquire(&gcsema, false, WaitReason::gc_stop_the_world);
  gc_cycle_locked(true);
  semrelease(&gcsema, false);
  // Like runtime.GC, return with the heap swept: the statistics are final
  // and finalizers of this cycle's garbage are queued. Memory free since
  // before the previous cycle goes back to the OS now rather than whenever
  // the background sweeper gets a turn.
  finish_sweep();
  mheap_scavenge(gc_cycle.load(std::memory_order_relaxed));
}

int set_percent(int pct) {
  const int old = gc_percent_.exchange(pct, std::memory_order_relaxed);
  set_goal(heap_marked.load(std::memory_order_relaxed));  // as Go: from the last mark
  return old;
}

HookId register_cleanup(std::function<void()> hook) {
  std::lock_guard<std::mutex> lk(hooklock);
  const HookId id = nexthook++;
  hooks.emplace_back(id, std::move(hook));
  return id;
}

void unregister_cleanup(HookId id) {
  std::lock_guard<std::mutex> lk(hooklock);
  for (auto it = hooks.begin(); it != hooks.end(); ++it) {
    if (it->first == id) {
      hooks.erase(it);
      return;
    }
  }
}

Stats stats() {
  require_g("goro::gc::stats");
  safepoint(getg());
  semacquire(&gcsema, false, WaitReason::gc_stop_the_world);
  safepoint(getg());
  stop_the_world("ReadMemStats");
  gc_noplock_acquire();
  mcache_flush_all_stats();
  Stats s{};
  s.num_gc = gc_cycle.load(std::memory_order_relaxed);
  s.total_alloc = mheap_.total_alloc.load(std::memory_order_relaxed);
  s.heap_alloc = s.total_alloc - mheap_.freed_bytes.load(std::memory_order_relaxed);
  s.mallocs = mheap_.nmalloc.load(std::memory_order_relaxed);
  s.frees = mheap_.nfree.load(std::memory_order_relaxed);
  s.heap_objects = s.mallocs - s.frees;
  s.heap_sys = mheap_.heap_sys_bytes.load(std::memory_order_relaxed);
  s.next_gc = next_gc.load(std::memory_order_relaxed);
  s.pause_total_ns = pause_total_ns;
  s.last_pause_ns = s.num_gc > 0 ? pause_ns[(s.num_gc - 1) % 256] : 0;
  gc_noplock_release();
  start_the_world();
  semrelease(&gcsema, false);
  return s;
}

}  // namespace goro::gc
