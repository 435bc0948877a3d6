// hchan.hpp — the channel core shared by chan.cpp and select.cpp: Go's hchan
// and the few helpers of chan.go that selectgo also calls (send, recv,
// waitq.dequeue). The essay and the invariants are at the top of chan.cpp.
#pragma once

#include <atomic>
#include <cstddef>

#include "goro/chan.hpp"
#include "goro/gc.hpp"
#include "sched/lockrank.hpp"
#include "sched/proc.hpp"
#include "sched/sudog.hpp"

namespace goro::detail {

// HchanBase is a channel (Go's hchan). It is allocated in one block with its
// ring buffer right behind it (makechan) and freed by the last chanrelease.
struct alignas(64) HchanBase {
  // The ring lives in malloc'd memory, which the garbage collector does not
  // scan: while the channel lives its buffer is registered as an extra root
  // (bufroot, linked into the registry without allocating), so GC pointers
  // waiting in a channel survive (gc/roots.cpp). A buffer of a pointer-free
  // element type (elemtype->noscan) is never registered.
  HchanBase(const ChanType* t, std::size_t size, unsigned char* b, void* blk)
      : dataqsiz(size), buf(b), elemtype(t), block(blk) {
    if (size != 0 && t->size != 0 && !t->noscan) gc_root_add(&bufroot, buf, size * t->size);
  }
  ~HchanBase() { gc_root_remove(&bufroot); }
  HchanBase(const HchanBase&) = delete;
  HchanBase& operator=(const HchanBase&) = delete;

  // The first cache line is what every operation writes: the lock and the
  // state it guards, exactly 64 bytes. A sender and a receiver on two cores
  // pass this one line back and forth, once per operation; what they only
  // read (capacity, buffer, element type, closed) is on the next line, which
  // both keep cached, and the ring starts on a line of its own (makechan).
  //
  // lock guards everything in this line and `closed`. Rank hchan: several
  // channel locks are held at once only by select, in address order
  // (sellock).
  Lock lock{LockRank::hchan};
  // qcount is written only under lock; len() reads it without (as Go does),
  // hence atomic, relaxed.
  std::atomic<std::size_t> qcount{0};  // values in buf
  std::size_t sendx = 0;               // next slot to fill
  std::size_t recvx = 0;               // next slot to empty
  WaitQ recvq;  // parked receivers; their elem is a std::optional<T>*
  WaitQ sendq;  // parked senders; their elem is a T*

  // Read by every operation, written once (closed: by closechan, under lock).
  bool closed = false;
  const std::size_t dataqsiz;  // ring capacity (cap); 0: unbuffered
  unsigned char* const buf;    // dataqsiz slots of elemtype->size bytes
  const ChanType* const elemtype;
  void* const block;  // what makechan allocated: this header sits at its first 64-byte boundary
  std::atomic<std::intptr_t> refs{1};  // Chan<T> references; the last frees
  RootNode bufroot;  // buf's registration as a GC root (scan-worthy elements only)

  unsigned char* chanbuf(std::size_t i) const { return buf + i * elemtype->size; }
};
static_assert(sizeof(Lock) + sizeof(std::atomic<std::size_t>) + 2 * sizeof(std::size_t) +
                      2 * sizeof(WaitQ) ==
                  64,
              "the lock and the state it guards fill HchanBase's first cache line");

// dequeue pops the first sudog of q that can still be woken: a sudog of a
// select whose G another channel already claimed (selectdone) is dropped and
// skipped. Go's waitq.dequeue. c->lock held.
Sudog* dequeue(WaitQ& q);

// dequeue_sudog removes s from q if it is still there (select's pass 3: a
// failed claimer may have dropped it already). Go's waitq.dequeueSudoG.
void dequeue_sudog(WaitQ& q, Sudog* s);

// send completes a send to the parked receiver sg (just dequeued from
// c->recvq): moves the value at ep into the receiver's optional and marks sg
// as woken by a value. Returns the G to goready once c's lock (and every other
// lock held) has been released. Go's send, minus the unlock.
G* send(HchanBase* c, Sudog* sg, void* ep);

// recv completes a receive from the parked sender sg (just dequeued from
// c->sendq) into the optional at ep. Unbuffered: straight from the sender.
// Buffered (and so full): the head of the ring to ep, the sender's value to
// the freed tail slot. Returns the G to goready after unlocking. Go's recv.
G* recv(HchanBase* c, Sudog* sg, void* ep);

// bufsend / bufrecv move one value into / out of the ring. c->lock held;
// bufsend needs qcount < dataqsiz, bufrecv qcount > 0.
void bufsend(HchanBase* c, void* ep);
void bufrecv(HchanBase* c, void* ep);

}  // namespace goro::detail
