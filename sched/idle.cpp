// idle.cpp — idle Ps and Ms: who sleeps, who wakes whom (Go's wakep,
// startm, stopm, handoffp, acquirep/releasep, pidleput/pidleget, mput/mget,
// newm, checkdead).
//
// The rules
//   - An M sleeps only without a P, on its own note, in sched.midle.
//   - Whoever takes an M out of midle (mget) must wake its note, having first
//     given it a P in m.nextp — or none, to tell a timer watcher to look
//     again, or because the runtime is exiting. A woken M acts on exactly
//     that: nextp set → run it; else look for an idle P or sleep again.
//   - wakep starts at most one spinning M at a time (nmspinning 0 → 1), so
//     readying goroutines in a loop wakes one thread, not one per goroutine.
//   - Timers: the one idle M whose sleep ends at the earliest timer of all Ps
//     is the watcher (sched.pollM, sched.pollUntil). addtimer wakes it when
//     a new timer is due sooner. Other idle Ms sleep without a timeout, so an
//     idle runtime makes no wake-ups at all until a timer is due.
//   - The network poller (netpoll.cpp): while goroutines wait for I/O, one
//     idle M blocks in epoll_wait rather than on its note; it is not in
//     midle, it watches the timers too (wake_timer_watcher breaks it), and a
//     P handed off as the last one keeps an M to poll (handoffp).
//   - checkdead: when the last running M goes idle with no timer pending and
//     no goroutine waiting for I/O, no goroutine can ever run again — Go's
//     "all goroutines are asleep".
//
// Lock: everything here that touches midle, pidle, mcount, pollM/pollUntil
// holds sched.lock.
#include <cstdio>
#include <cstdlib>
#include <system_error>

#include "sched/hottext.hpp"
#include "sched/nanotime.hpp"
#include "sched/netpoll.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"
#include "sched/signal.hpp"

namespace goro::detail {

// ---------------------------------------------------------------------------
// Idle P list (sched.lock held)

void pidleput(P* p) {
  Runtime* r = rt();
  if (!runqempty(p)) fatal("pidleput: P has non-empty run queue");
  p->status.store(Pstatus::idle, std::memory_order_relaxed);
  p->link = r->sched.pidle;
  r->sched.pidle = p;
  r->sched.npidle.fetch_add(1, std::memory_order_relaxed);
}

P* pidleget() {
  Runtime* r = rt();
  P* p = r->sched.pidle;
  if (p != nullptr) {
    r->sched.pidle = p->link;
    p->link = nullptr;
    r->sched.npidle.fetch_sub(1, std::memory_order_seq_cst);  // see notify_sysmon
  }
  return p;
}

// ---------------------------------------------------------------------------
// P ownership

void acquirep(M* m, P* p) {
  wirep(m, p);
  // A P leaving the idle list may end sysmon's all-idle sleep.
  notify_sysmon();
}

P* releasep(M* m) {
  P* p = m->p;
  if (p == nullptr || p->m.load(std::memory_order_relaxed) != m ||
      p->status.load(std::memory_order_relaxed) != Pstatus::running) {
    fatal("releasep: invalid P state");
  }
  m->p = nullptr;
  p->m.store(nullptr, std::memory_order_relaxed);
  p->status.store(Pstatus::idle, std::memory_order_relaxed);
  if (trace_on) trace_emit(TraceKind::proc_stop, 0, p->id);
  return p;
}

// ---------------------------------------------------------------------------
// M creation

namespace {

void mput(Runtime* r, M* m);
M* mget(Runtime* r);
void checkdead(Runtime* r);


// newm starts a thread for a new M that will run p (sched.lock held; the
// thread itself is started by the caller after unlocking, see startm).
M* newm_locked(Runtime* r, P* p, bool spinning) {
  Sched& s = r->sched;
  if (s.mcount >= s.maxmcount) {
    std::fprintf(stderr, "runtime: program exceeds %d-thread limit\n", s.maxmcount);
    fatal("thread exhaustion");
  }
  M* m = new M();
  m->id = s.mnext++;
  // GORO_DEBUG=seed=N: every M's random stream (steal order, select's poll
  // order) comes from N and the M's id, so a GOMAXPROCS=1 run repeats.
  m->fastrand = r->cfg.seed_set ? (r->cfg.seed + 1) * 0x9e3779b97f4a7c15ULL + static_cast<std::uint64_t>(m->id)
                                : static_cast<std::uint64_t>(nanotime()) ^ (static_cast<std::uint64_t>(m->id) << 32);
  m->nextp = p;
  m->spinning.store(spinning, std::memory_order_relaxed);
  m->alllink = s.allm;
  s.allm = m;
  s.mcount++;
  if (trace_on) {
    m->trace = trace_newbuf(m->id);
    trace_emit(TraceKind::counter, 0, -1, s.mcount, 0, 0, "threads");
  }
  return m;
}

void newm_start(Runtime*, M* m) {
  try {
    m->thread = std::thread([m] { mstart(m); });
  } catch (const std::system_error&) {
    fatal("newosproc: failed to create new OS thread");
  }
}

}  // namespace

M* new_m0(Runtime* r) {
  std::lock_guard<Lock> lk(r->sched.lock);
  M* m = newm_locked(r, nullptr, false);
  m->is_m0 = true;
  return m;
}

// mstart is the body of every M's thread, m0 (run()'s own thread) included:
// take the P it was started for, if any, and run the scheduler loop until
// the runtime exits.
void mstart(M* m) {
  m->tid = pthread_self();
  set_tls_m(m);
  if (trace_on) trace_bind(m->trace);
  fiber_init_thread(m->g0);
  SignalStack altstack;
  if (m->nextp != nullptr) {
    P* p = m->nextp;
    m->nextp = nullptr;
    acquirep(m, p);
  }
  schedule(rt(), m);
  set_tls_m(nullptr);
  trace_bind(nullptr);
}

// ---------------------------------------------------------------------------
// Waking

GORO_YIELD_TEXT void wakep() {
  Runtime* r = rt();
  Sched& s = r->sched;
  if (s.npidle.load(std::memory_order_relaxed) == 0) return;
  // Be conservative: one spinning M is enough to find the new work; it
  // wakes the next when it finds some (resetspinning).
  if (s.nmspinning.load(std::memory_order_relaxed) != 0) return;
  int zero = 0;
  if (!s.nmspinning.compare_exchange_strong(zero, 1, std::memory_order_acq_rel)) return;
  if (trace_on) trace_emit(TraceKind::wakep, 0, -1);
  startm(nullptr, true);
}

// startm gives p (or an idle P, if p is null) to an idle or new M. With
// spinning set, the caller already counted the M in nmspinning.
void startm(P* p, bool spinning) {
  Runtime* r = rt();
  Sched& s = r->sched;
  std::unique_lock<Lock> lk(s.lock);
  if (s.exiting.load(std::memory_order_relaxed)) {
    // main has returned: teardown is listing the Ms under this lock and
    // must not miss one started behind its back.
    lk.unlock();
    if (spinning) s.nmspinning.fetch_sub(1, std::memory_order_acq_rel);
    return;
  }
  if (p == nullptr) {
    p = pidleget();
    if (p == nullptr) {
      lk.unlock();
      if (spinning) s.nmspinning.fetch_sub(1, std::memory_order_acq_rel);
      return;
    }
  }
  M* nm = mget(r);
  if (nm == nullptr) {
    // Start the thread before unlocking: teardown lists the Ms under this
    // lock and must find every registered M with a thread to join.
    nm = newm_locked(r, p, spinning);
    if (trace_on) trace_emit(TraceKind::startm, 0, p->id, nm->id, 1, spinning);
    newm_start(r, nm);
    return;
  }
  lk.unlock();
  if (trace_on) trace_emit(TraceKind::startm, 0, p->id, nm->id, 0, spinning);
  nm->spinning.store(spinning, std::memory_order_relaxed);
  nm->nextp = p;
  nm->park.wakeup();
}

// handoffp gives away a P whose M is about to block (a system call, a
// locked goroutine): to a new M if it has work, else to the idle list.
void handoffp(P* p) {
  Runtime* r = rt();
  Sched& s = r->sched;
  if (!runqempty(p) || s.runqsize.load(std::memory_order_relaxed) != 0) {
    if (trace_on) trace_emit(TraceKind::handoffp, 0, p->id, 1);
    startm(p, false);
    return;
  }
  if (trace_on) trace_emit(TraceKind::handoffp, 0, p->id, 0);
  // No local work: if nobody is spinning or idle-looking, start a spinning
  // M in case work arrives.
  if (s.nmspinning.load(std::memory_order_relaxed) + s.npidle.load(std::memory_order_relaxed) == 0) {
    int zero = 0;
    if (s.nmspinning.compare_exchange_strong(zero, 1)) {
      startm(p, true);
      return;
    }
  }
  std::unique_lock<Lock> lk(s.lock);
  if (s.gcwaiting.load(std::memory_order_relaxed)) {
    p->status.store(Pstatus::gcstop, std::memory_order_relaxed);
    stopwait_put(s, p);
    return;
  }
  if (s.runqsize.load(std::memory_order_relaxed) != 0) {
    lk.unlock();
    startm(p, false);
    return;
  }
  // The last P going idle while goroutines wait on I/O and nobody is in
  // the poller: keep an M to poll for them (Go's handoffp does the same),
  // else they would wait for this system call to return.
  if (s.npidle.load(std::memory_order_relaxed) == r->gomaxprocs.load(std::memory_order_relaxed) - 1 &&
      netpoll_waiters() > 0 && s.lastpoll.load(std::memory_order_relaxed) != 0) {
    lk.unlock();
    startm(p, false);
    return;
  }
  pidleput(p);
  lk.unlock();
  // An idle P's timers are watched by an idle M; the Ms asleep now went to
  // sleep before these timers were theirs to watch (Go's handoffp calls
  // wakeNetPoller for the same reason).
  if (const std::int64_t when = p->timers.when0.load(std::memory_order_relaxed); when != 0)
    wake_timer_watcher(when);
}

// ---------------------------------------------------------------------------
// Sleeping

namespace {

void mput(Runtime* r, M* m) {
  m->schedlink = r->sched.midle;
  r->sched.midle = m;
  r->sched.nmidle++;
  checkdead(r);
}

M* mget(Runtime* r) {
  M* m = r->sched.midle;
  if (m != nullptr) {
    r->sched.midle = m->schedlink;
    m->schedlink = nullptr;
    r->sched.nmidle--;
    if (r->sched.pollM.load(std::memory_order_relaxed) == m) {
      r->sched.pollM.store(nullptr, std::memory_order_relaxed);
      r->sched.pollUntil.store(0, std::memory_order_relaxed);
    }
  }
  return m;
}

// mremove takes m itself out of midle; false if someone mget'd it first.
bool mremove(Runtime* r, M* m) {
  for (M** pp = &r->sched.midle; *pp != nullptr; pp = &(*pp)->schedlink) {
    if (*pp == m) {
      *pp = m->schedlink;
      m->schedlink = nullptr;
      r->sched.nmidle--;
      return true;
    }
  }
  return false;
}

// stopm parks m until someone hands it a P (true) or, for the timer
// watcher, until its deadline passes (false, m no longer in midle).
// Returns false with nothing to do when the runtime is exiting.
bool stopm(Runtime* r, M* m) {
  Sched& s = r->sched;
  std::int64_t deadline = 0;
  {
    std::lock_guard<Lock> lk(s.lock);
    if (s.exiting.load(std::memory_order_relaxed)) return false;
    const std::int64_t next = timers_earliest();
    if (next != 0) {
      const std::int64_t cur = s.pollUntil.load(std::memory_order_relaxed);
      if (s.pollM.load(std::memory_order_relaxed) == nullptr || next < cur) {
        s.pollM.store(m, std::memory_order_relaxed);
        s.pollUntil.store(next, std::memory_order_relaxed);
        deadline = next;
      }
    }
    m->blocked.store(true, std::memory_order_relaxed);
    mput(r, m);
  }
  if (trace_on) trace_emit(TraceKind::stopm, 0, -1, deadline);
  bool woken = deadline == 0 ? (m->park.sleep(), true) : m->park.tsleep(deadline - nanotime());
  if (!woken) {
    std::lock_guard<Lock> lk(s.lock);
    if (!mremove(r, m)) {
      woken = true;  // an mget raced with the timeout: its wakeup is coming
    } else if (s.pollM.load(std::memory_order_relaxed) == m) {
      s.pollM.store(nullptr, std::memory_order_relaxed);
      s.pollUntil.store(0, std::memory_order_relaxed);
    }
  }
  if (woken) m->park.sleep();
  m->park.clear();
  m->blocked.store(false, std::memory_order_relaxed);
  if (m->nextp != nullptr) {
    P* p = m->nextp;
    m->nextp = nullptr;
    acquirep(m, p);
    return true;
  }
  return false;
}

// checkdead reports a deadlock when no M is running and nothing can wake
// one (sched.lock held). Go's checkdead.
void checkdead(Runtime* r) {
  Sched& s = r->sched;
  if (s.exiting.load(std::memory_order_relaxed)) return;
  const int run = s.mcount - s.nmidle - s.nmidlelocked;
  if (run > 0) return;
  if (run < 0) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "checkdead: inconsistent counts mcount=%d nmidle=%d", s.mcount,
                  s.nmidle);
    fatal(buf);
  }
  if (s.gcwaiting.load(std::memory_order_relaxed)) return;
  // A pending timer will wake the watcher.
  if (timers_earliest() != 0) return;
  // A goroutine waiting for I/O is not deadlocked: the network may wake it
  // (the M blocked in epoll_wait counts as running; this is the backstop).
  if (netpoll_waiters() > 0) return;
  // Nobody runs and nothing will: if some goroutine is runnable we lost a
  // wakeup (a runtime bug); if they all wait, it is the program's deadlock.
  bool runnable = false;
  {
    std::lock_guard<Lock> lk(r->allglock);
    for (G* g = r->allgs; g != nullptr; g = g->alllink)
      runnable |= g->status.load(std::memory_order_relaxed) == Gstatus::runnable;
  }
  if (runnable) {
    std::fprintf(stderr, "runtime: checkdead: mcount=%d nmidle=%d nmidlelocked=%d npidle=%d\n", s.mcount,
                 s.nmidle, s.nmidlelocked, s.npidle.load());
    fatal("checkdead: runnable goroutine while no M is running");
  }
  fatal("all goroutines are asleep - deadlock!");
}

}  // namespace

void incidlelocked(Runtime* r, int v) {
  std::lock_guard<Lock> lk(r->sched.lock);
  r->sched.nmidlelocked += v;
  // Back to "not running": if every M went idle meanwhile, none of them
  // could report a deadlock (we counted as running); check now.
  if (v > 0) checkdead(r);
}

bool stopm_idle(Runtime* r, M* m) {
  for (;;) {
    if (stopm(r, m)) return true;
    if (r->sched.exiting.load(std::memory_order_relaxed)) return false;
    // Woken as the timer watcher (or poked): get a P and run every due
    // timer; the goroutines they ready land on that P.
    P* p = nullptr;
    {
      std::lock_guard<Lock> lk(r->sched.lock);
      p = pidleget();
    }
    if (p == nullptr) continue;  // every P is busy: they run their own timers
    acquirep(m, p);
    const std::int64_t now = nanotime();
    const int n = r->gomaxprocs.load(std::memory_order_relaxed);
    for (int i = 0; i < n; i++) checktimers(r->allp[i].load(std::memory_order_relaxed), now);
    return true;
  }
}

// wake_timer_watcher is called by addtimer: a timer due at `when` is sooner
// than the watcher's deadline, so wake it to sleep less.
void wake_timer_watcher(std::int64_t when) {
  Runtime* r = rt();
  Sched& s = r->sched;
  // An M blocked in epoll_wait is the watcher: interrupt it if it would
  // sleep past `when` (Go's wakeNetPoller). It recomputes its timeout.
  if (netpollinited() && s.lastpoll.load(std::memory_order_seq_cst) == 0) {
    const std::int64_t pu = s.netpollUntil.load(std::memory_order_seq_cst);
    if (pu == 0 || when < pu) netpollBreak();
    return;
  }
  const std::int64_t until = s.pollUntil.load(std::memory_order_relaxed);
  if (until != 0 && when >= until) return;
  // Most timers are added while no M watches (every P busy): then skip
  // sched.lock, which every sleep would otherwise take. Reading no watcher
  // here is as if we had locked before a watcher that is just being made:
  // the fence orders our heap store before these loads, and a watcher made
  // later reads the heap after publishing its idle P (npidle), under the
  // lock (stopm), so it sees our timer or we see its P and wake an M.
  // (TSan does not support fences: there the lock is always taken.)
  M* m = nullptr;
#if !GORO_TSAN
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (s.pollM.load(std::memory_order_relaxed) != nullptr)
#endif
  {
    std::lock_guard<Lock> lk(s.lock);
    M* pm = s.pollM.load(std::memory_order_relaxed);
    if (pm != nullptr) {
      if (when >= s.pollUntil.load(std::memory_order_relaxed)) return;
      if (mremove(r, pm)) m = pm;
      s.pollM.store(nullptr, std::memory_order_relaxed);
      s.pollUntil.store(0, std::memory_order_relaxed);
    }
  }
  if (m != nullptr) {
    m->nextp = nullptr;
    m->park.wakeup();
    return;
  }
  // No watcher: the timer may sit on a P nobody runs. Start a spinning M on
  // an idle P; it runs due timers while stealing and, going idle, becomes
  // the watcher.
  if (s.npidle.load(std::memory_order_relaxed) > 0) wakep();
}

// gcstopm parks m for a stop-the-world, handing its P to the stopper.
void gcstopm(Runtime* r, M* m) {
  Sched& s = r->sched;
  if (m->spinning.load(std::memory_order_relaxed)) {
    m->spinning.store(false, std::memory_order_relaxed);
    const int n = s.nmspinning.fetch_sub(1, std::memory_order_acq_rel) - 1;
    if (n < 0) fatal("gcstopm: negative nmspinning");
    if (trace_on) trace_emit(TraceKind::spinning_off, 0, -1, n);
  }
  P* p = releasep(m);
  {
    std::lock_guard<Lock> lk(s.lock);
    p->status.store(Pstatus::gcstop, std::memory_order_relaxed);
    stopwait_put(s, p);
  }
  stopm_idle(r, m);
}

void begin_exit(Runtime* r) {
  Sched& s = r->sched;
  s.exiting.store(true, std::memory_order_release);
  netpollBreak();  // an M blocked in epoll_wait leaves too
  std::lock_guard<Lock> lk(s.lock);
  // Goroutines in blocking() calls are abandoned as they return
  // (exitsyscall): close the lazy path and make its calls ordinary ones.
  std::vector<M*> ms;
  for (M* m = s.allm; m != nullptr; m = m->alllink) {
    if (SysTls* t = m->sys.load(std::memory_order_acquire))
      t->req.fetch_or(sysSlow, std::memory_order_relaxed);
    ms.push_back(m);
  }
  std::vector<P*> ps(ms.size());
  sys_take(ms.data(), ps.data(), static_cast<int>(ms.size()));
  while (M* m = mget(r)) m->park.wakeup();
  for (M* m = s.mlocked; m != nullptr; m = m->schedlink) m->park.wakeup();
  r->sysmonnote.wakeup();
}

}  // namespace goro::detail
