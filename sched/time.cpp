// time.cpp — per-P timer heaps and sleep (Go's runtime/time.go). See
// timer.hpp for the design and invariants.
//
// The heap is a 4-ary min-heap on `when`, as Go's: half a binary heap's
// levels (7 against 14 at 10k timers), with the four children's `when`s side
// by side in the array. An indexed timer knows its place, so deltimer
// removes it in O(log n) instead of leaving a tombstone; the price is a write
// into the timer at every level a sift moves it. A sleep's timer lives in
// the sleeper's frame, a cold line on another goroutine's stack, and is
// never deleted early, so it is not indexed and its sifts touch only the
// heap array: those writes were 65 % of siftdown, itself 8 % of the timers
// row.
#include <algorithm>

#include "goro/runtime.hpp"
#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

namespace {

// set_index records where an indexed timer now sits (see timer.hpp).
inline void set_index(const TimerWhen& e, std::size_t i) {
  if (e.indexed) e.t->index = static_cast<std::int32_t>(i);
}

// siftup and siftdown return where the moved entry came to rest.
std::size_t siftup(std::vector<TimerWhen>& h, std::size_t i) {
  const TimerWhen e = h[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 4;
    if (h[parent].when <= e.when) break;
    h[i] = h[parent];
    set_index(h[i], i);
    i = parent;
  }
  h[i] = e;
  set_index(e, i);
  return i;
}

std::size_t siftdown(std::vector<TimerWhen>& h, std::size_t i) {
  const TimerWhen e = h[i];
  const std::size_t n = h.size();
  for (;;) {
    const std::size_t first = 4 * i + 1;
    if (first >= n) break;
    std::size_t c = first;  // the earliest of up to four children
    const std::size_t last = std::min(first + 4, n);
    for (std::size_t k = first + 1; k < last; k++)
      if (h[k].when < h[c].when) c = k;
    if (e.when <= h[c].when) break;
    h[i] = h[c];
    set_index(h[i], i);
    i = c;
  }
  h[i] = e;
  set_index(e, i);
  return i;
}

void update_when0(Timers& ts) {
  ts.when0.store(ts.heap.empty() ? 0 : ts.heap[0].when, std::memory_order_relaxed);
}

// heap_add and heap_del need ts.lock.
void heap_add(P* p, Timer* t) {
  Timers& ts = p->timers;
  ts.heap.push_back({t->when, t, t->indexed});
  t->pp.store(p, std::memory_order_relaxed);
  siftup(ts.heap, ts.heap.size() - 1);
  update_when0(ts);
}

// heap_del removes the timer at heap index i (an indexed timer's t->index,
// or 0 for the top).
void heap_del(Timers& ts, std::size_t i) {
  Timer* t = ts.heap[i].t;
  const TimerWhen last = ts.heap.back();
  ts.heap.pop_back();
  if (last.t != t) {
    ts.heap[i] = last;
    siftup(ts.heap, siftdown(ts.heap, i));
  }
  t->index = -1;
  // Release: a deltimer that sees nullptr may then rewrite the timer's
  // fields, after everything checktimers read from them.
  t->pp.store(nullptr, std::memory_order_release);
  update_when0(ts);
}

P* current_p() {
  M* m = getm();
  if (m == nullptr || m->p == nullptr) fatal("addtimer: no P");
  return m->p;
}

}  // namespace

void addtimer(Timer* t) {
  P* p = current_p();
  const std::int64_t when = t->when;  // once unlocked, t belongs to the heap
  {
    std::lock_guard<Lock> lk(p->timers.lock);
    heap_add(p, t);
  }
  wake_timer_watcher(when);
}

bool deltimer(Timer* t) {
  for (;;) {
    P* p = t->pp.load(std::memory_order_acquire);
    if (p == nullptr) return false;
    std::lock_guard<Lock> lk(p->timers.lock);
    if (t->pp.load(std::memory_order_relaxed) != p) continue;  // moved meanwhile
    if (!t->indexed) fatal("deltimer: a timer that is not indexed");
    heap_del(p->timers, static_cast<std::size_t>(t->index));
    return true;
  }
}

bool modtimer(Timer* t, std::int64_t when, std::int64_t period) {
  const bool was = deltimer(t);
  t->when = when;
  t->period = period;
  addtimer(t);
  return was;
}

std::int64_t checktimers(P* p, std::int64_t now) {
  Timers& ts = p->timers;
  std::int64_t next = ts.when0.load(std::memory_order_relaxed);
  if (next == 0 || next > now) return next;
  std::unique_lock<Lock> lk(ts.lock);
  while (!ts.heap.empty()) {
    if (ts.heap[0].when > now) break;
    Timer* t = ts.heap[0].t;
    auto f = t->f;
    void* arg = t->arg;
    const std::uintptr_t seq = t->seq;
    if (t->period > 0) {
      // Re-arm for the next period after now; ticks missed meanwhile are
      // dropped, as Go's tickers drop them.
      t->when += t->period * (1 + (now - t->when) / t->period);
      ts.heap[0].when = t->when;
      siftdown(ts.heap, 0);
      update_when0(ts);
    } else {
      heap_del(ts, 0);
    }
    lk.unlock();
    f(arg, seq);  // may lock a channel, ready a G, add timers
    lk.lock();
  }
  return ts.heap.empty() ? 0 : ts.heap[0].when;
}

void timers_move(P* from, P* to) {
  // The world is stopped, so nobody else touches either heap; take the
  // locks one at a time anyway (two locks of one rank are not ordered).
  std::vector<TimerWhen> moving;
  {
    std::lock_guard<Lock> lk(from->timers.lock);
    moving.swap(from->timers.heap);
    update_when0(from->timers);
  }
  std::lock_guard<Lock> lk(to->timers.lock);
  for (const TimerWhen& e : moving) {
    e.t->index = -1;
    heap_add(to, e.t);
  }
}

std::int64_t timers_earliest() {
  Runtime* r = rt();
  std::int64_t next = 0;
  const int n = r->gomaxprocs.load(std::memory_order_relaxed);
  for (int i = 0; i < n; i++) {
    const std::int64_t w = r->allp[i].load(std::memory_order_relaxed)->timers.when0.load(
        std::memory_order_relaxed);
    if (w != 0 && (next == 0 || w < next)) next = w;
  }
  return next;
}

// ---------------------------------------------------------------------------
// sleep (Go's timeSleep)

namespace {

void sleep_wake(void* arg, std::uintptr_t) { goready(static_cast<G*>(arg)); }

// reset_for_sleep arms the timer from g0, after the sleeping G's context is
// saved: the timer may fire on another M at once, and goready must find the
// G parked (Go's resetForSleep is gopark's unlock function for this reason).
bool reset_for_sleep(G*, void* t) {
  addtimer(static_cast<Timer*>(t));
  return true;
}

}  // namespace

// The sleep's timer lives in this frame, on the sleeping goroutine's stack
// (Go keeps one in each g; here that would cost every goroutine 56 bytes,
// parked or not): the frame outlives the timer's time in the heap, since
// checktimers removes it before it readies the G and touches it no more.
void sleep_until_ns(std::int64_t when, std::int64_t now) {
  Entry e("goro::sleep");
  G* g = e.g();
  if (when <= now) return;
  Timer t;
  t.indexed = false;  // a sleep is never cancelled: it leaves the heap from the top
  t.when = when;
  t.period = 0;
  t.f = sleep_wake;
  t.arg = g;
  gopark(reset_for_sleep, &t, WaitReason::sleep);
}

}  // namespace goro::detail
