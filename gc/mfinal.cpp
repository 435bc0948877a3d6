// mfinal.cpp — finalizers: the queue, the finalizer goroutine and
// runtime.SetFinalizer (Go's mfinal.go).
//
// Two kinds of finalizer, one queue:
//   - a destructor: gc::make<T> for a T with a non-trivial destructor puts a
//     16-byte header {DtorFn, n} in front of the object and sets the slot's
//     dtorBits bit; ~T runs (n times for make_array) once it is unreachable;
//   - a finalizer set by gc::set_finalizer(obj, fn) (SetFinalizer): a
//     "special" record {obj, closure, call} in the specials table (Go keeps
//     specials on the span; one table under finlock is enough here). The
//     closure is itself a GC object holding fn and its captures.
// When sweep finds a dead slot with a special it does not free it: it moves
// the special to the queue (removing it, so it runs once) and keeps the slot.
// Otherwise, for a dead slot with its dtor bit, it queues the slot and clears
// the bit. The queue is a GC root, so a queued object and everything it
// points to survive the next mark; the finalizer goroutine runs each entry
// outside any pause, on an ordinary goroutine stack, so a finalizer may
// lock, allocate or send on channels. An object with both runs fn first and
// ~T a cycle later (its dtor bit is still set after fn), when the memory is
// finally reclaimed; an object that only had ~T is an ordinary unreachable
// object once it has run, and a later cycle frees it.
//
// Order, as Go's: the mark treats every object with a pending finalizer as a
// root for what it points to, but not for itself (mgcmark.cpp
// mark_finalizable; Go's markrootSpans). So when A points to B and both die,
// B is still marked through A: only A is queued. Once A's finalizer has run
// and A is gone, B dies in a later cycle. A cycle of finalizable objects (or
// one that a closure's captures point back into) is therefore never
// collected, as in Go; a pointer from an object into itself does not count
// (the scan skips its own range: a std::string's small buffer points there).
//
// Invariants:
//   - A slot is queued at most once per finalizer: its dtor bit is cleared,
//     or its special removed, when it is queued.
//   - Every queued entry, and the one whose finalizer is running, is a root.
//   - A special's slot is allocated: it is removed before the slot can be
//     freed (sweep queues it instead), or by set_finalizer(obj, nullptr).
#include <string>
#include <vector>

#include "gc/malloc.hpp"
#include "gc/mgc.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

namespace goro::detail {

// The queue, the specials, their lock and the goroutine are the run's:
// GcState::fin (gc/mgc.hpp).

namespace {

// wake_fing_locked returns fing if it waits for work (finlock held); the
// caller readies it after unlocking.
G* wake_fing_locked(finState& f) {
  if (!f.gwait) return nullptr;
  f.gwait = false;
  return f.g;
}

}  // namespace

void finq_push(void* slot) {
  finState& f = gcs().fin;
  G* wake = nullptr;
  {
    std::lock_guard<Lock> lk(f.lock);
    f.q.push_back(FinEntry{nullptr, nullptr, slot});
    wake = wake_fing_locked(f);
  }
  if (wake != nullptr) goready(wake);
}

bool finq_have_specials() {
  return gcs().fin.nspecials.load(std::memory_order_relaxed) != 0;
}

// finq_sweep_specials queues the specials of the dead slots in bits `*dead`
// of word w of span s (Go's sweep freeing specials: a finalizer found on a
// dead object is queued, and the object is kept). Those slots move from
// *dead to *mark. The sweeper owns s.
void finq_sweep_specials(mspan* s, std::size_t w, std::uint64_t* dead, std::uint64_t* mark) {
  finState& f = gcs().fin;
  G* wake = nullptr;
  {
    std::lock_guard<Lock> lk(f.lock);
    for (std::uint64_t d = *dead; d != 0; d &= d - 1) {
      const int b = __builtin_ctzll(d);
      const std::uintptr_t slot = s->base + (w * 64 + b) * s->elemsize;
      auto it = f.specials.find(slot);
      if (it == f.specials.end()) continue;
      f.q.push_back(FinEntry{it->second.call, it->second.closure, it->second.obj});
      f.specials.erase(it);
      f.nspecials.store(f.specials.size(), std::memory_order_relaxed);
      const std::uint64_t bit = std::uint64_t(1) << b;
      *dead &= ~bit;
      *mark |= bit;
    }
    wake = wake_fing_locked(f);
  }
  if (wake != nullptr) goready(wake);
}

// finq_specials_for_each calls fn(closure, slot, slot end) for every special
// (finlock held, world stopped: the mark).
void finq_specials_for_each(
    const std::function<void(std::uintptr_t closure, std::uintptr_t lo, std::uintptr_t hi)>& fn) {
  GcState& gc = gcs();
  for (const auto& [slot, sp] : gc.fin.specials) {
    mspan* s = spanOf(gc.heap, slot);
    if (s == nullptr) continue;
    fn(reinterpret_cast<std::uintptr_t>(sp.closure), slot, slot + s->elemsize);
  }
}

namespace {

[[noreturn]] void fin_panic(const char* what) {
  throw Panic(std::string("runtime.SetFinalizer: ") + what);
}

// find_object returns the slot of p's object, or 0 if p is not in an
// allocated object; *start is whether p is the pointer make returned. The
// bits read are the object's own, stable while it is allocated; their words
// may be changing for neighbours (the owner allocating): a benign race on
// other bits, so exempt from ThreadSanitizer.
GORO_NO_TSAN std::uintptr_t find_object(const mheap& h, std::uintptr_t p, bool* start) {
  mspan* s = spanOf(h, p);
  if (s == nullptr || !s->inuse) return 0;
  const std::size_t i = s->objindex(p);
  if (i >= s->nelems || !s->isAllocated(i)) return 0;
  const std::uintptr_t slot = s->base + i * s->elemsize;
  const bool dtor = (s->dtorBits[i / 64] >> (i % 64)) & 1;
  *start = p == slot + (dtor ? dtorHeader : 0);
  return slot;
}

}  // namespace

void gc_set_finalizer(const void* obj, void* closure, FinCallFn call) {
  Entry e("goro::gc::set_finalizer");
  if (obj == nullptr) fin_panic("first argument is nil");
  GcState& gc = gcs();
  bool start = false;
  const std::uintptr_t slot = find_object(gc.heap, reinterpret_cast<std::uintptr_t>(obj), &start);
  if (slot == 0) fin_panic("pointer not in allocated block");
  if (!start) fin_panic("pointer not at beginning of allocated block");
  finState& f = gc.fin;
  std::lock_guard<Lock> lk(f.lock);
  if (closure == nullptr) {
    f.specials.erase(slot);  // removefinalizer; none set is fine
  } else if (!f.specials.emplace(slot, Special{const_cast<void*>(obj), closure, call}).second) {
    fin_panic("finalizer already set");
  }
  f.nspecials.store(f.specials.size(), std::memory_order_relaxed);
}

void finq_lock() {
  gcs().fin.lock.lock();
}
void finq_unlock() {
  gcs().fin.lock.unlock();
}

void finq_for_each(const std::function<void(std::uintptr_t, std::uintptr_t)>& fn) {
  finState& f = gcs().fin;
  if (!f.q.empty()) {
    const auto lo = reinterpret_cast<std::uintptr_t>(f.q.data());
    fn(lo, lo + f.q.size() * sizeof(FinEntry));
  }
  const auto cur = reinterpret_cast<std::uintptr_t>(&f.cur);
  fn(cur, cur + sizeof(FinEntry));
}

namespace {

// take_one moves the newest entry to f.cur and releases finlock (held on
// entry). It and run_cur are frames of their own so that no copy of the
// entry's pointers stays in runfinq's frame while it parks: the finalizer
// goroutine's stack is scanned like any other, and a stale pointer to a
// finalized A there would keep A, and through it B, alive for ever.
[[gnu::noinline]] void take_one(finState& f) {
  const FinEntry e = f.q.back();
  f.q.pop_back();
  f.cur.call = e.call;
  f.cur.closure = e.closure;
  f.cur.obj = e.obj;
  f.lock.unlock();
}

// run_cur runs f.cur (user code: outside any Entry), then clears it.
[[gnu::noinline]] void run_cur(finState& f) {
  const FinEntry e{f.cur.call, f.cur.closure, f.cur.obj};
  if (e.call != nullptr) {
    // A finalizer's panic is Go's: it kills the program (on this, an
    // ordinary goroutine, an escaping exception does just that).
    e.call(e.closure, e.obj);
  } else {
    auto* hdr = static_cast<std::uintptr_t*>(e.obj);
    const auto fn = reinterpret_cast<DtorFn>(hdr[0]);
    fn(static_cast<char*>(e.obj) + dtorHeader, hdr[1]);
  }
  std::lock_guard<Lock> lk(f.lock);
  f.cur.call = nullptr;
  f.cur.closure = nullptr;
  f.cur.obj = nullptr;
}


}  // namespace

// runfinq is the finalizer goroutine: one finalizer at a time.
void runfinq() {
  finState& f = gcs().fin;
  {
    std::lock_guard<Lock> lk(f.lock);
    f.g = getg();
  }
  for (;;) {
    {
      // Runtime code between finalizers (which are user code and run
      // outside): opening the Entry takes back a P a long finalizer lost.
      Entry e("goro finalizer goroutine");
      // run_cur's and the finalizer's frames were here: a parked goroutine
      // is scanned from its saved context, which lies in that region.
      scrub_stack_below();
      f.lock.lock();
      if (f.q.empty()) {
        f.gwait = true;
        goparkunlock(&f.lock, WaitReason::gc_finalizer_wait);
        continue;
      }
      take_one(f);
    }
    run_cur(f);
  }
}

}  // namespace goro::detail
