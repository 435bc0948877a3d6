// stw.cpp — stopping and starting the world, and resizing the set of Ps
// (Go's stopTheWorldWithSema, startTheWorldWithSema, procresize).
//
// To stop the world the stopper takes every P away from the Ms:
//   1. under sched.lock, set gcwaiting and count the Ps to stop (stopwait);
//   2. its own P, every idle P and every P in a system call stop at once;
//   3. every running goroutine is asked to yield (preemptall sets g.preempt);
//      it notices at its next safepoint — any runtime call, or
//      goro::preempt_point() — yields to g0, and g0 sees gcwaiting and parks
//      the M in gcstopm, which hands the P over and decrements stopwait;
//   4. the stopper sleeps on sched.stopnote until stopwait reaches 0,
//      re-asking every 100 us (a goroutine that was between its safepoint
//      check and a park would otherwise miss the request).
// A goroutine inside proc_pin() ignores the request (m.locks > 0) until
// proc_unpin, which checks again: pinning holds off stop-the-world, as Go's
// procPin does. A goroutine that never reaches a safepoint holds the world
// off indefinitely; sysmon's preemption (docs/scheduler.md) deals with that.
//
// Starting the world applies a pending GOMAXPROCS change (procresize), gives
// the Ps back — with work to an M, without to the idle list — and clears
// gcwaiting.
//
// Invariants: only one stop-the-world at a time (stwlock); while the world is
// stopped exactly one M holds a P, the stopper's, and every P is _Pgcstop;
// between stops no P is _Pgcstop (debug builds check both at each stop and
// start: check_stopped); a P is taken for a stop (and stopwait
// decremented) only under sched.lock while that stop is pending, gcwaiting
// set and stopwait > 0 (an M that hands its P over does it through
// stopwait_put, which checks this in debug builds).
#include <cstdio>

#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

namespace {

// preemptall asks the goroutine running on every other P to yield. With
// `signal`, one that was asked before and still holds its P is a loop with
// no safepoint: its thread is signalled to give the P up (preempt.cpp) —
// sysmon, which would do it otherwise, sleeps while the world stops.
void preemptall(Runtime* r, bool signal) {
  M* self = getm();
  const int n = r->gomaxprocs.load(std::memory_order_relaxed);
  for (int i = 0; i < n; i++) {
    P* p = r->allp[i].load(std::memory_order_relaxed);
    if (p->status.load(std::memory_order_relaxed) != Pstatus::running) continue;
    M* m = p->m.load(std::memory_order_acquire);
    if (m == nullptr || m == self) continue;
    if (G* g = m->curg.load(std::memory_order_acquire)) {
      if (signal && g->preempt.load(std::memory_order_relaxed)) preempt_by_signal(m);
      g->preempt.store(true, std::memory_order_relaxed);
    }
  }
}

// take_syscalls stops every P in a system call: it makes the Ms' lazy
// blocking() calls ordinary ones (syscall.cpp), which puts their Ps in
// _Psyscall, then takes every _Psyscall P for the stop. In the stop's first
// scan and again each time the stopper wakes: a P can reach _Psyscall after
// the scan without seeing the stop (a lazy call turned ordinary by runtime
// code called inside it, sys_self_take). sched.lock held; self's P is
// already stopped.
void take_syscalls(Runtime* r, Sched& s, M* self) {
  std::vector<M*> ms;
  for (M* m = s.allm; m != nullptr; m = m->alllink)
    if (m != self && sys_in_call(m)) ms.push_back(m);
  if (!ms.empty()) {
    std::vector<P*> ps(ms.size());
    sys_take(ms.data(), ps.data(), static_cast<int>(ms.size()));
  }
  const int n = r->gomaxprocs.load(std::memory_order_relaxed);
  for (int i = 0; i < n && s.stopwait > 0; i++) {
    P* p = r->allp[i].load(std::memory_order_relaxed);
    Pstatus st = Pstatus::syscall;
    if (p->status.compare_exchange_strong(st, Pstatus::gcstop)) {
      p->syscalltick.fetch_add(1, std::memory_order_relaxed);
      stopwait_put(s, p);
    }
  }
}

// check_stopped fails with msg, in debug builds, unless every P is
// _Pgcstop (stopped) or none is (!stopped). sched.lock held.
void check_stopped([[maybe_unused]] Runtime* r, [[maybe_unused]] bool stopped,
                   [[maybe_unused]] const char* msg) {
#ifndef NDEBUG
  for (int i = 0; i < r->gomaxprocs.load(std::memory_order_relaxed); i++) {
    const Pstatus st = r->allp[i].load(std::memory_order_relaxed)->status.load(std::memory_order_relaxed);
    if ((st == Pstatus::gcstop) != stopped) fatal(msg);
  }
#endif
}

// stwlock serialises stoppers (Go's worldsema). A stopper is a goroutine, so
// waiting for the lock must park it, not its thread: a goroutine-aware
// mutex built on the semaphore.
std::atomic<std::uint32_t> worldsema{1};

}  // namespace

// stopwait_put is the one way a P other than the stopper's reaches the
// stop's count after the stopper's own scan: gcstopm, handoffp and
// entersyscall_gcstop. A P marked _Pgcstop when no stop is waiting for it
// belongs to nobody, and the next stop waits for it forever; here that is a
// fatal error in debug builds instead.
void stopwait_put(Sched& s, P* p) {
#ifndef NDEBUG
  if (!s.gcwaiting.load(std::memory_order_relaxed) || s.stopwait <= 0)
    fatal("stopwait_put: no stop-the-world is waiting for this P");
  if (p->status.load(std::memory_order_relaxed) != Pstatus::gcstop)
    fatal("stopwait_put: P not stopped");
#else
  (void)p;
#endif
  if (--s.stopwait == 0) s.stopnote.wakeup();
}

// GORO_TRACE: when the current stop began and why (worldsema guards both).
static std::int64_t stw_trace_start = 0;
static const char* stw_trace_reason = "";

void stop_the_world(const char* reason) {
  G* g = getg();
  semacquire(&worldsema, false, WaitReason::gc_stop_the_world);
  const std::int64_t trace_t0 = trace_on ? nanotime() : 0;
  g = getg();
  M* m = g->m;
  acquirem(m);  // the stopper itself must not be preempted, even outside an Entry
  Runtime* r = rt();
  Sched& s = r->sched;
  bool wait;
  {
    std::lock_guard<Lock> lk(s.lock);
    // Between stops every P is idle, running or in a system call. One left
    // _Pgcstop would be counted as running below and waited for forever:
    // fail loudly instead (a late entersyscall_gcstop once did this).
    check_stopped(r, false, "stop_the_world: a P is already stopped");
    s.stopwait = r->gomaxprocs.load(std::memory_order_relaxed);
    s.gcwaiting.store(true, std::memory_order_release);
    preemptall(r, false);
    m->p->status.store(Pstatus::gcstop, std::memory_order_relaxed);
    s.stopwait--;
    take_syscalls(r, s, m);
    while (P* p = pidleget()) {
      p->status.store(Pstatus::gcstop, std::memory_order_relaxed);
      s.stopwait--;
    }
    wait = s.stopwait > 0;
  }
  if (wait) {
    while (!s.stopnote.tsleep(100 * 1000)) {
      if (s.exiting.load(std::memory_order_acquire)) {
        // main returned meanwhile: the other Ms have left and the world will
        // never stop. This goroutine is abandoned like every other one; let
        // its M leave too.
        mcall(getg(), M::Req::abandon);
      }
      std::lock_guard<Lock> lk(s.lock);
      preemptall(r, true);
      if (s.stopwait > 0) take_syscalls(r, s, m);
    }
  }
  s.stopnote.clear();
  if (s.stopwait != 0) fatal("stop_the_world: not stopped");
  if (trace_on) {
    stw_trace_start = trace_t0;
    stw_trace_reason = reason;
  }
}

void start_the_world() {
  G* g = getg();
  M* m = g->m;
  Runtime* r = rt();
  Sched& s = r->sched;
  P* runnable = nullptr;
  {
    std::lock_guard<Lock> lk(s.lock);
    int procs = r->gomaxprocs.load(std::memory_order_relaxed);
    check_stopped(r, true, "start_the_world: a P is not stopped");
    if (s.newprocs != 0) {
      procs = s.newprocs;
      s.newprocs = 0;
    }
    procresize(procs);
    // Idle Ps with work go to Ms; the others to the idle list.
    for (int i = procs - 1; i >= 0; i--) {
      P* p = r->allp[i].load(std::memory_order_relaxed);
      if (p == m->p) continue;
      if (runqempty(p) && p->timers.when0.load(std::memory_order_relaxed) == 0) {
        pidleput(p);
      } else {
        p->status.store(Pstatus::idle, std::memory_order_relaxed);
        p->link = runnable;
        runnable = p;
      }
    }
    s.gcwaiting.store(false, std::memory_order_seq_cst);
  }
  // sysmon sleeps while the world is stopped. Our own P runs on, and may be
  // about to block in a lazy blocking() call, which does not wake sysmon as
  // entersyscall does: wake it here (seq_cst above: Dekker with its check of
  // gcwaiting after it sets sysmonwait).
  notify_sysmon();
  while (runnable != nullptr) {
    P* p = runnable;
    runnable = p->link;
    p->link = nullptr;
    startm(p, false);
  }
  wakep();
  if (trace_on)
    trace_emit(TraceKind::stw, g->goid, m->p->id, 0, 0, 0, stw_trace_reason, stw_trace_start,
               nanotime() - stw_trace_start);
  releasem(m);
  semrelease(&worldsema, false);
}

int procresize(int nprocs) {
  Runtime* r = rt();
  M* m = getm();
  const int old = r->gomaxprocs.load(std::memory_order_relaxed);
  for (int i = 0; i < nprocs; i++) {
    if (r->allp[i].load(std::memory_order_relaxed) == nullptr) {
      P* p = new P();
      p->id = i;
      p->status.store(Pstatus::gcstop, std::memory_order_relaxed);
      if (trace_on) trace_emit(TraceKind::p_name, 0, i);
      r->allp[i].store(p, std::memory_order_release);
    }
  }
  P* cur = m->p;
  // Ps beyond the new count die: their goroutines go to the global queue
  // (in order), their timers and free Gs to surviving Ps.
  P* heir = cur != nullptr && cur->id < nprocs ? cur : r->allp[0].load(std::memory_order_relaxed);
  for (int i = nprocs; i < old; i++) {
    P* p = r->allp[i].load(std::memory_order_relaxed);
    runqdrain_to_global(p);
    timers_move(p, heir);
    gfpurge(r, p);
    p->status.store(Pstatus::dead, std::memory_order_relaxed);
  }
  r->gomaxprocs.store(nprocs, std::memory_order_release);
  if (cur != nullptr && cur->id < nprocs) {
    cur->status.store(Pstatus::running, std::memory_order_relaxed);
  } else {
    if (cur != nullptr) {
      cur->m.store(nullptr, std::memory_order_relaxed);
      m->p = nullptr;
    }
    P* p0 = r->allp[0].load(std::memory_order_relaxed);
    p0->status.store(Pstatus::idle, std::memory_order_relaxed);
    acquirep(m, p0);
  }
  return old;
}

}  // namespace goro::detail
