// proc.hpp — the scheduler's internal interface, shared by sched/, runtime/
// and the later subsystems (channels, sync, the GC, sync.Pool).
//
// Go's names: these are the functions of runtime/proc.go that the rest of the
// runtime calls. The essay and invariants are in runtime2.hpp (the data) and
// proc.cpp (the algorithms).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>

#include "sched/config.hpp"
#include "sched/runtime2.hpp"
#include "sched/stack.hpp"

namespace goro::detail {

// maxProcs bounds GOMAXPROCS, as Go's _MaxGomaxprocs does.
inline constexpr int maxProcs = 1024;

struct GcState;                                             // gc/mgc.hpp
struct GcStateFree { void operator()(GcState*) const; };  // gc/mgc.cpp

// Runtime is one run of goro: everything run() creates and destroys. There
// is at most one at a time in a process (rt).
struct Runtime {
  Config cfg;
  Sched sched;
  // allp[i] for i < gomaxprocs are the live Ps. Ps are created on demand and
  // never freed before the runtime ends, so a pointer read from allp stays
  // valid; procresize changes only gomaxprocs and the Ps' status.
  std::atomic<P*> allp[maxProcs] = {};
  std::atomic<int> gomaxprocs{0};
  StackAllocator stacks;

  Lock allglock{LockRank::allg};  // guards allgs
  G* allgs = nullptr;
  std::atomic<std::int64_t> allglen{0};

  G* main_g = nullptr;
  std::exception_ptr main_exception;
  std::int64_t start_time = 0;
  M* m0 = nullptr;

  // sysmon and schedtrace
  std::thread sysmon;
  Note sysmonnote;  // sysmon's all-idle sleep (sched.sysmonwait)
  // sysmonwakes counts sysmon's looks (only sysmon writes it; the tests read
  // it to check that a busy runtime lets sysmon back off, as Go's does).
  std::atomic<std::uint64_t> sysmonwakes{0};
  TraceBuf sysmon_trace;  // sysmon's GORO_TRACE events

  std::unique_ptr<GcState, GcStateFree> gc;  // the collector's state (gc_init .. gc_teardown)
};

extern std::atomic<Runtime*> rt_;
inline Runtime* rt() { return rt_.load(std::memory_order_relaxed); }

// getg and getm read the thread's current G and M. They are deliberately not
// inlined: a goroutine may resume on another thread, and a compiler that
// inlines a thread_local read may keep its address across the switch.
G* getg();
M* getm();

// Lifecycle (proc.cpp).
void schedinit(Runtime* r);
void mstart(M* m);         // run the scheduler loop on the calling thread
void schedteardown(Runtime* r);

// Goroutine creation and exit (newproc.cpp). gfput puts a dead G on p's
// free list (goexit0 in proc.cpp calls it).
void gfput(Runtime* r, P* p, G* g);
void gfpurge(Runtime* r, P* p);  // all of p's free Gs to the global list
G* newproc_alloc(std::size_t size, std::size_t align, void** mem);
void newproc_start(G* g, const Closure* fn, const std::source_location& where);

// wait_saved waits until g's context is saved: a direct switch (direct.cpp)
// publishes a G a moment before its switch saves it. Whoever is about to
// resume a G, or reuse a dead one's stack, calls it first.
inline void wait_saved(G* g) {
  for (int spins = 0; !fiber_saved(g->fiber); spins++) {
    if (spins < 100) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();  // the switching thread was descheduled
    }
  }
}

// The direct switch (direct.cpp): g0's work done on the goroutine's own
// stack, then a switch straight to the next G. direct_ok: may this M skip
// g0 now. yield_global is gosched/gopreempt (req gosched or preempted);
// gopark_direct and goexit_direct are called with m.locks raised for the
// switch, and goexit_direct returns only when it declines.
bool direct_ok(Runtime* r, M* m);
void yield_global(G* g, M::Req req);
void gopark_direct(Runtime* r, M* m, G* g, bool (*unlockf)(G*, void*), void* lock, WaitReason reason);
void goexit_direct(Runtime* r, M* m, G* g);
// globrunqput_next queues g, which just stopped, on the global queue and
// takes the G findrunnable would run next, in one critical section
// (proc.cpp); nullptr when that is not the global queue's head.
G* globrunqput_next(Runtime* r, M* m, G* g);

// Parking. gopark switches to g0 and, there, runs unlockf(g, lock); if that
// returns false the G resumes at once. Otherwise it stays _Gwaiting until
// some goready(g). Must be called on a goroutine.
void gopark(bool (*unlockf)(G*, void*), void* lock, WaitReason reason);
// goparkunlock parks with lock held; g0 releases it once the G is saved
// (Go's goparkunlock: the unlock function every "wait on a queue guarded by
// a lock" uses).
void goparkunlock(Lock* lock, WaitReason reason);
// goparkunlock_chan is goparkunlock for a channel's lock: g0 releases it
// with unlock_plain (lockrank.hpp).
void goparkunlock_chan(Lock* lock, WaitReason reason);
// goready makes a _Gwaiting G runnable, next on the current P (runnext).
// Callable from a goroutine or from g0 with a P.
void goready(G* g);
void gosched();           // yield (Go's Gosched: to the global run queue)
void goyield();           // yield to the local run queue (Go's goyield, for semrelease's handoff)
void gopreempt();         // yield because preemption was requested
// safepoint yields if this G was asked to (stop the world, sysmon) and
// m.locks is zero; first it takes a P back if the preemption signal took
// ours. Every Entry passes one; so does preempt_point().
void safepoint_slow();
inline void safepoint(G* g) {
  if (g->preempt.load(std::memory_order_relaxed)) safepoint_slow();
}

// Entry is the runtime-entry guard: every out-of-line entry into the runtime
// from a goroutine (the public API, Pool's Get/Put, gc::make) opens one
// first, and nothing else decides whether code runs "inside the runtime".
// Opening it
//   1. finds the current goroutine, or throws goro::Error naming the API
//      ("goro::Chan::send called outside a running goro runtime");
//   2. passes a safepoint: takes the P back if the preemption signal took
//      it while user code ran, and yields if preemption was requested;
//   3. raises m.locks (and g.entries) until it closes: from here on the
//      signal never takes the P, so runtime code may use m->p freely, and
//      user code the runtime calls (a channel element's move constructor)
//      cannot lose it either.
// An Entry may stay open across a park: mcall moves its count to whichever
// M resumes the goroutine. User callbacks that may run long (Once's fn,
// blocking()'s call, Pool.New) run outside any Entry.
class Entry {
 public:
  // NoYield: pass the safepoint without yielding (only take a lost P
  // back): for calls Go does not preempt at either, such as Mutex.Unlock,
  // where a yield would hand the mutex over behind the starvation logic.
  enum Mode : bool { Yield = true, NoYield = false };
  explicit Entry(const char* api, Mode mode = Yield) { g_ = enter(api, mode, &m0_); }
  ~Entry() {
    g_->entries--;
    releasem(g_->m);  // g.m, not the M we entered on: we may have parked
  }
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  G* g() const { return g_; }
  // m is the M running us now; re-read it after anything that can park.
  M* m() const { return g_->m; }
  // entered_m is the M we entered on: the same as m() for code that cannot
  // park inside the Entry (Pool's Get and Put), without reloading g.m. On
  // the hot path that reload sits between the thread's M and its P id.
  M* entered_m() const { return m0_; }

 private:
  // enter is the common case inline: a goroutine with no preemption
  // request; enter_slow does the rest (throw, safepoint) and the same.
  static G* enter(const char* api, Mode mode, M** entered) {
    M* m = getm_inline();
    G* g = m != nullptr ? m->curg.load(std::memory_order_relaxed) : nullptr;
    if (g == nullptr || g->preempt.load(std::memory_order_relaxed)) [[unlikely]] {
      g = enter_slow(api, mode);
      *entered = g->m;
      return g;
    }
    g->entries++;
    acquirem(m);
    *entered = m;
    return g;
  }
  static G* enter_slow(const char* api, Mode mode);
  G* g_;
  M* m0_;
};

// holdslocks reports whether g's M counts more in m.locks than g's own
// Entries: a runtime lock held, or a pin. Then g must not park, yield or
// stop the world (Go tests m.locks == 0 where goro tests this).
inline bool holdslocks(G* g) {
  return g->m->locks.load(std::memory_order_relaxed) != g->entries;
}

// The loop and the idle machinery (proc.cpp, idle.cpp).
void set_tls_m(M* m);
// blocking()'s lazy path (syscall.cpp). sys_bind points m at this thread's
// SysTls and opens the lazy path on it (m == nullptr closes it); sys_take
// turns the lazy calls of the Ms in ms[0..n) into ordinary entersyscalls,
// storing into ps[i] the P so put in _Psyscall (nullptr if ms[i] was not in
// a call, or had no P), and returns how many it turned. sched.lock may be
// held.
void sys_init();
void sys_bind(M* m);
int sys_take(M* const* ms, P** ps, int n);
bool sys_in_call(M* m);                           // m's thread is inside a lazy call (racy: a hint)
bool sys_in_untaken_call(M* m);                   // ... one no taker has made ordinary yet
void schedtrace(Runtime* r, bool detailed);       // GORO_DEBUG=schedtrace's lines (sysmon.cpp)
void mcall(G* g, M::Req req, bool dies = false);  // switch to g0 with a request
void schedule(Runtime* r, M* m);
void gcstopm(Runtime* r, M* m);     // stop this M for a stop-the-world
bool stopm_idle(Runtime* r, M* m);  // park an M without a P; false: exiting
// incidlelocked adds v to sched.nmidlelocked (Go's incidlelocked): -1 lets
// sysmon count as a running M while it holds a P or goroutines in its hands,
// so that checkdead does not fire meanwhile; +1 gives it back and runs
// checkdead.
void incidlelocked(Runtime* r, int v);
void begin_exit(Runtime* r);        // main returned: make every M leave
M* new_m0(Runtime* r);              // the M for run()'s own thread
void schedinit_procs(Runtime* r, M* m0);  // the first GOMAXPROCS Ps; m0 gets P0
G* newproc_main(Runtime* r, M* m0, std::function<void()>* fn);  // goroutine 1
void wake_timer_watcher(std::int64_t when);  // a timer due sooner than the watcher wakes

// Ps and Ms.
void wakep();
P* pidleget();            // sched.lock held
void pidleput(P* p);      // sched.lock held
void acquirep(M* m, P* p);
inline void wirep(M* m, P* p);     // acquirep without waking sysmon (below)
P* releasep(M* m);
void startm(P* p, bool spinning);
void handoffp(P* p);
void preempt_install();            // preempt.cpp: the SIGURG handler
bool preempt_by_signal(M* m);      // sysmon: ask the hog's thread to give up its P
bool preempt_signal_available();   // false under TSan or a static link: cooperative only
// suspend_hogs (world stopped) stops every thread still running a goroutine
// that lost its P to the preemption signal, saving its registers in the M
// (suspend_regs, suspend_sp) for the collector; returns how many, writing up
// to max of their Ms to out. resume_hogs lets them run on.
int suspend_hogs(M** out, int max);
void resume_hogs(M** ms, int n);
void reacquirep(G* g);             // a safepoint after the signal took our P
G* exitsyscall0(Runtime* r, M* m, G* g);   // syscall.cpp
void stoplockedm(Runtime* r, M* m);
void startlockedm(Runtime* r, M* m, G* g);
// notify_sysmon wakes sysmon from its all-idle sleep (sysmon.cpp): a P
// became busy, or one entered a system call. Inline, the wake out of line.
void notify_sysmon_wake(Runtime* r);
inline void notify_sysmon() {
  Runtime* r = rt();
  // Dekker with sysmon's all-idle check: our caller's seq_cst update of
  // npidle (or of the P's status), then this seq_cst load; sysmon stores
  // sysmonwait, then loads npidle. One of the two sees the other. (No
  // fences: TSan cannot model them.)
  if (r->sched.sysmonwait.load(std::memory_order_seq_cst)) [[unlikely]]
    notify_sysmon_wake(r);
}

// Run queues (runq.cpp).
void runqput(P* p, G* g, bool next);
G* runqget(P* p, bool* inherit_time);
G* runqsteal(P* p, P* p2, bool steal_runnext);
bool runqempty(P* p);
std::uint32_t runqlen(P* p);
void globrunqput(G* g);          // sched.lock held
void globrunqputhead(G* g);      // sched.lock held
void globrunqputbatch(G* head, G* tail, std::int32_t n);  // sched.lock held
G* globrunqget(P* p, std::int32_t max);  // sched.lock held
void runqdrain_to_global(P* p);  // sched.lock held, world stopped

// Stop the world (stw.cpp).
void stop_the_world(const char* reason);
void start_the_world();
// stopwait_put counts p, which its caller has just marked _Pgcstop, for the
// pending stop, and wakes the stopper if p was the last. sched.lock held,
// a stop pending (debug builds check).
void stopwait_put(Sched& s, P* p);
int procresize(int nprocs);      // world stopped, sched.lock held

// gc_mark_gen is the running concurrent mark's cycle number, 0 when no
// concurrent mark runs; written only with the world stopped (gc/mgc.cpp).
extern std::atomic<std::uint32_t> gc_mark_gen;
// gc_note_ran puts g on the concurrent mark's rescan list (gc/mgcmark.cpp).
void gc_note_ran(G* g, std::uint32_t gen);

// casgstatus moves g from `from` to `to` (Go's casgstatus). Debug builds
// check the transition and that g was in `from`, with a CAS, out of line
// (casgstatus_checked, proc.cpp); release builds store. Inline because the
// system-call path keeps its code on one page (syscall.cpp).
void casgstatus_checked(G* g, Gstatus from, Gstatus to);
inline void casgstatus(G* g, Gstatus from, Gstatus to) {
#ifndef NDEBUG
  casgstatus_checked(g, from, to);
#else
  (void)from;
  g->status.store(to, std::memory_order_release);
#endif
  // During a concurrent mark, a G that runs, or is readied (its waker may
  // have written into its stack: a channel's direct send), goes on the
  // mark's list of stacks the concurrent passes rescan (gc/mgcmark.cpp),
  // once per cycle; the gcrangen test keeps ranLock off this path for a G
  // already listed. gc_mark_gen changes only with the world stopped, so a G
  // on a P reads it up to date.
  const std::uint32_t gen = gc_mark_gen.load(std::memory_order_relaxed);
  if (gen != 0 && g->gcrangen.load(std::memory_order_relaxed) != gen &&
      (to == Gstatus::running || to == Gstatus::runnable)) [[unlikely]]
    gc_note_ran(g, gen);
}

void sleep_until_ns(std::int64_t when, std::int64_t now);  // time.cpp; now: nanotime() just read

// The runtime semaphore (sema.cpp): Go's semacquire/semrelease.
void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason);
void semrelease(std::atomic<std::uint32_t>* addr, bool handoff);
void semtable_reset();  // forget abandoned waiters (run()'s teardown)

// Miscellaneous.
std::uint32_t fastrand();
[[noreturn]] void fatal(const char* msg);  // "fatal error: msg", dump, exit 2
[[noreturn]] void fatal_panic(G* g, const char* what);  // a goroutine panicked
// dump_goroutines prints self, then (all) every other goroutine by id.
void dump_goroutines(int fd, G* self, bool all = true);
// flush_stdio flushes stdout, stderr and the C++ streams on them, skipping a
// stream whose lock stays held (the dying path must not hang on it).
void flush_stdio();
// exit_dying exits the process now (no atexit handlers), even if a stdio
// lock stays held elsewhere.
[[noreturn]] void exit_dying(int code);

// entersyscall_gcwait hands p, just marked _Psyscall, to a pending
// stop-the-world (entersyscall and the preemption signal handler's last
// step); the check inline, the hand-over out of line (syscall.cpp).
void entersyscall_gcstop(P* p);
// testhook_gcstop, if set, runs in entersyscall_gcstop before it takes
// sched.lock: a test widens there the window in which a thread has seen a
// stop pending but not yet acted on it (syscall_test.cpp). Async-signal-safe
// hooks only: the preemption signal's handler passes there too.
extern std::atomic<void (*)()> testhook_gcstop;
inline void entersyscall_gcwait(P* p) {
  if (rt()->sched.gcwaiting.load(std::memory_order_seq_cst)) [[unlikely]] entersyscall_gcstop(p);
}

// wirep attaches p to m (Go's wirep): the part of acquirep that the
// exitsyscall fast path needs. Inline for that path (syscall.cpp).
inline void wirep(M* m, P* p) {
  if (m->p != nullptr || p->m.load(std::memory_order_relaxed) != nullptr ||
      p->status.load(std::memory_order_relaxed) != Pstatus::idle) [[unlikely]] {
    fatal("acquirep: invalid P state");
  }
  m->p = p;
  p->m.store(m, std::memory_order_release);  // sysmon and preemptall read it
  p->status.store(Pstatus::running, std::memory_order_release);
  if (trace_on) [[unlikely]] trace_emit(TraceKind::proc_start, 0, p->id);
}

}  // namespace goro::detail
