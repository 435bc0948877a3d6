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
#include "gc/mgc.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

// The queue, its lock and the goroutine are the run's: GcState::fin
// (gc/mgc.hpp).

namespace {

// unlock_mutex is gopark's unlockf: the lock is released on g0, after the
// goroutine is switched out (a goroutine-aware Lock, not a std::mutex, since
// ThreadSanitizer sees g0 and the goroutine as different threads).
bool unlock_mutex(G*, void* l) {
  static_cast<Lock*>(l)->unlock();
  return true;
}

}  // namespace

void finq_push(void* slot) {
  finState& f = gcs().fin;
  G* wake = nullptr;
  {
    std::lock_guard<Lock> lk(f.lock);
    f.q.push_back(slot);
    if (f.gwait) {
      f.gwait = false;
      wake = f.g;
    }
  }
  if (wake != nullptr) goready(wake);
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
    fn(lo, lo + f.q.size() * sizeof(void*));
  }
  const auto cur = reinterpret_cast<std::uintptr_t>(&f.cur);
  fn(cur, cur + sizeof(void*));
}

// runfinq is the finalizer goroutine: one destructor at a time.
void runfinq() {
  finState& f = gcs().fin;
  {
    std::lock_guard<Lock> lk(f.lock);
    f.g = getg();
  }
  for (;;) {
    void* slot;
    {
      // Runtime code between destructors (which are user code and run
      // outside): opening the Entry takes back a P a long destructor lost.
      Entry e("goro finalizer goroutine");
      f.lock.lock();
      if (f.q.empty()) {
        f.gwait = true;
        gopark(unlock_mutex, &f.lock, WaitReason::gc_finalizer_wait);
        continue;
      }
      slot = f.q.back();
      f.q.pop_back();
      f.cur = slot;
      f.lock.unlock();
    }
    auto* hdr = static_cast<std::uintptr_t*>(slot);
    const auto fn = reinterpret_cast<DtorFn>(hdr[0]);
    fn(static_cast<char*>(slot) + dtorHeader, hdr[1]);
    std::lock_guard<Lock> lk(f.lock);
    f.cur = nullptr;
  }
}

}  // namespace goro::detail
