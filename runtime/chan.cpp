// chan.cpp — channels: Go's runtime/chan.go.
//
// A channel (hchan, runtime/hchan.hpp) is a lock, an optional ring buffer and
// two FIFO wait queues of sudogs: recvq for goroutines parked in a receive,
// sendq for those parked in a send. Every operation takes the lock, looks at
// the other side's queue and the buffer, and either completes at once or
// queues a sudog on its own stack and parks.
//
//   chansend:  closed?            -> panic "send on closed channel"
//              a receiver waits?  -> hand the value straight to it (send)
//              room in the ring?  -> put it there (bufsend)
//              otherwise          -> queue on sendq, park
//   chanrecv:  a sender waits?    -> take its value (recv: directly, or, if the
//                                    ring is full, the ring's head, and the
//                                    sender's value goes to the tail)
//              values in ring?    -> take the head (bufrecv)
//              closed?            -> nullopt
//              otherwise          -> queue on recvq, park
//   closechan: mark closed, wake every parked receiver (nullopt) and sender
//              (which then panics).
//
// The direct handoff. When a receiver is parked, the sender writes the value
// straight into the receiver's destination — the std::optional<T> whose
// address the receiver's sudog carries in elem — and readies it; the value
// never touches the buffer, and for an unbuffered channel there is no buffer
// at all. Symmetrically a receiver takes a parked sender's value from the
// sender's own stack. This is Go's sendDirect/recvDirect: a value crosses a
// channel with one move and the receiving goroutine wakes with it in hand,
// nothing left to do under the lock. That a goroutine writes into another's
// stack is safe because the owner is parked and was dequeued by the writer
// under the lock: nobody else can reach that sudog any more.
//
// Parking. A goroutine queues its sudog and calls gopark with an unlock
// function that releases the channel lock on g0, after the goroutine's
// context is saved (sched/proc.hpp). Until then no one can see the sudog, so
// a waker can never ready a G that is still running. The waker fills the
// sudog (success, and the value for receivers), sets g.param to the sudog and
// calls goready only after it has released the lock, so that goready (which
// may take sched.lock) never nests inside a channel lock.
//
// Every release of a channel's lock is unlock_plain: in send, receive,
// close, select (selunlock), a timer's send (time.cpp's nbsend), and on g0
// for a goroutine parking here (goparkunlock_chan). When no waiter has
// marked the lock contended, that is a plain store, not a locked exchange.
// The exchange was a quarter of prodcons (one unlock per item; 34.7 -> 26.6
// ns) and of a hand-off, where it waited for the stores just made into the
// woken goroutine's frame (pingpong 97 -> 75 ns). Its price, a waiter
// whose mark lands between the read and the store sleeps unwoken until a
// timeout, is in sched/lockrank.hpp.
//
// Element values are type-erased (ChanType in goro/chan.hpp): the buffer is
// raw storage; values are move-constructed in and out and destroyed
// explicitly. The channel is reference-counted by its Chan<T> handles; the
// last chanrelease destroys the values still buffered and frees the block.
//
// Rejected designs. A buffer for unbuffered channels too (a one-slot ring):
// two moves per value and a second wake-up, and it loses Go's rendezvous
// semantics (a send completes before any receiver exists). A condition
// variable per channel: it parks threads, not goroutines. Lock-free queues:
// select needs the state of several channels to stand still at once, which
// locks in address order give simply.
//
// Invariants (c->lock held to read or write any of these):
//   - recvq non-empty  =>  qcount == 0 (a receiver parks only on an empty
//     ring; any value arriving meanwhile goes straight to it).
//   - sendq non-empty  =>  qcount == dataqsiz (a sender parks only on a full
//     ring, or always for an unbuffered one).
//   - closed  =>  sendq empty, and recvq empty (closechan woke them all, and
//     no one parks on a closed channel).
//   - Slots [recvx, recvx + qcount) mod dataqsiz hold live values; all other
//     slots are raw storage.
//   - A sudog is in a queue only while its G is parked (or, for a select,
//     until the G's pass 3 removes it); whoever dequeues it (and, for a
//     select, wins g.selectdone) is the only one to goready its G.
//   - Channel locks are never held across a park or a goready, and several
//     are held at once only in address order (select's sellock).
#include <algorithm>
#include <exception>
#include <limits>
#include <new>

#include "runtime/hchan.hpp"
#include "sched/sanitizers.hpp"

namespace goro::detail {

namespace {

// block_forever parks the G with nothing that will ever ready it: a send or
// receive on a nil channel. The deadlock detector reports it if nothing else
// can run.
[[noreturn]] void block_forever(WaitReason reason) {
  gopark(nullptr, nullptr, reason);
  fatal("unreachable: a goroutine blocked forever was woken");
}

std::size_t round_up(std::size_t n, std::size_t a) {
  return (n + a - 1) / a * a;
}

}  // namespace

// ---------------------------------------------------------------------------
// Creation and lifetime

// maxAlloc bounds one channel's block as Go's does (malloc.go maxAlloc: the
// 48-bit heap address space on amd64). The sanitizers' allocators stop at
// 1 TiB and abort beyond it instead of failing, so their builds bound there.
#if GORO_ASAN || GORO_TSAN
constexpr std::size_t maxAlloc = std::size_t(1) << 40;
#else
constexpr std::size_t maxAlloc = std::size_t(1) << 48;
#endif

// makechan panics "makechan: size out of range" as Go does for any size the
// allocator cannot serve: above maxAlloc without asking, and whenever the
// allocation itself fails (never std::bad_alloc).
//
// The header wants a 64-byte boundary (its first line is the lock and its
// state, hchan.hpp). The aligned operator new would give one, but glibc's
// aligned path made chanmake_int 9 -> 45 ns; plain operator new (16-byte
// aligned) plus up to 48 bytes of slack does the same, and the header keeps
// the block's start to free it.
HchanBase* makechan(const ChanType* t, std::size_t size) {
  constexpr std::size_t newAlign = __STDCPP_DEFAULT_NEW_ALIGNMENT__;
  const std::size_t align = std::max(t->align, alignof(HchanBase));
  const std::size_t slack = align - newAlign;
  const std::size_t hdr = round_up(sizeof(HchanBase), align);
  const std::size_t maxbuf = maxAlloc - hdr - slack;
  if (t->size != 0 && size > maxbuf / t->size) throw Panic("makechan: size out of range");
  void* block = nullptr;
  try {
    block = ::operator new(slack + hdr + size * t->size);
  } catch (const std::bad_alloc&) {
    throw Panic("makechan: size out of range");
  }
  auto* base = reinterpret_cast<unsigned char*>(
      round_up(reinterpret_cast<std::uintptr_t>(block), align));
  return ::new (base) HchanBase(t, size, base + hdr, block);
}

void chanretain(HchanBase* c) noexcept {
  c->refs.fetch_add(1, std::memory_order_relaxed);
}

// chanrelease drops a reference; the last one destroys the values left in the
// ring (each exactly once: only live slots are in [recvx, recvx + qcount))
// and frees the block. No goroutine can be parked on c then: a parked
// goroutine's Chan (or its select case) still holds a reference.
void chanrelease(HchanBase* c) noexcept {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  const std::size_t n = c->qcount.load(std::memory_order_relaxed);
  for (std::size_t k = 0; k < n; k++)
    c->elemtype->destroy(c->chanbuf((c->recvx + k) % c->dataqsiz));
  void* block = c->block;
  c->~HchanBase();
  ::operator delete(block);
}

std::size_t chanlen(const HchanBase* c) noexcept {
  return c == nullptr ? 0 : c->qcount.load(std::memory_order_relaxed);
}

std::size_t chancap(const HchanBase* c) noexcept {
  return c == nullptr ? 0 : c->dataqsiz;
}

// ---------------------------------------------------------------------------
// The helpers select shares (declared in hchan.hpp)

Sudog* dequeue(WaitQ& q) {
  for (;;) {
    Sudog* sg = q.first;
    if (sg == nullptr) return nullptr;
    q.remove(sg);
    // A select parks with a sudog on every case's channel; the first channel
    // to claim its G wins, the others drop their sudog and look further.
    if (sg->is_select) {
      bool expected = false;
      if (!sg->g->selectdone.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
        continue;
    }
    return sg;
  }
}

void dequeue_sudog(WaitQ& q, Sudog* s) {
  // remove() leaves next == prev == nullptr, so a sudog with no prev that is
  // not the head is in no queue.
  if (s->prev == nullptr && q.first != s) return;
  q.remove(s);
}

G* send(HchanBase* c, Sudog* sg, void* ep) {
  c->elemtype->recv_into(sg->elem, ep);
  sg->success = true;
  G* gp = sg->g;
  gp->param = sg;
  return gp;
}

G* recv(HchanBase* c, Sudog* sg, void* ep) {
  const ChanType* t = c->elemtype;
  if (c->dataqsiz == 0) {
    t->recv_into(ep, sg->elem);
  } else {
    // The ring is full (a sender is parked). Take its head and put the
    // sender's value in the slot just freed, which is also the tail: FIFO
    // order is kept and the ring stays full.
    unsigned char* slot = c->chanbuf(c->recvx);
    t->recv_into(ep, slot);
    t->destroy(slot);
    t->move_construct(slot, sg->elem);
    if (++c->recvx == c->dataqsiz) c->recvx = 0;
    c->sendx = c->recvx;
  }
  sg->success = true;
  G* gp = sg->g;
  gp->param = sg;
  return gp;
}

void bufsend(HchanBase* c, void* ep) {
  c->elemtype->move_construct(c->chanbuf(c->sendx), ep);
  if (++c->sendx == c->dataqsiz) c->sendx = 0;
  c->qcount.store(c->qcount.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void bufrecv(HchanBase* c, void* ep) {
  unsigned char* slot = c->chanbuf(c->recvx);
  c->elemtype->recv_into(ep, slot);
  c->elemtype->destroy(slot);
  if (++c->recvx == c->dataqsiz) c->recvx = 0;
  c->qcount.store(c->qcount.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Send, receive, close

// chansend sends the T at ep on c: `c <- *ep`. With block == false it
// returns false instead of parking (try_send).
bool chansend(HchanBase* c, void* ep, bool block) {
  Entry e("goro::Chan::send");
  G* gp = e.g();
  if (c == nullptr) {
    if (!block) return false;
    block_forever(WaitReason::chan_send_nil);
  }

  c->lock.lock();
  if (c->closed) {
    c->lock.unlock_plain();
    throw Panic("send on closed channel");
  }
  if (Sudog* sg = dequeue(c->recvq)) {
    G* rg = send(c, sg, ep);
    c->lock.unlock_plain();
    goready(rg);
    return true;
  }
  if (c->qcount.load(std::memory_order_relaxed) < c->dataqsiz) {
    bufsend(c, ep);
    c->lock.unlock_plain();
    return true;
  }
  if (!block) {
    c->lock.unlock_plain();
    return false;
  }

  // Park until a receiver takes the value (success) or close wakes us.
  Sudog mysg;
  mysg.g = gp;
  mysg.elem = ep;
  mysg.c = c;
  gp->param = nullptr;
  c->sendq.enqueue(&mysg);
  goparkunlock_chan(&c->lock, WaitReason::chan_send);  // Go: chanparkcommit

  gp = getg();
  if (gp->param != &mysg) fatal("chansend: woken by a stranger");
  gp->param = nullptr;
  if (!mysg.success) throw Panic("send on closed channel");
  return true;
}

// chanrecv receives from c into the std::optional<T> at ep: `*ep, ok = <-c`,
// leaving *ep empty when c is closed and drained. With block == false it
// returns false instead of parking (try_recv).
bool chanrecv(HchanBase* c, void* ep, bool block) {
  Entry e("goro::Chan::recv");
  G* gp = e.g();
  if (c == nullptr) {
    if (!block) return false;
    block_forever(WaitReason::chan_receive_nil);
  }

  c->lock.lock();
  if (Sudog* sg = dequeue(c->sendq)) {
    G* sgp = recv(c, sg, ep);
    c->lock.unlock_plain();
    goready(sgp);
    return true;
  }
  if (c->qcount.load(std::memory_order_relaxed) > 0) {
    bufrecv(c, ep);
    c->lock.unlock_plain();
    return true;
  }
  if (c->closed) {
    c->lock.unlock_plain();
    return true;  // *ep stays nullopt
  }
  if (!block) {
    c->lock.unlock_plain();
    return false;
  }

  // Park until a sender fills *ep (success) or close wakes us (*ep empty).
  Sudog mysg;
  mysg.g = gp;
  mysg.elem = ep;
  mysg.c = c;
  gp->param = nullptr;
  c->recvq.enqueue(&mysg);
  goparkunlock_chan(&c->lock, WaitReason::chan_receive);

  gp = getg();
  if (gp->param != &mysg) fatal("chanrecv: woken by a stranger");
  gp->param = nullptr;
  return true;
}

// closechan closes c: every parked receiver wakes with nothing (its optional
// stays empty) and every parked sender wakes to panic. They are collected
// under the lock (linked through g.schedlink, free while a G is parked) and
// readied after it is released.
void closechan(HchanBase* c) {
  if (c == nullptr) throw Panic("close of nil channel");
  Entry e("goro::Chan::close");

  c->lock.lock();
  if (c->closed) {
    c->lock.unlock_plain();
    throw Panic("close of closed channel");
  }
  c->closed = true;

  G* glist = nullptr;
  auto release_all = [&glist](WaitQ& q) {
    while (Sudog* sg = dequeue(q)) {
      sg->success = false;
      G* gp = sg->g;
      gp->param = sg;
      gp->schedlink = glist;
      glist = gp;
    }
  };
  release_all(c->recvq);
  release_all(c->sendq);
  c->lock.unlock_plain();

  while (glist != nullptr) {
    G* gp = glist;
    glist = gp->schedlink;
    gp->schedlink = nullptr;
    goready(gp);
  }
}

}  // namespace goro::detail
