// newproc.cpp — goroutine creation: Go's newproc, malg, gfput/gfget and the
// goroutine-id cache (proc.go), split from proc.cpp, which keeps the loop.
//
// A new goroutine reuses a dead G (with its stack) from its P's free list,
// else the global one, else malg makes one with a fresh stack slot.
// Its callable is constructed on its own stack, just below the G, by the
// inline go() template between newproc_alloc and newproc_start; both open an
// Entry, so a P the preemption signal took meanwhile is taken back.
//
// Invariants: a G on a free list is _Gdead and on exactly one list; p.gFree
// is touched only by p's owner; sched.gFree only under sched.gFreeLock; the
// gfreen of sched.gFree's batch heads add up to sched.gFreeCount.
#include <new>

#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

namespace {

// malg allocates a brand-new G, in its slab's dense G table, with a fresh
// stack slot (stack.hpp).
G* malg(Runtime* r) {
  void* mem = nullptr;
  char* slot = r->stacks.alloc(&mem);
  G* g = ::new (mem) G();
  g->fiber.stack_lo = slot + r->stacks.guard();
  g->fiber.stack_hi = slot + r->stacks.slot_size();
  g->status.store(Gstatus::dead, std::memory_order_relaxed);
  {
    std::lock_guard<Lock> lk(r->allglock);
    g->alllink = r->allgs;
    r->allgs = g;
  }
  r->allglen.fetch_add(1, std::memory_order_relaxed);
  return g;
}

// pushbatch puts a schedlink chain of n free Gs, headed by head, on the
// global free list in one step (sched.gFreeLock held).
void pushbatch(Runtime* r, G* head, std::int32_t n) {
  head->gfreen = n;
  head->gfreebatch = r->sched.gFree;
  r->sched.gFree = head;
  r->sched.gFreeCount.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace

// gfput puts a dead G on p's free list; past 64 it moves the 32 most recently
// freed to the global list as one batch, so a P that only spawns and a P that
// only exits balance out. The global list is a stack of such batches, not
// one chain (Go's is one chain): a refill then takes a whole batch without
// walking 32 Gs under the lock, which spawn showed to be a cache miss per G,
// paid while the other P waits on the lock.
void gfput(Runtime* r, P* p, G* g) {
  g->schedlink = p->gFree;
  p->gFree = g;
  std::int32_t n = p->gFreeCount.load(std::memory_order_relaxed) + 1;
  if (n >= 64) {
    G* head = p->gFree;
    G* tail = head;
    std::int32_t moved = 1;
    while (n - moved > 32) {
      tail = tail->schedlink;
      moved++;
    }
    p->gFree = tail->schedlink;
    tail->schedlink = nullptr;
    n -= moved;
    std::lock_guard<Lock> lk(r->sched.gFreeLock);
    pushbatch(r, head, moved);
  }
  p->gFreeCount.store(n, std::memory_order_relaxed);
}

// gfpurge moves all of p's free Gs to the global list (a P that dies).
void gfpurge(Runtime* r, P* p) {
  if (p->gFree == nullptr) return;
  std::lock_guard<Lock> lk(r->sched.gFreeLock);
  pushbatch(r, p->gFree, p->gFreeCount.load(std::memory_order_relaxed));
  p->gFree = nullptr;
  p->gFreeCount.store(0, std::memory_order_relaxed);
}

namespace {

// gfput_any is gfput, or without a P the global list, as a batch of one.
void gfput_any(Runtime* r, P* p, G* g) {
  if (p != nullptr) return gfput(r, p, g);
  g->schedlink = nullptr;
  std::lock_guard<Lock> lk(r->sched.gFreeLock);
  pushbatch(r, g, 1);
}

// gfget takes a free G for p; when p has none, it takes a whole batch from
// the global list first.
G* gfget(Runtime* r, P* p) {
  if (p->gFree == nullptr && r->sched.gFreeCount.load(std::memory_order_relaxed) > 0) {
    std::lock_guard<Lock> lk(r->sched.gFreeLock);
    if (G* b = r->sched.gFree) {
      r->sched.gFree = b->gfreebatch;
      r->sched.gFreeCount.fetch_sub(b->gfreen, std::memory_order_relaxed);
      b->gfreebatch = nullptr;
      p->gFree = b;
      p->gFreeCount.store(b->gfreen, std::memory_order_relaxed);
    }
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
  if (p == nullptr) return r->sched.goidgen.fetch_add(1, std::memory_order_relaxed) + 1;
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
  // Without a P (go() from the code inside a blocking() call), a new G: the
  // free lists belong to Ps.
  P* p = self->m->p;
  G* g = p != nullptr ? gfget(r, p) : nullptr;
  if (g == nullptr) {
    g = malg(r);
  } else {
    wait_saved(g);  // it may have freed itself a moment ago (goexit_direct)
    fiber_reuse_stack(g->fiber);
  }
  // The callable sits just below the G, on the new goroutine's own stack.
  if (align < 16) align = 16;
  const std::size_t room = static_cast<std::size_t>(g->fiber.stack_hi - g->fiber.stack_lo) / 4;
  if (size > room) {
    gfput_any(r, p, g);
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
  gfput_any(rt(), e.m()->p, g);
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
    trace_emit(TraceKind::go_create, g->goid, p != nullptr ? p->id : -1,
               static_cast<std::int64_t>(self->goid), where.line(), 0, where.file_name());
  if (p != nullptr) {
    runqput(p, g, true);
  } else {
    std::lock_guard<Lock> lk(r->sched.lock);
    globrunqput(g);
  }
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
