// api.cpp — the public scheduler calls of goro/runtime.hpp, each a thin
// shell over sched/: check that we are on a goroutine (else goro::Error),
// pass the safepoint, call the mechanism.
#include <sched.h>

#include <thread>

#include "goro/runtime.hpp"
#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro {

using namespace detail;

void yield() { mcall(require_g("goro::yield"), M::Req::gosched); }

void preempt_point() {
  G* g = getg();
  if (g == nullptr) throw Error("goro::preempt_point called outside a running goro runtime");
  safepoint(g);
}

void sleep_for(std::chrono::nanoseconds d) {
  require_g("goro::sleep_for");
  if (d.count() <= 0) {
    safepoint(getg());
    return;
  }
  const std::int64_t now = nanotime();
  const std::int64_t when = d.count() > INT64_MAX - now ? INT64_MAX : now + d.count();
  sleep_until_ns(when);
}

void sleep_until(std::chrono::steady_clock::time_point t) {
  require_g("goro::sleep_until");
  sleep_until_ns(to_nanotime(t));
}

std::uint64_t goid() { return require_g("goro::goid")->goid; }

int gomaxprocs(int n) {
  require_g("goro::gomaxprocs");
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
  require_g("goro::num_goroutine");
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
  require_g("goro::num_cpu");
  return detail::ncpu();
}

int proc_pin() {
  G* g = require_g("goro::proc_pin");
  M* m = g->m;
  m->locks++;
  return m->p->id;
}

void proc_unpin() {
  G* g = require_g("goro::proc_unpin");
  M* m = g->m;
  if (m->locks <= 0) throw Error("goro::proc_unpin without proc_pin");
  m->locks--;
  if (m->locks == 0) safepoint(g);  // a stop-the-world may be waiting for us
}

}  // namespace goro
