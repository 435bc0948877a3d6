// direct.cpp — the direct switch: a goroutine that parks, yields or ends
// hands its M straight to the next G, without the trip through g0.
// Part of the scheduler loop (proc.cpp); Go has no counterpart.
//
// A goroutine that parks or yields normally switches to g0, which finishes
// the park (park_m's unlock step) or queues it, looks for the next G and
// switches to that: two switches, and the g0 loop in between. When the
// next G is already known on the goroutine's own stack — the head of the
// global queue that yield takes in the same critical section in which it
// queues itself, or the G in the P's runnext or local queue when a channel
// operation parks right after readying its partner — the goroutine does g0's
// work itself and switches straight to that G: one switch. A goroutine
// that ends does the same when its P has a G queued (goexit_direct).
//
// The price is the property the trip through g0 bought: by the time anyone
// can see the parked or queued G, its context is saved. Here the G becomes
// visible (queued, or in a wait queue once unlockf ran) while it still runs
// the last few instructions before its switch. So it clears its saved
// context first (fiber_unsave), the switch's arrival side stores the new
// one with release order (fiber.cpp after_switch), and every M that is
// about to resume a G waits until its context is saved (wait_saved, in
// execute and switch_direct): a handshake on the switch, a few nanoseconds
// of spinning at most unless the switching thread is descheduled.
//
// Everything else stays as on g0's path: the same status transitions, the
// same run-queue order (runq_next takes only what findrunnable would take
// first; due timers and the 61-tick fairness check send the M to g0), and
// m.locks stays above zero throughout: the parking G's Entries and its
// switch leave with it, the next G's come with it plus one for the switch,
// which that G drops when it arrives (mcall, gmain, gopark, yield_global).
// Not taken while GORO_TRACE records (every stop is a slice seen from g0),
// for an M locked to a goroutine, or when the world is stopping or the
// runtime exiting: g0 has work of its own then.
#include "sched/hottext.hpp"
#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

// direct_ok reports whether g0 may be skipped on this M now.
bool direct_ok(Runtime* r, M* m) {
  const Sched& s = r->sched;
  return !trace_on && m->lockedg == nullptr && m->p != nullptr && !m->in_blocking &&
         !s.gcwaiting.load(std::memory_order_relaxed) && !s.exiting.load(std::memory_order_relaxed);
}

namespace {

// runq_next takes the G findrunnable would run next when that comes from
// the local run queue (runnext first); the caller has made sure no timer
// of the P is due. nullptr: the queue is empty, the world is stopping, or
// it is the fairness tick on which findrunnable looks at the global queue
// first. A G locked to an M is put back, into runnext (empty at that
// point, so it still runs next), for g0 to hand over.
G* runq_next(Runtime* r, M* m, bool* inherit) {
  const Sched& s = r->sched;
  P* p = m->p;
  if (s.gcwaiting.load(std::memory_order_relaxed) || s.exiting.load(std::memory_order_relaxed)) return nullptr;
  if (p->schedtick.load(std::memory_order_relaxed) % 61 == 0 && s.runqsize.load(std::memory_order_relaxed) > 0)
    return nullptr;
  G* next = runqget(p, inherit);
  if (next != nullptr && next->lockedm != nullptr) {
    runqput(p, next, true);
    return nullptr;
  }
  return next;
}

// switch_direct hands m from g to next, or to g0 when next is nullptr (with
// nothing left for g0 to do but look for work: Req::handed). g has done
// g0's work for itself and is published with its context cleared; nothing
// here touches g but its fiber, since another M may be waiting to resume
// it. entries: g's open Entries, read before it was published. Returns when
// g runs again, on whichever M; the caller drops the switch's m.locks.
GORO_YIELD_TEXT void switch_direct(M* m, G* g, G* next, bool inherit, std::int32_t entries,
                                   bool dies = false) {
  if (next == nullptr) {
    // g's Entries leave the count here, not in execute: once g0 runs, g
    // may be running elsewhere, its count changing. The switch's one stays.
    m->locks.store(m->locks.load(std::memory_order_relaxed) - entries, std::memory_order_relaxed);
    m->req = M::Req::handed;
    fiber_switch(g->fiber, m->g0, m->eh);
    return;
  }
  // next == g: a yield took itself back (nothing else was queued) and runs
  // on, in a new slice, as execute would run it; no switch.
  if (next != g) {
    wait_saved(next);
    m->locks.store(m->locks.load(std::memory_order_relaxed) - entries + next->entries, std::memory_order_relaxed);
    m->curg.store(next, std::memory_order_release);
  }
  next->m = m;
  casgstatus(next, Gstatus::runnable, Gstatus::running);
  if (!inherit) {
    P* p = m->p;
    p->schedtick.store(p->schedtick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  if (next != g) fiber_switch(g->fiber, next->fiber, m->eh, dies);
}

// timer_due: one of p's timers is due now, and g0 should run it
// (findrunnable) rather than the direct path.
bool timer_due(P* p) {
  const std::int64_t when0 = p->timers.when0.load(std::memory_order_relaxed);
  return when0 != 0 && when0 <= nanotime();
}

}  // namespace

// yield_global is gosched (req gosched: then wakep) and gopreempt: g goes to
// the tail of the global queue and the M runs the head, which it takes in
// the same critical section (globrunqput_next), else the local queue's
// next; g0's gosched_m/gopreempt_m when the direct path is closed.
GORO_YIELD_TEXT void yield_global(G* g, M::Req req) {
  M* m = g->m;
  Runtime* r = rt();
  // m.locks first: a preemption may come from a safepoint with no Entry
  // open, and the signal must not take the P while we use it.
  acquirem(m);
  if (!direct_ok(r, m)) {
    releasem(m);
    mcall(g, req);
    return;
  }
  const std::int32_t entries = g->entries;
  casgstatus(g, Gstatus::running, Gstatus::runnable);
  g->m = nullptr;
  fiber_unsave(g->fiber);
  bool inherit = false;
  G* next = globrunqput_next(r, m, g);  // g is published here
  if (req == M::Req::gosched) wakep();
  if (next == nullptr) next = runq_next(r, m, &inherit);
  switch_direct(m, g, next, inherit, entries);
  releasem(g->m);
}

// gopark_direct is gopark when the P's local queue has a G to run next: g0's
// park_m done on g's own stack, then a switch straight to that G. Called
// with m.locks raised for the switch (gopark).
void gopark_direct(Runtime* r, M* m, G* g, bool (*unlockf)(G*, void*), void* lock, WaitReason reason) {
  const std::int32_t entries = g->entries;
  g->waitreason = reason;
  g->waitsince = r->sched.coarse_now.load(std::memory_order_relaxed);
  casgstatus(g, Gstatus::running, Gstatus::waiting);
  g->m = nullptr;
  fiber_unsave(g->fiber);
  const bool parked = unlockf == nullptr || unlockf(g, lock);  // g may be readied from here on
  // As in after_run: the G's Entries and this switch are all m.locks may count.
  if (m->locks.load(std::memory_order_relaxed) != entries + 1)
    fatal("goroutine parked while pinned (proc_pin held across a blocking call)");
  if (!parked) {
    // The unlock function cancelled the park: g runs on, in its own slice.
    casgstatus(g, Gstatus::waiting, Gstatus::runnable);
    g->m = m;
    casgstatus(g, Gstatus::runnable, Gstatus::running);
    releasem(m);
    return;
  }
  // Timers that fall due are run by g0 (findrunnable), not here: here a
  // waker that readied g would spin in wait_saved while they ran.
  bool inherit = false;
  G* next = timer_due(m->p) ? nullptr : runq_next(r, m, &inherit);
  switch_direct(m, g, next, inherit, entries);
  releasem(g->m);
}

// goexit_direct is goexit0 on the dying G's own stack, then a switch
// straight to the P's next G. The G goes on the free list before its last
// switch, context cleared: a go() that takes it (on this P after the switch,
// or on another through the global list) waits in wait_saved before it
// reuses the stack. Not for main (its exit ends the run) nor a G locked to
// its thread (direct_ok excludes that M); returns only if a timer is due or
// the P's queue emptied meanwhile, for the caller to exit through g0. Called
// with m.locks raised for the switch (goexit1).
void goexit_direct(Runtime* r, M* m, G* g) {
  P* p = m->p;
  if (timer_due(p)) return;
  bool inherit = false;
  G* next = runq_next(r, m, &inherit);
  if (next == nullptr) return;
  const std::int32_t entries = g->entries;
  casgstatus(g, Gstatus::running, Gstatus::dead);
  g->m = nullptr;
  g->waitreason = WaitReason::zero;
  fiber_unsave(g->fiber);
  gfput(r, p, g);  // g may be taken from here on
  switch_direct(m, g, next, inherit, entries, /*dies=*/true);
  __builtin_trap();  // a dead G is never resumed
}

}  // namespace goro::detail
