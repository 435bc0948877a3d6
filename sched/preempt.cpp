// preempt.cpp — taking the P away from a goroutine that will not yield
// (what Go 1.14's asynchronous preemption solves, done the C++-safe way).
//
// Cooperative preemption (sysmon sets g.preempt, the goroutine yields at its
// next safepoint) fails for a loop with no runtime call in it: it would keep
// its P forever, starving the goroutines queued behind it, and hold off every
// stop-the-world. Go 1.14 answers with a signal whose handler rewrites the
// goroutine's context to make it call the scheduler. In C++ that is not safe:
// the loop may be inside malloc or holding a pthread mutex, and switching
// stacks there deadlocks or corrupts.
//
// goro instead treats such a goroutine like one in a long system call:
//   1. sysmon asks it to yield (g.preempt) after one 10 ms time slice;
//   2. if, a slice later, it still has not, sysmon sends its thread SIGURG;
//   3. the handler, on that thread, checks that the goroutine is outside
//      the runtime — m.locks == 0: no runtime lock held, no runtime entry
//      (Entry) open, not pinned, no switch in flight — and that the request
//      is still pending, and then does what entersyscall does: it detaches
//      the P and marks it _Psyscall. It uses only atomics (and, if a
//      stop-the-world is waiting, sched.lock, which this thread cannot be
//      holding since m.locks is zero). It does not start threads or
//      allocate: the handoff itself is sysmon's job, from its own thread, at
//      its next tick (retake), exactly as for a blocked system call. The
//      goroutine may be anywhere in user code, inside libc too (a raw
//      read(2) on a pipe): it never touches runtime state there;
//   4. the goroutine keeps running on its thread without a P (status
//      _Gsyscall, so dumps show it as such); its thread is one extra thread
//      the runtime pays for;
//   5. at its next runtime call (every entry runs safepoint(), which sees the
//      pending g.preempt) it reacquires a P the way exitsyscall does and
//      yields.
// A stop-the-world treats the P-less goroutine's P like a system call's: it
// takes it at once, so gomaxprocs() completes while the loop spins. (The
// GC will additionally stop such threads with a signal to scan their
// registers; see docs/scheduler.md.)
//
// m.locks is the rule; goro's own text is a backstop. The few instructions
// of runtime code that run on a goroutine with m.locks at zero — the
// goroutine's first instructions (gmain) and last (goexit1), an Entry
// between its safepoint and raising the count — lie in libgoro, so the
// handler also declines a PC inside libgoro (and Boost.Context, whose
// jump_fcontext is goro's switch off x86-64). Nothing else is on that list: libc and
// libstdc++ are user code as far as the P is concerned.
//
// Where this cannot work: if goro is linked statically into the program its
// text cannot be told apart from the user's, so the backstop would not
// work; and under ThreadSanitizer, which delivers signals from inside its
// own runtime, at a PC that says nothing. There the signal step is disabled
// and preemption is cooperative only.
//
// Invariants: the handler changes runtime state only when m.locks is zero;
// it never blocks except on the sched.lock futex; a goroutine whose P the
// handler took has g.preempt set until it reacquires.
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <ucontext.h>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

namespace goro::detail {

namespace {

// The backstop (see the essay): goro's own text and Boost.Context's, where
// runtime code may run with m.locks still zero.
struct TextRange {
  std::uintptr_t lo = 0, hi = 0;
};
constexpr int kMaxRanges = 16;
TextRange runtime_text[kMaxRanges];
int nruntime_text = 0;
bool signal_preempt_ok = false;

bool is_runtime_library(const char* path) {
  const char* base = std::strrchr(path, '/');
  base = base != nullptr ? base + 1 : path;
  return std::strncmp(base, "libboost_context", 16) == 0;
}

void add_exec_segments(dl_phdr_info* info) {
  for (int i = 0; i < info->dlpi_phnum && nruntime_text < kMaxRanges; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) != 0) {
      runtime_text[nruntime_text].lo = info->dlpi_addr + ph.p_vaddr;
      runtime_text[nruntime_text].hi = runtime_text[nruntime_text].lo + ph.p_memsz;
      nruntime_text++;
    }
  }
}

bool contains(dl_phdr_info* info, std::uintptr_t addr) {
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (addr >= lo && addr < lo + ph.p_memsz) return true;
  }
  return false;
}

int find_runtime_text(dl_phdr_info* info, std::size_t, void* self) {
  const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (contains(info, reinterpret_cast<std::uintptr_t>(self))) {
    // goro inside the main program (a static link): its code cannot be told
    // from the user's. Give up on signal preemption.
    if (name[0] == '\0') return 1;
    add_exec_segments(info);
    signal_preempt_ok = true;
  } else if (name[0] != '\0' && is_runtime_library(name)) {
    add_exec_segments(info);
  }
  return 0;
}

bool in_runtime_text(std::uintptr_t pc) {
  for (int i = 0; i < nruntime_text; i++)
    if (pc >= runtime_text[i].lo && pc < runtime_text[i].hi) return true;
  return false;
}

void on_preempt(int, siginfo_t*, void* uctx) {
  const int saved_errno = errno;
  M* m = getm_raw();
  // Inside a lazy blocking() call the thread is in a system call as far as
  // the P is concerned: sysmon takes it that way (syscall.cpp).
  if (m == nullptr || sys_in_call(m)) return;
  G* g = m->curg.load(std::memory_order_relaxed);
  P* p = m->p;
  const auto pc =
      static_cast<std::uintptr_t>(static_cast<ucontext_t*>(uctx)->uc_mcontext.gregs[REG_RIP]);
  if (g == nullptr || p == nullptr || m->locks.load(std::memory_order_relaxed) != 0 ||
      in_runtime_text(pc) ||
      !g->preempt.load(std::memory_order_relaxed) ||
      g->status.load(std::memory_order_relaxed) != Gstatus::running) {
    errno = saved_errno;
    return;
  }
  // entersyscall on the goroutine's behalf (without its safepoint).
  g->status.store(Gstatus::syscall, std::memory_order_release);
  p->m.store(nullptr, std::memory_order_relaxed);
  m->oldp = p;
  m->p = nullptr;
  p->status.store(Pstatus::syscall, std::memory_order_seq_cst);
  rt()->sched.nhogs.fetch_add(1, std::memory_order_relaxed);
  // Until it takes a P back (reacquirep), its blocking() calls take the
  // ordinary path, whose Entry does that first.
  sys_tls()->req.fetch_or(sysSlow, std::memory_order_relaxed);
  entersyscall_gcwait(p);
  errno = saved_errno;
}

}  // namespace

namespace {

constexpr int kSuspendSignal = SIGPWR;  // as Boehm GC's SIG_SUSPEND on Linux

long futex_op(std::atomic<std::uint32_t>* a, int op, std::uint32_t val, const timespec* ts) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(a), op | FUTEX_PRIVATE_FLAG, val, ts,
                 nullptr, 0);
}

void on_suspend(int, siginfo_t*, void* uctx) {
  const int saved_errno = errno;
  M* m = getm_raw();
  if (m == nullptr || m->suspend.load(std::memory_order_acquire) != 1) {
    errno = saved_errno;
    return;
  }
  const auto& gregs = static_cast<ucontext_t*>(uctx)->uc_mcontext.gregs;
  if (m->locks.load(std::memory_order_relaxed) != 0 ||
      in_runtime_text(static_cast<std::uintptr_t>(gregs[REG_RIP]))) {
    m->suspend.store(3, std::memory_order_release);
    futex_op(&m->suspend, FUTEX_WAKE, 1, nullptr);
    errno = saved_errno;
    return;
  }
  for (int i = 0; i < NGREG && i < 32; i++) m->suspend_regs[i] = static_cast<std::uintptr_t>(gregs[i]);
  m->suspend_sp = static_cast<std::uintptr_t>(gregs[REG_RSP]);
  m->suspend.store(2, std::memory_order_release);
  futex_op(&m->suspend, FUTEX_WAKE, 1, nullptr);
  while (m->suspend.load(std::memory_order_acquire) == 2) futex_op(&m->suspend, FUTEX_WAIT, 2, nullptr);
  m->suspend.store(0, std::memory_order_release);
  errno = saved_errno;
}

// is_hog reports whether m runs a goroutine that lost its P to the
// preemption signal and has not reacquired one.
bool is_hog(M* m) {
  G* g = m->curg.load(std::memory_order_acquire);
  return g != nullptr && m->p == nullptr && !m->in_blocking &&
         g->status.load(std::memory_order_acquire) == Gstatus::syscall;
}

}  // namespace

void preempt_install() {
  nruntime_text = 0;
  signal_preempt_ok = false;
#if GORO_TSAN
  // TSan defers asynchronous signals and delivers them from inside its own
  // runtime, so the interrupted PC no longer says whether goro code was
  // running: the handler could not tell safe from unsafe. Cooperative
  // preemption only, in that build.
  return;
#endif
  dl_iterate_phdr(find_runtime_text, reinterpret_cast<void*>(&on_preempt));
  if (nruntime_text == kMaxRanges) signal_preempt_ok = false;  // table overflow: be safe
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sa.sa_sigaction = on_preempt;
  sigaction(SIGURG, &sa, nullptr);
  sa.sa_sigaction = on_suspend;
  sigaction(kSuspendSignal, &sa, nullptr);
}

bool preempt_signal_available() { return signal_preempt_ok; }

// ---------------------------------------------------------------------------
// Suspending P-less hogs for the collector.
//
// m.suspend: 0 idle; 1 requested (stopper); 2 suspended (handler, which now
// waits); 3 busy, inside the runtime (handler, returns); 4 resume (stopper).


int suspend_hogs(M** out, int max) {
  if (!signal_preempt_ok) return 0;  // no signal preemption, no P-less hogs
  Runtime* r = rt();
  std::vector<M*> ms;
  {
    std::lock_guard<Lock> lk(r->sched.lock);
    for (M* m = r->sched.allm; m != nullptr; m = m->alllink)
      if (is_hog(m)) ms.push_back(m);
  }
  // A hog that entered a lazy blocking() call just as its P was taken (its
  // next calls take the ordinary path) is in a system call, not a hog: make
  // it an ordinary one, so that the signal below does not interrupt its call.
  std::vector<P*> ps(ms.size());
  sys_take(ms.data(), ps.data(), static_cast<int>(ms.size()));
  int n = 0;
  for (M* m : ms) {
    for (;;) {
      if (!is_hog(m)) break;  // it reached a safepoint and parked
      m->suspend.store(1, std::memory_order_release);
      if (pthread_kill(m->tid, kSuspendSignal) != 0) {
        m->suspend.store(0, std::memory_order_relaxed);
        break;
      }
      const timespec ts{0, 1000 * 1000};
      while (m->suspend.load(std::memory_order_acquire) == 1) futex_op(&m->suspend, FUTEX_WAIT, 1, &ts);
      if (m->suspend.load(std::memory_order_acquire) == 2) {
        if (n < max) out[n] = m;
        n++;
        break;
      }
      // Inside the runtime (m.locks > 0): it is heading for a safepoint (an
      // Entry's or a lock's release); let it get there.
      m->suspend.store(0, std::memory_order_relaxed);
      usleep(50);
    }
  }
  return n;
}

void resume_hogs(M** ms, int n) {
  for (int i = 0; i < n; i++) {
    ms[i]->suspend.store(4, std::memory_order_release);
    futex_op(&ms[i]->suspend, FUTEX_WAKE, 1, nullptr);
  }
}

bool preempt_by_signal(M* m) {
  if (!signal_preempt_ok) return false;
  return pthread_kill(m->tid, SIGURG) == 0;
}

// reacquirep is called at a safepoint (opening an Entry) by a goroutine that
// may have lost its P to the preemption signal while it ran user code: take
// one back as exitsyscall does. Inside the runtime the P is never lost.
void reacquirep(G* g) {
  if (g->m->p == nullptr && g->status.load(std::memory_order_relaxed) == Gstatus::syscall &&
      g->m->oldp != nullptr && !g->m->in_blocking) {
    exitsyscall();
    sys_bind(getm_raw());  // reopen the lazy path the handler closed
  }
}

}  // namespace goro::detail
