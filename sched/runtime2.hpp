// runtime2.hpp — the scheduler's data structures: G, M, P and sched.
//
// Go's runtime/runtime2.go, in goro's words.
//
// Glossary
//   G  a goroutine: a stack, a saved context and a state. Gs are never freed
//      while the runtime runs; a dead G goes to a free list (gFree) with its
//      stack and is reused by the next go(), as Go does.
//   M  a machine: an OS thread. Its native stack is g0, on which the scheduler
//      loop (schedule) runs; user code runs only on G stacks. An M runs Go code
//      only while it holds a P.
//   P  a processor: the right to run goroutines, and the per-CPU state that
//      goes with it — a local run queue, a free-G cache, timers. There are
//      exactly GOMAXPROCS Ps; an M without a P sleeps.
//   sched  the global state: idle Ms and Ps, the global run queue, the global
//      free-G list and the stop-the-world machinery, under sched.lock.
//
// Design
//   A goroutine switches to its M's g0 (gopark, gosched, goexit) and g0
//   decides what runs next; this is Go's mcall. Its rule: by the time anyone
//   can see a parked G (in a channel's wait queue, a timer, the run queue),
//   its context has been saved, because g0 publishes it after the switch
//   (park_m's unlock step). The hot hand-offs skip g0 (the direct switch,
//   direct.cpp): the G publishes itself, context cleared, and switches straight
//   to the next G, and whoever resumes a G waits until its context is saved.
//
// Invariants
//   - A G is in at most one queue: a P's runq/runnext, sched.runq, a wait
//     queue (sudog/sema), or a free list. Its status says which kind.
//   - Only the M running a G (g.m) changes its status away from _Grunning;
//     only the waker changes _Gwaiting to _Grunnable (goready), exactly once.
//   - A P's runq is written (tail) only by the M that owns the P; any M may
//     consume from its head (runqget/runqsteal) with a CAS.
//   - p.status == _Prunning  <=>  p.m != nullptr and p.m.p == p.
//   - nmspinning counts Ms with m.spinning set; it never goes negative.
//   - Lock order: the one table in lockrank.hpp, checked in debug builds.
//   - "Inside the runtime" is one counter, m.locks (see M::locks): while it
//     is non-zero the M's P is never taken by the preemption signal and
//     the goroutine never yields at a safepoint.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <source_location>
#include <thread>
#include <vector>

#include "goro/runtime.hpp"
#include "sched/fiber.hpp"
#include "sched/lockrank.hpp"
#include "sched/note.hpp"
#include "sched/timer.hpp"
#include "sched/trace.hpp"

namespace goro::detail {

struct M;
struct P;
struct mcache;  // gc/malloc.hpp

// G status, as Go's _G* constants. Transitions (checked by casgstatus in
// debug builds):
//   _Gidle -> _Grunnable           newproc
//   _Grunnable -> _Grunning        execute
//   _Grunning -> _Grunnable        gosched, preemption
//   _Grunning -> _Gwaiting         gopark
//   _Gwaiting -> _Grunnable        goready
//   _Grunning -> _Gsyscall         entersyscall, or materialize (a lazy call taken)
//   _Gsyscall -> _Grunning         exitsyscall (fast path, or after a P is found)
//   _Gsyscall -> _Grunnable        exitsyscall found no P (queued globally)
//   _Grunning -> _Gdead            goexit
//   _Gdead -> _Grunnable           newproc reusing a free G
enum class Gstatus : std::uint32_t {
  idle = 0,
  runnable = 1,
  running = 2,
  syscall = 3,
  waiting = 4,
  dead = 6,
};
const char* gstatus_name(Gstatus s);

// waitReason says why a G is _Gwaiting; the strings are Go's.
enum class WaitReason : std::uint8_t {
  zero,
  chan_receive,
  chan_send,
  chan_receive_nil,
  chan_send_nil,
  select,
  select_no_cases,
  sleep,
  semacquire,
  sync_mutex_lock,
  sync_rwmutex_lock,
  sync_rwmutex_rlock,
  sync_cond_wait,
  wait_group_wait,
  gc_finalizer_wait,
  gc_sweep_wait,
  force_gc_idle,
  gc_stop_the_world,
  preempted,
  timer_goroutine_idle,
  debug_call,
  io_wait,
};
const char* wait_reason_string(WaitReason r);

// G is a goroutine. It lives in the dense G table of the slab that holds its
// stack slot (stack.hpp), beside the Gs made before and after it, so the run
// queues' and free lists' walks stay on few pages. Its fields are ordered so
// that it packs into three cache lines: a parked goroutine costs its stack
// page plus this (the parked row: about 4.2 KiB against Go's 2.7).
struct alignas(64) G {
  Fiber fiber;            // context and stack bounds; only fiber.cpp touches it
  std::uint64_t goid = 0;
  M* m = nullptr;         // the M running it; set by execute, cleared at park
  G* schedlink = nullptr; // next in whichever queue holds it (runq lists, gFree)
  const Closure* entry = nullptr;
  void* entry_arg = nullptr;  // the callable, constructed on this G's stack
  std::source_location created_by;
  std::uint64_t parent_goid = 0;
  std::int64_t waitsince = 0;   // nanotime() when it parked, for dumps
  M* lockedm = nullptr;          // lock_os_thread
  void* param = nullptr;         // a waker's message to the parked G (chan.go's gp.param)
  G* alllink = nullptr;          // allgs list
  // GORO_TRACE: the wakeup flow and the waker to show on this G's next
  // run slice (set by goready, consumed by execute).
  std::uint64_t trace_flow = 0;
  std::uint64_t trace_waker = 0;
  std::atomic<Gstatus> status{Gstatus::idle};
  WaitReason waitreason = WaitReason::zero;
  std::atomic<bool> preempt{false};  // yield at the next safepoint
  // selectdone: a select parked with a sudog on several channels; the first
  // waker to CAS it false -> true owns the wake-up (chan.cpp dequeue).
  std::atomic<bool> selectdone{false};
  int lockedcount = 0;
  // entries counts the runtime-entry guards (Entry, proc.hpp) open on this
  // goroutine. Each also counts in its M's locks; when the G parks, mcall
  // takes them off the M it leaves and execute puts them on the M that
  // resumes it, so m.locks always describes the code running on the M.
  std::int32_t entries = 0;
  std::int32_t pins = 0;  // proc_pin depth (also counted in m.locks): for proc_unpin's check
  // gcrangen: the GC cycle (gc_mark_gen) in whose concurrent mark this G
  // last ran or was readied, and so was put on the list of stacks the
  // concurrent passes rescan (casgstatus, gc/mgcmark.cpp gc_note_ran).
  std::atomic<std::uint32_t> gcrangen{0};  // atomic: gc_mark_begin writes it for Ms in syscalls
  // On the global free list (sched.gFree, a stack of batches), the head G
  // of a batch holds the batch's length and the next batch's head.
  std::int32_t gfreen = 0;
  G* gfreebatch = nullptr;
};

// P status, as Go's _P* constants. Transitions happen under sched.lock
// except _Prunning <-> _Psyscall, which the owner and sysmon CAS.
//   _Pidle -> _Prunning      acquirep
//   _Prunning -> _Pidle      releasep + pidleput
//   _Prunning -> _Psyscall   entersyscall, or a taker's materialize for a
//                            lazy blocking() call (which keeps _Prunning)
//   _Psyscall -> _Prunning   exitsyscall fast path
//   _Psyscall -> _Pidle      retake/handoffp (sysmon)
//   * -> _Pgcstop            stop the world
//   _Pgcstop -> _Pidle/_Prunning   start the world
//   _Pgcstop -> _Pdead       procresize shrinking GOMAXPROCS
enum class Pstatus : std::uint32_t {
  idle = 0,
  running = 1,
  syscall = 2,
  gcstop = 3,
  dead = 4,
};
const char* pstatus_name(Pstatus s);

// runqSize is the length of a P's local run queue. Go's is 256; the
// small_queues build option (GORO_SMALL_QUEUES) makes it 4 so the tests reach
// runqputslow and half-queue steals with a handful of goroutines.
#if GORO_SMALL_QUEUES
inline constexpr std::uint32_t runqSize = 4;
#else
inline constexpr std::uint32_t runqSize = 256;
#endif

struct alignas(64) P {
  int id = 0;
  std::atomic<Pstatus> status{Pstatus::idle};
  P* link = nullptr;       // sched.pidle list; guarded by sched.lock
  std::atomic<std::uint32_t> schedtick{0};  // incremented per G started (owner only; sysmon reads)
  std::atomic<std::uint32_t> syscalltick{0};
  std::atomic<M*> m{nullptr};  // back-link to the M holding it (nullptr when idle)

  // The local run queue: a lock-free single-producer (this P's M),
  // multi-consumer ring. Owner writes runqtail; consumers CAS runqhead.
  alignas(64) std::atomic<std::uint32_t> runqhead{0};
  alignas(64) std::atomic<std::uint32_t> runqtail{0};
  std::atomic<G*> runq[runqSize];
  // runnext, if not null, runs next and inherits the current time slice: a
  // goroutine that readies another and then blocks hands its slice over, so
  // ping-pong pairs stay on one P with no queueing.
  std::atomic<G*> runnext{nullptr};

  // Free Gs with stacks, owned by this P (no lock). Balanced with sched.gFree.
  G* gFree = nullptr;
  std::atomic<std::int32_t> gFreeCount{0};  // read by num_goroutine
  std::uint64_t goidcache = 0;     // a batch of goroutine ids (Go's p.goidcache)
  std::uint64_t goidcacheend = 0;

  Timers timers;  // sleeping goroutines and runtime timers, per P as in Go 1.14

  // The P's allocation cache (gc/malloc.hpp), made on its first allocation.
  detail::mcache* mcache = nullptr;
};

// sys_idle is the SysTls an M points at before its thread binds its own:
// never in a call (syscall.cpp).
extern SysTls sys_idle;

// M is an OS thread.
struct alignas(64) M {
  std::int64_t id = 0;
  Fiber g0;                 // the thread's native stack, where schedule() runs
  EhGlobals* eh = nullptr;  // this thread's C++ exception globals (fiber_thread_eh)
  std::atomic<G*> curg{nullptr};  // the G running on it (nullptr on g0); read by preemptall
  // This thread's SysTls (blocking()'s lazy path, syscall.cpp): for takers on
  // other threads (sys_idle until the thread binds its own). Set by the
  // thread itself when it starts.
  std::atomic<SysTls*> sys{&sys_idle};
  P* p = nullptr;           // the attached P (nullptr when idle or in syscall)
  P* nextp = nullptr;       // the P to acquire when woken (startm's handoff)
  P* oldp = nullptr;        // the P held before entersyscall
  std::atomic<bool> spinning{false};
  std::atomic<bool> blocked{false};  // parked on its note (read by schedtrace)
  // locks is the one rule for "inside the runtime" (Go's m.locks): it
  // counts the runtime locks this M holds (Lock::lock), the proc_pin
  // depth, the runtime-entry guards open on its goroutine (Entry) and the
  // context switch in flight (mcall/execute). While it is non-zero the
  // preemption signal leaves the P alone, suspend_hogs does not stop the
  // thread, and safepoints do not yield. Written only by the M's own
  // thread (acquirem/releasem), read by its signal handlers and sysmon.
  std::atomic<std::int32_t> locks{0};
  Note park;                // where an idle M sleeps (stopm)
  M* schedlink = nullptr;   // sched.midle list
  M* alllink = nullptr;     // allm list
  G* lockedg = nullptr;     // lock_os_thread
  std::uint64_t fastrand = 0;
  std::thread thread;
  pthread_t tid{};          // for the preemption signal (sysmon)
  bool in_blocking = false; // inside blocking(): no P by design, not a hog
  int blocking_nest = 0;    // blocking() calls inside blocking()'s call: no-ops
  // Stopping a P-less hog for the GC (preempt.cpp suspend_hogs): the state
  // word the stopper and the thread's signal handler hand back and forth,
  // and what the handler saved for the collector to scan.
  std::atomic<std::uint32_t> suspend{0};
  std::uintptr_t suspend_sp = 0;
  std::uintptr_t suspend_regs[32] = {};
  bool is_m0 = false;
  TraceBuf* trace = nullptr;  // GORO_TRACE events of this M (written only by it)
  std::int64_t trace_syscall_ts = 0;  // GORO_TRACE: when the current system call began

  // The continuation g0 runs after a G switched to it: Go's mcall argument.
  enum class Req : std::uint8_t { none, park, gosched, goyield, preempted, exit, exitsyscall, abandon, handed };
  Req req = Req::none;
  bool (*waitunlockf)(G*, void*) = nullptr;
  void* waitlock = nullptr;
};

// acquirem and releasem raise and drop m.locks (Go's names). Only the M's
// own thread calls them, so a plain load and store do; the signal fence
// keeps the compiler from moving the store past the code it protects, as
// seen by a signal handler on this thread.
inline void acquirem(M* m) {
  m->locks.store(m->locks.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
inline void releasem(M* m) {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  m->locks.store(m->locks.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

// getm_inline reads the current M for the hottest paths (Entry, Lock): one
// asm statement that loads the thread pointer's slot for tls.m, so it
// inlines, yet can never be cached across a switch to another thread (GCC
// treats a thread_local's address as constant within a function; this asm
// is volatile and clobbers memory, so it is re-executed wherever it is
// written). Elsewhere, the out-of-line getm (proc.hpp).
M* getm();
M* getm_raw();  // getm without sys_self_take: signal handlers
inline M* getm_inline() {
#if defined(__x86_64__) && defined(__ELF__)
  M* m;
  asm volatile("movq goro_tls@gottpoff(%%rip), %0\n\tmovq %%fs:(%0), %0" : "=r"(m) : : "memory");
  return m;
#else
  return getm_raw();
#endif
}

// sys_self_take: runtime code on this thread, called from the code inside
// a lazy blocking() call, found no M (ThreadTls.m is null there): give the M
// back and make the call an ordinary entersyscall, so that the runtime sees a
// goroutine in a system call without a P (syscall.cpp). getg, getm and
// Entry's slow path call it where they find no M; the hot paths pay
// nothing. getm_inline and getm_raw do not (locks, signal handlers: to them
// a thread in a lazy call has no M).
void sys_self_take();

// Threads without an M (the GC's mark helpers) take runtime locks too; they
// have no P to lose, so only the rank is checked there.
inline void Lock::lock_enter(LockRank r) {
  if (M* m = getm_inline()) acquirem(m);
#ifndef NDEBUG
  lock_rank_acquire(r);
#else
  (void)r;
#endif
}

inline void Lock::lock_exit(LockRank r) {
#ifndef NDEBUG
  lock_rank_release(r);
#else
  (void)r;
#endif
  if (M* m = getm_inline()) releasem(m);
}

// schedt is the global scheduler state.
struct Sched {
  std::atomic<std::uint64_t> goidgen{0};
  // lock guards: midle, nmidle, pidle, runq, gFree, stopwait and the
  // M list. Its place in the lock order: lockrank.hpp.
  Lock lock{LockRank::sched};
  M* midle = nullptr;
  int nmidle = 0;
  int nmidlelocked = 0;     // Ms asleep for their locked goroutine (in mlocked)
  M* mlocked = nullptr;
  std::int64_t mnext = 0;   // M ids; also the count of Ms ever started
  int maxmcount = 10000;
  int nmsys = 1;            // system Ms not counted for deadlock (sysmon)
  M* allm = nullptr;

  P* pidle = nullptr;
  std::atomic<int> npidle{0};
  std::atomic<int> nmspinning{0};

  G* runqhead_ = nullptr;   // the global run queue
  G* runqtail_ = nullptr;
  std::atomic<std::int32_t> runqsize{0};

  Lock gFreeLock{LockRank::gfree};     // guards gFree and gFreeCount (a leaf lock)
  G* gFree = nullptr;       // the global free Gs: a stack of batches (newproc.cpp)
  std::atomic<std::int32_t> gFreeCount{0};
  int mcount = 0;           // Ms alive (sched.lock)

  // The flags every system call reads (syscall.cpp), kept together so that
  // its bookkeeping touches one page of the Runtime after the kernel has
  // emptied the TLB (bench/README.md, "blocking's pages").
  std::atomic<bool> gcwaiting{false};   // stop the world requested
  std::atomic<bool> exiting{false};     // main returned: Ms leave their loops
  std::atomic<bool> sysmonwait{false};  // sysmon sleeps until a P is busy (notify_sysmon)
  int stopwait = 0;
  Note stopnote;
  std::atomic<int> stwpinned{0};        // pinned Gs STW is waiting on

  std::atomic<std::int64_t> pollUntil{0};  // the timer watcher's deadline (0: none)
  std::atomic<M*> pollM{nullptr};          // that watcher
  // The network poller (netpoll.cpp): lastpoll is when the last poll ended,
  // 0 while an M is blocked in epoll_wait; netpollUntil is when that M wakes
  // by itself (INT64_MAX: only for I/O). nnetpoll counts goroutines readied
  // by netpoll (schedtrace).
  std::atomic<std::int64_t> lastpoll{1};
  std::atomic<std::int64_t> netpollUntil{0};
  std::atomic<std::uint64_t> nnetpoll{0};

  std::atomic<int> ngsys{0};            // runtime goroutines (not counted by num_goroutine)
  std::atomic<std::uint64_t> nhandoff{0};  // Ps sysmon took from system calls (tests, benches)
  std::atomic<std::uint64_t> nhogs{0};     // Ps the preemption signal took from hogs
  int newprocs = 0;                     // GOMAXPROCS to apply at start_the_world
  std::atomic<std::int64_t> coarse_now{0};  // nanotime(), refreshed by sysmon (for waitsince)
};

}  // namespace goro::detail
