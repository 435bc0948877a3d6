// time.cpp — time.After, time.Timer and time.Ticker on the runtime's per-P
// timers (Go's time/sleep.go, time/tick.go and sendTime in runtime/time.go).
//
// A TimeTimer is a runtime timer (sched/timer.hpp) whose function,
// sendtime, puts the current time into a channel of capacity 1 without
// blocking: Go's sendTime, `select { case c <- now: default: }`. A ticker is
// the same timer with a period, so a reader that falls behind finds one
// buffered tick and the rest dropped.
//
// sendtime runs on a scheduler thread's g0, not on a goroutine, with the
// timer already taken out of (or re-armed in) its P's heap and the heap
// unlocked. Two consequences shape this file:
//
//   1. It cannot use Chan::try_send, which is a goroutine's operation (it
//      checks for a G and is a preemption point). sendtime does the
//      non-blocking send itself with the channel core's own pieces
//      (runtime/hchan.hpp: dequeue a parked receiver and hand it the value,
//      or buffer it, or drop it), which is exactly chansend(block=false)
//      minus the goroutine parts. A channel the user closed is not a panic
//      here (Go's Timer.C is receive-only and cannot be closed): the tick is
//      dropped.
//
//   2. Lifetime. deltimer returning false does not mean sendtime is not
//      running: it may have been popped from the heap an instant before and
//      still be about to touch the TimeTimer (and a ticker's sendtime runs
//      while the timer stays in the heap). Go leaves this to the garbage
//      collector. goro makes TimeTimers type-stable instead: they are never
//      freed, only recycled through a free list, and each use of one is a
//      generation (gen). The runtime timer carries the generation it was
//      armed with as its seq, and sendtime sends only if seq == gen.
//      Retiring a TimeTimer bumps gen and then waits for `users` (sendtimes
//      inside the check-and-send) to drain: sendtime increments users before
//      reading gen, the retirer bumps gen before reading users (both
//      seq_cst), so either sendtime sees the new gen or the retirer sees it
//      inside — Dekker's pattern. After that nobody touches the channel.
//
// Rejected: a goroutine per timer, or one "timerproc" goroutine doing the
// sends (Go before 1.14): a wake-up and a context switch per tick, and a
// goroutine count that timers inflate. Reference counting the TimeTimer
// from sendtime: the reference would have to be taken under the P's timers
// lock, which is the scheduler's, not ours.
//
// Invariants:
//   - t.rt.seq == t.gen whenever t.rt is armed; gen only grows.
//   - t.c is non-nil from newtimer until retire; it is written only while
//     no sendtime of the current gen can run (before arming, or after
//     retire's bump and drain).
//   - Timer/Ticker operations (stop, reset, retire) are serialised by t.mu,
//     a goro::Mutex: they run on goroutines. sendtime takes no lock but
//     the channel's and the free list's (both leaves for it).
//   - A TimeTimer is on the free list, or owned by exactly one of: a Timer
//     or Ticker object, or (after()) its own sendtime, which retires it
//     after firing. TimeTimers still armed when run() returns are abandoned,
//     never reused (their P is gone); alltimers keeps them reachable.
#include "goro/time.hpp"

#include <limits>
#include <utility>

#include "goro/sync.hpp"
#include "runtime/hchan.hpp"
#include "sched/nanotime.hpp"
#include "sched/proc.hpp"
#include "sched/timer.hpp"

namespace goro {

namespace detail {

struct TimeTimer {
  Timer rt;                           // f = sendtime, arg = this, seq = gen
  Chan<goro::Time> c;                 // capacity 1
  std::atomic<std::uint64_t> gen{1};  // the current use; see the file comment
  std::atomic<int> users{0};          // sendtimes between their gen check and send
  goro::Mutex mu;                     // serialises stop/reset/retire
  bool self_retire = false;           // after(): sendtime retires it after firing
  TimeTimer* freelink = nullptr;      // guarded by freelock
  TimeTimer* alllink = nullptr;       // guarded by freelock
};

namespace {

// The free list and the list of every TimeTimer ever made (which keeps
// abandoned ones reachable for leak checkers). freelock: rank timerfree
// (sched/lockrank.hpp).
Lock freelock{LockRank::timerfree};
TimeTimer* freetimers = nullptr;
TimeTimer* alltimers = nullptr;

// when is Go's when(d): the deadline d from now, clamped instead of
// overflowing.
std::int64_t when(std::chrono::nanoseconds d) {
  const std::int64_t now = nanotime();
  const std::int64_t n = d.count();
  if (n <= 0) return now;
  if (n > std::numeric_limits<std::int64_t>::max() - now)
    return std::numeric_limits<std::int64_t>::max();
  return now + n;
}

// nbsend is chansend(c, &now, block=false) for g0: hand the value to a
// parked receiver, or buffer it, or drop it (buffer full, or closed).
void nbsend(HchanBase* c, goro::Time now) {
  c->lock.lock();
  if (c->closed) {
    c->lock.unlock_plain();
    return;
  }
  if (Sudog* sg = dequeue(c->recvq)) {
    G* rg = send(c, sg, &now);
    c->lock.unlock_plain();
    goready(rg);
    return;
  }
  if (c->qcount.load(std::memory_order_relaxed) < c->dataqsiz) bufsend(c, &now);
  c->lock.unlock_plain();
}

void putfree(TimeTimer* t) {
  std::lock_guard<Lock> lk(freelock);
  t->freelink = freetimers;
  freetimers = t;
}

// retire_locked ends the current generation of t: disarm, bump gen, wait
// until no sendtime of the old generation is inside, drop the channel.
// t->mu held (or t owned by a sendtime that is no longer inside).
void retire_locked(TimeTimer* t) {
  deltimer(&t->rt);
  t->gen.fetch_add(1, std::memory_order_seq_cst);
  // A sendtime inside runs on another thread's g0 and cannot be preempted;
  // it finishes in a moment.
  while (t->users.load(std::memory_order_seq_cst) != 0) goro::yield();
  t->c = Chan<goro::Time>();
}

// sendtime is the runtime timer's f (Go's sendTime): on g0, with a P.
void sendtime(void* arg, std::uintptr_t seq) {
  auto* t = static_cast<TimeTimer*>(arg);
  t->users.fetch_add(1, std::memory_order_seq_cst);
  if (t->gen.load(std::memory_order_seq_cst) != seq) {
    // Stopped, reset or retired after this firing was decided: drop it.
    t->users.fetch_sub(1, std::memory_order_release);
    return;
  }
  nbsend(hchan_of(t->c), from_nanotime(nanotime()));
  const bool self_retire = t->self_retire;
  t->users.fetch_sub(1, std::memory_order_release);
  if (self_retire) {
    // after(): nobody else holds t. Fired one-shot timers are out of the heap.
    t->gen.fetch_add(1, std::memory_order_seq_cst);
    t->c = Chan<goro::Time>();
    putfree(t);
  }
}

// newtimer takes a TimeTimer (recycled or new), gives it a fresh channel and
// arms it. Goroutines only: addtimer needs the current P. The channel is
// copied to *c before arming: a self-retiring timer may fire, and drop its
// own reference, on another P the moment it is armed.
TimeTimer* newtimer(const char* api, std::int64_t when, std::int64_t period, bool self_retire,
                    Chan<goro::Time>* c) {
  Entry e(api);  // addtimer needs our P
  TimeTimer* t = nullptr;
  {
    std::lock_guard<Lock> lk(freelock);
    if (freetimers != nullptr) {
      t = freetimers;
      freetimers = t->freelink;
      t->freelink = nullptr;
    }
  }
  if (t == nullptr) {
    t = new TimeTimer;
    std::lock_guard<Lock> lk(freelock);
    t->alllink = alltimers;
    alltimers = t;
  }
  t->c = make_chan<goro::Time>(1);
  *c = t->c;
  t->self_retire = self_retire;
  t->rt.when = when;
  t->rt.period = period;
  t->rt.f = sendtime;
  t->rt.arg = t;
  t->rt.seq = t->gen.load(std::memory_order_relaxed);
  addtimer(&t->rt);
  return t;
}

// freetimer retires t for good (a Timer's or Ticker's destructor). A timer
// that outlived its runtime is abandoned: its P, and so its heap, is gone.
void freetimer(TimeTimer* t) {
  if (t == nullptr || rt() == nullptr || getg() == nullptr) return;
  Entry e("goro::Timer destructor");
  {
    std::lock_guard<goro::Mutex> lk(t->mu);
    retire_locked(t);
  }
  putfree(t);
}

// rearm_locked disarms t and arms it again for a new generation; the
// generation bump drops a firing of the old one that is about to send.
// Returns whether it was armed. t->mu held.
bool rearm_locked(TimeTimer* t, std::int64_t when, std::int64_t period) {
  const bool was = deltimer(&t->rt);
  const std::uint64_t g = t->gen.fetch_add(1, std::memory_order_seq_cst) + 1;
  t->rt.when = when;
  t->rt.period = period;
  t->rt.seq = g;
  addtimer(&t->rt);
  return was;
}

}  // namespace

}  // namespace detail

Chan<Time> after(std::chrono::nanoseconds d) {
  Chan<Time> c;
  detail::newtimer("goro::after", detail::when(d), 0, true, &c);
  return c;
}

// ---------------------------------------------------------------------------
// Timer

Timer::Timer(std::chrono::nanoseconds d) {
  Chan<Time> c;
  t_ = detail::newtimer("goro::Timer", detail::when(d), 0, false, &c);
}

Timer::~Timer() {
  detail::freetimer(t_);
}

Timer::Timer(Timer&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}

Timer& Timer::operator=(Timer&& o) noexcept {
  if (this != &o) {
    detail::freetimer(t_);
    t_ = std::exchange(o.t_, nullptr);
  }
  return *this;
}

Chan<Time> Timer::c() const {
  return t_ != nullptr ? t_->c : Chan<Time>();
}

bool Timer::stop() {
  if (t_ == nullptr) return false;
  detail::Entry e("goro::Timer::stop");
  std::lock_guard<Mutex> lk(t_->mu);
  // No generation bump: a firing already under way still delivers, so that
  // "if (!t.stop()) t.c().recv();" finds its value.
  return detail::deltimer(&t_->rt);
}

bool Timer::reset(std::chrono::nanoseconds d) {
  if (t_ == nullptr) throw Error("goro::Timer::reset on a moved-from Timer");
  detail::Entry e("goro::Timer::reset");
  std::lock_guard<Mutex> lk(t_->mu);
  return detail::rearm_locked(t_, detail::when(d), 0);
}

// ---------------------------------------------------------------------------
// Ticker

Ticker::Ticker(std::chrono::nanoseconds d) {
  if (d.count() <= 0) throw Panic("non-positive interval for NewTicker");
  Chan<Time> c;
  t_ = detail::newtimer("goro::Ticker", detail::when(d), d.count(), false, &c);
}

Ticker::~Ticker() {
  detail::freetimer(t_);
}

Ticker::Ticker(Ticker&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}

Ticker& Ticker::operator=(Ticker&& o) noexcept {
  if (this != &o) {
    detail::freetimer(t_);
    t_ = std::exchange(o.t_, nullptr);
  }
  return *this;
}

Chan<Time> Ticker::c() const {
  return t_ != nullptr ? t_->c : Chan<Time>();
}

void Ticker::stop() {
  if (t_ == nullptr) return;
  detail::Entry e("goro::Ticker::stop");
  std::lock_guard<Mutex> lk(t_->mu);
  detail::deltimer(&t_->rt);
  // A tick being decided right now is dropped; one past its check may still
  // land (Go's Stop gives no more than that either).
  t_->gen.fetch_add(1, std::memory_order_seq_cst);
}

void Ticker::reset(std::chrono::nanoseconds d) {
  if (d.count() <= 0) throw Panic("non-positive interval for Ticker.Reset");
  if (t_ == nullptr) throw Error("goro::Ticker::reset on a moved-from Ticker");
  detail::Entry e("goro::Ticker::reset");
  std::lock_guard<Mutex> lk(t_->mu);
  detail::rearm_locked(t_, detail::when(d), d.count());
}

}  // namespace goro
