// mfinal.cpp — the finalizer queue and goroutine (Go's mfinal.go).
//
// gc::make<T> for a T with a non-trivial destructor puts a 16-byte header
// {DtorFn, n} in front of the object and sets the slot's dtorBits bit. When
// sweep finds such a slot dead it does not free it: it queues the slot here
// and clears the bit. The queue is a GC root, so the object and everything it
// points to survive the next mark; the finalizer goroutine runs ~T (n times
// for make_array) outside any pause, on an ordinary goroutine stack, so a
// destructor may lock, allocate or send on channels. Once ~T has run the slot
// is an ordinary unreachable object and a later cycle frees it.
//
// Unlike Go's SetFinalizer there is no ordering between finalizable objects:
// if A and B die in the same cycle and A points to B, ~B may run before ~A.
// Both memories stay valid until both destructors have run, so ~A reading B
// reads a destroyed, not a freed, object.
//
// Invariants:
//   - A slot is queued at most once (its dtor bit is cleared when queued).
//   - Every queued slot, and the one whose destructor is running, is a root.
#include <vector>

#include "gc/malloc.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

namespace {

Lock finlock{LockRank::sema};     // guards everything below
std::vector<void*> finq;          // slots waiting for their destructor
void* volatile fincur = nullptr;  // the slot whose destructor runs now
G* fing = nullptr;                // the finalizer goroutine
bool fingwait = false;            // fing is parked on an empty queue

// unlock_mutex is gopark's unlockf: the lock is released on g0, after the
// goroutine is switched out (a goroutine-aware Lock, not a std::mutex, since
// ThreadSanitizer sees g0 and the goroutine as different threads).
bool unlock_mutex(G*, void* l) {
  static_cast<Lock*>(l)->unlock();
  return true;
}

}  // namespace

void finq_push(void* slot) {
  G* wake = nullptr;
  {
    std::lock_guard<Lock> lk(finlock);
    finq.push_back(slot);
    if (fingwait) {
      fingwait = false;
      wake = fing;
    }
  }
  if (wake != nullptr) goready(wake);
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
    fn(lo, lo + finq.size() * sizeof(void*));
  }
  const auto cur = reinterpret_cast<std::uintptr_t>(&fincur);
  fn(cur, cur + sizeof(void*));
}

void finq_reset() {
  std::lock_guard<Lock> lk(finlock);
  finq.clear();
  finq.shrink_to_fit();
  fincur = nullptr;
  fing = nullptr;
  fingwait = false;
}

// runfinq is the finalizer goroutine: one destructor at a time.
void runfinq() {
  {
    std::lock_guard<Lock> lk(finlock);
    fing = getg();
  }
  for (;;) {
    void* slot;
    {
      // Runtime code between destructors (which are user code and run
      // outside): opening the Entry takes back a P a long destructor lost.
      Entry e("goro finalizer goroutine");
      finlock.lock();
      if (finq.empty()) {
        fingwait = true;
        gopark(unlock_mutex, &finlock, WaitReason::gc_finalizer_wait);
        continue;
      }
      slot = finq.back();
      finq.pop_back();
      fincur = slot;
      finlock.unlock();
    }
    auto* hdr = static_cast<std::uintptr_t*>(slot);
    const auto fn = reinterpret_cast<DtorFn>(hdr[0]);
    fn(static_cast<char*>(slot) + dtorHeader, hdr[1]);
    std::lock_guard<Lock> lk(finlock);
    fincur = nullptr;
  }
}

}  // namespace goro::detail
