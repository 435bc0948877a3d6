// syscall.cpp — goroutines in blocking calls (Go's entersyscall,
// exitsyscall, exitsyscall0), blocking()'s lazy fast path, and goroutines
// locked to their thread (LockOSThread: stoplockedm, startlockedm).
//
// entersyscall detaches the P from the M but leaves it marked _Psyscall, so
// the common case — a call that returns quickly — gets it back with one CAS
// and no lock (exitsyscall's fast path). If the call blocks, sysmon sees the
// P sitting in _Psyscall for a whole tick (retake) and hands it to another M
// (handoffp), so the other goroutines keep running. On return the goroutine
// takes its old P if still free, else any idle P, else it goes on the global
// run queue and its M goes idle (exitsyscall0).
//
// The lazy path. That is Go's design, and blocking() uses it only when it
// must. Its bookkeeping touches the G, the M, the P and the scheduler's
// flags, in three places of memory besides libgoro's code, and on a machine
// whose system calls empty the TLB each of them costs a page walk after
// every call (bench/README.md, "blocking's pages"). So blocking() (inline,
// goro/runtime.hpp) first tries the lazy path, which touches only its own
// thread's TLS block (ThreadTls: the M, and the word pair SysTls):
//   - enter: state += 1 (odd: "in a call"), if req is 0, and hide the M
//     (ThreadTls.m = nullptr, the M in lazy_m); the P stays attached,
//     _Prunning, and the G _Grunning;
//   - leave: put the M back, state += 1 (even), then read req: 0 means
//     nobody asked for the P meanwhile, and the call cost a few plain stores
//     and loads on one cache line.
// Hiding the M is what makes runtime code called from inside the call
// notice it at no cost to anyone else: getg and getm find no M there, and
// their slow path (sys_self_take) gives it back and takes the call first.
// Whoever needs the P while the thread is in the call — sysmon retaking it
// from a call that has blocked for a tick, a stop-the-world, main's exit,
// or runtime code that user code in the call has called (sys_self_take) — first
// turns the call into the ordinary one, on the thread's behalf: exactly
// entersyscall's stores (materialize). After that, the ordinary machinery
// above takes over, and the thread, leaving the call, sees req and runs
// exitsyscall.
//
// The handshake between the thread, which uses no locked instruction, and
// a taker on another thread (sys_take) is Dekker's, with the fence on the
// taker's side only:
//   thread:  state = even; [compiler barrier]; r = req
//   taker:   req |= sysTake; membarrier(2); s = state
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) runs a full barrier on every
// CPU running a thread of this process before it returns. So either the
// thread's store was visible to the taker's load (s even: the taker lets
// go), or the thread's load comes after the barrier and sees sysTake (it
// waits until the taker has decided). A taker that sees s odd materializes
// the call and sets sysTaken; the thread, released, runs exitsyscall. A
// membarrier costs the taker about 30 us on the machine of bench/README.md:
// sysmon pays it once per call that blocked, a stop once for all calls.
// Takers exclude each other with the sysTake bit (CAS).
//
// Invariants:
//   - while a G is in _Gsyscall its M has no P (m.p == nullptr, m.oldp is the
//     P it left, which may have been taken);
//   - _Psyscall -> anything is a CAS: the returning M, sysmon and the
//     stopper race for it and exactly one wins;
//   - SysTls.state is written only by its thread; odd only inside a
//     blocking() call on the lazy path, while that call's M either still
//     holds its P (_Prunning, its G _Grunning) or req has sysTaken (the call
//     is an ordinary one now);
//   - only a taker holding sysTake (or the thread itself, in sys_self_take)
//     writes the M's fields while the thread is in a lazy call, and it sets
//     sysTaken before it lets go; the thread clears sysTaken;
//   - ThreadTls.ordinary is 1 exactly from an ordinary call's entersyscall
//     to its exitsyscall (written only by its thread); blocking() takes the
//     lazy path only when it is 0, so a lazy call's M always has its P;
//   - g.lockedm == m  <=>  m.lockedg == g.
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

// The system call's own bookkeeping: blocking()'s entry, entersyscall and
// exitsyscall's fast path share one section, aligned to a page so that it
// sits on one page for as long as it stays under 4 KiB (930 bytes in the
// release build of 3 December: 1 KiB alignment would have left a margin of
// 94 bytes before an edit silently split it). On a machine whose system
// calls empty the TLB (page-table isolation without PCID, as where the
// benchmarks ran) every page the loop around a call touches costs a page
// walk after each call: about 3 ns for a page near others, 8 ns for one in a
// region of its own.
// So the helpers these functions use (casgstatus, wirep, notify_sysmon) are
// inline, the flags they read sit together in Sched, and the slow paths
// live elsewhere: 12 pages per call instead of 16 (bench/README.md,
// "blocking's pages").
#define GORO_SYSCALL_TEXT [[gnu::section(".text.goro_syscall")]]
asm(".section .text.goro_syscall,\"ax\",%progbits\n\t.balign 4096\n\t.previous");

GORO_SYSCALL_TEXT void entersyscall() {
  // The Entry closes before the call runs: user code in blocking() counts as
  // outside (m.locks back to what it was), with no P to lose anyway.
  Entry e("goro::blocking");
  G* g = e.g();
  M* m = g->m;
  if (m->in_blocking) [[unlikely]] {
    // blocking() inside blocking()'s call: already in one, without a P.
    m->blocking_nest++;
    return;
  }
  P* p = m->p;
  casgstatus(g, Gstatus::running, Gstatus::syscall);
  if (trace_on) [[unlikely]] m->trace_syscall_ts = nanotime();
  m->in_blocking = true;
  // A blocking() inside this call must nest in it: on the lazy path it would
  // mark a call of an M without a P, and a taker would then make the thread
  // run exitsyscall twice.
  tls.ordinary = 1;
  p->m.store(nullptr, std::memory_order_relaxed);
  m->oldp = p;
  m->p = nullptr;
  p->status.store(Pstatus::syscall, std::memory_order_seq_cst);
  // sysmon may have gone to sleep (all Ps idle, or the world stopped): it
  // must watch this P now, to hand it off if the call blocks (Go's
  // entersyscall_sysmon).
  notify_sysmon();
  entersyscall_gcwait(p);
}

// entersyscall_gcstop is entersyscall_gcwait's slow half (proc.hpp): a
// stop-the-world that counted p as running before it was marked _Psyscall
// would wait for its goroutine for the whole call: give p to it now.
//
// gcwaiting was read before the lock, and this thread may have been
// descheduled since: that stop may be over, p given back and handed to
// another M that is now in a system call of its own. Taking p then would
// leave it _Pgcstop with the world running, lost to everyone, and the next
// stop-the-world would wait for it forever (found with a CPU hog on each
// core: 1 run in 3 to 30 of gc_concurrent's KernelWrites hung). So, as Go's
// entersyscall_gcwait, take p only if a stop is still pending (gcwaiting
// and stopwait > 0), under the lock. A P in _Psyscall then is always one
// the pending stop still waits for, whoever's call it is: the stop's scan
// turned every _Psyscall P into _Pgcstop, and a P enters _Psyscall later
// only from _Prunning, which the stop counted.
std::atomic<void (*)()> testhook_gcstop{nullptr};

void entersyscall_gcstop(P* p) {
  if (void (*hook)() = testhook_gcstop.load(std::memory_order_relaxed)) hook();
  Runtime* r = rt();
  Sched& s = r->sched;
  std::lock_guard<Lock> lk(s.lock);
  if (!s.gcwaiting.load(std::memory_order_relaxed) || s.stopwait <= 0) return;
  Pstatus st = Pstatus::syscall;
  if (p->status.compare_exchange_strong(st, Pstatus::gcstop)) stopwait_put(s, p);
}

// entersyscall(regs) is blocking()'s entry: it stores the callee-saved
// registers, as they are at the call, into regs (a buffer in blocking()'s own
// frame) and continues in entersyscall(). The garbage collector scans the
// stack of a goroutine in a system call, so pointers the caller kept only in
// registers are seen too. Written in assembly because a C++ prologue may
// reuse those registers before any statement runs.
#if defined(__x86_64__)
extern "C" __attribute__((visibility("hidden"))) GORO_SYSCALL_TEXT void goro_entersyscall_spilled() {
  entersyscall();
}
GORO_SYSCALL_TEXT __attribute__((naked)) void entersyscall(SyscallRegs*) {
  asm volatile(
      "movq %rbx, 0(%rdi)\n\t"
      "movq %rbp, 8(%rdi)\n\t"
      "movq %r12, 16(%rdi)\n\t"
      "movq %r13, 24(%rdi)\n\t"
      "movq %r14, 32(%rdi)\n\t"
      "movq %r15, 40(%rdi)\n\t"
      "movq %rsp, 48(%rdi)\n\t"
      "jmp goro_entersyscall_spilled\n\t");
}
#elif defined(__aarch64__)
extern "C" __attribute__((visibility("hidden"))) void goro_entersyscall_spilled() { entersyscall(); }
__attribute__((naked)) void entersyscall(SyscallRegs*) {
  asm volatile(
      "stp x19, x20, [x0, #0]\n\t"
      "stp x21, x22, [x0, #16]\n\t"
      "stp x23, x24, [x0, #32]\n\t"
      "stp x25, x26, [x0, #48]\n\t"
      "b goro_entersyscall_spilled\n\t");
}
#else
void entersyscall(SyscallRegs* regs) {
  __builtin_unwind_init();  // best effort: no portable way to read the caller's registers
  regs->r[0] = __builtin_frame_address(0);
  entersyscall();
}
#endif

// trace_syscall_end records the system call g just finished as a slice on
// its M; handoff: its P was taken (sysmon's retake) while it was in the call.
static void trace_syscall_end(M* m, G* g, P* oldp, bool handoff) {
  const std::int64_t now = nanotime();
  trace_emit(TraceKind::syscall, g->goid, oldp != nullptr ? oldp->id : -1, handoff, 0, 0, nullptr,
             m->trace_syscall_ts, now - m->trace_syscall_ts);
}

static void exitsyscall_slow(Runtime* r, M* m, G* g, P* oldp);

GORO_SYSCALL_TEXT void exitsyscall() {
  // No park since entersyscall: this is still the M that entered, and
  // getm_inline's read cannot be cached across a switch anyway.
  M* m = getm_inline();
  if (m->blocking_nest > 0) [[unlikely]] {
    m->blocking_nest--;
    return;
  }
  G* g = m->curg.load(std::memory_order_relaxed);
  Runtime* r = rt();
  P* oldp = m->oldp;
  m->oldp = nullptr;
  m->in_blocking = false;
  tls.ordinary = 0;  // before anything that can park: this thread's TLS
  // Fast path: our P is still waiting for us.
  Pstatus st = Pstatus::syscall;
  if (oldp == nullptr || !oldp->status.compare_exchange_strong(st, Pstatus::idle)) [[unlikely]] {
    exitsyscall_slow(r, m, g, oldp);
    return;
  }
  // No sysmon wake-up: a P in a system call was never idle, so sysmon
  // cannot be in its all-idle sleep on our account.
  wirep(m, oldp);
  // We own the P now: a plain increment (sysmon only reads it).
  oldp->syscalltick.store(oldp->syscalltick.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
  casgstatus(g, Gstatus::syscall, Gstatus::running);
  if (trace_on) [[unlikely]] trace_syscall_end(m, g, oldp, false);
  if (r->sched.exiting.load(std::memory_order_relaxed)) [[unlikely]] {
    // main has returned while we were in the call: this goroutine is
    // abandoned; let the M leave.
    mcall(g, M::Req::abandon);
    __builtin_trap();
  }
}

// exitsyscall_slow: our P was retaken while we were in the call (sysmon's
// retake, or a stop-the-world).
[[gnu::noinline]] static void exitsyscall_slow(Runtime* r, M* m, G* g, P* oldp) {
  if (trace_on) trace_syscall_end(m, g, oldp, true);
  // Any idle P will do.
  if (!r->sched.gcwaiting.load(std::memory_order_acquire) &&
      r->sched.npidle.load(std::memory_order_relaxed) > 0) {
    P* p = nullptr;
    {
      std::lock_guard<Lock> lk(r->sched.lock);
      if (!r->sched.gcwaiting.load(std::memory_order_relaxed)) p = pidleget();
    }
    if (p != nullptr) {
      acquirep(m, p);
      casgstatus(g, Gstatus::syscall, Gstatus::running);
      return;
    }
  }
  // Slow path, on g0: queue the goroutine and park the M.
  mcall(g, M::Req::exitsyscall);
}

// exitsyscall0 runs on g0 for a goroutine whose P was taken during its call.
// Returns the G to run at once if an idle P turned up, else nullptr (the G
// is queued and this M slept until it got a P, or the runtime is exiting).
G* exitsyscall0(Runtime* r, M* m, G* g) {
  casgstatus(g, Gstatus::syscall, Gstatus::runnable);
  g->m = nullptr;
  m->curg.store(nullptr, std::memory_order_relaxed);
  P* p = nullptr;
  {
    std::lock_guard<Lock> lk(r->sched.lock);
    if (!r->sched.gcwaiting.load(std::memory_order_relaxed)) p = pidleget();
    if (p == nullptr) globrunqput(g);
  }
  if (p != nullptr) {
    acquirep(m, p);
    return g;
  }
  stopm_idle(r, m);
  return nullptr;
}

// ---------------------------------------------------------------------------
// blocking()'s lazy path (the essay at the top)

// What an M's sys points at while no thread is bound to it.
constinit SysTls sys_idle{{0}, {sysSlow}};

namespace {

// lazy_ok: membarrier(2) works here (sys_init). Without it the lazy path
// stays closed and every call takes the ordinary one.
std::atomic<bool> lazy_ok{false};

// lazy_open: whether blocking() may take the lazy path on an M of r. Not
// while tracing (the trace shows every call as a slice, which exitsyscall
// writes), nor once main has returned (exitsyscall abandons the goroutine).
bool lazy_open(Runtime* r) {
  return lazy_ok.load(std::memory_order_relaxed) && r != nullptr && r->cfg.lazysyscall &&
         !trace_on && !r->sched.exiting.load(std::memory_order_relaxed);
}

void sys_membarrier() {
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
    fatal("membarrier: MEMBARRIER_CMD_PRIVATE_EXPEDITED failed");
}

// materialize does for m what entersyscall would have done when its lazy
// call began: G _Gsyscall, P detached and _Psyscall. Called by the holder of
// sysTake (or by m's own thread) while m's thread is inside the call or
// waits for us. A goroutine whose P the preemption signal took just as it
// entered has no P to detach: it only counts as in blocking() now.
P* materialize(M* m) {
  G* g = m->curg.load(std::memory_order_relaxed);
  P* p = m->p;
  m->in_blocking = true;
  if (p == nullptr) return nullptr;
#ifndef NDEBUG
  if (g == nullptr || p->m.load(std::memory_order_relaxed) != m ||
      p->status.load(std::memory_order_relaxed) != Pstatus::running)
    fatal("materialize: lazy system call without its running P");
#endif
  casgstatus(g, Gstatus::running, Gstatus::syscall);
  p->m.store(nullptr, std::memory_order_relaxed);
  m->oldp = p;
  m->p = nullptr;
  p->status.store(Pstatus::syscall, std::memory_order_seq_cst);
  return p;
}

// claim sets sysTake on t unless a taker holds it or the call is taken.
bool claim(SysTls* t) {
  std::uint32_t r = t->req.load(std::memory_order_relaxed);
  do {
    if ((r & (sysTake | sysTaken)) != 0) return false;
  } while (!t->req.compare_exchange_weak(r, r | sysTake, std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
  return true;
}

// let_go clears sysTake, setting sysTaken if the call was materialized:
// release, so that the thread, seeing it, sees the M's new fields.
void let_go(SysTls* t, bool taken) {
  std::uint32_t r = t->req.load(std::memory_order_relaxed);
  while (!t->req.compare_exchange_weak(r, (r & ~sysTake) | (taken ? sysTaken : 0),
                                       std::memory_order_release, std::memory_order_relaxed)) {
  }
}

// wait_taker spins while another thread holds sysTake on t: a few stores,
// unless that thread was descheduled, so the CPU is given up after a while.
std::uint32_t wait_taker(SysTls* t) {
  std::uint32_t r;
  for (int i = 0; ((r = t->req.load(std::memory_order_acquire)) & sysTake) != 0; i++) {
    if (i >= 64) {
      sched_yield();
    } else {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  }
  return r;
}

}  // namespace

void sys_init() {
  static const bool ok =
      syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  lazy_ok.store(ok, std::memory_order_relaxed);
}

void sys_bind(M* m) {
  SysTls* t = &tls.sys;
  if (m == nullptr) {
    // The thread leaves its M (run() returning on m0, a thread ending at
    // teardown): close the path, and point the M away from a TLS block that
    // may soon be gone.
    t->req.fetch_or(sysSlow, std::memory_order_relaxed);
    if (M* old = tls.m) old->sys.store(&sys_idle, std::memory_order_release);
    return;
  }
  m->sys.store(t, std::memory_order_release);
  if (lazy_open(rt()))
    t->req.fetch_and(~sysSlow, std::memory_order_relaxed);
  else
    t->req.fetch_or(sysSlow, std::memory_order_relaxed);
}

bool sys_in_call(M* m) {
  return (m->sys.load(std::memory_order_acquire)->state.load(std::memory_order_acquire) & 1) != 0;
}

bool sys_in_untaken_call(M* m) {
  const SysTls* t = m->sys.load(std::memory_order_acquire);
  return (t->state.load(std::memory_order_acquire) & 1) != 0 &&
         (t->req.load(std::memory_order_acquire) & sysTaken) == 0;
}

int sys_take(M* const* ms, P** ps, int n) {
  // Claim every M whose thread seems to be in a lazy call, then one
  // membarrier for a batch of them, then decide each by its state.
  constexpr int batch = 64;
  int taken = 0;
  for (int lo = 0; lo < n; lo += batch) {
    const int hi = std::min(n, lo + batch);
    SysTls* claimed[batch] = {};
    bool any = false;
    for (int i = lo; i < hi; i++) {
      ps[i] = nullptr;
      SysTls* t = ms[i]->sys.load(std::memory_order_acquire);
      if ((t->state.load(std::memory_order_relaxed) & 1) != 0 && claim(t)) {
        claimed[i - lo] = t;
        any = true;
      }
    }
    if (!any) continue;
    sys_membarrier();
    for (int i = lo; i < hi; i++) {
      SysTls* t = claimed[i - lo];
      if (t == nullptr) continue;
      const bool in_call = (t->state.load(std::memory_order_acquire) & 1) != 0;
      if (in_call) {
        ps[i] = materialize(ms[i]);
        taken++;
      }
      let_go(t, in_call);
    }
  }
  return taken;
}

void sys_self_take() {
  SysTls* t = &tls.sys;
  M* m = tls.lazy_m;
  tls.m = m;
  // acquire: a taker that set sysTaken wrote this M's fields before.
  if ((t->req.load(std::memory_order_acquire) & sysTaken) != 0) return;
  for (;;) {
    const std::uint32_t r = wait_taker(t);
    if ((r & sysTaken) != 0) return;  // a taker did it while we waited
    std::uint32_t want = r;
    // sysTaken with sysTake: a taker that looks meanwhile finds the call
    // taken and leaves it alone; this thread, leaving the call, sees
    // sysTaken and runs exitsyscall.
    if (t->req.compare_exchange_strong(want, r | sysTake | sysTaken, std::memory_order_acquire,
                                       std::memory_order_relaxed))
      break;
  }
  materialize(m);
  t->req.fetch_and(~sysTake, std::memory_order_release);
}

void blocking_exit_slow() {
  SysTls* t = &tls.sys;
  const std::uint32_t r = wait_taker(t);
  if ((r & sysTaken) != 0) {
#ifndef NDEBUG
    if (!getm_raw()->in_blocking) fatal("blocking_exit_slow: a taken call is not in blocking()");
#endif
    t->req.fetch_and(~sysTaken, std::memory_order_relaxed);
    exitsyscall();
    return;
  }
  // A taker looked and let go, or the path was closed meanwhile. If main has
  // returned (begin_exit closed it), this goroutine is abandoned as
  // exitsyscall abandons one: we still hold our P and run.
  if (rt()->sched.exiting.load(std::memory_order_relaxed)) {
    mcall(getg(), M::Req::abandon);
    __builtin_trap();
  }
}

// ---------------------------------------------------------------------------
// LockOSThread

void stoplockedm(Runtime* r, M* m) {
  P* p = releasep(m);
  handoffp(p);
  {
    // Sleep in sched.mlocked: counted apart from idle Ms, since this M is
    // not available for other work (checkdead's nmidlelocked).
    std::lock_guard<Lock> lk(r->sched.lock);
    if (r->sched.exiting.load(std::memory_order_relaxed)) return;
    // A thief may have found our goroutine in the run queue and handed us
    // a P already (startlockedm, before we got here): then the note is
    // signalled and we must not count ourselves idle.
    if (m->nextp == nullptr) {
      m->schedlink = r->sched.mlocked;
      r->sched.mlocked = m;
      r->sched.nmidlelocked++;
    }
  }
  // Woken by startlockedm (which took us off mlocked, with a P in nextp) or
  // by begin_exit (no P).
  m->park.sleep();
  m->park.clear();
  if (m->nextp == nullptr) return;  // exiting
  P* np = m->nextp;
  m->nextp = nullptr;
  acquirep(m, np);
}

void startlockedm(Runtime* r, M* m, G* g) {
  M* lm = g->lockedm;
  P* p = releasep(m);
  {
    std::lock_guard<Lock> lk(r->sched.lock);
    for (M** pp = &r->sched.mlocked; *pp != nullptr; pp = &(*pp)->schedlink) {
      if (*pp == lm) {
        *pp = lm->schedlink;
        lm->schedlink = nullptr;
        r->sched.nmidlelocked--;
        break;
      }
    }
    lm->nextp = p;  // under the lock: stoplockedm reads it there
  }
  lm->park.wakeup();
  stopm_idle(r, m);
}

}  // namespace goro::detail

namespace goro {

void lock_os_thread() {
  detail::Entry e("goro::lock_os_thread");
  detail::G* g = e.g();
  detail::M* m = g->m;
  g->lockedcount++;
  g->lockedm = m;
  __atomic_store_n(&m->lockedg, g, __ATOMIC_RELAXED);  // scheddetail reads it
}

void unlock_os_thread() {
  detail::Entry e("goro::unlock_os_thread");
  detail::G* g = e.g();
  if (g->lockedcount == 0) return;  // as Go: unlocking an unlocked goroutine is a no-op
  if (--g->lockedcount == 0) {
    __atomic_store_n(&g->m->lockedg, nullptr, __ATOMIC_RELAXED);
    g->lockedm = nullptr;
  }
}

}  // namespace goro
