// fiber.hpp — a saved execution context on a stack: the one place that knows
// how a context is switched and about the sanitizers' fiber hooks (Go's
// gogo/mcall and the g.sched gobuf).
//
// A switch (goro's own goro_switch on x86-64, Boost.Context's jump_fcontext
// elsewhere; fiber.cpp says why) pushes the callee-saved registers on the
// current stack and leaves the stack pointer in `ctx`. That makes `ctx` exactly what the garbage collector needs: scanning
// [ctx, stack_hi) covers the saved registers and every live frame.
//
// What a raw switch does not do, fiber_switch does:
//   - AddressSanitizer must be told the bounds of the stack being entered
//     (__sanitizer_start_switch_fiber) and confirm the switch on arrival
//     (__sanitizer_finish_switch_fiber), or it reports false stack overflows
//     and loses its fake stacks;
//   - ThreadSanitizer keeps a shadow stack per fiber and must switch it right
//     before the jump, from uninstrumented code (__tsan_switch_to_fiber);
//   - the C++ exception globals (__cxa_get_globals: the caught-exception stack
//     and the uncaught count) are per thread, but a goroutine can park inside a
//     catch block and resume on another thread; each fiber carries its own
//     copy, swapped at every switch.
//
// Invariants: a Fiber is resumed by at most one thread at a time; `ctx` is
// valid only while the fiber is switched out. A fiber that is published
// before its switch-out finishes (the scheduler's direct G-to-G switch) has
// `ctx` cleared first (fiber_unsave); the switch's arrival side stores the
// new context with release order, and whoever wants to resume the fiber
// waits for fiber_saved.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sched/sanitizers.hpp"

namespace goro::detail {

// EhGlobals mirrors the Itanium C++ ABI's __cxa_eh_globals.
struct EhGlobals {
  void* caught = nullptr;
  unsigned int uncaught = 0;
};

struct Fiber {
  void* ctx = nullptr;        // saved stack pointer while switched out
  char* stack_lo = nullptr;   // lowest usable byte (just above the guard page)
  char* stack_hi = nullptr;   // one past the highest byte (stacks grow down)
#if GORO_TSAN
  void* tsan = nullptr;       // ThreadSanitizer fiber handle
#endif
#if GORO_ASAN
  void* asan_fake = nullptr;  // AddressSanitizer fake-stack handle
#endif
  EhGlobals eh;
};

// fiber_init_thread makes f describe the calling thread's own stack (an M's g0).
void fiber_init_thread(Fiber& f);
// fiber_set_entry names the function every new fiber starts in. It must never
// return; it ends with fiber_switch(..., true).
void fiber_set_entry(void (*entry)());
// fiber_reuse_stack forgets what a previous fiber left on f's stack (ASan's
// poisoned redzones), before the stack is written to again.
void fiber_reuse_stack(Fiber& f);
// fiber_make prepares f to start in the entry on [f.stack_lo, sp) the first
// time it is switched to.
void fiber_make(Fiber& f, char* sp);
// fiber_thread_eh returns the calling thread's C++ exception globals. Every
// switch happens on one M's thread (goroutine to g0, g0 to goroutine, or
// goroutine to goroutine), so an M fetches the pointer once and passes it to
// each switch.
EhGlobals* fiber_thread_eh();
// fiber_switch saves the current context in `from` and resumes `to`, on the
// same thread (thread_eh is that thread's exception globals). It returns when
// someone switches back to `from`. `from_dies`: `from` will never run again
// (its sanitizer state is released).
void fiber_switch(Fiber& from, Fiber& to, EhGlobals* thread_eh, bool from_dies = false);
// fiber_unsave marks f's context as not saved yet: f is about to be
// published (queued, or put in a wait queue) while it is still running, and
// will switch out right after. fiber_saved is true once that switch has
// stored the context (acquire: the fiber's last writes are visible).
inline void fiber_unsave(Fiber& f) { __atomic_store_n(&f.ctx, nullptr, __ATOMIC_RELAXED); }
inline bool fiber_saved(const Fiber& f) { return __atomic_load_n(&f.ctx, __ATOMIC_ACQUIRE) != nullptr; }
// fiber_release frees the sanitizer state of a fiber that is not running.
void fiber_release(Fiber& f);

}  // namespace goro::detail
