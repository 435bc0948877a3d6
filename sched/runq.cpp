// runq.cpp — run queues: each P's lock-free local queue and the global one
// (Go's runqput, runqget, runqgrab, runqsteal, globrunqput, globrunqget).
//
// The local queue is a 256-slot ring. Only the P's owner appends (it alone
// writes runqtail), and anyone takes from the head with a CAS on runqhead:
// the owner in runqget, thieves in runqgrab. The owner never blocks on a
// thief and a thief never blocks the owner. When the ring is full the owner
// moves half of it, plus the new G, to the global queue in one locked batch
// (runqputslow), so the cost of the lock is paid once per 128 goroutines.
//
// runnext is a one-G fast lane in front of the ring: a goroutine readied by
// the running one (a channel receive, a go statement) runs next, inheriting
// the rest of the time slice. Communicating pairs then stay on one P, hot in
// cache, with no trip through the ring.
//
// Why the slots are atomics: a thief reads slots speculatively before its
// CAS on the head validates them; the owner may be overwriting a slot the
// thief read if the thief lost the race. The CAS discards such reads, but
// the C++ memory model still calls a plain racing read a data race, so the
// slots are relaxed atomics (plain moves on x86).
//
// Invariants:
//   - 0 <= runqtail - runqhead <= runqSize (uint32 wrap-around arithmetic);
//   - slots [head, tail) hold the queued Gs in order;
//   - the global queue (sched.runq*) is guarded by sched.lock and its size
//     is readable without the lock (runqsize).
#include <thread>

#include "sched/hottext.hpp"
#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

namespace {

// runqputslow moves g and half of p's full queue to the global queue.
bool runqputslow(P* p, G* g, std::uint32_t h, std::uint32_t t) {
  constexpr std::uint32_t n = runqSize / 2;
  G* batch[n + 1];
  if (t - h != runqSize) fatal("runqputslow: queue is not full");
  for (std::uint32_t i = 0; i < n; i++)
    batch[i] = p->runq[(h + i) % runqSize].load(std::memory_order_relaxed);
  if (!p->runqhead.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return false;
  batch[n] = g;
  for (std::uint32_t i = 0; i < n; i++) batch[i]->schedlink = batch[i + 1];
  batch[n]->schedlink = nullptr;
  std::lock_guard<Lock> lk(rt()->sched.lock);
  globrunqputbatch(batch[0], batch[n], static_cast<std::int32_t>(n + 1));
  return true;
}

// runqgrab copies up to half of p's queue into batch[batchHead...] and
// commits by advancing p's head. Returns how many it took.
std::uint32_t runqgrab(P* p, std::atomic<G*>* batch, std::uint32_t batchHead, bool stealRunNext) {
  for (;;) {
    std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
    std::uint32_t t = p->runqtail.load(std::memory_order_acquire);
    std::uint32_t n = t - h;
    n = n - n / 2;
    if (n == 0) {
      if (stealRunNext) {
        G* next = p->runnext.load(std::memory_order_acquire);
        if (next != nullptr) {
          if (p->status.load(std::memory_order_relaxed) == Pstatus::running) {
            // The owner is likely about to run it (it was just readied by
            // the running G, which is about to block). Give it a moment
            // rather than bouncing the pair between Ps. Go sleeps 3us.
            std::this_thread::sleep_for(std::chrono::microseconds(3));
          }
          if (!p->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel))
            continue;
          batch[batchHead % runqSize].store(next, std::memory_order_relaxed);
          return 1;
        }
      }
      return 0;
    }
    if (n > runqSize / 2) continue;  // read an inconsistent h and t
    for (std::uint32_t i = 0; i < n; i++) {
      G* g = p->runq[(h + i) % runqSize].load(std::memory_order_relaxed);
      batch[(batchHead + i) % runqSize].store(g, std::memory_order_relaxed);
    }
    if (p->runqhead.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return n;
  }
}

}  // namespace

void runqput(P* p, G* g, bool next) {
  if (next) {
    // Only the owner (us) makes runnext non-null; thieves only take it. So
    // an empty runnext stays empty until our store: no locked instruction
    // for the common case (a goroutine readied by one about to block). A
    // full one may be stolen meanwhile: swap it out atomically.
    G* old = p->runnext.load(std::memory_order_relaxed);
    if (old == nullptr) {
      p->runnext.store(g, std::memory_order_release);
      return;
    }
    old = p->runnext.exchange(g, std::memory_order_acq_rel);
    if (old == nullptr) return;
    g = old;  // kick the old runnext to the tail
  }
  for (;;) {
    std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
    std::uint32_t t = p->runqtail.load(std::memory_order_relaxed);
    if (t - h < runqSize) {
      p->runq[t % runqSize].store(g, std::memory_order_relaxed);
      p->runqtail.store(t + 1, std::memory_order_release);
      return;
    }
    if (runqputslow(p, g, h, t)) return;
  }
}

// prefetch_next starts loading what the run queue's next goroutines will
// need when they run, so that it arrives while the one just taken runs: the
// saved context of the G at slot h (on its stack, which goro_switch pops
// first) and the G record at slot h + 1 (whose fiber.ctx the next call reads
// here). A goroutine made long ago, or parked long ago, has both out of the
// cache: at one P, spawn used to spend a quarter of its time on the first
// pop from a new goroutine's stack (bench/README.md, "prefetching the run
// queue"). Only the owner reads the ring's slots here, but thieves may
// have taken the slots past h since t was read: a slot's G may have been
// stolen, run, finished and reused by newproc meanwhile. So its ctx is
// read atomically (every store to it is atomic: after_switch, fiber_make)
// and may be stale, which costs a useless prefetch and nothing else: a
// prefetch never faults.
static inline void prefetch_next(P* p, std::uint32_t h, std::uint32_t t) {
  if (t - h > 1) __builtin_prefetch(p->runq[(h + 1) % runqSize].load(std::memory_order_relaxed));
  if (t - h > 0) {
    G* n = p->runq[h % runqSize].load(std::memory_order_relaxed);
    char* ctx = static_cast<char*>(__atomic_load_n(&n->fiber.ctx, __ATOMIC_RELAXED));
    __builtin_prefetch(ctx);
    __builtin_prefetch(ctx + 64);
  }
}

G* runqget(P* p, bool* inherit_time) {
  G* next = p->runnext.load(std::memory_order_relaxed);
  if (next != nullptr && p->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel)) {
    *inherit_time = true;
    return next;
  }
  for (;;) {
    std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
    std::uint32_t t = p->runqtail.load(std::memory_order_relaxed);
    if (t == h) return nullptr;
    G* g = p->runq[h % runqSize].load(std::memory_order_relaxed);
    if (p->runqhead.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel)) {
      *inherit_time = false;
      prefetch_next(p, h + 1, t);
      return g;
    }
  }
}

G* runqsteal(P* p, P* p2, bool steal_runnext) {
  std::uint32_t t = p->runqtail.load(std::memory_order_relaxed);
  std::uint32_t n = runqgrab(p2, p->runq, t, steal_runnext);
  if (n == 0) return nullptr;
  n--;
  G* g = p->runq[(t + n) % runqSize].load(std::memory_order_relaxed);
  if (n == 0) return g;
  std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
  if (t - h + n >= runqSize) fatal("runqsteal: runq overflow");
  p->runqtail.store(t + n, std::memory_order_release);
  return g;
}

GORO_YIELD_TEXT bool runqempty(P* p) {
  // runnext and the ring can change under us; read until head, tail and
  // runnext are seen consistently (Go's runqempty loop).
  for (;;) {
    std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
    std::uint32_t t = p->runqtail.load(std::memory_order_acquire);
    G* next = p->runnext.load(std::memory_order_acquire);
    if (p->runqtail.load(std::memory_order_acquire) == t) return h == t && next == nullptr;
  }
}

std::uint32_t runqlen(P* p) {
  std::uint32_t h = p->runqhead.load(std::memory_order_relaxed);
  std::uint32_t t = p->runqtail.load(std::memory_order_relaxed);
  return t - h;
}

// ---------------------------------------------------------------------------
// The global queue (sched.lock held)

// runqsize changes only under sched.lock, so a plain load and store update
// it: a locked read-modify-write here would double the locked instructions
// of every yield. It is atomic for the readers that look without the lock.
namespace {
void add_runqsize(Sched& s, std::int32_t n) {
  s.runqsize.store(s.runqsize.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
}  // namespace

GORO_YIELD_TEXT void globrunqput(G* g) {
  Sched& s = rt()->sched;
  g->schedlink = nullptr;
  if (s.runqtail_ != nullptr)
    s.runqtail_->schedlink = g;
  else
    s.runqhead_ = g;
  s.runqtail_ = g;
  add_runqsize(s, 1);
}

void globrunqputhead(G* g) {
  Sched& s = rt()->sched;
  g->schedlink = s.runqhead_;
  s.runqhead_ = g;
  if (s.runqtail_ == nullptr) s.runqtail_ = g;
  add_runqsize(s, 1);
}

void globrunqputbatch(G* head, G* tail, std::int32_t n) {
  Sched& s = rt()->sched;
  tail->schedlink = nullptr;
  if (s.runqtail_ != nullptr)
    s.runqtail_->schedlink = head;
  else
    s.runqhead_ = head;
  s.runqtail_ = tail;
  add_runqsize(s, n);
}

GORO_YIELD_TEXT G* globrunqget(P* p, std::int32_t max) {
  Runtime* r = rt();
  Sched& s = r->sched;
  std::int32_t size = s.runqsize.load(std::memory_order_relaxed);
  if (size == 0) return nullptr;
  // Take a fair share: 1/GOMAXPROCS of the queue, at most half a local queue.
  std::int32_t n = size / r->gomaxprocs.load(std::memory_order_relaxed) + 1;
  if (n > size) n = size;
  if (max > 0 && n > max) n = max;
  if (n > static_cast<std::int32_t>(runqSize / 2)) n = runqSize / 2;
  add_runqsize(s, -n);
  G* g = s.runqhead_;
  s.runqhead_ = g->schedlink;
  n--;
  while (n-- > 0) {
    G* g1 = s.runqhead_;
    s.runqhead_ = g1->schedlink;
    runqput(p, g1, false);
  }
  if (s.runqhead_ == nullptr) s.runqtail_ = nullptr;
  g->schedlink = nullptr;
  return g;
}

void runqdrain_to_global(P* p) {
  // Keep the order: runnext first, then the ring, all at the global head
  // in reverse so they come out as they were queued.
  G* gs[runqSize + 1];
  std::uint32_t n = 0;
  if (G* next = p->runnext.exchange(nullptr)) gs[n++] = next;
  bool inherit;
  while (G* g = runqget(p, &inherit)) gs[n++] = g;
  while (n > 0) globrunqputhead(gs[--n]);
}

}  // namespace goro::detail
