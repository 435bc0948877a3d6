// fiber.cpp — context switching and the sanitizer fiber annotations.
// See fiber.hpp for the why; this file is deliberately the only user of
// <boost/context/detail/fcontext.hpp> and of the sanitizer interfaces.
#include "sched/fiber.hpp"

#include <pthread.h>

#include <cxxabi.h>

#include <boost/context/detail/fcontext.hpp>

#include "sched/sanitizers.hpp"

#if GORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if GORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace ctx = boost::context::detail;

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
GORO_NO_TSAN void after_switch(Fiber* self, ctx::transfer_t t) {
  __atomic_store_n(&static_cast<Fiber*>(t.data)->ctx, t.fctx, __ATOMIC_RELEASE);
#if GORO_ASAN
  __sanitizer_finish_switch_fiber(self ? self->asan_fake : nullptr, nullptr, nullptr);
#else
  (void)self;
#endif
}

[[noreturn]] void trampoline(ctx::transfer_t t) {
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
  f.ctx = ctx::make_fcontext(sp, static_cast<std::size_t>(sp - f.stack_lo), &trampoline);
  f.eh = EhGlobals{};
#if GORO_TSAN
  if (f.tsan == nullptr) f.tsan = __tsan_create_fiber(0);
#endif
}

EhGlobals* fiber_thread_eh() { return eh_globals(); }

GORO_NO_TSAN void fiber_switch(Fiber& from, Fiber& to, EhGlobals* thread_eh, bool from_dies) {
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
  ctx::transfer_t t = ctx::jump_fcontext(to.ctx, &from);
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
