// sysmon.cpp — the system monitor thread and schedtrace (Go's sysmon,
// retake, schedtrace).
//
// sysmon is an OS thread with no P that watches the scheduler from outside:
//   - it asks a goroutine that has run for more than 10 ms on one P without
//     going back to the scheduler to yield at its next safepoint (preemption
//     by flag: g.preempt; the goroutine checks it at every runtime call and
//     at goro::preempt_point());
//   - it prints the GORO_DEBUG=schedtrace lines;
//   - it keeps a coarse clock (sched.coarse_now) so that parking does not
//     read the clock just to record how long a goroutine has waited.
// It sleeps 20 us between looks at first and, after 50 looks that took no P
// from a system call, doubles the sleep up to 10 ms (a preemption request
// does not reset it, as in Go); when every P is idle it sleeps until an M
// acquires a P (notify_sysmon), so an idle runtime uses no CPU at all.
//
// Invariants: sysmon never holds a P and never runs goroutines; it reads
// other threads' state only through atomics, except under sched.lock for
// schedtrace's Ms list.
#include <cstdio>
#include <string>
#include <vector>

#include "gc/gc.hpp"
#include "sched/nanotime.hpp"
#include "sched/netpoll.hpp"
#include "sched/proc.hpp"

namespace goro::detail {


namespace {

constexpr std::int64_t forcePreemptNS = 10 * 1000 * 1000;  // Go's 10 ms time slice

struct PSnapshot {
  std::uint32_t schedtick = 0;
  std::int64_t schedwhen = 0;
  std::uint32_t syscalltick = 0;
  std::int64_t syscallwhen = 0;
  // A lazy blocking() call on the P's M (syscall.cpp): which M, and its
  // SysTls.state, odd and the same for as long as it is the same call.
  M* lazym = nullptr;
  std::uint32_t lazystate = 0;
};

// retake_worth says whether to take a P out of a system call that has lasted
// a whole tick: if someone could use it, because there is queued work or
// nobody is spinning or idle to pick up new work; else only after 10 ms, so
// that short calls keep their P without a handoff.
bool retake_worth(Runtime* r, P* p, std::int64_t since, std::int64_t now) {
  const bool work = !runqempty(p) || r->sched.runqsize.load(std::memory_order_relaxed) > 0;
  const bool helpers = r->sched.nmspinning.load(std::memory_order_relaxed) +
                           r->sched.npidle.load(std::memory_order_relaxed) >
                       0;
  return work || !helpers || since + forcePreemptNS <= now;
}

// retake_syscall hands p, in _Psyscall, to another M if it is still there.
bool retake_syscall(Runtime* r, P* p, std::int64_t now) {
  // Count ourselves as a running M while the P is in our hands (Go's
  // incidlelocked(-1)): else the M we retake from can leave its call,
  // find no P, go idle, and checkdead would see nobody running and a
  // runnable goroutine — before handoffp gives the P to anyone.
  incidlelocked(r, -1);
  Pstatus expect = Pstatus::syscall;
  const bool took =
      p->status.compare_exchange_strong(expect, Pstatus::idle, std::memory_order_acq_rel);
  if (took) {
    p->syscalltick.fetch_add(1, std::memory_order_relaxed);
    r->sched.nhandoff.fetch_add(1, std::memory_order_relaxed);
    if (trace_on) trace_emit(TraceKind::sysmon, 0, p->id, 0, 0, 0, "SysmonRetake", now);
    handoffp(p);
  }
  incidlelocked(r, 1);
  return took;
}

// retake asks goroutines that have held a P for a whole time slice to
// yield, and takes Ps away from Ms blocked in system calls (handoffp).
// Returns how many Ps it took from system calls. A preemption request does
// not count, as in Go: counting it kept sysmon at its 20 us pace for a
// millisecond after every time slice whenever goroutines ran long loops,
// about 7 000 wake-ups a second that each took the CPU from a running M
// (pool_parallel lost 10-30 % of one of its two threads to them).
int retake(Runtime* r, std::vector<PSnapshot>& snaps, std::int64_t now) {
  int n = 0;
  const int procs = r->gomaxprocs.load(std::memory_order_relaxed);
  // A P seen for the first time starts its slice now (not at time 0, which
  // would make its first goroutine look like a 10 ms hog at once).
  if (snaps.size() < static_cast<std::size_t>(procs))
    snaps.resize(static_cast<std::size_t>(procs), PSnapshot{0, now, 0, now});
  for (int i = 0; i < procs; i++) {
    P* p = r->allp[i].load(std::memory_order_acquire);
    if (p == nullptr) continue;
    PSnapshot& ps = snaps[static_cast<std::size_t>(i)];
    const Pstatus st = p->status.load(std::memory_order_acquire);
    if (st == Pstatus::syscall) {
      // In the same system call as at our last look (syscalltick counts
      // the calls that returned)? Then it has blocked for a whole sysmon
      // tick.
      const std::uint32_t t = p->syscalltick.load(std::memory_order_relaxed);
      if (ps.syscalltick != t) {
        ps.syscalltick = t;
        ps.syscallwhen = now;
        continue;
      }
      if (retake_worth(r, p, ps.syscallwhen, now) && retake_syscall(r, p, now)) n++;
      continue;
    }
    if (st != Pstatus::running) continue;
    // A running P whose M is in a lazy blocking() call is in a system call
    // too, one that still holds its P: the same rule, once the call is made
    // an ordinary one (sys_take, syscall.cpp). And no preemption: a thread
    // in a call has no goroutine code to stop, and the signal would cut its
    // call short.
    if (M* m = p->m.load(std::memory_order_acquire); m != nullptr && sys_in_call(m)) {
      const std::uint32_t state =
          m->sys.load(std::memory_order_relaxed)->state.load(std::memory_order_relaxed);
      if (ps.lazym != m || ps.lazystate != state) {
        ps.lazym = m;
        ps.lazystate = state;
        ps.syscallwhen = now;
        continue;
      }
      if (!retake_worth(r, p, ps.syscallwhen, now)) continue;
      P* taken = nullptr;
      if (sys_take(&m, &taken, 1) == 1 && taken != nullptr && retake_syscall(r, taken, now)) n++;
      continue;
    }
    ps.lazym = nullptr;
    const std::uint32_t t = p->schedtick.load(std::memory_order_relaxed);
    if (ps.schedtick != t) {
      ps.schedtick = t;
      ps.schedwhen = now;
    } else if (ps.schedwhen + forcePreemptNS <= now) {
      M* m = p->m.load(std::memory_order_acquire);
      if (m != nullptr) {
        if (G* g = m->curg.load(std::memory_order_acquire)) {
          // Asked a slice ago and still running: a loop with no safepoint.
          // Make its thread give up the P (preempt.cpp).
          if (g->preempt.load(std::memory_order_relaxed)) preempt_by_signal(m);
          g->preempt.store(true, std::memory_order_relaxed);
          // (The goroutine's id is not read here: g may have exited and be
          // reused by a go() on its P this instant; the P's lane shows it.)
          if (trace_on) trace_emit(TraceKind::sysmon, 0, p->id, 0, 0, 0, "SysmonPreempt", now);
        }
      }
      ps.schedwhen = now;  // ask again a slice later, not every tick
    }
  }
  return n;
}

}  // namespace

void schedtrace(Runtime* r, bool detailed) {
  Sched& s = r->sched;
  const std::int64_t now = nanotime();
  std::string out;
  char buf[512];
  std::lock_guard<Lock> lk(s.lock);
  const int procs = r->gomaxprocs.load(std::memory_order_relaxed);
  std::snprintf(buf, sizeof buf,
                "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d "
                "idlethreads=%d runqueue=%d",
                static_cast<long long>((now - r->start_time) / 1000000), procs,
                s.npidle.load(std::memory_order_relaxed), s.mcount + 1 /* sysmon */,
                s.nmspinning.load(std::memory_order_relaxed), s.nmidle,
                s.runqsize.load(std::memory_order_relaxed));
  out += buf;
  if (netpollinited()) {
    // goro's addition to Go's line, once the program uses the network:
    // goroutines parked on I/O, and how many the poller has readied so far.
    std::snprintf(buf, sizeof buf, " netpollwaiters=%d netpollready=%llu", netpoll_waiters(),
                  static_cast<unsigned long long>(s.nnetpoll.load(std::memory_order_relaxed)));
    out += buf;
  }
  if (detailed) {
    std::snprintf(buf, sizeof buf, " gcwaiting=%d nmidlelocked=%d stopwait=%d sysmonwait=%d\n",
                  s.gcwaiting.load(std::memory_order_relaxed) ? 1 : 0, s.nmidlelocked, s.stopwait,
                  r->sched.sysmonwait.load(std::memory_order_relaxed) ? 1 : 0);
    out += buf;
  }
  for (int i = 0; i < procs; i++) {
    P* p = r->allp[i].load(std::memory_order_relaxed);
    const std::uint32_t len = runqlen(p);
    if (detailed) {
      M* m = p->m.load(std::memory_order_acquire);
      std::size_t ntimers = 0;
      {
        std::lock_guard<Lock> tl(p->timers.lock);
        ntimers = p->timers.heap.size();
      }
      std::snprintf(buf, sizeof buf,
                    "  P%d: status=%u schedtick=%u syscalltick=%u m=%lld runqsize=%u gfreecnt=%d "
                    "timerslen=%zu\n",
                    i, static_cast<unsigned>(p->status.load(std::memory_order_relaxed)),
                    p->schedtick.load(std::memory_order_relaxed),
                    p->syscalltick.load(std::memory_order_relaxed),
                    m != nullptr ? static_cast<long long>(m->id) : -1LL, len,
                    p->gFreeCount.load(std::memory_order_relaxed), ntimers);
    } else {
      std::snprintf(buf, sizeof buf, "%s%u%s", i == 0 ? " [" : " ", len, i == procs - 1 ? "]\n" : "");
    }
    out += buf;
  }
  if (detailed) {
    // One snapshot of every M's curg and lockedg: the M lines print it and
    // the G lines derive their m= and lockedm= from it (Go prints gp.m,
    // which is exactly the M whose curg the G is), so the two always agree.
    struct MSnap {
      M* m;
      G* curg;
      G* lockedg;
    };
    std::vector<MSnap> ms;
    for (M* m = s.allm; m != nullptr; m = m->alllink) {
      ms.push_back({m, m->curg.load(std::memory_order_acquire), __atomic_load_n(&m->lockedg, __ATOMIC_RELAXED)});
      // m->p is the M's own (written without atomics as it runs): read the
      // other side of the pairing, P.m, which wirep publishes atomically.
      P* p = nullptr;
      for (int i = 0; i < procs && p == nullptr; i++) {
        P* pp = r->allp[i].load(std::memory_order_relaxed);
        if (pp->m.load(std::memory_order_acquire) == m) p = pp;
      }
      const MSnap& sn = ms.back();
      // goro's addition to Go's line: lazysyscall=true while the M's thread
      // is in a lazy blocking() call that nobody has taken yet (syscall.cpp).
      // Its P and G still say running then; once taken, the call shows as
      // Go's does (G status=3, the P in status=2 or handed off).
      const bool lazy = sys_in_untaken_call(m);
      std::snprintf(buf, sizeof buf,
                    "  M%lld: p=%d curg=%lld mallocing=0 throwing=0 preemptoff= locks=%d dying=0 "
                    "spinning=%s blocked=%s lockedg=%lld lazysyscall=%s\n",
                    static_cast<long long>(m->id), p != nullptr ? p->id : -1,
                    sn.curg != nullptr ? static_cast<long long>(sn.curg->goid) : -1LL,
                    m->locks.load(std::memory_order_relaxed),
                    m->spinning.load(std::memory_order_relaxed) ? "true" : "false",
                    m->blocked.load(std::memory_order_relaxed) ? "true" : "false",
                    sn.lockedg != nullptr ? static_cast<long long>(sn.lockedg->goid) : -1LL,
                    lazy ? "true" : "false");
      out += buf;
    }
    std::lock_guard<Lock> gl(r->allglock);
    for (G* g = r->allgs; g != nullptr; g = g->alllink) {
      // Acquire: a G that left _Gdead (newproc) had its goid written first.
      const Gstatus st = g->status.load(std::memory_order_acquire);
      if (st == Gstatus::dead) continue;
      long long gm = -1, glocked = -1;
      for (const MSnap& sn : ms) {
        if (sn.curg == g) gm = static_cast<long long>(sn.m->id);
        if (sn.lockedg == g) glocked = static_cast<long long>(sn.m->id);
      }
      std::snprintf(buf, sizeof buf, "  G%llu: status=%u(%s) m=%lld lockedm=%lld\n",
                    static_cast<unsigned long long>(g->goid), static_cast<unsigned>(st),
                    st == Gstatus::waiting ? wait_reason_string(g->waitreason) : "", gm, glocked);
      out += buf;
    }
  }
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}

void notify_sysmon_wake(Runtime* r) {
  r->sched.sysmonwait.store(false, std::memory_order_relaxed);
  r->sysmonnote.wakeup();
}

void sysmon(Runtime* r) {
  Sched& s = r->sched;
  std::vector<PSnapshot> snaps;
  std::int64_t delay = 0;
  int idle = 0;
  std::int64_t lasttrace = 0;
  const std::int64_t trace_ns = r->cfg.schedtrace_ms * 1000000;
  if (trace_on) trace_bind(trace_newbuf(-1));  // freed by trace_stop
  std::int64_t lastcounters = 0;
  for (;;) {
    if (trace_on && nanotime() - lastcounters > 1000000) {
      lastcounters = nanotime();
      trace_counters();
    }
    if (idle == 0)
      delay = 20 * 1000;
    else if (idle > 50)
      delay *= 2;
    if (delay > 10 * 1000 * 1000) delay = 10 * 1000 * 1000;
    std::int64_t sleep_ns = delay;
    if (trace_ns > 0) {
      const std::int64_t until_trace = lasttrace + trace_ns - nanotime();
      if (until_trace < sleep_ns) sleep_ns = until_trace > 0 ? until_trace : 0;
    }
    if (sleep_ns > 0) r->sysmonnote.tsleep(sleep_ns);
    r->sysmonnote.clear();
    if (s.exiting.load(std::memory_order_acquire)) return;
    r->sysmonwakes.store(r->sysmonwakes.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::int64_t now = nanotime();
    s.coarse_now.store(now, std::memory_order_relaxed);
    gc_sysmon_check(r, now);  // forcegc: ready the helper if no GC for forcegc_ms

    // Nothing to watch: sleep until some M takes a P.
    if (trace_ns <= 0 && (s.gcwaiting.load(std::memory_order_relaxed) ||
                          s.npidle.load(std::memory_order_relaxed) ==
                              r->gomaxprocs.load(std::memory_order_relaxed))) {
      r->sched.sysmonwait.store(true, std::memory_order_seq_cst);
      if (s.gcwaiting.load(std::memory_order_seq_cst) ||
          s.npidle.load(std::memory_order_seq_cst) == r->gomaxprocs.load(std::memory_order_relaxed)) {
        // Wake at least every forcegc_ms/2 for the forced GC, as Go does.
        r->sysmonnote.tsleep(r->cfg.forcegc_ms * 1000000 / 2);
        r->sysmonnote.clear();
      }
      r->sched.sysmonwait.store(false, std::memory_order_relaxed);
      idle = 0;
      continue;
    }

    // Nobody has polled the network for 10 ms (every P busy): do it here.
    sysmon_netpoll(r, now);
    if (retake(r, snaps, now) != 0)
      idle = 0;
    else
      idle++;
    // Safety net (Go's sysmon does the same): a timer overdue by more than
    // a millisecond while a P idles means nobody is watching it.
    if (const std::int64_t next = timers_earliest();
        next != 0 && next + 1000000 < now && s.npidle.load(std::memory_order_relaxed) > 0) {
      wakep();
      idle = 0;
    }
    if (trace_ns > 0 && now - lasttrace >= trace_ns) {
      lasttrace = now;
      schedtrace(r, r->cfg.scheddetail);
    }
  }
}

}  // namespace goro::detail
