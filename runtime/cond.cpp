// cond.cpp — sync.Cond and the notify list under it (Go's sync/cond.go and
// the notifyList half of runtime/sema.go).
//
// Cond.wait must unlock the mutex and go to sleep as one step with respect
// to signal: a signal sent after the unlock but before the park must still
// wake this waiter. Go solves it with tickets, and so does goro:
//
//   wait():  t = list.add()      take a ticket while still holding the mutex
//            mutex.unlock()
//            list.wait_ticket(t) park, unless ticket t was notified already
//            mutex.lock()
//
//   signal() advances `notify` by one and wakes the waiter holding that
//   ticket; broadcast() sets notify = wait and wakes everyone queued. A
//   waiter that was notified between add and wait_ticket finds its ticket
//   below `notify` and does not park: no wake-up is lost, and signal wakes
//   at most one goroutine that was waiting when it was called.
//
// Rejected: a semaphore per Cond (sema.cpp). A semaphore counts releases, so
// a signal with no waiter would be remembered and wake a later wait — Go's
// Cond does not do that. A plain FIFO of sudogs without tickets loses the
// signal sent between unlock and park.
//
// Invariants:
//   - wait and notify only grow (mod 2^32); notify <= wait in ticket order.
//   - Every queued sudog's ticket t satisfies !less(t, notify): it has not
//     been notified yet. notify is written only under the list's lock.
//   - A queued sudog's G is parked: the lock is released by gopark's unlock
//     function, on g0, after the waiter's context is saved; so a notifier
//     that finds the sudog under the lock may goready it at once.
#include "goro/sync.hpp"
#include "sched/proc.hpp"
#include "sched/sudog.hpp"

namespace goro {

namespace detail {

namespace {

// The lists' locks, hashed by address as sema.cpp's roots are, so that a
// Cond carries no runtime types in the public header. Each is taken alone
// (the waiter releases it in gopark; notifiers drop it before goready), so
// the semaphore's rank fits.
struct alignas(64) NotifyLock {
  Lock lock{LockRank::notifylist};
};
constexpr std::size_t notifyTabSize = 61;
NotifyLock notifytable[notifyTabSize];

Lock& notifylock(const NotifyList* l) {
  return notifytable[(reinterpret_cast<std::uintptr_t>(l) >> 4) % notifyTabSize].lock;
}

// less reports whether ticket a comes before b, wrap-around included.
bool less(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::int32_t>(a - b) < 0;
}

bool unlock_notify(G*, void* lk) {
  static_cast<Lock*>(lk)->unlock();
  return true;
}

}  // namespace

std::uint32_t NotifyList::add() {
  return wait.fetch_add(1, std::memory_order_acq_rel);
}

void NotifyList::wait_ticket(std::uint32_t t) {
  Entry e("goro::Cond::wait");
  G* g = e.g();
  Lock& lk = notifylock(this);
  lk.lock();
  if (less(t, notify.load(std::memory_order_relaxed))) {
    lk.unlock();  // notified between add and here
    return;
  }
  Sudog s;
  s.g = g;
  s.ticket = t;
  s.next = nullptr;
  if (tail == nullptr)
    head = &s;
  else
    tail->next = &s;
  tail = &s;
  gopark(unlock_notify, &lk, WaitReason::sync_cond_wait);
}

void NotifyList::notify_one() {
  // Fast path: no waiter since the last notification. A racing add is fine:
  // its waiter will see the ticket not yet notified and park, and a later
  // signal wakes it.
  if (wait.load(std::memory_order_acquire) == notify.load(std::memory_order_acquire)) return;
  Entry e("goro::Cond::signal", Entry::NoYield);  // goready needs our P; Go's Signal does not yield
  Lock& lk = notifylock(this);
  lk.lock();
  const std::uint32_t t = notify.load(std::memory_order_relaxed);
  if (t == wait.load(std::memory_order_acquire)) {
    lk.unlock();
    return;
  }
  notify.store(t + 1, std::memory_order_release);
  // The waiter with ticket t may not have queued yet (it is between add and
  // wait_ticket); then it will find its ticket notified and not park.
  for (Sudog *p = nullptr, *s = head; s != nullptr; p = s, s = s->next) {
    if (s->ticket != t) continue;
    Sudog* n = s->next;
    if (p != nullptr)
      p->next = n;
    else
      head = n;
    if (tail == s) tail = p;
    s->next = nullptr;
    G* wg = s->g;
    lk.unlock();
    goready(wg);
    return;
  }
  lk.unlock();
}

void NotifyList::notify_all() {
  if (wait.load(std::memory_order_acquire) == notify.load(std::memory_order_acquire)) return;
  Entry e("goro::Cond::broadcast", Entry::NoYield);
  Lock& lk = notifylock(this);
  lk.lock();
  Sudog* s = head;
  head = tail = nullptr;
  // Every ticket handed out so far is notified, queued or not.
  notify.store(wait.load(std::memory_order_acquire), std::memory_order_release);
  lk.unlock();
  while (s != nullptr) {
    Sudog* next = s->next;  // s lives on its waiter's stack: read before waking it
    s->next = nullptr;
    goready(s->g);
    s = next;
  }
}

}  // namespace detail

// wait is a full safepoint (it is about to block anyway); signal and
// broadcast enter the runtime without yielding, as Go's do not yield.
void Cond::wait() {
  { detail::Entry e("goro::Cond::wait"); }
  const std::uint32_t t = notify_.add();
  l_.unlock();
  notify_.wait_ticket(t);
  l_.lock();
}

void Cond::signal() { notify_.notify_one(); }

void Cond::broadcast() { notify_.notify_all(); }

}  // namespace goro
