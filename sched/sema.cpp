// sema.cpp — the runtime semaphore that sync is built on (Go's sema.go).
//
// semacquire(addr) waits until *addr > 0 and decrements it; semrelease(addr)
// increments it and wakes one waiter. The counter is the user's word (a
// WaitGroup's, a Mutex's); the waiters live in a table of 251 roots hashed by
// address, each a lock and a FIFO of sudogs on the waiters' stacks. So any
// word can be a semaphore with no per-object allocation, and a Mutex is just
// two integers.
//
// handoff: semrelease gives the unit straight to the first waiter (ticket)
// and yields to it, so a barging goroutine cannot take it first — what the
// Mutex's starvation mode needs. lifo: a waiter that already waited (a Mutex
// waiter that woke and lost) goes to the front of its address's queue.
//
// Invariants: root.nwait counts the sudogs queued in the root plus the
// acquirers between incrementing it and queueing; a releaser that sees
// nwait == 0 after its increment may skip the lock, because any acquirer
// still to come will see the increment (cansemacquire) before it parks.
#include "sched/proc.hpp"
#include "sched/sudog.hpp"

namespace goro::detail {

namespace {

struct alignas(64) SemaRoot {
  Lock lock{LockRank::sema};
  WaitQ q;  // every waiter of every address hashed here, FIFO per address
  std::atomic<std::uint32_t> nwait{0};
};

constexpr std::size_t semTabSize = 251;
SemaRoot semtable[semTabSize];

SemaRoot& semroot(const void* addr) {
  return semtable[(reinterpret_cast<std::uintptr_t>(addr) >> 3) % semTabSize];
}

bool cansemacquire(std::atomic<std::uint32_t>* addr) {
  std::uint32_t v = addr->load(std::memory_order_acquire);
  while (v != 0) {
    if (addr->compare_exchange_weak(v, v - 1, std::memory_order_acq_rel)) return true;
  }
  return false;
}

void queue(SemaRoot& root, Sudog* s, bool lifo) {
  if (lifo) {
    for (Sudog* x = root.q.first; x != nullptr; x = x->next) {
      if (x->elem == s->elem) {
        s->prev = x->prev;
        s->next = x;
        if (x->prev != nullptr)
          x->prev->next = s;
        else
          root.q.first = s;
        x->prev = s;
        return;
      }
    }
  }
  root.q.enqueue(s);
}

Sudog* dequeue(SemaRoot& root, void* addr) {
  for (Sudog* s = root.q.first; s != nullptr; s = s->next) {
    if (s->elem == addr) {
      root.q.remove(s);
      return s;
    }
  }
  return nullptr;
}

}  // namespace

// semtable_reset forgets every waiter: run() calls it when the runtime ends.
// Goroutines still parked then are abandoned, but their sudogs would stay
// queued in this process-wide table, keyed by addresses (a WaitGroup on an
// abandoned stack) that the next run() will reuse — and a release there
// would wake a goroutine of a runtime that no longer exists.
void semtable_reset() {
  for (SemaRoot& root : semtable) {
    std::lock_guard<Lock> lk(root.lock);
    root.q.first = root.q.last = nullptr;
    root.nwait.store(0, std::memory_order_relaxed);
  }
}

void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason) {
  if (cansemacquire(addr)) return;
  Entry e("goro semaphore acquire");
  G* g = e.g();
  Sudog s;
  s.g = g;
  s.elem = addr;
  SemaRoot& root = semroot(addr);
  for (;;) {
    root.lock.lock();
    root.nwait.fetch_add(1, std::memory_order_seq_cst);
    if (cansemacquire(addr)) {
      root.nwait.fetch_sub(1, std::memory_order_relaxed);
      root.lock.unlock();
      return;
    }
    s.ticket = 0;
    queue(root, &s, lifo);
    goparkunlock(&root.lock, reason);
    if (s.ticket != 0 || cansemacquire(addr)) return;
  }
}

void semrelease(std::atomic<std::uint32_t>* addr, bool handoff) {
  SemaRoot& root = semroot(addr);
  addr->fetch_add(1, std::memory_order_seq_cst);
  if (root.nwait.load(std::memory_order_seq_cst) == 0) return;
  // A waiter to ready: that needs our P (goready), so enter the runtime,
  // without yielding (the callers, Mutex.Unlock among them, do not).
  Entry e("goro semaphore release", Entry::NoYield);
  Sudog* s = nullptr;
  {
    std::lock_guard<Lock> lk(root.lock);
    if (root.nwait.load(std::memory_order_relaxed) == 0) return;
    s = dequeue(root, addr);
    if (s != nullptr) root.nwait.fetch_sub(1, std::memory_order_relaxed);
  }
  if (s == nullptr) return;
  if (handoff && cansemacquire(addr)) s->ticket = 1;
  const bool yield_to_it = s->ticket == 1;
  goready(s->g);  // s may be gone once the waiter runs
  if (yield_to_it) {
    // Direct handoff: let the waiter (now in runnext) run on our P —
    // unless we hold a runtime lock or a pin (m.locks beyond our Entries).
    // Our P's queue, not the global one: the waiter inherits our slice.
    G* g = e.g();
    if (!holdslocks(g)) goyield();
  }
}

}  // namespace goro::detail
