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
//   3. the handler, on that thread, checks the goroutine is still running
//      user code — not goro's own code (the interrupted PC is outside
//      libgoro's text), not pinned (m.locks == 0), with the request still
//      pending — and then does what entersyscall does: it detaches the P and
//      marks it _Psyscall. It uses only atomics (and, if a stop-the-world is
//      waiting, the runtime's futex lock, which this thread cannot be
//      holding since it is not in goro code). It does not start threads or
//      allocate: the handoff itself is sysmon's job, from its own thread, at
//      its next tick (retake), exactly as for a blocked system call;
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
// Where this cannot work: if goro is linked statically into the program its
// text cannot be told apart from the user's, so the handler would not know
// whether it interrupted runtime code; and under ThreadSanitizer, which
// delivers signals from inside its own runtime. There the signal step is
// disabled and preemption is cooperative only.
//
// Invariants: the handler changes runtime state only when the interrupted
// code is outside goro; it never blocks except on the sched.lock futex; a
// goroutine whose P the handler took has g.preempt set until it reacquires.
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <ucontext.h>

#include <cstring>

#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

namespace goro::detail {

namespace {

// The executable segments of the shared object goro lives in.
struct TextRange {
  std::uintptr_t lo = 0, hi = 0;
};
TextRange goro_text[4];
int ngoro_text = 0;
bool signal_preempt_ok = false;

int find_goro_text(dl_phdr_info* info, std::size_t, void* self) {
  const auto addr = reinterpret_cast<std::uintptr_t>(self);
  bool mine = false;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (addr >= lo && addr < lo + ph.p_memsz) mine = true;
  }
  if (!mine) return 0;
  // The main program (empty name) means a static link: cannot tell goro's
  // code from the user's.
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 1;
  for (int i = 0; i < info->dlpi_phnum && ngoro_text < 4; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) != 0) {
      goro_text[ngoro_text].lo = info->dlpi_addr + ph.p_vaddr;
      goro_text[ngoro_text].hi = goro_text[ngoro_text].lo + ph.p_memsz;
      ngoro_text++;
    }
  }
  signal_preempt_ok = ngoro_text > 0;
  return 1;
}

bool in_goro_text(std::uintptr_t pc) {
  for (int i = 0; i < ngoro_text; i++)
    if (pc >= goro_text[i].lo && pc < goro_text[i].hi) return true;
  return false;
}

void on_preempt(int, siginfo_t*, void* uctx) {
  const int saved_errno = errno;
  M* m = getm();
  if (m == nullptr) return;
  G* g = m->curg.load(std::memory_order_relaxed);
  P* p = m->p;
  const auto pc =
      static_cast<std::uintptr_t>(static_cast<ucontext_t*>(uctx)->uc_mcontext.gregs[REG_RIP]);
  if (g == nullptr || p == nullptr || m->locks != 0 || in_goro_text(pc) ||
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
  Runtime* r = rt();
  if (r->sched.gcwaiting.load(std::memory_order_seq_cst)) {
    std::lock_guard<Lock> lk(r->sched.lock);
    Pstatus st = Pstatus::syscall;
    if (p->status.compare_exchange_strong(st, Pstatus::gcstop)) {
      if (--r->sched.stopwait == 0) r->sched.stopnote.wakeup();
    }
  }
  errno = saved_errno;
}

}  // namespace

void preempt_install() {
  ngoro_text = 0;
  signal_preempt_ok = false;
#if GORO_TSAN
  // TSan defers asynchronous signals and delivers them from inside its own
  // runtime, so the interrupted PC no longer says whether goro code was
  // running: the handler could not tell safe from unsafe. Cooperative
  // preemption only, in that build.
  return;
#endif
  dl_iterate_phdr(find_goro_text, reinterpret_cast<void*>(&on_preempt));
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sa.sa_sigaction = on_preempt;
  sigaction(SIGURG, &sa, nullptr);
}

bool preempt_signal_available() { return signal_preempt_ok; }

bool preempt_by_signal(M* m) {
  if (!signal_preempt_ok) return false;
  return pthread_kill(m->tid, SIGURG) == 0;
}

// reacquirep is called at a safepoint by a goroutine that may have lost its
// P to the preemption signal: take one back as exitsyscall does.
void reacquirep(G* g) {
  if (g->m->p == nullptr && g->status.load(std::memory_order_relaxed) == Gstatus::syscall &&
      g->m->oldp != nullptr && !g->m->in_blocking)
    exitsyscall();
}

}  // namespace goro::detail
