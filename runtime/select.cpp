// select.cpp — the select statement: Go's runtime/select.go (selectgo).
//
// select waits on several channel operations at once and performs exactly
// one. It is built from chan.cpp's pieces in three passes, all with every
// involved channel locked:
//
//   pass 1  Visit the cases in a random order (pollorder). The first that can
//           proceed now — a parked partner, room or values in the ring, a
//           closed channel for a receive — runs exactly as chansend/chanrecv
//           would, and select returns it. The random order is what makes the
//           choice among ready cases uniform: no case can starve another.
//   default If nothing was ready and there is a default case, unlock and let
//           the caller run it.
//   pass 2  Queue one sudog (is_select = true) on every case's channel and
//           park once, waiting on all of them.
//   pass 3  Woken: g.param is the sudog of the case that fired. Lock all the
//           channels again and take the other sudogs off their queues.
//
// Locking several channels. Each channel has its own lock, and two selects
// over the same channels in different orders must not deadlock, so sellock
// takes them in one global order: by address (lockorder), skipping repeats
// (the same channel may appear in several cases). selunlock releases them in
// reverse.
//
// Who wakes a select. Its G sits in several queues at once, and wakers on
// different channels hold different locks, so they could both try to wake
// it. g.selectdone decides: a waker that dequeues a select's sudog must CAS
// it false -> true (chan.cpp dequeue); the one that succeeds completes the
// operation and readies the G, the others drop that sudog and look further
// along their queue. The G clears selectdone in pass 3 while it holds every
// lock, once none of its sudogs can be found any more.
//
// The stack lifetime subtlety. The cases, the orders and the sudogs live on
// the selecting G's stack. gopark's unlock function (selparkcommit) releases
// the channel locks from g0; after the first unlock a waker may already
// ready the G, which may already run on another thread. It cannot get past
// pass 3's sellock while g0 still holds a lock, though, so selparkcommit may
// read the G's stack only while it still holds at least one lock: it reads
// the next channel before releasing the current one, and nothing after the
// last release. selunlock is written the same way.
//
// Rejected designs. One lock for all channels (every select and every
// channel operation in the program would serialise on it). Polling the cases
// in argument order (Go specifies a uniform choice, and a fixed order starves
// the later cases of a busy select loop). Allocating sudogs (Go takes them
// from a per-P cache; goro's live on the stack, sized by the case count).
//
// Invariants:
//   - Channel locks are taken only in lockorder (ascending address, each
//     channel once) and released before any goready or park.
//   - While a select's G is parked, each of its sudogs is on its channel's
//     queue or was dropped by a waker that lost the selectdone race; exactly
//     one waker won it and set g.param.
//   - g.selectdone is false whenever the G is not parked in a select.
#include "goro/select.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>

#include "runtime/hchan.hpp"

namespace goro::detail {

namespace {

// maxCases bounds a select, as Go's 1<<16 (the orders are 16-bit).
constexpr int maxCases = 1 << 16;

// smallCases: selects up to this size keep their orders and sudogs in
// selectgo's frame; larger ones allocate.
constexpr int smallCases = 8;

void sellock(const Scase* cas, const std::uint16_t* lockorder, int norder) {
  HchanBase* last = nullptr;
  for (int k = 0; k < norder; k++) {
    HchanBase* c = cas[lockorder[k]].c;
    if (c != last) {
      c->lock.lock();
      last = c;
    }
  }
}

// selunlock releases in reverse lock order. Nothing of cas or lockorder is
// read after the last unlock (see the file comment): lockorder[k - 1] is read
// while c (a later or the same channel) is still locked.
void selunlock(const Scase* cas, const std::uint16_t* lockorder, int norder) {
  for (int k = norder - 1; k >= 0; k--) {
    HchanBase* c = cas[lockorder[k]].c;
    if (k > 0 && c == cas[lockorder[k - 1]].c) continue;  // unlock it at its first occurrence
    c->lock.unlock_plain();
  }
}

struct SelPark {
  const Scase* cas;
  const std::uint16_t* lockorder;
  int norder;
};

// selparkcommit is gopark's unlock function for a select, run on g0.
bool selparkcommit(G*, void* arg) {
  auto* sp = static_cast<SelPark*>(arg);
  selunlock(sp->cas, sp->lockorder, sp->norder);
  return true;
}

}  // namespace

int selectgo(Scase* cas, int n, bool block) {
  Entry e("goro::select");
  G* gp = e.g();
  if (n > maxCases) throw Error("goro::select: too many cases");

  std::uint16_t small_orders[2 * smallCases];
  Sudog small_sudogs[smallCases];
  std::unique_ptr<std::uint16_t[]> big_orders;
  std::unique_ptr<Sudog[]> big_sudogs;
  std::uint16_t* pollorder = small_orders;
  Sudog* sgs = small_sudogs;
  if (n > smallCases) {
    big_orders = std::make_unique<std::uint16_t[]>(2 * static_cast<std::size_t>(n));
    big_sudogs = std::make_unique<Sudog[]>(static_cast<std::size_t>(n));
    pollorder = big_orders.get();
    sgs = big_sudogs.get();
  }
  std::uint16_t* lockorder = pollorder + n;

  // pollorder: the non-nil cases, shuffled (inside-out Fisher-Yates).
  int norder = 0;
  for (int i = 0; i < n; i++) {
    if (cas[i].c == nullptr) continue;  // a nil channel or the default: never ready
    const int j = static_cast<int>(fastrand() % static_cast<std::uint32_t>(norder + 1));
    pollorder[norder] = pollorder[j];
    pollorder[j] = static_cast<std::uint16_t>(i);
    norder++;
  }
  if (norder == 0) {
    if (!block) return -1;
    // `select {}`, or only nil channels: nothing can ever be ready.
    gopark(nullptr, nullptr, n == 0 ? WaitReason::select_no_cases : WaitReason::select);
    fatal("unreachable: a goroutine blocked forever in select was woken");
  }

  // lockorder: the same cases sorted by channel address.
  std::copy(pollorder, pollorder + norder, lockorder);
  std::sort(lockorder, lockorder + norder, [cas](std::uint16_t a, std::uint16_t b) {
    return reinterpret_cast<std::uintptr_t>(cas[a].c) < reinterpret_cast<std::uintptr_t>(cas[b].c);
  });

  sellock(cas, lockorder, norder);

  // Pass 1: the first ready case in poll order.
  for (int k = 0; k < norder; k++) {
    const int i = pollorder[k];
    Scase& sc = cas[i];
    HchanBase* c = sc.c;
    if (sc.send) {
      if (c->closed) {
        selunlock(cas, lockorder, norder);
        throw Panic("send on closed channel");
      }
      if (Sudog* sg = dequeue(c->recvq)) {
        G* rg = send(c, sg, sc.elem);
        selunlock(cas, lockorder, norder);
        goready(rg);
        return i;
      }
      if (c->qcount.load(std::memory_order_relaxed) < c->dataqsiz) {
        bufsend(c, sc.elem);
        selunlock(cas, lockorder, norder);
        return i;
      }
    } else {
      if (Sudog* sg = dequeue(c->sendq)) {
        G* sgp = recv(c, sg, sc.elem);
        selunlock(cas, lockorder, norder);
        goready(sgp);
        return i;
      }
      if (c->qcount.load(std::memory_order_relaxed) > 0) {
        bufrecv(c, sc.elem);
        selunlock(cas, lockorder, norder);
        return i;
      }
      if (c->closed) {
        selunlock(cas, lockorder, norder);
        return i;  // the optional stays empty
      }
    }
  }

  if (!block) {
    selunlock(cas, lockorder, norder);
    return -1;
  }

  // Pass 2: a sudog on every channel, then park on all of them.
  gp->param = nullptr;
  for (int k = 0; k < norder; k++) {
    const int i = lockorder[k];
    Sudog& sg = sgs[i];
    sg.g = gp;
    sg.is_select = true;
    sg.success = false;
    sg.elem = cas[i].elem;
    sg.c = cas[i].c;
    if (cas[i].send)
      cas[i].c->sendq.enqueue(&sg);
    else
      cas[i].c->recvq.enqueue(&sg);
  }
  SelPark sp{cas, lockorder, norder};
  gopark(selparkcommit, &sp, WaitReason::select);

  // Pass 3: one case fired (g.param); withdraw from the others.
  gp = getg();
  sellock(cas, lockorder, norder);
  gp->selectdone.store(false, std::memory_order_relaxed);
  auto* won = static_cast<Sudog*>(gp->param);
  gp->param = nullptr;
  int casi = -1;
  bool success = false;
  for (int k = 0; k < norder; k++) {
    const int i = lockorder[k];
    Sudog* sg = &sgs[i];
    if (sg == won) {
      casi = i;
      success = sg->success;
    } else {
      dequeue_sudog(cas[i].send ? cas[i].c->sendq : cas[i].c->recvq, sg);
    }
  }
  selunlock(cas, lockorder, norder);
  if (casi < 0) fatal("selectgo: woken without a case");
  if (cas[casi].send && !success) throw Panic("send on closed channel");
  return casi;
}

}  // namespace goro::detail

namespace goro {

// select over AnyCases: the type-erased cases fill one Scase each and
// selectgo does the rest, exactly as for the variadic select.
std::size_t select(std::span<AnyCase> cases) {
  const std::size_t n = cases.size();
  if (n > static_cast<std::size_t>(detail::maxCases)) throw Error("goro::select: too many cases");
  detail::Scase small[detail::smallCases];
  std::unique_ptr<detail::Scase[]> big;
  detail::Scase* sc = small;
  if (n > detail::smallCases) {
    big = std::make_unique<detail::Scase[]>(n);
    sc = big.get();
  }
  int ndefault = 0;
  std::size_t idefault = 0;
  for (std::size_t i = 0; i < n; i++) {
    detail::AnyCaseBase* c = cases[i].p_.get();
    if (c == nullptr) throw Error("goro::select: a moved-from AnyCase");
    if (c->spent) throw Error("goro::select: a send case that already ran is spent");
    if (c->is_default) {
      if (++ndefault > 1) throw Panic("goro::select: multiple default cases");
      idefault = i;
    }
    c->prepare(sc[i]);
  }
  int chosen = detail::selectgo(sc, static_cast<int>(n), ndefault == 0);
  const std::size_t i = chosen < 0 ? idefault : static_cast<std::size_t>(chosen);
  cases[i].p_->run();
  return i;
}

}  // namespace goro
