// fiber.cpp — context switching and the sanitizer fiber annotations.
// See fiber.hpp for the why; this file is deliberately the only one that
// knows how a context is laid out, and the only user of the sanitizer
// interfaces.
//
// On x86-64 the switch is goro's own (goro_switch below, Go's gogo and
// mcall in one): push the six callee-saved registers, swap stack pointers,
// pop the other fiber's six, return to its saved return address. That is Boost
// fcontext's jump_fcontext without two things:
//   - the floating-point control words. jump_fcontext saves and reloads
//     MXCSR and the x87 control word at every switch; the reloads
//     (ldmxcsr, fldcw) are microcoded and took 2.1 of its 5.5 ns here.
//     Like Go's gogo, goro leaves them to the thread: a goroutine that
//     changes the rounding mode or the exception masks must restore them
//     before it calls into the runtime (docs/scheduler.md).
//   - the call through the PLT into libboost_context.
// Elsewhere, Boost's make_fcontext/jump_fcontext do the same job.
#include "sched/fiber.hpp"

#include <cxxabi.h>
#include <pthread.h>

#include "sched/hottext.hpp"
#include "sched/sanitizers.hpp"

#if defined(__x86_64__)
#define GORO_OWN_SWITCH 1
#else
#define GORO_OWN_SWITCH 0
#include <boost/context/detail/fcontext.hpp>
#endif

#if GORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if GORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace goro::detail {

namespace {

#if GORO_OWN_SWITCH
// A switch returns, on the arriving side, the context of the fiber it left
// (its stack pointer after the pushes) and the data word the leaver passed.
struct Transfer {
  void* fctx;
  void* data;
};
#else
using Transfer = boost::context::detail::transfer_t;
#endif

}  // namespace

}  // namespace goro::detail

#if GORO_OWN_SWITCH
// goro_switch(to, data): save the callee-saved registers on this stack, make
// `to` the stack, restore its registers and return to its saved return
// address, with (old stack pointer, data) both as the return value (rax,
// rdx) for a fiber that switched out here, and as the two arguments (rdi,
// rsi) for a new fiber entering its trampoline.
//
// A ret, not a jmp: the CPU predicts returns from a stack of the calls it
// has seen (the return-stack buffer). Every fiber that is switched out
// called goro_switch from the same place, the one call in fiber_switch, so
// the ret that resumes another fiber goes exactly where the prediction
// says: back to that call. And the calls and returns stay paired, so the
// returns the resumed fiber makes next (out of fiber_switch, switch_direct,
// yield_global, ...) are predicted too, from the leaving fiber's own chain
// of the same functions. A jmp left the leaver's call unpaired on that
// stack: every return after the switch then went one entry astray and
// missed (yield 42 -> 28 ns, pingpong 131 -> 113 ns, bench/README.md).
//
// A new fiber is the exception: its frame (fiber_make) returns into the
// trampoline, where no call came from. A ret there would be mispredicted
// and, worse, would wait for its target, loaded from a stack slot written
// long ago and often gone from the cache (spawn: +100 ns a goroutine). So
// that target is compared first and, when it is the trampoline, entered by
// a direct jump, which the CPU follows without waiting for the load. The
// leaver's call then stays unpaired, once per goroutine. (A switched-out
// fiber's return address is inside fiber_switch, so it never equals the
// trampoline's first byte.)
// Hidden: calls from the rest of libgoro are direct, not through the PLT.
extern "C" goro::detail::Transfer goro_switch(void* to, void* data);
asm(R"(
    .pushsection .text.hot.goro_yield,"ax",@progbits
    .p2align 6
    .globl goro_switch
    .hidden goro_switch
    .type goro_switch, @function
goro_switch:
    pushq %rbp
    pushq %rbx
    pushq %r15
    pushq %r14
    pushq %r13
    pushq %r12
    movq %rsp, %rax
    movq %rdi, %rsp
    popq %r12
    popq %r13
    popq %r14
    popq %r15
    popq %rbx
    popq %rbp
    movq %rsi, %rdx
    movq %rax, %rdi
    leaq goro_trampoline(%rip), %r8
    cmpq %r8, (%rsp)
    je 1f
    ret
1:  addq $8, %rsp
    jmp goro_trampoline
    .size goro_switch, .-goro_switch
    .popsection
)");
#endif

namespace goro::detail {

namespace {

EhGlobals* eh_globals() { return reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals()); }

// The function every new fiber runs (the scheduler's goroutine entry), set
// once by fiber_set_entry before any fiber exists.
void (*fiber_entry)() = nullptr;

// after_switch runs on arrival in `self`: record the context of the fiber we
// came from (release: that fiber may already be published, and a thread
// waiting in fiber_saved may resume it at once) and confirm the switch to
// ASan.
GORO_NO_TSAN void after_switch(Fiber* self, Transfer t) {
  __atomic_store_n(&static_cast<Fiber*>(t.data)->ctx, t.fctx, __ATOMIC_RELEASE);
#if GORO_ASAN
  __sanitizer_finish_switch_fiber(self ? self->asan_fake : nullptr, nullptr, nullptr);
#else
  (void)self;
#endif
}

// goro_switch enters it by name (a direct jump): see there.
[[noreturn]] void trampoline(Transfer t) asm("goro_trampoline");
[[noreturn]] void trampoline(Transfer t) {
  after_switch(nullptr, t);
  fiber_entry();
  __builtin_trap();  // entry never returns
}

}  // namespace

void fiber_init_thread(Fiber& f) {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    f.stack_lo = static_cast<char*>(addr);
    f.stack_hi = f.stack_lo + size;
  }
#if GORO_TSAN
  f.tsan = __tsan_get_current_fiber();
#endif
}

void fiber_set_entry(void (*entry)()) { fiber_entry = entry; }

void fiber_reuse_stack(Fiber& f) {
#if GORO_ASAN
  // A reused stack still carries the redzones of the previous goroutine's
  // frames, which never returned (a goroutine ends by switching away).
  __asan_unpoison_memory_region(f.stack_lo, static_cast<std::size_t>(f.stack_hi - f.stack_lo));
#else
  (void)f;
#endif
}

void fiber_make(Fiber& f, char* sp) {
#if GORO_OWN_SWITCH
  // What goro_switch pops, lowest first: six registers (zero: rbp = 0 ends
  // frame-pointer walks here), the address its ret goes to, and a null return
  // address for the trampoline, which never returns. The trampoline is
  // entered as if called: its stack pointer is 8 past a 16-byte boundary.
  auto top = reinterpret_cast<std::uintptr_t>(sp) & ~std::uintptr_t{15};
  auto* frame = reinterpret_cast<void**>(top) - 8;
  for (int i = 0; i < 6; i++) frame[i] = nullptr;
  frame[6] = reinterpret_cast<void*>(&trampoline);
  frame[7] = nullptr;
  void* ctx = frame;
#else
  void* ctx = boost::context::detail::make_fcontext(sp, static_cast<std::size_t>(sp - f.stack_lo), &trampoline);
#endif
  // Atomic, as after_switch's store: runqget's prefetch (runq.cpp) may read
  // the ctx of a G that a stale ring slot still names while it is reused.
  __atomic_store_n(&f.ctx, ctx, __ATOMIC_RELAXED);
  f.eh = EhGlobals{};
#if GORO_TSAN
  if (f.tsan == nullptr) f.tsan = __tsan_create_fiber(0);
#endif
}

EhGlobals* fiber_thread_eh() { return eh_globals(); }

// Never inlined: its call to goro_switch must stay the only one (see there).
GORO_NO_TSAN [[gnu::noinline]] GORO_YIELD_TEXT void fiber_switch(Fiber& from, Fiber& to,
                                                                 EhGlobals* thread_eh,
                                                                 bool from_dies) {
  // Both fibers run on this thread: swap the exception state here.
  from.eh = *thread_eh;
  *thread_eh = to.eh;
#if GORO_ASAN
  __sanitizer_start_switch_fiber(from_dies ? nullptr : &from.asan_fake, to.stack_lo,
                                 static_cast<std::size_t>(to.stack_hi - to.stack_lo));
#else
  (void)from_dies;
#endif
#if GORO_TSAN
  // Right before the jump: from here on TSan attributes accesses to `to`.
  __tsan_switch_to_fiber(to.tsan, 0);
#endif
#if GORO_OWN_SWITCH
  Transfer t = goro_switch(to.ctx, &from);
#else
  Transfer t = boost::context::detail::jump_fcontext(to.ctx, &from);
#endif
  after_switch(&from, t);
}

void fiber_release(Fiber& f) {
#if GORO_TSAN
  if (f.tsan != nullptr) __tsan_destroy_fiber(f.tsan);
  f.tsan = nullptr;
#endif
#if GORO_ASAN
  f.asan_fake = nullptr;
#endif
  (void)f;
}

}  // namespace goro::detail
