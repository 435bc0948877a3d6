// netpoll.cpp — the network poller: Go's runtime/netpoll.go and
// netpoll_epoll.go, in goro's words.
//
// The problem. A server runs a goroutine per connection, each of which reads
// "as if blocking". If read(2) really blocked, every waiting connection would
// hold an OS thread (that is what goro::blocking() does: fine for a file,
// hopeless for 10,000 idle sockets). Instead every socket is non-blocking;
// a read that would block (EAGAIN) parks the goroutine on the socket's
// PollDesc, and the poller — one epoll instance per runtime — tells the
// scheduler which parked goroutines can go on.
//
// The pieces
//   PollDesc   one per registered descriptor (netpoll.hpp). rg and wg are
//              binary semaphores, one per direction, with four states:
//                pdNil    no readiness noted, nobody waits
//                pdReady  the kernel said "ready" and nobody has consumed it
//                pdWait   a goroutine is about to park (not yet committed)
//                G*       that goroutine, parked
//              Who moves them:
//                pdNil  -> pdWait   netpollblock (the goroutine itself)
//                pdWait -> G        netpollblockcommit (its g0, after the
//                                   goroutine's context is saved)
//                pdReady -> pdNil   netpollblock consuming a readiness, and
//                                   poll_reset before each operation
//                pdNil/pdWait/G -> pdReady   netpollunblock(ioready), from
//                                   netpoll: the kernel reported an edge
//                pdWait/G -> pdNil  netpollunblock(!ioready): a deadline or
//                                   close() wakes the waiter with an error
//              and the G taken out of the word is readied by whoever took it.
//   epoll      edge-triggered, each descriptor registered once for read and
//              write (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET), as Go does: no
//              epoll_ctl per operation. Edge-triggered means an event is
//              reported once per change, so a readiness that arrives while
//              nobody waits must be remembered: that is pdReady.
//   eventfd    netpollBreak writes it to wake an M blocked in epoll_wait,
//              when a timer is added sooner than that M's timeout or the
//              runtime exits.
//   deadlines  two runtime timers per PollDesc (rt, wt) on the per-P timer
//              heaps. When one fires it marks the deadline passed (rd = -1)
//              and wakes the waiter with pdNil. Every change of a deadline
//              bumps rseq/wseq and the timer carries the value it was armed
//              with, so a timer that fires late — after the deadline was
//              moved, or after the PollDesc was closed and reused for another
//              descriptor — sees a stale sequence number and does nothing.
//
// Where the scheduler polls (sched/proc.cpp findrunnable, sysmon.cpp)
//   1. findrunnable, when the local and global queues are empty and before
//      stealing: netpoll(0), a non-blocking look. The first ready goroutine
//      runs at once, the rest are injected (injectglist).
//   2. findrunnable's last resort, when this M gives up its P: if goroutines
//      wait on I/O and nobody else is blocked in epoll_wait (lastpoll != 0),
//      this M blocks there, until I/O, the next timer of any P, or a break.
//      It is not in sched.midle meanwhile, so it counts as a running M and
//      checkdead cannot fire while goroutines wait on I/O.
//   3. sysmon, when nobody has polled for 10 ms (every P busy running
//      goroutines that never run out of work).
//
// Rejected: a dedicated poller thread that readies goroutines (Go before
// 1.1 and many C++ runtimes): an extra thread hop per wake-up and a thread
// that spins or sleeps on its own schedule. Level-triggered epoll with
// EPOLL_CTL_MOD per wait: two system calls per blocking read instead of one.
//
// Invariants:
//   - At most one M is blocked in epoll_wait: the one that swapped
//     sched.lastpoll from non-zero to 0; it stores nanotime() back when it
//     returns. sched.netpollUntil is when it will wake on its own (0: it is
//     not blocked; INT64_MAX: only for I/O or a break).
//   - rg/wg hold a G only while that G is _Gwaiting with waitreason io_wait;
//     only the CAS that takes the G out of the word may ready it.
//   - A PollDesc is on the free list iff !inuse; its memory lives until
//     netpoll_teardown. fdseq, rseq and wseq only ever grow.
//   - pd.lock (rank netpoll) is outermost: it is held across modtimer,
//     which may take sched.lock. The pollcache lock has the same rank and is
//     never held together with a pd.lock.
#include "sched/netpoll.hpp"

#include <optional>

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>

#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

namespace {

// The poller of the one running runtime. Set up at the first poll_open
// (Go's netpollGenericInit), torn down by netpoll_teardown.
struct Poller {
  std::atomic<bool> inited{false};
  int epfd = -1;
  int evfd = -1;
  std::atomic<std::uint32_t> wakeSig{0};  // a break is pending (Go's netpollWakeSig)
  Lock cacheLock{LockRank::netpoll};      // guards free, all, and every pd.inuse
  PollDesc* free = nullptr;
  PollDesc* all = nullptr;
  std::atomic<std::int32_t> waiters{0};   // Gs parked in netpollblock
};

Poller np;
std::atomic<std::uint64_t> epoch{1};

constexpr int tagShift = 48;
constexpr std::uint64_t ptrMask = (std::uint64_t{1} << tagShift) - 1;

std::uint64_t tagged(PollDesc* pd, std::uint32_t seq) {
  return reinterpret_cast<std::uintptr_t>(pd) | (std::uint64_t{seq & 0xffff} << tagShift);
}

bool netpollinit() {
  std::lock_guard<Lock> lk(np.cacheLock);
  if (np.inited.load(std::memory_order_relaxed)) return true;
  np.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (np.epfd < 0) return false;
  np.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (np.evfd < 0) {
    ::close(np.epfd);
    np.epfd = -1;
    return false;
  }
  // The eventfd is level-triggered: a non-blocking poll leaves a pending
  // break in place for the M that is (or will be) blocked in epoll_wait.
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // never a PollDesc address
  if (epoll_ctl(np.epfd, EPOLL_CTL_ADD, np.evfd, &ev) != 0) {
    ::close(np.evfd);
    ::close(np.epfd);
    np.evfd = np.epfd = -1;
    return false;
  }
  np.inited.store(true, std::memory_order_release);
  return true;
}

std::atomic<std::uintptr_t>& sema(PollDesc* pd, int mode) { return mode == 'r' ? pd->rg : pd->wg; }

// netpollcheckerr says why an operation in `mode` must fail now, if it must.
PollErr netpollcheckerr(PollDesc* pd, int mode) {
  if (pd->closing.load(std::memory_order_seq_cst)) return PollErr::closing;
  if ((mode == 'r' && pd->rd.load(std::memory_order_seq_cst) < 0) ||
      (mode == 'w' && pd->wd.load(std::memory_order_seq_cst) < 0))
    return PollErr::timeout;
  return PollErr::none;
}

// netpollblockcommit is gopark's unlock function: the goroutine's context is
// saved, so it may now be published in the semaphore. If the word is no
// longer pdWait, a readiness or an error came meanwhile: do not park.
bool netpollblockcommit(G* g, void* gpp) {
  auto* w = static_cast<std::atomic<std::uintptr_t>*>(gpp);
  std::uintptr_t expect = pdWait;
  if (w->compare_exchange_strong(expect, reinterpret_cast<std::uintptr_t>(g), std::memory_order_seq_cst)) {
    np.waiters.fetch_add(1, std::memory_order_seq_cst);
    return true;
  }
  return false;
}

// netpollblock returns true if pd is ready for mode, false if the caller
// was woken by a deadline or close (or spuriously): it then re-checks.
bool netpollblock(PollDesc* pd, int mode, bool waitio) {
  auto& gpp = sema(pd, mode);
  for (;;) {
    std::uintptr_t v = pdReady;
    if (gpp.compare_exchange_strong(v, pdNil, std::memory_order_seq_cst)) return true;
    v = pdNil;
    if (gpp.compare_exchange_strong(v, pdWait, std::memory_order_seq_cst)) break;
    if (v != pdReady && v != pdNil) fatal("runtime: double wait");
  }
  // pdWait is published before the error check (both seq_cst): close() or a
  // deadline either is seen here, or sees pdWait and turns it into pdNil, so
  // the commit fails and we do not sleep.
  if (waitio || netpollcheckerr(pd, mode) == PollErr::none)
    gopark(netpollblockcommit, &gpp, WaitReason::io_wait);
  const std::uintptr_t old = gpp.exchange(pdNil, std::memory_order_seq_cst);
  if (old > pdWait) fatal("runtime: corrupted polldesc");
  return old == pdReady;
}

// netpollunblock moves the semaphore to pdReady (ioready) or pdNil and
// returns the G that was parked on it, for the caller to ready.
G* netpollunblock(PollDesc* pd, int mode, bool ioready) {
  auto& gpp = sema(pd, mode);
  for (;;) {
    std::uintptr_t old = gpp.load(std::memory_order_seq_cst);
    if (old == pdReady) return nullptr;
    // A deadline or close() with nobody waiting leaves nothing behind: the
    // next operation checks the error itself.
    if (old == pdNil && !ioready) return nullptr;
    const std::uintptr_t nw = ioready ? pdReady : pdNil;
    if (gpp.compare_exchange_strong(old, nw, std::memory_order_seq_cst)) {
      if (old > pdWait) {
        np.waiters.fetch_sub(1, std::memory_order_seq_cst);
        return reinterpret_cast<G*>(old);
      }
      return nullptr;
    }
  }
}

void trace_netpoll(G* g, const char* what) {
  if (!trace_on) return;
  M* m = getm();
  const int pid = m != nullptr && m->p != nullptr ? m->p->id : -1;
  trace_emit(TraceKind::sysmon, g->goid, pid, 0, 0, 0, what);
}

void ready(G* g, const char* why) {
  if (g == nullptr) return;
  trace_netpoll(g, why);
  goready(g);
}

// netpolldeadline is a deadline timer's function (Go's
// netpolldeadlineimpl). seq is the rseq/wseq it was armed with.
void netpolldeadline(PollDesc* pd, std::uintptr_t seq, int mode) {
  G* g = nullptr;
  {
    std::lock_guard<Lock> lk(pd->lock);
    if (mode == 'r') {
      if (seq != pd->rseq || !pd->rt_armed) return;  // moved, cleared or closed since
      pd->rd.store(-1, std::memory_order_seq_cst);
      pd->rt_armed = false;
    } else {
      if (seq != pd->wseq || !pd->wt_armed) return;
      pd->wd.store(-1, std::memory_order_seq_cst);
      pd->wt_armed = false;
    }
    g = netpollunblock(pd, mode, false);
  }
  ready(g, "netpoll: deadline");
}

void netpollReadDeadline(void* arg, std::uintptr_t seq) { netpolldeadline(static_cast<PollDesc*>(arg), seq, 'r'); }
void netpollWriteDeadline(void* arg, std::uintptr_t seq) { netpolldeadline(static_cast<PollDesc*>(arg), seq, 'w'); }

// set_one changes one side's deadline (pd.lock held).
void set_one(PollDesc* pd, std::int64_t d, std::atomic<std::int64_t>& dl, std::uintptr_t& seq, bool& armed,
             Timer& t, void (*f)(void*, std::uintptr_t)) {
  if (dl.load(std::memory_order_relaxed) == d && (d <= 0 || armed)) return;
  seq++;  // a timer armed before this line is stale from now on
  if (armed) {
    deltimer(&t);  // false if it is firing right now: it will see seq
    armed = false;
  }
  dl.store(d, std::memory_order_seq_cst);
  if (d > 0) {
    t.when = d;
    t.period = 0;
    t.f = f;
    t.arg = pd;
    t.seq = seq;
    addtimer(&t);
    armed = true;
  }
}

}  // namespace

bool netpollinited() { return np.inited.load(std::memory_order_acquire); }

std::int32_t netpoll_waiters() { return np.waiters.load(std::memory_order_seq_cst); }

std::uint64_t netpoll_epoch() { return epoch.load(std::memory_order_acquire); }

PollDesc* poll_open(int fd, int* err) {
  if (!netpollinited() && !netpollinit()) {
    *err = errno;
    return nullptr;
  }
  PollDesc* pd = nullptr;
  {
    std::lock_guard<Lock> lk(np.cacheLock);
    pd = np.free;
    if (pd != nullptr) {
      np.free = pd->link;
    } else {
      pd = new PollDesc();
      pd->alllink = np.all;
      np.all = pd;
    }
    pd->link = nullptr;
    pd->inuse = true;
    pd->fd = fd;
  }
  std::uint32_t seq = 0;
  {
    std::lock_guard<Lock> lk(pd->lock);
    if (pd->rg.load() > pdWait || pd->wg.load() > pdWait) fatal("runtime: blocked read on free polldesc");
    seq = pd->fdseq.fetch_add(1, std::memory_order_seq_cst) + 1;
    pd->closing.store(false, std::memory_order_seq_cst);
    pd->rg.store(pdNil);
    pd->wg.store(pdNil);
    pd->rd.store(0);
    pd->wd.store(0);
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = tagged(pd, seq);
  if (epoll_ctl(np.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    *err = errno;
    {
      std::lock_guard<Lock> lk(pd->lock);
      pd->closing.store(true);
    }
    std::lock_guard<Lock> lk(np.cacheLock);
    pd->inuse = false;
    pd->fd = -1;
    pd->link = np.free;
    np.free = pd;
    return nullptr;
  }
  return pd;
}

void poll_close(PollDesc* pd) {
  if (!pd->closing.load()) fatal("runtime: close polldesc w/o unblock");
  const std::uintptr_t r = pd->rg.load(), w = pd->wg.load();
  if ((r != pdNil && r != pdReady) || (w != pdNil && w != pdReady))
    fatal("runtime: blocked read or write on closing polldesc");
  epoll_event ev{};
  epoll_ctl(np.epfd, EPOLL_CTL_DEL, pd->fd, &ev);
  std::lock_guard<Lock> lk(np.cacheLock);
  pd->inuse = false;
  pd->fd = -1;
  pd->link = np.free;
  np.free = pd;
}

PollErr poll_reset(PollDesc* pd, int mode) {
  const PollErr e = netpollcheckerr(pd, mode);
  if (e != PollErr::none) return e;
  sema(pd, mode).store(pdNil, std::memory_order_seq_cst);
  return PollErr::none;
}

PollErr poll_wait(PollDesc* pd, int mode) {
  Entry entry("goro::net wait");  // parks: needs our P back if the signal took it
  PollErr e = netpollcheckerr(pd, mode);
  if (e != PollErr::none) return e;
  while (!netpollblock(pd, mode, false)) {
    e = netpollcheckerr(pd, mode);
    if (e != PollErr::none) return e;
    // Woken without an error: a deadline fired and was moved again before
    // we ran. Wait again (Go's comment: "pretend it has not happened").
  }
  return PollErr::none;
}

void poll_set_deadline(PollDesc* pd, std::int64_t d, int mode) {
  Entry entry("goro::net set_deadline");  // the deadline timers live on our P
  G* rg = nullptr;
  G* wg = nullptr;
  {
    std::lock_guard<Lock> lk(pd->lock);
    if (pd->closing.load(std::memory_order_relaxed)) return;
    const bool rd = mode == 'r' || mode == 'r' + 'w';
    const bool wd = mode == 'w' || mode == 'r' + 'w';
    if (rd) set_one(pd, d, pd->rd, pd->rseq, pd->rt_armed, pd->rt, netpollReadDeadline);
    if (wd) set_one(pd, d, pd->wd, pd->wseq, pd->wt_armed, pd->wt, netpollWriteDeadline);
    // A deadline already in the past fails waiting operations now.
    if (pd->rd.load(std::memory_order_relaxed) < 0) rg = netpollunblock(pd, 'r', false);
    if (pd->wd.load(std::memory_order_relaxed) < 0) wg = netpollunblock(pd, 'w', false);
  }
  ready(rg, "netpoll: deadline");
  ready(wg, "netpoll: deadline");
}

void poll_unblock(PollDesc* pd) {
  // Readies parked users (goready wants our P); close() may also come from
  // a destructor outside the runtime, where there is nothing to enter.
  std::optional<Entry> entry;
  if (getg() != nullptr) entry.emplace("goro::net close");
  G* rg = nullptr;
  G* wg = nullptr;
  {
    std::lock_guard<Lock> lk(pd->lock);
    if (pd->closing.load(std::memory_order_relaxed)) fatal("runtime: unblock on closing polldesc");
    pd->closing.store(true, std::memory_order_seq_cst);
    pd->rseq++;
    pd->wseq++;
    rg = netpollunblock(pd, 'r', false);
    wg = netpollunblock(pd, 'w', false);
    if (pd->rt_armed) {
      deltimer(&pd->rt);
      pd->rt_armed = false;
    }
    if (pd->wt_armed) {
      deltimer(&pd->wt);
      pd->wt_armed = false;
    }
  }
  ready(rg, "netpoll: close");
  ready(wg, "netpoll: close");
}

// ---------------------------------------------------------------------------
// The scheduler's side

void netpollBreak() {
  if (!netpollinited()) return;
  // One write is enough until the poller has consumed it.
  std::uint32_t zero = 0;
  if (!np.wakeSig.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return;
  const std::uint64_t one = 1;
  for (;;) {
    if (::write(np.evfd, &one, sizeof one) == sizeof one || errno == EAGAIN) return;
    if (errno != EINTR) fatal("runtime: netpollBreak write failed");
  }
}

G* netpoll(std::int64_t delay, int* n) {
  *n = 0;
  if (!netpollinited()) return nullptr;
  int waitms;
  if (delay < 0)
    waitms = -1;
  else if (delay == 0)
    waitms = 0;
  else if (delay < 1000000000LL * 1000)
    waitms = static_cast<int>((delay + 999999) / 1000000);  // round up: never wake early and spin
  else
    waitms = 1000000000;
  epoll_event events[128];
  int k;
  for (;;) {
    k = epoll_wait(np.epfd, events, 128, waitms);
    if (k >= 0) break;
    if (errno != EINTR) fatal("runtime: netpoll: epoll_wait failed");
    // Interrupted (the preemption signal): a timed wait returns so the
    // caller recomputes its timeout; a non-blocking or infinite one retries.
    if (waitms > 0) return nullptr;
  }
  G* head = nullptr;
  G* tail = nullptr;
  auto push = [&](G* g) {
    if (g == nullptr) return;
    trace_netpoll(g, "netpoll: ready");
    g->schedlink = nullptr;
    if (tail != nullptr)
      tail->schedlink = g;
    else
      head = g;
    tail = g;
    (*n)++;
  };
  for (int i = 0; i < k; i++) {
    const epoll_event& ev = events[i];
    if (ev.events == 0) continue;
    if (ev.data.u64 == 0) {
      // The break eventfd. Only a blocking poll consumes it: a
      // non-blocking one leaves it for the M it was meant for.
      if (delay != 0) {
        std::uint64_t buf;
        while (::read(np.evfd, &buf, sizeof buf) < 0 && errno == EINTR) {
        }
        np.wakeSig.store(0, std::memory_order_seq_cst);
      }
      continue;
    }
    auto* pd = reinterpret_cast<PollDesc*>(ev.data.u64 & ptrMask);
    const auto tag = static_cast<std::uint32_t>(ev.data.u64 >> tagShift);
    // An event for the previous user of a reused PollDesc: drop it.
    if ((pd->fdseq.load(std::memory_order_seq_cst) & 0xffff) != tag) continue;
    const bool r = ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    const bool w = ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    if (r) push(netpollunblock(pd, 'r', true));
    if (w) push(netpollunblock(pd, 'w', true));
  }
  if (*n > 0) rt()->sched.nnetpoll.fetch_add(static_cast<std::uint64_t>(*n), std::memory_order_relaxed);
  return head;
}

void injectglist(G* list, int n) {
  if (list == nullptr) return;
  Runtime* r = rt();
  Sched& s = r->sched;
  G* tail = nullptr;
  for (G* g = list; g != nullptr; g = g->schedlink) {
    casgstatus(g, Gstatus::waiting, Gstatus::runnable);
    tail = g;
  }
  M* m = getm();
  P* p = m != nullptr ? m->p : nullptr;
  if (p == nullptr) {
    // No P (sysmon, or a poller that found none): everything goes to the
    // global queue, and as many idle Ps as there are goroutines start.
    {
      std::lock_guard<Lock> lk(s.lock);
      globrunqputbatch(list, tail, n);
    }
    for (int i = 0; i < n && s.npidle.load(std::memory_order_relaxed) > 0; i++) startm(nullptr, false);
    return;
  }
  // With a P: one goroutine per idle P goes to the global queue with an M
  // started for it; the rest queue here, where we will run them.
  int npidle = s.npidle.load(std::memory_order_relaxed);
  int k = npidle < n ? npidle : n;
  if (k > 0) {
    G* head = list;
    G* last = list;
    for (int i = 1; i < k; i++) last = last->schedlink;
    list = last->schedlink;
    {
      std::lock_guard<Lock> lk(s.lock);
      globrunqputbatch(head, last, k);
    }
    for (int i = 0; i < k && s.npidle.load(std::memory_order_relaxed) > 0; i++) startm(nullptr, false);
  }
  while (list != nullptr) {
    G* g = list;
    list = g->schedlink;
    g->schedlink = nullptr;
    runqput(p, g, false);
  }
}

G* findrunnable_netpoll(Runtime* r, M* m) {
  Sched& s = r->sched;
  if (!netpollinited() || netpoll_waiters() <= 0) return nullptr;
  if (s.lastpoll.exchange(0, std::memory_order_seq_cst) == 0) return nullptr;  // another M polls
  // This M is now the poller, and the timer watcher: it wakes for the
  // earliest timer of every P (wake_timer_watcher breaks it for a sooner one).
  const std::int64_t next = timers_earliest();
  s.netpollUntil.store(next == 0 ? INT64_MAX : next, std::memory_order_seq_cst);
  std::int64_t delay = -1;
  if (next != 0) {
    delay = next - nanotime();
    if (delay < 0) delay = 0;
  }
  if (s.exiting.load(std::memory_order_acquire) || s.gcwaiting.load(std::memory_order_acquire)) delay = 0;
  m->blocked.store(true, std::memory_order_relaxed);
  int n = 0;
  G* list = netpoll(delay, &n);
  m->blocked.store(false, std::memory_order_relaxed);
  s.netpollUntil.store(0, std::memory_order_seq_cst);
  s.lastpoll.store(nanotime(), std::memory_order_seq_cst);
  P* p = nullptr;
  if (!s.exiting.load(std::memory_order_acquire)) {
    std::lock_guard<Lock> lk(s.lock);
    p = pidleget();
  }
  if (p == nullptr) {
    injectglist(list, n);  // to the global queue, starting idle Ps if any
    return nullptr;
  }
  acquirep(m, p);
  if (list != nullptr) {
    G* g = list;
    list = g->schedlink;
    g->schedlink = nullptr;
    injectglist(list, n - 1);
    casgstatus(g, Gstatus::waiting, Gstatus::runnable);
    return g;
  }
  // Woken for a timer (or a break): run what is due on every P.
  const std::int64_t now = nanotime();
  const int procs = r->gomaxprocs.load(std::memory_order_relaxed);
  for (int i = 0; i < procs; i++) checktimers(r->allp[i].load(std::memory_order_relaxed), now);
  return nullptr;
}

void sysmon_netpoll(Runtime* r, std::int64_t now) {
  if (!netpollinited()) return;
  Sched& s = r->sched;
  std::int64_t last = s.lastpoll.load(std::memory_order_seq_cst);
  if (last == 0 || last + 10 * 1000 * 1000 >= now) return;
  if (!s.lastpoll.compare_exchange_strong(last, now, std::memory_order_seq_cst)) return;
  // Count ourselves as running from before the poll until the goroutines it
  // returns are on a run queue (Go's incidlelocked(-1) around injectglist).
  // The poll takes them out of their PollDescs and lowers the waiter count
  // while they are still _Gwaiting: an M going idle in that window, seeing
  // no M running, no waiter and no runnable goroutine, would report a
  // deadlock (seen under TSan: "all goroutines are asleep" with main in IO
  // wait).
  incidlelocked(r, -1);
  int n = 0;
  if (G* list = netpoll(0, &n)) {
    trace_netpoll_ready(n);
    injectglist(list, n);
  }
  incidlelocked(r, 1);
}

void netpoll_teardown() {
  if (np.inited.load(std::memory_order_relaxed)) {
    for (PollDesc* pd = np.all; pd != nullptr;) {
      PollDesc* next = pd->alllink;
      if (pd->inuse && pd->fd >= 0) ::close(pd->fd);
      delete pd;
      pd = next;
    }
    ::close(np.evfd);
    ::close(np.epfd);
  }
  np.all = np.free = nullptr;
  np.epfd = np.evfd = -1;
  np.wakeSig.store(0);
  np.waiters.store(0);
  np.inited.store(false, std::memory_order_release);
  epoch.fetch_add(1, std::memory_order_acq_rel);
}

// netpoll_osinit is run() start-up's part for the network: a write to a
// reset peer must be an error (EPIPE), not a SIGPIPE that kills the process,
// and the soft open-files limit is raised to the hard one, as Go does, so
// that a server is not capped at 1,024 connections by an old default.
void netpoll_osinit() {
  static std::atomic<bool> once{false};
  if (once.exchange(true)) return;
  ::signal(SIGPIPE, SIG_IGN);
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace goro::detail
