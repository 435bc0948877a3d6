// goro/runtime.hpp — lifecycle, goroutines and the scheduler's public face.
//
// This is the part of the API contract (shared/spec/API.md) that mirrors Go's
// `runtime` package: run() plays the role of Go's program start-up and main,
// go() is the `go` statement, and the rest are runtime.Gosched, runtime.GOMAXPROCS
// and friends. Everything here throws goro::Error when called outside a running
// runtime: there is no goroutine to act on, and silently doing nothing would
// hide the bug.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <source_location>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace goro {

// Options configures one run of the runtime. Zero means "take it from the
// environment, else the default", as Go reads GOMAXPROCS and GOGC.
struct Options {
  int procs = 0;               // GOMAXPROCS; 0: $GOMAXPROCS, else hardware_concurrency()
  std::size_t stack_size = 0;  // per-goroutine stack; 0: the runtime default (64 KiB)
  int gc_percent = 0;          // GOGC; 0: $GOGC, else 100; negative: GC off except collect()
};

// Error is what misuse of the API throws: a call outside a running runtime,
// run() inside a goroutine, a malformed environment variable. It is not a Go
// panic (see goro::Panic); it reports a bug in how the program uses goro.
class Error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Panic is a Go panic raised by the runtime ("send on closed channel", ...).
// Escaping a non-main goroutine it ends the process as Go's panics do.
class Panic : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// run starts the runtime, runs main_fn as goroutine 1 and returns when it
// returns, with every thread joined and every stack released. Goroutines still
// alive at that point are abandoned, as Go abandons them when main returns.
void run(std::function<void()> main_fn);
void run(const Options& opt, std::function<void()> main_fn);

// in_runtime reports whether the caller is a goroutine of a running runtime.
bool in_runtime();

void yield();          // runtime.Gosched
void preempt_point();  // a safepoint: yields only if preemption was requested
void sleep_for(std::chrono::nanoseconds d);
void sleep_until(std::chrono::steady_clock::time_point t);
std::uint64_t goid();
int gomaxprocs(int n = 0);
int num_goroutine();
int num_cpu();
int proc_pin();
void proc_unpin();
void lock_os_thread();
void unlock_os_thread();

namespace detail {

struct G;

// A goroutine's entry point, type-erased without a heap allocation: go()
// constructs the callable on the new goroutine's own stack (as Go copies a
// go statement's arguments onto the new stack), and the runtime calls
// `invoke` to run it or `destroy` to drop it unrun when the runtime ends.
struct Closure {
  void (*invoke)(void* self);   // runs and then destroys the callable
  void (*destroy)(void* self);  // destroys it without running
};

// newproc_alloc takes a free G and reserves `size` bytes of its stack for the
// callable; newproc_start makes the G runnable. Split in two so that the
// template below can construct the callable in place. Both throw goro::Error
// outside a runtime.
G* newproc_alloc(std::size_t size, std::size_t align, void** mem);
void newproc_start(G* g, const Closure* fn, const std::source_location& where);
void newproc_abort(G* g);  // the callable's constructor threw

template <class Fn>
struct ClosureOf {
  static void invoke(void* p) {
    Fn& f = *static_cast<Fn*>(p);
    struct Destroy {
      Fn& f;
      ~Destroy() { f.~Fn(); }
    } guard{f};
    f();
  }
  static void destroy(void* p) { static_cast<Fn*>(p)->~Fn(); }
  static constexpr Closure closure{&invoke, &destroy};
};

// entersyscall/exitsyscall bracket a call that may block its thread.
void entersyscall();
void exitsyscall();
// SyscallRegs holds the callee-saved registers spilled at blocking() entry.
struct SyscallRegs {
  void* r[8];
};
void entersyscall(SyscallRegs* regs);  // spill, then entersyscall()

// SysTls is the per-thread word pair of blocking()'s lazy fast path
// (sched/syscall.cpp has the protocol). `state` is written only by its
// thread: odd while the thread is inside a blocking() call that has kept its
// P, even otherwise, one more at each step, so an odd value names one call.
// `req` is how the rest of the runtime talks to that call: sysTake (a taker
// holds the word, the thread must wait for it), sysTaken (the call was
// turned into an ordinary entersyscall: exitsyscall must undo it), sysSlow
// (take the ordinary path: a thread without a goroutine, tracing on, the
// runtime exiting, no membarrier(2)). Threads start with sysSlow set.
struct SysTls {
  std::atomic<std::uint32_t> state;
  std::atomic<std::uint32_t> req;
};
inline constexpr std::uint32_t sysTake = 1, sysTaken = 2, sysSlow = 4;
void blocking_exit_slow();  // req was not 0 when the call returned

// ThreadTls is the runtime's per-thread block (sched/proc.cpp): the thread's
// current M and the SysTls. Inside a lazy call m is null and lazy_m holds the
// M: the runtime, reached from the code inside the call, finds no M and
// takes its slow path, which makes the call an ordinary one first
// (sys_self_take). So the runtime's hot paths pay nothing for the check.
// `ordinary` is 1 while the thread is inside an ordinary (Go's path)
// blocking() call: a blocking() inside that one must nest in it, not start a
// lazy call on an M that has no P (written only by its thread).
struct M;
struct ThreadTls {
  M* m;
  SysTls sys;
  M* lazy_m;
  std::uint32_t ordinary;
};
#if defined(__x86_64__) && defined(__ELF__)
[[gnu::tls_model("initial-exec")]] extern constinit thread_local ThreadTls tls asm("goro_tls");
// sys_tls is this thread's SysTls. asm volatile, so that it is recomputed
// where it is written: the compiler treats a thread_local's address as fixed
// within a function, and the goroutine calling blocking() may have moved to
// another thread since an earlier read in the same function.
inline ThreadTls* thread_tls() {
  ThreadTls* t;
  asm volatile("movq %%fs:0, %0\n\taddq goro_tls@gottpoff(%%rip), %0" : "=r"(t) : : "memory");
  return t;
}
inline SysTls* sys_tls() {
  return &thread_tls()->sys;
}
// spill_regs stores the callee-saved registers into regs, as entersyscall's
// entry does: they may hold the caller's pointers to collected objects.
inline void spill_regs(SyscallRegs* regs) {
  asm volatile(
      "movq %%rbx, 0(%0)\n\tmovq %%rbp, 8(%0)\n\tmovq %%r12, 16(%0)\n\t"
      "movq %%r13, 24(%0)\n\tmovq %%r14, 32(%0)\n\tmovq %%r15, 40(%0)\n\t"
      "movq %%rsp, 48(%0)"
      :
      : "r"(regs)
      : "memory");
}
#define GORO_LAZY_SYSCALL 1
#else
#define GORO_LAZY_SYSCALL 0
#endif

}  // namespace detail

// go starts fn on a new goroutine: Go's `go fn()`. `where` is recorded for
// goroutine dumps ("created by file:line").
template <class F>
void go(F&& fn, std::source_location where = std::source_location::current()) {
  using Fn = std::decay_t<F>;
  static_assert(std::is_invocable_v<Fn&>, "goro::go needs a callable taking no arguments");
  void* mem = nullptr;
  detail::G* g = detail::newproc_alloc(sizeof(Fn), alignof(Fn), &mem);
  try {
    ::new (mem) Fn(std::forward<F>(fn));
  } catch (...) {
    detail::newproc_abort(g);
    throw;
  }
  detail::newproc_start(g, &detail::ClosureOf<Fn>::closure, where);
}

// blocking runs fn, a call that may block its OS thread (read(2), sleep(3),
// a mutex outside goro), between entersyscall and exitsyscall, so the
// scheduler can hand this goroutine's P to another thread meanwhile.
template <class F>
decltype(auto) blocking(F&& fn) {
  // The garbage collector may run while fn blocks without a P: the
  // callee-saved registers (which may hold the caller's GC pointers) are
  // spilled into this frame, on the goroutine's stack, where it scans.
  detail::SyscallRegs regs;
#if GORO_LAZY_SYSCALL
  // The lazy path: mark this thread "in a call" in its own TLS, hide its M
  // there, and keep the P. Nothing else is touched, so a call that returns
  // soon costs a few plain stores and loads on one cache line; whoever needs
  // the P meanwhile (sysmon, a stop-the-world, the runtime called from fn)
  // turns the call into an ordinary entersyscall first.
  detail::ThreadTls* t = detail::thread_tls();
  const std::uint32_t s = t->sys.state.load(std::memory_order_relaxed);
  if ((s & 1) == 0 && t->sys.req.load(std::memory_order_relaxed) == 0 && t->ordinary == 0)
      [[likely]] {
    struct Exit {
      ~Exit() {
        detail::ThreadTls* t = detail::thread_tls();
        t->m = t->lazy_m;
        std::atomic_signal_fence(std::memory_order_seq_cst);  // for a signal handler
        t->sys.state.store(t->sys.state.load(std::memory_order_relaxed) + 1,
                           std::memory_order_release);
        // Only a compiler barrier: a taker pairs its own store with
        // membarrier(2), which orders this thread's store before its load.
        std::atomic_signal_fence(std::memory_order_seq_cst);
        if (t->sys.req.load(std::memory_order_acquire) != 0) [[unlikely]]
          detail::blocking_exit_slow();
      }
    };
    detail::spill_regs(&regs);
    t->lazy_m = t->m;
    t->sys.state.store(s + 1, std::memory_order_release);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    t->m = nullptr;
    Exit exit;
    return std::forward<F>(fn)();
  }
#endif
  struct Exit {
    ~Exit() { detail::exitsyscall(); }
  };
  detail::entersyscall(&regs);
  Exit exit;
  return std::forward<F>(fn)();
}

}  // namespace goro
