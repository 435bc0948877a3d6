// goro/runtime.hpp — lifecycle, goroutines and the scheduler's public face.
//
// This is the part of the API contract (shared/spec/API.md) that mirrors Go's
// `runtime` package: run() plays the role of Go's program start-up and main,
// go() is the `go` statement, and the rest are runtime.Gosched, runtime.GOMAXPROCS
// and friends. Everything here throws goro::Error when called outside a running
// runtime: there is no goroutine to act on, and silently doing nothing would
// hide the bug.
#pragma once

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
  struct Exit {
    ~Exit() { detail::exitsyscall(); }
  };
  // The garbage collector may run while fn blocks without a P: entersyscall
  // spills the callee-saved registers (which may hold the caller's GC
  // pointers) into this frame, on the goroutine's stack, where it scans.
  detail::SyscallRegs regs;
  detail::entersyscall(&regs);
  Exit exit;
  return std::forward<F>(fn)();
}

}  // namespace goro
