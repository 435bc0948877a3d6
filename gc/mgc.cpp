// mgc.cpp — the collector's cycle, its pacing and its public API (Go's
// mgc.go, mgcpacer.go, and the forcegc part of proc.go).
//
// A cycle (gcStart .. gcMarkTermination), mostly concurrent:
//   1. Sweep termination, world running: the starting goroutine sweeps
//      whatever the previous cycle left unswept (usually nothing: the
//      background sweeper got there first). Dirty-page tracking starts
//      (start_tracking: the full pointer spans are write-protected).
//   2. stop_the_world("GC"); take noplock so that P-less goroutines (inside
//      blocking(), or hogs the preemption signal took the P from) cannot
//      allocate while the heap is inspected.
//   3. Run the cleanup hooks, in registration order (sync.Pool drops its
//      caches here, as Go's poolCleanup does).
//   4. Return every mcache's spans to their mcentrals; note the goroutines
//      running without a P (gc_mark_begin); release noplock; start the world.
//   5. Mark concurrently on this goroutine (gc_mark_concurrent, mgcmark.cpp).
//   6. stop_the_world("GC mark termination"), noplock, uncache again; rescan
//      what may have changed and finish the mark (gc_mark_termination).
//   7. Move every span onto an unswept list (a few list splices), set the next
//      goal, release noplock, start the world, unprotect the heap.
//   8. Wake the background sweeper; print the gctrace line.
// The pauses cost O(P + size classes) and the termination's rescan, never a
// sweep. With GORO_DEBUG=gcstoptheworld=1, or no dirty-page tracking
// (mdirty.hpp), steps 4-6 collapse into one mark inside the first pause.
//
// Pacing (gcController): after a cycle that marked `live` bytes the goal of
// the next one is live * (1 + GOGC/100), never below 4 MiB; a concurrent
// cycle starts at the trigger, 7/10 of the way there (set_goal).
// heap_live grows when an mcache takes a span (by the span's free bytes) or a
// large object is allocated; the check happens in the allocation slow path,
// and the allocating goroutine wakes the GC goroutine (the forcegc helper)
// at the trigger, or at the goal runs the cycle itself; goroutines that reach
// the goal while a cycle is running wait on gcsema and, finding num_gc moved
// on, carry on allocating. GOGC < 0 turns this off; collect() still runs.
//
// forcegc: a helper goroutine parks (force_gc_idle); sysmon readies it when
// no cycle ran for cfg.forcegc_ms (Go: forcegcperiod, 2 minutes).
//
// State: everything above lives in the run's GcState (gc/mgc.hpp: work,
// gcController, forcegc), made by gc_init and destroyed by gc_teardown, so a
// new run() starts from constructed state. The cleanup hooks are the
// process's: registered once (sync.Pool does so on first use), they run in
// every later run's cycles until unregistered.
//
// Invariants:
//   - One cycle at a time (work.startSema, "gcsema"); cycles are numbered by
//     num_gc (work.cycles).
//   - gc_mark_gen is non-zero only during a concurrent mark (set and cleared
//     with the world stopped).
//   - heapGoal >= heapMinimum whenever GOGC >= 0.
//   - Locks are ranked (sched/lockrank.hpp has the one order).
#include <algorithm>
#include <cstdio>

#include "gc/gc.hpp"
#include "gc/malloc.hpp"
#include "gc/mgc.hpp"
#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

namespace {

// The cleanup hooks, the process's (see above): constant-initialised, so
// registering works from anywhere, even before main.
struct cleanupHooks {
  Lock lock{LockRank::hooks};  // guards list and next; held while the hooks run
  std::vector<std::pair<gc::HookId, std::function<void()>>> list;
  gc::HookId next = 1;
};
constinit cleanupHooks hooks;

// set_goal sets the next cycle's heap goal from the live bytes of the last
// mark (gcController's heapGoal).
void set_goal(gcControllerState& c, std::uint64_t live) {
  const int pct = c.percent.load(std::memory_order_relaxed);
  std::uint64_t goal =
      pct < 0 ? ~std::uint64_t(0) : live + live * static_cast<std::uint64_t>(pct) / 100;
  if (pct >= 0 && goal < gcControllerState::heapMinimum) goal = gcControllerState::heapMinimum;
  c.heapGoal.store(goal, std::memory_order_relaxed);
  // A concurrent mark starts early enough for the program to go on
  // allocating while it runs (Go's trigger; its pacer tunes the fraction,
  // 7/10 of the runway here, the least Go's pacer uses). A goroutine that
  // reaches the goal before the mark ends waits for it, in place of Go's
  // mark assists.
  std::uint64_t trigger = goal;
  if (c.concurrent.load(std::memory_order_relaxed) && pct >= 0 && goal > live)
    trigger = live + (goal - live) * 7 / 10;
  c.heapTrigger.store(trigger, std::memory_order_relaxed);
}

// say_fallback prints, once per run, why the mark stops the world.
void say_fallback(GcState& gc, const char* why) {
  if (gc.work.fallbackSaid || !rt()->cfg.gctrace) return;
  gc.work.fallbackSaid = true;
  std::fprintf(stderr, "gc: %s: every mark runs with the world stopped\n", why);
}

// start_tracking begins dirty-page tracking for a concurrent mark. Only
// the pages of full spans that hold pointers (and of large objects with
// pointers) are protected. Every other page counts as written, so mark
// termination rescans its marked objects: free pages and spans with free
// slots are where the mark's allocations go, and a protected page costs the
// program a fault on its first write (tens of microseconds in a VM), and
// noscan spans need no rescan at all. Runs of protected spans are coalesced
// into one ioctl each. World running, heap swept.
bool start_tracking(GcState& gc) {
  mheap& h = gc.heap;
  DirtyTracker& t = gc.dirty;
  std::lock_guard<Lock> lk(h.lock);
  const std::uintptr_t used = h.arena_used.load(std::memory_order_relaxed);
  // (Nothing is protected here: the previous cycle's dirty_end unprotected
  // its runs.)
  std::uintptr_t run = 0, p = h.arena_lo;
  while (p < used) {
    const mspan* s = spanOf(h, p);
    const std::uintptr_t next = s != nullptr ? s->base + (s->npages << pageShift) : p + pageSize;
    const bool protect = s != nullptr && s->inuse && !s->noscan &&
                         (s->large || peek_alloc_count(s) == s->nelems);
    if (protect && run == 0) run = p;
    if (!protect && run != 0) {
      if (!dirty_protect(t, run, p)) return false;
      run = 0;
    }
    p = next;
  }
  return run == 0 || dirty_protect(t, run, p);
}

// gc_cycle_locked runs one cycle; gcsema held, on a goroutine with a P.
// callers: the frame address of the runtime entry that asked for the cycle
// (collect(), the allocation slow path), or nullptr: the frames above it
// are the user's, and the concurrent mark scans them (mgcmark.cpp).
void gc_cycle_locked(bool forced, const void* callers = nullptr) {
  Runtime* r = rt();
  GcState& gc = *r->gc;
  mheap& h = gc.heap;
  workType& work = gc.work;
  gc_start_workers();
  G* self = getg();
  work.owner.store(self, std::memory_order_relaxed);
  const std::int64_t t0 = nanotime();
  finish_sweep();
  // main has returned: the other Ms are leaving and would never stop.
  if (r->sched.exiting.load(std::memory_order_acquire)) {
    work.owner.store(nullptr, std::memory_order_relaxed);
    return;
  }
  gc_mark_prepare(gc);
  const std::uint64_t n = work.cycles.load(std::memory_order_relaxed) + 1;
  // Concurrent unless told otherwise or the kernel cannot track writes.
  bool concurrent = gc.dirty.why == nullptr && !r->cfg.gcstoptheworld;
  if (gc.dirty.why != nullptr) say_fallback(gc, gc.dirty.why);
  // Tracking starts before anything is scanned, with the world running: a
  // write from here on is reported, whether it came before or after the
  // stop.
  if (concurrent && !start_tracking(gc)) {
    dirty_end(gc.dirty);  // what was protected before the failure
    say_fallback(gc, gc.dirty.why);
    concurrent = false;
    gc.controller.concurrent.store(false, std::memory_order_relaxed);
  }
  const std::int64_t t1 = nanotime();
  stop_the_world("GC");
  h.noplock.lock();
  const std::int64_t t2 = nanotime();
  {
    std::lock_guard<Lock> lk(hooks.lock);
    for (auto& hook : hooks.list) hook.second();
  }
  const std::int64_t t2h = trace_on ? nanotime() : 0;
  // Anything left unswept (a span popped mid-race) is swept now: rare.
  while (sweepone()) {
  }
  mcache_release_all();
  const std::uint64_t heap0 = h.heap_live.load(std::memory_order_relaxed);
  std::uint64_t marked;
  std::int64_t tm0 = 0, tm1 = 0;  // the concurrent mark's bounds
  if (concurrent) {
    gc_mark_begin(self, static_cast<std::uint32_t>(n) != 0 ? static_cast<std::uint32_t>(n) : 1);
    h.noplock.unlock();
    tm0 = nanotime();
    start_the_world();
    gc_mark_concurrent(self, callers);
    tm1 = nanotime();
    stop_the_world("GC mark termination");
    h.noplock.lock();
    gc_mark_end();
    mcache_release_all();
    marked = gc_mark_termination(self);
  } else {
    marked = gc_mark_roots_and_heap(self);
  }
  for (mcentral& c : h.central) {
    std::lock_guard<Lock> lk(c.lock);
    c.unswept.splice(c.partial);
    c.unswept.splice(c.full);
  }
  {
    std::lock_guard<Lock> lk(h.lock);
    h.large_unswept.splice(h.large);
  }
  work.cycles.store(n, std::memory_order_relaxed);
  h.heap_live.store(marked, std::memory_order_relaxed);
  gc.controller.heapMarked.store(marked, std::memory_order_relaxed);
  set_goal(gc.controller, marked);
  h.noplock.unlock();
  const std::int64_t t3 = nanotime();
  start_the_world();
  const std::int64_t t4 = nanotime();
  // Tracking ends: a protected span freed by the coming sweep would cost
  // its next user a fault. Only the runs this cycle protected.
  if (concurrent) dirty_end(gc.dirty);
  // The pauses: from asking for the stop to the start, once or twice.
  const auto pause = static_cast<std::uint64_t>(concurrent ? (tm0 - t1) + (t4 - tm1) : t4 - t1);
  if (trace_on) {
    // The phases as slices on the GC track, the heap as counters.
    const auto cyc = static_cast<std::int64_t>(n);
    const std::uint64_t gid = self->goid;
    trace_emit(TraceKind::gc_phase, gid, -1, cyc, 0, 0, "GC sweep termination", t0, t1 - t0);
    trace_emit(TraceKind::gc_phase, gid, -1, cyc, 0, 0, "GC cleanup hooks", t2, t2h - t2);
    if (concurrent) {
      trace_emit(TraceKind::gc_phase, gid, -1, cyc, 0, 0, "GC mark", tm0, tm1 - tm0);
      trace_emit(TraceKind::gc_phase, gid, -1, cyc, 0, 0, "GC mark termination", tm1, t3 - tm1);
    } else {
      trace_emit(TraceKind::gc_phase, gid, -1, cyc, 0, 0, "GC mark", t2h, t3 - t2h);
    }
    trace_emit(TraceKind::counter, 0, -1, static_cast<std::int64_t>(heap0), 0, 0, "heap live", t1);
    trace_emit(TraceKind::counter, 0, -1, static_cast<std::int64_t>(marked), 0, 0, "heap live", t3);
    trace_emit(TraceKind::counter, 0, -1, static_cast<std::int64_t>(gc.controller.heapGoal.load(std::memory_order_relaxed)), 0,
               0, "heap goal", t3);
  }
  work.pauseNs[(n - 1) % gcPauseRing] = pause;
  work.pauseTotalNs += pause;
  work.cpuNs += static_cast<std::int64_t>(pause) + (concurrent ? tm1 - tm0 : 0);
  gc.controller.lastGcNs.store(t4, std::memory_order_relaxed);
  work.owner.store(nullptr, std::memory_order_relaxed);
  sweeper_wake();
  if (r->cfg.gctrace) {
    // Go's layout: A+B+C ms clock = the stop-the-world start (sweep
    // termination and the hooks), the concurrent mark, the stop-the-world
    // mark termination. With the whole mark in the pause, B is that mark
    // and C the rest of the pause.
    const double since = static_cast<double>(t0 - r->start_time) / 1e9;
    const int pct =
        static_cast<int>(100 * work.cpuNs / std::max<std::int64_t>(1, t4 - r->start_time));
    const double a = concurrent ? (tm0 - t1) / 1e6 : (t2 - t1) / 1e6;
    const double b = concurrent ? (tm1 - tm0) / 1e6 : (t3 - t2) / 1e6;
    const double c = concurrent ? (t4 - tm1) / 1e6 : (t4 - t3) / 1e6;
    std::fprintf(
        stderr,
        "gc %llu @%.3fs %d%%: %.3f+%.3f+%.3f ms clock, %llu->%llu->%llu MB, %llu MB goal, %d P%s%s\n",
        static_cast<unsigned long long>(n), since, pct, a, b, c,
        static_cast<unsigned long long>(heap0 >> 20),
        static_cast<unsigned long long>(heap0 >> 20), static_cast<unsigned long long>(marked >> 20),
        static_cast<unsigned long long>(gc.controller.heapGoal.load() >> 20),
        r->gomaxprocs.load(), forced ? " (forced)" : "", concurrent ? "" : " (stop-the-world mark)");
  }
}

// gc_run_cycle takes gcsema and runs a cycle (gcStart's entry).
void gc_run_cycle(bool forced, const void* callers = nullptr) {
  std::atomic<std::uint32_t>* sema = &gcs().work.startSema;
  semacquire(sema, false, WaitReason::gc_stop_the_world);
  gc_cycle_locked(forced, callers);
  semrelease(sema, false);
}

void forcegchelper() {
  forcegcState& fg = gcs().forcegc;
  {
    std::lock_guard<Lock> lk(fg.lock);
    fg.g = getg();
  }
  Entry e("goro forcegc helper");  // runtime code throughout; parks inside
  for (;;) {
    fg.lock.lock();
    fg.idle = true;
    goparkunlock(&fg.lock, WaitReason::force_gc_idle);
    GcState& gc = gcs();
    if (gc.controller.percent.load(std::memory_order_relaxed) < 0) continue;
    bool heap = false;
    {
      std::lock_guard<Lock> lk(fg.lock);
      heap = fg.heapTrigger;
      fg.heapTrigger = false;
    }
    if (!heap) {
      gc_run_cycle(true);  // sysmon: no cycle for forcegc_ms
      continue;
    }
    // The heap reached the trigger: unless a cycle got there first.
    std::atomic<std::uint32_t>* sema = &gc.work.startSema;
    semacquire(sema, false, WaitReason::gc_stop_the_world);
    if (gc.heap.heap_live.load(std::memory_order_relaxed) >=
        gc.controller.heapTrigger.load(std::memory_order_relaxed))
      gc_cycle_locked(false);
    semrelease(sema, false);
  }
}

// kick_background_cycle readies the GC helper to run a cycle while the
// caller goes on allocating (Go's gcStart from mallocgc, whose marking then
// runs on background workers). False if the helper is busy or not there.
bool kick_background_cycle(GcState& gc) {
  forcegcState& fg = gc.forcegc;
  G* g = nullptr;
  {
    std::lock_guard<Lock> lk(fg.lock);
    if (fg.idle && fg.g != nullptr) {
      fg.idle = false;
      fg.heapTrigger = true;
      g = fg.g;
    }
  }
  if (g == nullptr) return false;
  goready(g);
  return true;
}

}  // namespace

void go_system(void (*fn)()) {
  goro::go([fn] { fn(); });
  rt()->sched.ngsys.fetch_add(1, std::memory_order_relaxed);
}

// gc_start_workers starts the background sweeper, the finalizer goroutine and
// the forcegc helper, once per run, from the first goroutine that allocates.
void gc_start_workers() {
  std::atomic<bool>& started = gcs().workersStarted;
  bool f = false;
  if (started.load(std::memory_order_relaxed) || !started.compare_exchange_strong(f, true)) return;
  go_system(bgsweep);
  go_system(runfinq);
  go_system(forcegchelper);
}

// gc_maybe_trigger starts a cycle if the heap reached its trigger
// (gcTrigger.test): in the background between the trigger and the goal; at
// the goal, the allocating goroutine runs it, or waits for the running one.
void gc_maybe_trigger() {
  G* g = getg();
  M* m = g->m;
  if (m->p == nullptr || holdslocks(g)) {
    return;  // cannot stop the world from here
  }
  GcState& gc = gcs();
  if (!gc.workersStarted.load(std::memory_order_relaxed)) gc_start_workers();
  if (gc.work.owner.load(std::memory_order_relaxed) == m->curg.load(std::memory_order_relaxed))
    return;
  if (gc.controller.percent.load(std::memory_order_relaxed) < 0) return;
  auto over_goal = [&gc] {
    return gc.heap.heap_live.load(std::memory_order_relaxed) >=
           gc.controller.heapGoal.load(std::memory_order_relaxed);
  };
  const std::uint64_t live = gc.heap.heap_live.load(std::memory_order_relaxed);
  if (live < gc.controller.heapTrigger.load(std::memory_order_relaxed)) return;
  // Between the trigger and the goal: a cycle in the background (if one is
  // running, or the helper is already on its way, nothing to do).
  if (!over_goal()) {
    if (gc.work.owner.load(std::memory_order_relaxed) == nullptr) kick_background_cycle(gc);
    return;
  }
  if (rt()->sched.exiting.load(std::memory_order_relaxed)) return;
  const std::uint64_t n = gc.work.cycles.load(std::memory_order_relaxed);
  semacquire(&gc.work.startSema, false, WaitReason::gc_stop_the_world);
  // Another goroutine may have run the cycle while we waited.
  if (gc.work.cycles.load(std::memory_order_relaxed) == n && over_goal())
    gc_cycle_locked(false, __builtin_frame_address(0));
  semrelease(&gc.work.startSema, false);
}

// gc_sysmon_check: sysmon's forcegc test (no cycle for forcegc_ms).
void gc_sysmon_check(Runtime* r, std::int64_t now) {
  GcState& gc = *r->gc;
  if (gc.controller.percent.load(std::memory_order_relaxed) < 0) return;
  if (now - gc.controller.lastGcNs.load(std::memory_order_relaxed) < r->cfg.forcegc_ms * 1000000)
    return;
  G* g = nullptr;
  {
    std::lock_guard<Lock> lk(gc.forcegc.lock);
    if (gc.forcegc.idle) {
      gc.forcegc.idle = false;
      g = gc.forcegc.g;
    }
  }
  if (g != nullptr) {
    gc.controller.lastGcNs.store(now, std::memory_order_relaxed);  // one kick per period
    goready(g);
  }
}

GcState::GcState(Runtime* r) {
  if (!mheap_init(heap)) fatal("gc: cannot reserve the heap arena");
  controller.percent.store(r->cfg.gc_percent, std::memory_order_relaxed);
  controller.lastGcNs.store(r->start_time, std::memory_order_relaxed);
  work.hogs.resize(static_cast<std::size_t>(r->sched.maxmcount));
  if (!r->cfg.gcuffd)
    dirty.why = "dirty-page tracking off (GORO_DEBUG=gcuffd=0)";
  else
    dirty_init(dirty, heap.arena_lo, heap.arena_hi);  // sets dirty.why if it cannot
  controller.concurrent.store(dirty.why == nullptr && !r->cfg.gcstoptheworld,
                              std::memory_order_relaxed);
  set_goal(controller, 0);
}

GcState::~GcState() {
  gc_mark_stop_helpers(work);
  dirty_close(dirty);
  mcache_free_all(heap);
  mheap_release(heap);
}

void GcStateFree::operator()(GcState* s) const {
  delete s;
}

void gc_init(Runtime* r) {
  gc_mark_gen.store(0, std::memory_order_relaxed);
  r->gc.reset(new GcState(r));
}

void gc_teardown(Runtime* r) {
  // A collector abandoned at exit (stop_the_world gives up once main has
  // returned) leaves its concurrent mark on: nothing may note Gs any more.
  gc_mark_gen.store(0, std::memory_order_relaxed);
  r->gc.reset();
}

bool gc_is_object_start(const void* ptr) {
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  Runtime* r = rt();
  if (r == nullptr || r->gc == nullptr) return false;
  mspan* s = spanOf(r->gc->heap, p);
  if (s == nullptr) return false;
  const std::size_t i = s->objindex(p);
  if (i >= s->nelems || !s->isAllocated(i)) return false;
  const std::uintptr_t slot = s->base + i * s->elemsize;
  const bool dtor = (s->dtorBits[i / 64] >> (i % 64)) & 1;
  return dtor ? p == slot + dtorHeader : p == slot;
}

}  // namespace goro::detail

namespace goro::gc {

using namespace goro::detail;

void collect() {
  Entry e("goro::gc::collect");
  gc_run_cycle(true, __builtin_frame_address(0));
  // Like runtime.GC, return with the heap swept: the statistics are final
  // and finalizers of this cycle's garbage are queued. Memory free since
  // before the previous cycle goes back to the OS now rather than whenever
  // the background sweeper gets a turn.
  finish_sweep();
  mheap_scavenge(gcs().work.cycles.load(std::memory_order_relaxed));
  // Go's runtime.GC yields while it finishes the sweep; a goroutine calling
  // collect() in a loop must not keep the others off a lone P (its cycles
  // run inside the runtime, where the preemption signal leaves it alone).
  gosched();
}

int set_percent(int pct) {
  Runtime* r = rt();
  if (r == nullptr || r->gc == nullptr)
    throw Error("goro::gc::set_percent called outside a running goro runtime");
  gcControllerState& c = r->gc->controller;
  const int old = c.percent.exchange(pct, std::memory_order_relaxed);
  set_goal(c, c.heapMarked.load(std::memory_order_relaxed));  // as Go: from the last mark
  return old;
}

HookId register_cleanup(std::function<void()> hook) {
  std::lock_guard<Lock> lk(hooks.lock);
  const HookId id = hooks.next++;
  hooks.list.emplace_back(id, std::move(hook));
  return id;
}

void unregister_cleanup(HookId id) {
  std::lock_guard<Lock> lk(hooks.lock);
  for (auto it = hooks.list.begin(); it != hooks.list.end(); ++it) {
    if (it->first == id) {
      hooks.list.erase(it);
      return;
    }
  }
}

Stats stats() {
  Entry e("goro::gc::stats");
  GcState& gc = gcs();
  mheap& h = gc.heap;
  semacquire(&gc.work.startSema, false, WaitReason::gc_stop_the_world);
  stop_the_world("ReadMemStats");
  h.noplock.lock();
  mcache_flush_all_stats();
  Stats s{};
  s.num_gc = gc.work.cycles.load(std::memory_order_relaxed);
  s.total_alloc = h.total_alloc.load(std::memory_order_relaxed);
  s.heap_alloc = s.total_alloc - h.freed_bytes.load(std::memory_order_relaxed);
  s.mallocs = h.nmalloc.load(std::memory_order_relaxed);
  s.frees = h.nfree.load(std::memory_order_relaxed);
  s.heap_objects = s.mallocs - s.frees;
  s.heap_sys = h.heap_sys_bytes.load(std::memory_order_relaxed);
  s.next_gc = gc.controller.heapGoal.load(std::memory_order_relaxed);
  s.pause_total_ns = gc.work.pauseTotalNs;
  s.last_pause_ns = s.num_gc > 0 ? gc.work.pauseNs[(s.num_gc - 1) % gcPauseRing] : 0;
  static_assert(sizeof s.pause_ns / sizeof s.pause_ns[0] == gcPauseRing);
  std::copy(std::begin(gc.work.pauseNs), std::end(gc.work.pauseNs), s.pause_ns);
  h.noplock.unlock();
  start_the_world();
  semrelease(&gc.work.startSema, false);
  return s;
}

}  // namespace goro::gc
