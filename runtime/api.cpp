// api.cpp — the public scheduler calls of goro/runtime.hpp, each a thin
// shell over sched/: open the runtime-entry guard (Entry, sched/proc.hpp:
// on a goroutine or goro::Error, the safepoint, m.locks raised), call the
// mechanism.
#include <sched.h>

#include <thread>

#include "goro/runtime.hpp"
#include "sched/hottext.hpp"
#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro {

using namespace detail;

GORO_YIELD_TEXT void yield() {
  Entry e("goro::yield");
  gosched();
}

// preempt_point is an Entry that does nothing once inside: opening it is
// the safepoint.
void preempt_point() { Entry e("goro::preempt_point"); }

void sleep_for(std::chrono::nanoseconds d) {
  Entry e("goro::sleep_for");
  if (d.count() <= 0) return;
  const std::int64_t now = nanotime();
  const std::int64_t when = d.count() > INT64_MAX - now ? INT64_MAX : now + d.count();
  sleep_until_ns(when, now);
}

void sleep_until(std::chrono::steady_clock::time_point t) {
  Entry e("goro::sleep_until");
  const std::int64_t when = to_nanotime(t);
  sleep_until_ns(when, nanotime());
}

std::uint64_t goid() { return Entry("goro::goid").g()->goid; }

int gomaxprocs(int n) {
  Entry e("goro::gomaxprocs");
  Runtime* r = rt();
  const int prev = r->gomaxprocs.load(std::memory_order_relaxed);
  if (n <= 0 || n == prev) return prev;
  if (n > maxProcs) n = maxProcs;
  stop_the_world("GOMAXPROCS");
  r->sched.newprocs = n;
  start_the_world();
  return prev;
}

int num_goroutine() {
  Entry e("goro::num_goroutine");
  Runtime* r = rt();
  // Go's gcount: every G ever made, minus the free ones.
  std::int64_t n = r->allglen.load(std::memory_order_relaxed) -
                   r->sched.gFreeCount.load(std::memory_order_relaxed) -
                   r->sched.ngsys.load(std::memory_order_relaxed);
  const int procs = r->gomaxprocs.load(std::memory_order_relaxed);
  for (int i = 0; i < procs; i++)
    n -= r->allp[i].load(std::memory_order_relaxed)->gFreeCount.load(std::memory_order_relaxed);
  // Goroutines that are dead but not yet freed (an instant) can make the
  // racy sum dip; never report fewer than the caller itself.
  return n < 1 ? 1 : static_cast<int>(n);
}

int num_cpu() {
  Entry e("goro::num_cpu");
  return detail::ncpu();
}

// proc_pin raises m.locks beyond the call, which is all a pin is: no
// preemption, no migration, no stop-the-world until proc_unpin.
int proc_pin() {
  Entry e("goro::proc_pin");
  if (e.m()->p == nullptr)
    throw Error("goro::proc_pin called inside blocking(): the goroutine has no P to pin");
  acquirem(e.m());
  e.g()->pins++;
  return e.m()->p->id;
}

void proc_unpin() {
  {
    Entry e("goro::proc_unpin");
    if (e.g()->pins <= 0) throw Error("goro::proc_unpin without proc_pin");
    e.g()->pins--;
    releasem(e.m());
  }
  // Outside again: a stop-the-world may be waiting for us.
  if (G* g = getg(); g->m->locks.load(std::memory_order_relaxed) == 0) safepoint(g);
}

}  // namespace goro
