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
#include <unordered_map>
#include <vector>

#include "gc/malloc.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

namespace goro::detail {

namespace {

// FinEntry is one queued finalizer: call == nullptr: run the destructor of
// the slot obj (header first); otherwise call(closure, obj). Its words are
// scanned conservatively, keeping both the closure and the object alive.
struct FinEntry {
  FinCallFn call;
  void* closure;
  void* obj;
};

// Special is a finalizer set by set_finalizer and not queued yet.
struct Special {
  void* obj;  // the user's pointer (slot + header, if any)
  void* closure;
  FinCallFn call;
};

Lock finlock{LockRank::sema};     // guards everything below
std::vector<FinEntry> finq;       // finalizers waiting to run
FinEntry volatile fincur{};       // the one running now
G* fing = nullptr;                // the finalizer goroutine
bool fingwait = false;            // fing is parked on an empty queue
std::unordered_map<std::uintptr_t, Special> specials;  // slot address -> its finalizer
std::atomic<std::size_t> nspecials{0};  // specials.size(), for sweep's fast path

// unlock_mutex is gopark's unlockf: the lock is released on g0, after the
// goroutine is switched out (a goroutine-aware Lock, not a std::mutex, since
// ThreadSanitizer sees g0 and the goroutine as different threads).
bool unlock_mutex(G*, void* l) {
  static_cast<Lock*>(l)->unlock();
  return true;
}

}  // namespace

namespace {

// wake_fing_locked returns fing if it waits for work (finlock held); the
// caller readies it after unlocking.
G* wake_fing_locked() {
  if (!fingwait) return nullptr;
  fingwait = false;
  return fing;
}

}  // namespace

void finq_push(void* slot) {
  G* wake = nullptr;
  {
    std::lock_guard<Lock> lk(finlock);
    finq.push_back(FinEntry{nullptr, nullptr, slot});
    wake = wake_fing_locked();
  }
  if (wake != nullptr) goready(wake);
}

bool finq_have_specials() {
  return nspecials.load(std::memory_order_relaxed) != 0;
}

// finq_sweep_specials queues the specials of the dead slots in bits `*dead`
// of word w of span s (Go's sweep freeing specials: a finalizer found on a
// dead object is queued, and the object is kept). Those slots move from
// *dead to *mark. The sweeper owns s.
void finq_sweep_specials(mspan* s, std::size_t w, std::uint64_t* dead, std::uint64_t* mark) {
  G* wake = nullptr;
  {
    std::lock_guard<Lock> lk(finlock);
    for (std::uint64_t d = *dead; d != 0; d &= d - 1) {
      const int b = __builtin_ctzll(d);
      const std::uintptr_t slot = s->base + (w * 64 + b) * s->elemsize;
      auto it = specials.find(slot);
      if (it == specials.end()) continue;
      finq.push_back(FinEntry{it->second.call, it->second.closure, it->second.obj});
      specials.erase(it);
      nspecials.store(specials.size(), std::memory_order_relaxed);
      const std::uint64_t bit = std::uint64_t(1) << b;
      *dead &= ~bit;
      *mark |= bit;
    }
    wake = wake_fing_locked();
  }
  if (wake != nullptr) goready(wake);
}

// finq_specials_for_each calls fn(closure, slot, slot end) for every special
// (finlock held, world stopped: the mark).
void finq_specials_for_each(
    const std::function<void(std::uintptr_t closure, std::uintptr_t lo, std::uintptr_t hi)>& fn) {
  for (const auto& [slot, sp] : specials) {
    mspan* s = spanOf(slot);
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
GORO_NO_TSAN std::uintptr_t find_object(std::uintptr_t p, bool* start) {
  mspan* s = spanOf(p);
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
  require_g("goro::gc::set_finalizer");
  if (obj == nullptr) fin_panic("first argument is nil");
  bool start = false;
  const std::uintptr_t slot = find_object(reinterpret_cast<std::uintptr_t>(obj), &start);
  if (slot == 0) fin_panic("pointer not in allocated block");
  if (!start) fin_panic("pointer not at beginning of allocated block");
  std::lock_guard<Lock> lk(finlock);
  if (closure == nullptr) {
    specials.erase(slot);  // removefinalizer; none set is fine
  } else if (!specials.emplace(slot, Special{const_cast<void*>(obj), closure, call}).second) {
    fin_panic("finalizer already set");
  }
  nspecials.store(specials.size(), std::memory_order_relaxed);
}

void finq_lock() {
  finlock.lock();
}
void finq_unlock() {
  finlock.unlock();
}

void finq_for_each(const std::function<void(std::uintptr_t, std::uintptr_t)>& fn) {
  if (!finq.empty()) {
    const auto lo = reinterpret_cast<std::uintptr_t>(finq.data());
    fn(lo, lo + finq.size() * sizeof(FinEntry));
  }
  const auto cur = reinterpret_cast<std::uintptr_t>(&fincur);
  fn(cur, cur + sizeof(FinEntry));
}

void finq_reset() {
  std::lock_guard<Lock> lk(finlock);
  finq.clear();
  finq.shrink_to_fit();
  specials.clear();
  nspecials.store(0, std::memory_order_relaxed);
  fincur.call = nullptr;
  fincur.closure = nullptr;
  fincur.obj = nullptr;
  fing = nullptr;
  fingwait = false;
}

namespace {

// run_one pops the newest entry and runs it (finlock held on entry, not on
// return). It is a frame of its own so that no copy of the entry's pointers
// stays in runfinq's frame while it parks: the finalizer goroutine's stack
// is scanned like any other, and a stale pointer to a finalized A there
// would keep A, and through it B, alive for ever.
[[gnu::noinline]] void run_one() {
  const FinEntry e = finq.back();
  finq.pop_back();
  fincur.call = e.call;
  fincur.closure = e.closure;
  fincur.obj = e.obj;
  finlock.unlock();
  if (e.call != nullptr) {
    // A finalizer's panic is Go's: it kills the program (on this, an
    // ordinary goroutine, an escaping exception does just that).
    e.call(e.closure, e.obj);
  } else {
    auto* hdr = static_cast<std::uintptr_t*>(e.obj);
    const auto fn = reinterpret_cast<DtorFn>(hdr[0]);
    fn(static_cast<char*>(e.obj) + dtorHeader, hdr[1]);
  }
  std::lock_guard<Lock> lk(finlock);
  fincur.call = nullptr;
  fincur.closure = nullptr;
  fincur.obj = nullptr;
}

// scrub clears the stack just below the caller's frame, where run_one's
// frame and the finalizer's own frames were, before the goroutine may park:
// a parked goroutine is scanned from its saved context, which lies in that
// region, and gopark's frames do not overwrite every stale word.
[[gnu::noinline]] void scrub() {
  volatile char buf[2048];
  for (std::size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}

}  // namespace

// runfinq is the finalizer goroutine: one finalizer at a time.
void runfinq() {
  {
    std::lock_guard<Lock> lk(finlock);
    fing = getg();
  }
  for (;;) {
    // A finalizer is user code: a long one may have lost the P to the
    // preemption signal; take one back before touching the scheduler.
    safepoint(getg());
    scrub();
    finlock.lock();
    if (finq.empty()) {
      fingwait = true;
      gopark(unlock_mutex, &finlock, WaitReason::gc_finalizer_wait);
      continue;
    }
    run_one();
  }
}

}  // namespace goro::detail
