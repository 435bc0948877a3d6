// newproc.cpp — goroutine creation: Go's newproc, malg, gfput/gfget and the
// goroutine-id cache (proc.go), split from proc.cpp, which keeps the loop.
//
// A new goroutine reuses a dead G (with its stack) from its P's free list,
// else the global one, else malg makes one at the top of a fresh stack slot.
// Its callable is constructed on its own stack, just below the G, by the
// inline go() template between newproc_alloc and newproc_start; both open an
// Entry, so a P the preemption signal took meanwhile is taken back.
//
// Invariants: a G on a free list is _Gdead and on exactly one list; p.gFree
// is touched only by p's owner; sched.gFree only under sched.gFreeLock.
#include <new>

#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

namespace {

// malg allocates a brand-new G at the top of a fresh stack slot.
G* malg(Runtime* r) {
  char* slot = r->stacks.alloc();
  char* top = slot + r->stacks.slot_size();
  auto addr = reinterpret_cast<std::uintptr_t>(top - sizeof(G)) & ~std::uintptr_t{63};
  G* g = ::new (reinterpret_cast<void*>(addr)) G();
  g->fiber.stack_lo = slot + r->stacks.guard();
  g->fiber.stack_hi = reinterpret_cast<char*>(g);
  g->status.store(Gstatus::dead, std::memory_order_relaxed);
  {
    std::lock_guard<Lock> lk(r->allglock);
    g->alllink = r->allgs;
    r->allgs = g;
  }
  r->allglen.fetch_add(1, std::memory_order_relaxed);
  return g;
}

// gfput puts a dead G on p's free list; past 64 it moves half to the global
// list, so a P that only spawns and a P that only exits balance out.
}  // namespace

void gfput(Runtime* r, P* p, G* g) {
  g->schedlink = p->gFree;
  p->gFree = g;
  std::int32_t n = p->gFreeCount.load(std::memory_order_relaxed) + 1;
  if (n >= 64) {
    G* head = nullptr;
    G* tail = nullptr;
    std::int32_t moved = 0;
    while (n >= 32) {
      G* x = p->gFree;
      p->gFree = x->schedlink;
      x->schedlink = head;
      head = x;
      if (tail == nullptr) tail = x;
      n--;
      moved++;
    }
    std::lock_guard<Lock> lk(r->sched.gFreeLock);
    tail->schedlink = r->sched.gFree;
    r->sched.gFree = head;
    r->sched.gFreeCount.fetch_add(moved, std::memory_order_relaxed);
  }
  p->gFreeCount.store(n, std::memory_order_relaxed);
}

namespace {

// gfget takes a free G for p, refilling up to 32 from the global list.
G* gfget(Runtime* r, P* p) {
  if (p->gFree == nullptr && r->sched.gFreeCount.load(std::memory_order_relaxed) > 0) {
    std::lock_guard<Lock> lk(r->sched.gFreeLock);
    std::int32_t n = p->gFreeCount.load(std::memory_order_relaxed);
    std::int32_t took = 0;
    while (n < 32 && r->sched.gFree != nullptr) {
      G* x = r->sched.gFree;
      r->sched.gFree = x->schedlink;
      x->schedlink = p->gFree;
      p->gFree = x;
      n++;
      took++;
    }
    r->sched.gFreeCount.fetch_sub(took, std::memory_order_relaxed);
    p->gFreeCount.store(n, std::memory_order_relaxed);
  }
  G* g = p->gFree;
  if (g != nullptr) {
    p->gFree = g->schedlink;
    g->schedlink = nullptr;
    p->gFreeCount.store(p->gFreeCount.load(std::memory_order_relaxed) - 1,
                        std::memory_order_relaxed);
  }
  return g;
}

std::uint64_t newgoid(Runtime* r, P* p) {
  // Ids are handed to Ps in batches of 16 so go() does not contend on one
  // counter (Go's goidcache).
  if (p->goidcache == p->goidcacheend) {
    p->goidcache = r->sched.goidgen.fetch_add(16, std::memory_order_relaxed) + 1;
    p->goidcacheend = p->goidcache + 16;
  }
  return p->goidcache++;
}

}  // namespace

G* newproc_alloc(std::size_t size, std::size_t align, void** mem) {
  Entry e("goro::go");
  G* self = e.g();
  Runtime* r = rt();
  P* p = self->m->p;
  G* g = gfget(r, p);
  if (g == nullptr)
    g = malg(r);
  else
    fiber_reuse_stack(g->fiber);
  // The callable sits just below the G, on the new goroutine's own stack.
  if (align < 16) align = 16;
  const std::size_t room = static_cast<std::size_t>(g->fiber.stack_hi - g->fiber.stack_lo) / 4;
  if (size > room) {
    gfput(r, p, g);
    throw Error("goro::go: the goroutine's callable is larger than a quarter of its stack");
  }
  auto top = reinterpret_cast<std::uintptr_t>(g->fiber.stack_hi) - size;
  top &= ~(std::uintptr_t{align} - 1);
  g->entry_arg = reinterpret_cast<void*>(top);
  *mem = g->entry_arg;
  return g;
}

void newproc_abort(G* g) {
  // The callable's constructor threw: give the G back unused.
  Entry e("goro::go");
  gfput(rt(), e.m()->p, g);
}

void newproc_start(G* g, const Closure* fn, const std::source_location& where) {
  // The callable was constructed by inline user code in between: a new
  // Entry, whose safepoint takes back a P the signal may have taken.
  Entry e("goro::go");
  G* self = e.g();
  Runtime* r = rt();
  M* m = self->m;
  P* p = m->p;
  g->entry = fn;
  g->created_by = where;
  g->parent_goid = self->goid;
  g->goid = newgoid(r, p);
  g->waitreason = WaitReason::zero;
  g->waitsince = 0;
  g->preempt.store(false, std::memory_order_relaxed);
  g->param = nullptr;
  fiber_make(g->fiber, static_cast<char*>(g->entry_arg));
  casgstatus(g, Gstatus::dead, Gstatus::runnable);
  if (trace_on)
    trace_emit(TraceKind::go_create, g->goid, p->id, static_cast<std::int64_t>(self->goid), where.line(), 0,
               where.file_name());
  runqput(p, g, true);
  wakep();
}

namespace {

struct MainFn {
  std::function<void()>* fn;
  void operator()() const { (*fn)(); }
};

}  // namespace

G* newproc_main(Runtime* r, M* m0, std::function<void()>* fn) {
  P* p = m0->p;
  G* g = malg(r);
  auto top = reinterpret_cast<std::uintptr_t>(g->fiber.stack_hi) - sizeof(MainFn);
  top &= ~std::uintptr_t{63};
  g->entry_arg = ::new (reinterpret_cast<void*>(top)) MainFn{fn};
  g->entry = &ClosureOf<MainFn>::closure;
  g->created_by = std::source_location::current();
  g->goid = newgoid(r, p);
  fiber_make(g->fiber, static_cast<char*>(g->entry_arg));
  casgstatus(g, Gstatus::dead, Gstatus::runnable);
  if (trace_on)
    trace_emit(TraceKind::go_create, g->goid, p->id, 0, 0, 0, "goro::run (the main goroutine)");
  runqput(p, g, true);
  return g;
}


}  // namespace goro::detail
