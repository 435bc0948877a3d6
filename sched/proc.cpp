// proc.cpp — the scheduler loop: Go's runtime/proc.go, in goro's words.
//
// The G/M/P model (runtime2.hpp has the glossary). Each M runs schedule() on
// its own native stack (g0). schedule() asks findrunnable() for a G — from
// runnext, the local run queue, now and then the global queue, else by
// stealing half of another P's queue — and switches to it. The G runs until
// it switches back to g0: to park (gopark), to yield (gosched), because it
// was asked to (safepoint) or because it ended (goexit). Back on g0 the M
// finishes what the G asked for (park_m, gosched_m, goexit0) and loops.
// A G that parks or yields with the next G already in hand (runnext after a
// channel hand-off, the global queue's head on a yield) does that work
// itself and switches straight to it (direct.cpp).
//
//   schedule ──► findrunnable ──► execute ──► fiber_switch(g0 → G)
//      ▲                                           │ G runs user code
//      └──── park_m / gosched_m / goexit0 ◄────────┘ fiber_switch(G → g0)
//                                                  │ or: gopark_direct /
//                                                  └ yield_global: G → G'
//
// When there is nothing to run, findrunnable looks at the network without
// blocking (netpoll(0)), spins a little (a "spinning" M, stealing), then
// gives its P back (pidleput) and the M sleeps on its note (stopm) — or, if
// goroutines wait for I/O and no other M does, blocks in epoll_wait instead
// (sched/netpoll.cpp, docs/netpoll.md). New work wakes one idle P+M, and only when nobody is spinning
// already (wakep): at most one M is looking for work on behalf of new work,
// so readying a goroutine costs one futex wake at most, and usually none.
// The spinning M that finds work wakes another spinner in its place
// (resetspinning), so a burst of work fans out over idle Ps one M at a time.
//
// The delicate part is the spinning -> idle transition: an M that stops
// spinning must re-check every run queue after decrementing nmspinning,
// because a goroutine readied meanwhile saw nmspinning > 0 and woke nobody.
// (Go's "delicate dance", findRunnable.) Missing it loses a wakeup: a
// runnable G waits while a P idles.
//
// Rejected designs: a single global queue under a lock (every go() and
// wakeup contends on it); waking a thread for every readied goroutine (a
// futex wake per channel operation); blocking Ms on a condition variable
// keyed by the global lock (wakeups then serialise on that lock).
//
// Invariants (beyond runtime2.hpp's):
//   - Code on g0 may keep `M* m` across anything: g0 never changes thread.
//     Code on a G must re-read getg()/getm() after anything that can park.
//   - A G is executed by one M at a time: it is resumed only once its
//     context is saved (g0 publishes it after the switch; the direct switch
//     publishes it before, with fiber.ctx cleared, and the resumer waits in
//     wait_saved).
//   - An M holding a P never sleeps on its note; an M sleeping has no P.
#include "sched/proc.hpp"

#include <cstdio>
#include <cstring>
#include <new>
#include <numeric>

#include "sched/hottext.hpp"
#include "sched/lockrank.hpp"
#include "sched/nanotime.hpp"
#include "sched/netpoll.hpp"
#include "sched/signal.hpp"

namespace goro::detail {

std::atomic<Runtime*> rt_{nullptr};

// The thread's M and its blocking() word pair (ThreadTls, goro/runtime.hpp).
// initial-exec: a direct %fs-relative load, not a __tls_get_addr call (goro
// is linked at start-up, never dlopen'ed late); getm_inline and blocking()'s
// inline path read it by its assembler name. Its sys half starts with
// sysSlow: blocking() on a thread that is not an M takes the ordinary path,
// whose Entry reports the misuse (syscall.cpp).
[[gnu::tls_model("initial-exec")]] constinit thread_local ThreadTls tls asm("goro_tls") = {
    nullptr, {{0}, {sysSlow}}, nullptr, 0};

// in_lazy_call: this thread has no M because it is inside a lazy blocking()
// call (the M is in tls.lazy_m).
static bool in_lazy_call() {
  return (tls.sys.state.load(std::memory_order_relaxed) & 1) != 0;
}

GORO_YIELD_TEXT G* getg() {
  asm volatile("" ::: "memory");  // never fold two reads across a switch
  M* m = tls.m;
  if (m == nullptr) [[unlikely]] {
    if (!in_lazy_call()) return nullptr;
    sys_self_take();
    m = tls.m;
  }
  return m->curg.load(std::memory_order_relaxed);
}

M* getm() {
  asm volatile("" ::: "memory");
  if (tls.m == nullptr && in_lazy_call()) [[unlikely]]
    sys_self_take();
  return tls.m;
}

M* getm_raw() {
  asm volatile("" ::: "memory");
  return tls.m;
}

void set_tls_m(M* m) {
  sys_bind(m);  // first: unbinding reads the M being left
  tls.m = m;
  if (m != nullptr) m->eh = fiber_thread_eh();
}

// mcall switches from g to its M's g0 with a request for g0 to carry out
// (Go's mcall). It returns when g is next scheduled, maybe on another M.
//
// m.locks across the switch: the G raises it by one for the switch in
// flight and g0 (execute) takes that and the G's open Entries off this M;
// the M that resumes the G put them on its own count, plus one for its
// switch, which the G drops here. So the count never reads zero while a
// switch is half done — the preemption signal must not take a P there.
void mcall(G* g, M::Req req, bool dies) {
  M* m = g->m;
  // Inside blocking()'s call the goroutine has no P to give back or take
  // again: a park or a yield there (an empty channel, a sleep, a contended
  // Mutex) cannot work. (Leaving the call, exitsyscall clears in_blocking
  // first; abandon is how an exiting runtime drops it.)
  if (m->in_blocking && req != M::Req::abandon) [[unlikely]]
    fatal("goroutine parked inside blocking()'s call (it has no P there)");
  m->req = req;
  acquirem(m);
  fiber_switch(g->fiber, m->g0, m->eh, dies);
  releasem(g->m);
}

G* Entry::enter_slow(const char* api, Mode mode) {
  G* g = getg();
  if (g == nullptr) {
    throw Error(std::string(api) + " called outside a running goro runtime (not on a goroutine)");
  }
  // A safepoint before we count as inside: yield if asked, and take a P
  // back if the preemption signal took ours while user code ran.
  if (g->preempt.load(std::memory_order_relaxed)) {
    if (mode == Yield)
      safepoint_slow();
    else
      reacquirep(g);
  }
  g->entries++;
  acquirem(g->m);
  return g;
}

std::uint32_t fastrand() {
  // wyrand on the M's state: cheap, per-thread, good enough for victim order
  // and select's shuffle.
  M* m = getm();
  std::uint64_t& s = m->fastrand;
  s += 0xa0761d6478bd642fULL;
  __uint128_t t = static_cast<__uint128_t>(s) * (s ^ 0xe7037ed1a0b428dbULL);
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(t >> 64) ^ static_cast<std::uint64_t>(t));
}

// ---------------------------------------------------------------------------
// G status

namespace {

[[maybe_unused]] bool legal_transition(Gstatus from, Gstatus to) {
  using S = Gstatus;
  switch (from) {
    case S::idle: return to == S::runnable || to == S::dead;
    case S::dead: return to == S::runnable;
    case S::runnable: return to == S::running;
    case S::running: return to == S::runnable || to == S::waiting || to == S::syscall || to == S::dead;
    case S::waiting: return to == S::runnable;
    case S::syscall: return to == S::running || to == S::runnable;
  }
  return false;
}

}  // namespace

// casgstatus_checked is casgstatus's debug half (proc.hpp): a transition
// the state machine above does not allow, or a G not in `from`, is fatal.
void casgstatus_checked(G* g, Gstatus from, Gstatus to) {
  if (!legal_transition(from, to)) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "casgstatus: bad transition %s -> %s", gstatus_name(from),
                  gstatus_name(to));
    fatal(buf);
  }
  Gstatus old = from;
  if (!g->status.compare_exchange_strong(old, to, std::memory_order_acq_rel)) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "casgstatus: goroutine %llu is %s, wanted %s -> %s",
                  static_cast<unsigned long long>(g->goid), gstatus_name(old),
                  gstatus_name(from), gstatus_name(to));
    fatal(buf);
  }
}

// ---------------------------------------------------------------------------
// Goroutine start and exit (creation is in newproc.cpp)

namespace {

// gmain is where every goroutine starts (fiber_set_entry). It runs the
// closure and then exits through goexit1; it never returns.
[[noreturn]] void gmain();

}  // namespace

void schedinit_procs(Runtime* r, M* m0) {
  set_tls_m(m0);
  fiber_set_entry(gmain);
  std::lock_guard<Lock> lk(r->sched.lock);
  const int n = r->cfg.procs;
  procresize(n);
  for (int i = n - 1; i >= 0; i--) {
    P* p = r->allp[i].load(std::memory_order_relaxed);
    if (p != m0->p) pidleput(p);
  }
}

namespace {

// goexit1 ends the current goroutine: it switches away for the last time,
// to g0 (goexit0's work in after_run) or, when the P has a G to run next,
// straight to it (goexit_direct).
[[noreturn]] void goexit1(G* g) {
  // A hog that ends without another runtime call may still lack a P.
  if (g->preempt.load(std::memory_order_relaxed)) reacquirep(g);
  M* m = g->m;
  Runtime* r = rt();
  acquirem(m);  // no Entry is open here: keep the signal off our P while we decide
  if (g != r->main_g && direct_ok(r, m) && !runqempty(m->p)) goexit_direct(r, m, g);
  releasem(m);
  mcall(g, M::Req::exit, /*dies=*/true);
  __builtin_trap();
}

[[noreturn]] void gmain() {
  G* g = getg();
  releasem(g->m);  // the switch that started us is done (see mcall)
  const Closure* fn = g->entry;
  g->entry = nullptr;  // started: teardown must not destroy the callable again
  try {
    fn->invoke(g->entry_arg);
  } catch (const std::exception& e) {
    g = getg();
    if (g != rt()->main_g) fatal_panic(g, e.what());
    rt()->main_exception = std::current_exception();
  } catch (...) {
    g = getg();
    if (g != rt()->main_g) fatal_panic(g, "unknown C++ exception (not derived from std::exception)");
    rt()->main_exception = std::current_exception();
  }
  goexit1(getg());
}

}  // namespace


// ---------------------------------------------------------------------------
// Parking and readying

void gopark(bool (*unlockf)(G*, void*), void* lock, WaitReason reason) {
  G* g = getg();
  M* m = g->m;
  Runtime* r = rt();
  acquirem(m);  // the switch's count, raised before we decide: the P stays ours
  if (direct_ok(r, m) && !runqempty(m->p)) {
    gopark_direct(r, m, g, unlockf, lock, reason);
    return;
  }
  releasem(m);
  m->waitunlockf = unlockf;
  m->waitlock = lock;
  g->waitreason = reason;
  mcall(g, M::Req::park);
  // Resumed, possibly on another M.
}

namespace {
bool parkunlock(G*, void* lock) {
  static_cast<Lock*>(lock)->unlock();
  return true;
}
bool parkunlock_plain(G*, void* lock) {
  static_cast<Lock*>(lock)->unlock_plain();
  return true;
}
}  // namespace

void goparkunlock(Lock* lock, WaitReason reason) { gopark(parkunlock, lock, reason); }
void goparkunlock_chan(Lock* lock, WaitReason reason) { gopark(parkunlock_plain, lock, reason); }

void goready(G* g) {
  M* m = getm();
  casgstatus(g, Gstatus::waiting, Gstatus::runnable);
  P* p = m != nullptr ? m->p : nullptr;
  if (trace_on) {
    G* self = m != nullptr ? m->curg.load(std::memory_order_relaxed) : nullptr;
    g->trace_waker = self != nullptr ? self->goid : 0;
    g->trace_flow = trace_newflow();
    trace_emit(TraceKind::unblock, g->goid, p != nullptr ? p->id : -1, static_cast<std::int64_t>(g->trace_waker),
               static_cast<std::int64_t>(g->trace_flow));
  }
  if (p != nullptr) {
    runqput(p, g, true);
  } else {
    // No P (e.g. inside blocking()): hand it to the global queue.
    Runtime* r = rt();
    std::lock_guard<Lock> lk(r->sched.lock);
    globrunqput(g);
  }
  wakep();
}

GORO_YIELD_TEXT void gosched() {
  yield_global(getg(), M::Req::gosched);
}

void goyield() { mcall(getg(), M::Req::goyield); }

void gopreempt() { yield_global(getg(), M::Req::preempted); }

void safepoint_slow() {
  G* g = getg();
  if (g->m->in_blocking) return;  // inside blocking(): no P by design, no yield
  reacquirep(g);  // the preemption signal may have taken our P (preempt.cpp)
  if (g->m->locks.load(std::memory_order_relaxed) > 0) return;  // inside: the exit re-checks
  g->preempt.store(false, std::memory_order_relaxed);
  gopreempt();
}

// ---------------------------------------------------------------------------
// The loop on g0

namespace {

void resetspinning(Runtime* r, M* m) {
  m->spinning.store(false, std::memory_order_relaxed);
  int n = r->sched.nmspinning.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if (n < 0) fatal("resetspinning: negative nmspinning");
  if (trace_on) trace_emit(TraceKind::spinning_off, 0, m->p != nullptr ? m->p->id : -1, n);
  // We found work and stop spinning: if nobody else spins, wake another M
  // to look for more (the work may have come in a burst).
  wakep();
}

G* findrunnable(Runtime* r, M* m, bool* inherit);
}  // namespace
// globrunqput_next puts g, which just stopped running, at the tail of the
// global queue and, in the same critical section, takes the G that
// findrunnable would take next when that is certain to be the global
// queue's head: no stop-the-world or exit pending, nothing in the local
// queue (after running due timers, as findrunnable does first), and the
// head not locked to another M. Then yield pays for sched.lock once, not
// twice. Otherwise it returns nullptr and findrunnable runs as usual.
//
// It takes the head alone, where findrunnable would take a fair share into
// the local queue: the rest stay on the global queue, in the same order,
// for this P's next yield or any other P. A batch would make every other
// yield find the local queue non-empty and pay runqget's CAS on top of the
// lock (yield 44.9 -> 42.0 ns at GOMAXPROCS=1, bench/README.md).
GORO_YIELD_TEXT G* globrunqput_next(Runtime* r, M* m, G* g) {
  Sched& s = r->sched;
  P* p = m->p;
  if (p->timers.when0.load(std::memory_order_relaxed) != 0) checktimers(p, nanotime());
  std::lock_guard<Lock> lk(s.lock);
  globrunqput(g);
  if (m->lockedg != nullptr || !runqempty(p) || s.gcwaiting.load(std::memory_order_relaxed) ||
      s.exiting.load(std::memory_order_relaxed))
    return nullptr;
  G* head = s.runqhead_;
  if (head->lockedm != nullptr && head->lockedm != m) return nullptr;
  G* next = globrunqget(p, 1);
  if (trace_on) trace_emit(TraceKind::globrunq, next->goid, p->id, 1, 0);
  return next;
}

namespace {

// after_run completes what the G that just switched back asked for, on g0
// (Go's park_m, gosched_m, gopreempt_m, goexit0). It returns a G to run at
// once, or nullptr to look for one (findrunnable): the same G when its park
// was cancelled by its unlock function or its syscall exit found a P
// (*inherit: it keeps its time slice), or the next G after a yield or a
// preemption (globrunqput_next; a new slice).
G* after_run(Runtime* r, M* m, G* g, bool* inherit) {
  M::Req req = m->req;
  m->req = M::Req::none;
  *inherit = true;
  switch (req) {
    case M::Req::park: {
      casgstatus(g, Gstatus::running, Gstatus::waiting);
      g->waitsince = r->sched.coarse_now.load(std::memory_order_relaxed);
      g->m = nullptr;
      m->curg.store(nullptr, std::memory_order_relaxed);
      auto unlockf = m->waitunlockf;
      void* lock = m->waitlock;
      m->waitunlockf = nullptr;
      m->waitlock = nullptr;
      const bool parked = unlockf == nullptr || unlockf(g, lock);
      // Whatever the G held is released now; a count left over is a pin (or
      // a runtime lock) held across the park, which would leave this M
      // unpreemptible for good.
      if (m->locks.load(std::memory_order_relaxed) != 0)
        fatal("goroutine parked while pinned (proc_pin held across a blocking call)");
      if (!parked) {
        casgstatus(g, Gstatus::waiting, Gstatus::runnable);
        return g;
      }
      return nullptr;
    }
    case M::Req::gosched: {
      // yield() is Go's Gosched (goschedImpl): the G goes to the tail of the
      // *global* queue, so any P may pick it up, and on this P it runs after
      // everything already queued locally. Then, as current Go does (1.19
      // does not), wakep: an idle P may take it while this P stays busy.
      casgstatus(g, Gstatus::running, Gstatus::runnable);
      g->m = nullptr;
      m->curg.store(nullptr, std::memory_order_relaxed);
      G* next = globrunqput_next(r, m, g);
      wakep();
      *inherit = false;
      return next;
    }
    case M::Req::goyield:
      // Go's goyield_m: behind everything local, without the global lock.
      // Only semrelease's direct handoff uses it (sema.cpp).
      casgstatus(g, Gstatus::running, Gstatus::runnable);
      g->m = nullptr;
      m->curg.store(nullptr, std::memory_order_relaxed);
      runqput(m->p, g, false);
      return nullptr;
    case M::Req::preempted:
      casgstatus(g, Gstatus::running, Gstatus::runnable);
      g->m = nullptr;
      m->curg.store(nullptr, std::memory_order_relaxed);
      *inherit = false;
      return globrunqput_next(r, m, g);
    case M::Req::exit: {
      casgstatus(g, Gstatus::running, Gstatus::dead);
      g->m = nullptr;
      m->curg.store(nullptr, std::memory_order_relaxed);
      if (m->lockedg == g) __atomic_store_n(&m->lockedg, nullptr, __ATOMIC_RELAXED);  // scheddetail reads it
      g->lockedm = nullptr;
      g->lockedcount = 0;
      g->waitreason = WaitReason::zero;
      if (g == r->main_g) {
        begin_exit(r);
        return nullptr;
      }
      gfput(r, m->p, g);
      return nullptr;
    }
    case M::Req::exitsyscall:
      return exitsyscall0(r, m, g);
    case M::Req::abandon:
      m->curg.store(nullptr, std::memory_order_relaxed);
      return nullptr;
    case M::Req::handed:
      // A direct switch (gopark_direct, yield_global) already parked or
      // queued the G and found no G of its own to hand the M to.
      return nullptr;
    case M::Req::none:
      break;
  }
  fatal("after_run: goroutine switched to g0 without a request");
}

const char* stop_reason(M* m, G* g) {
  switch (m->req) {
    case M::Req::park: return wait_reason_string(g->waitreason);
    case M::Req::gosched: return "yield";
    case M::Req::goyield: return "yield (handoff)";
    case M::Req::preempted: return "preempted";
    case M::Req::exit: return "exit";
    case M::Req::exitsyscall: return "syscall (P retaken)";
    case M::Req::abandon: return "abandoned";
    case M::Req::handed: return "parked or queued itself";
    case M::Req::none: break;
  }
  return "";
}

// trace_category classifies a stop for the trace (the index into
// trace.cpp's category names): what the viewer colours a slice by.
int trace_category(M* m, G* g) {
  enum { other, preempted, yield, chan_send, chan_recv, select, sync, sleep, network, gc, syscall, exit };
  switch (m->req) {
    case M::Req::gosched: return yield;
    case M::Req::preempted: return preempted;
    case M::Req::exit: return exit;
    case M::Req::exitsyscall: return syscall;
    case M::Req::park: break;
    default: return other;
  }
  switch (g->waitreason) {
    case WaitReason::chan_send:
    case WaitReason::chan_send_nil: return chan_send;
    case WaitReason::chan_receive:
    case WaitReason::chan_receive_nil: return chan_recv;
    case WaitReason::select:
    case WaitReason::select_no_cases: return select;
    case WaitReason::sleep: return sleep;
    case WaitReason::semacquire:
    case WaitReason::sync_mutex_lock:
    case WaitReason::sync_rwmutex_lock:
    case WaitReason::sync_rwmutex_rlock:
    case WaitReason::sync_cond_wait:
    case WaitReason::wait_group_wait: return sync;
    case WaitReason::gc_finalizer_wait:
    case WaitReason::force_gc_idle:
    case WaitReason::gc_stop_the_world: return gc;
    case WaitReason::preempted: return preempted;
    default: break;
  }
  // The netpoller's wait reason (Go's "IO wait"), whatever its enumerator.
  return std::strcmp(wait_reason_string(g->waitreason), "IO wait") == 0 ? network : other;
}

// trace_slice records that g ran on m and p from t0 until now (GORO_TRACE),
// with why it stopped and, if it had been woken, by whom (the flow's end).
void trace_slice(M* m, P* p, G* g, std::int64_t t0) {
  const std::int64_t now = nanotime();
  trace_emit(TraceKind::slice, g->goid, p->id, trace_category(m, g), static_cast<std::int64_t>(g->trace_waker),
             static_cast<std::int64_t>(g->trace_flow), stop_reason(m, g), t0, now - t0);
  g->trace_flow = 0;
  g->trace_waker = 0;
}

// execute runs g on m until it switches back, then finishes its request;
// it keeps going while that yields a G to run immediately.
void execute(Runtime* r, M* m, G* g, bool inherit) {
  while (g != nullptr) {
    if (m->p == nullptr) return;  // exiting
    P* p = m->p;
    wait_saved(g);  // a direct switch may have published g a moment before saving it
    // The G's open Entries come with it, plus one for the switch, which it
    // drops once it runs (mcall, gmain); on the way back it raises one for
    // its own switch, and its Entries leave with it. Raised before curg is
    // published, so the signal handler never sees this M half switched.
    m->locks.store(m->locks.load(std::memory_order_relaxed) + g->entries + 1, std::memory_order_relaxed);
    m->curg.store(g, std::memory_order_release);  // sysmon reads it (acquire)
    g->m = m;
    casgstatus(g, Gstatus::runnable, Gstatus::running);
    if (!inherit) p->schedtick.store(p->schedtick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    const std::int64_t t0 = trace_on ? nanotime() : 0;
    fiber_switch(m->g0, g->fiber, m->eh);
    // g0 again, switched to by g or by a G that g (directly, or through
    // others) handed this M to: curg says which.
    g = m->curg.load(std::memory_order_relaxed);
    // No curg first (the signal handler then leaves this M alone), then the
    // G's Entries and its switch off the count. After a direct path's
    // `handed` the G is published already: it took its Entries off itself.
    m->curg.store(nullptr, std::memory_order_relaxed);
    const std::int32_t entries = m->req == M::Req::handed ? 0 : g->entries;
    m->locks.store(m->locks.load(std::memory_order_relaxed) - entries - 1, std::memory_order_relaxed);
    if (trace_on) trace_slice(m, p, g, t0);
    g = after_run(r, m, g, &inherit);
  }
}

}  // namespace

// schedule is the body of every M: find a G, run it, repeat, until the
// runtime exits.
void schedule(Runtime* r, M* m) {
  for (;;) {
    if (m->lockedg != nullptr) {
      // This M belongs to a locked goroutine that is not runnable: hand the
      // P away and sleep until the goroutine is handed back to us.
      if (r->sched.exiting.load(std::memory_order_relaxed)) return;
      // (If it merely yielded it sits in a run queue; whoever takes it
      // from there hands it back through startlockedm.)
      G* lg = m->lockedg;
      stoplockedm(r, m);
      if (m->p == nullptr) return;  // exiting
      execute(r, m, lg, false);
      continue;
    }
    bool inherit = false;
    G* g = findrunnable(r, m, &inherit);
    if (g == nullptr) return;  // exiting
    if (m->spinning.load(std::memory_order_relaxed)) resetspinning(r, m);
    if (g->lockedm != nullptr && g->lockedm != m) {
      // g may run only on its own M: give that M our P.
      startlockedm(r, m, g);
      continue;
    }
    execute(r, m, g, inherit);
  }
}

namespace {

// stealwork tries, four rounds over all Ps in random order, to steal half
// of some P's run queue; the last round also runs other Ps' due timers and
// takes their runnext.
G* stealwork(Runtime* r, M* m, bool* inherit) {
  P* p = m->p;
  const int n = r->gomaxprocs.load(std::memory_order_relaxed);
  constexpr int stealTries = 4;
  for (int i = 0; i < stealTries; i++) {
    const bool last = i == stealTries - 1;
    const std::uint32_t start = fastrand() % static_cast<std::uint32_t>(n);
    std::uint32_t stride = 1 + fastrand() % static_cast<std::uint32_t>(n);
    while (std::gcd(stride, static_cast<std::uint32_t>(n)) != 1) stride++;
    for (int k = 0; k < n; k++) {
      if (r->sched.gcwaiting.load(std::memory_order_relaxed) ||
          r->sched.exiting.load(std::memory_order_relaxed))
        return nullptr;
      P* p2 = r->allp[(start + static_cast<std::uint32_t>(k) * stride) % static_cast<std::uint32_t>(n)]
                  .load(std::memory_order_relaxed);
      if (p2 == p) continue;
      if (last) {
        const std::int64_t w = p2->timers.when0.load(std::memory_order_relaxed);
        if (w != 0 && w <= nanotime()) {
          checktimers(p2, nanotime());
          if (G* g = runqget(p, inherit)) return g;
        }
      }
      if (trace_on) {
        // runqgrab takes runnext only from an empty ring (racy reads: the
        // trace's "runnext" flag is a best guess, the count is exact).
        G* next = last ? p2->runnext.load(std::memory_order_relaxed) : nullptr;
        const bool ring_empty = runqlen(p2) == 0;
        if (G* g = runqsteal(p, p2, last)) {
          trace_emit(TraceKind::steal, g->goid, p->id, runqlen(p) + 1, p2->id,
                     g == next && ring_empty && runqlen(p) == 0);
          return g;
        }
        continue;
      }
      if (G* g = runqsteal(p, p2, last)) return g;
    }
  }
  return nullptr;
}

}  // namespace

namespace {

// findrunnable finds a goroutine to run; it blocks (stopm) when there is
// none and returns nullptr only when the runtime is exiting.
G* findrunnable(Runtime* r, M* m, bool* inherit) {
  Sched& s = r->sched;
top:
  if (s.exiting.load(std::memory_order_relaxed)) return nullptr;
  P* p = m->p;
  if (s.gcwaiting.load(std::memory_order_acquire)) {
    gcstopm(r, m);
    goto top;
  }
  if (p->timers.when0.load(std::memory_order_relaxed) != 0) checktimers(p, nanotime());

  // Fairness: now and then take from the global queue first, or two
  // goroutines that keep readying each other would starve it.
  if (p->schedtick.load(std::memory_order_relaxed) % 61 == 0 && s.runqsize.load(std::memory_order_relaxed) > 0) {
    std::lock_guard<Lock> lk(s.lock);
    if (G* g = globrunqget(p, 1)) {
      if (trace_on) trace_emit(TraceKind::globrunq, g->goid, p->id, 1, 1);
      return g;
    }
  }
  if (G* g = runqget(p, inherit)) return g;
  if (s.runqsize.load(std::memory_order_relaxed) > 0) {
    std::lock_guard<Lock> lk(s.lock);
    if (G* g = globrunqget(p, 0)) {
      if (trace_on) trace_emit(TraceKind::globrunq, g->goid, p->id, runqlen(p) + 1, 0);
      return g;
    }
  }

  // The network: a non-blocking look before stealing (Go's findRunnable
  // does the same). Skipped if an M is blocked in epoll_wait already
  // (lastpoll == 0): it gets the events. The first ready goroutine runs
  // here; the others are injected.
  if (netpoll_waiters() > 0 && s.lastpoll.load(std::memory_order_relaxed) != 0) {
    int n = 0;
    if (G* list = netpoll(0, &n)) {
      G* g = list;
      list = g->schedlink;
      g->schedlink = nullptr;
      injectglist(list, n - 1);
      casgstatus(g, Gstatus::waiting, Gstatus::runnable);
      return g;
    }
  }

  // Steal. Limit the spinners to half the busy Ps, so that with many idle
  // Ps we do not burn all CPUs looking for the same few goroutines.
  {
    const int procs = r->gomaxprocs.load(std::memory_order_relaxed);
    if (m->spinning.load(std::memory_order_relaxed) ||
        2 * s.nmspinning.load(std::memory_order_relaxed) <
            procs - s.npidle.load(std::memory_order_relaxed)) {
      if (!m->spinning.load(std::memory_order_relaxed)) {
        m->spinning.store(true, std::memory_order_relaxed);
        const int n = s.nmspinning.fetch_add(1, std::memory_order_acq_rel) + 1;
        if (trace_on) trace_emit(TraceKind::spinning, 0, p->id, n);
      }
      if (G* g = stealwork(r, m, inherit)) return g;
    }
  }

  // Nothing to do: give up the P.
  {
    std::unique_lock<Lock> lk(s.lock);
    if (s.gcwaiting.load(std::memory_order_relaxed) || s.exiting.load(std::memory_order_relaxed)) {
      lk.unlock();
      goto top;
    }
    if (s.runqsize.load(std::memory_order_relaxed) > 0) return globrunqget(p, 0);
    releasep(m);
    pidleput(p);
  }

  // The delicate dance: having stopped spinning, look once more at every
  // run queue, since work readied while we spun may have woken nobody.
  if (m->spinning.load(std::memory_order_relaxed)) {
    m->spinning.store(false, std::memory_order_relaxed);
    const int nspin = s.nmspinning.fetch_sub(1, std::memory_order_acq_rel) - 1;
    if (nspin < 0) fatal("findrunnable: negative nmspinning");
    if (trace_on) trace_emit(TraceKind::spinning_off, 0, -1, nspin);
    const int n = r->gomaxprocs.load(std::memory_order_relaxed);
    for (int i = 0; i < n; i++) {
      P* p2 = r->allp[i].load(std::memory_order_relaxed);
      if (!runqempty(p2)) {
        P* np = nullptr;
        {
          std::lock_guard<Lock> lk(s.lock);
          np = pidleget();
        }
        if (np != nullptr) {
          acquirep(m, np);
          m->spinning.store(true, std::memory_order_relaxed);
          s.nmspinning.fetch_add(1, std::memory_order_acq_rel);
          goto top;
        }
        break;
      }
    }
  }

  // Goroutines wait on I/O and no M is blocked in the poller: be that M,
  // until I/O or the next timer, instead of sleeping on our note.
  if (G* g = findrunnable_netpoll(r, m)) return g;
  if (m->p != nullptr) goto top;

  // Sleep, until a timer is due if we are the one watching timers.
  if (!stopm_idle(r, m)) return nullptr;
  goto top;
}

}  // namespace

}  // namespace goro::detail
