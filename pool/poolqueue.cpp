// poolqueue.cpp — poolDequeue and poolChain (see poolqueue.hpp for the
// design and the invariants).
#include "pool/poolqueue.hpp"

#include <algorithm>
#include <new>

#include "goro/gc.hpp"

namespace goro::detail {

namespace {
constexpr std::uint32_t mask = 0xffffffffu;
std::uint32_t headOf(std::uint64_t ptrs) {
  return std::uint32_t(ptrs >> dequeueBits) & mask;
}
std::uint32_t tailOf(std::uint64_t ptrs) {
  return std::uint32_t(ptrs) & mask;
}
}  // namespace

// ---- poolDequeue ----------------------------------------------------------

// make allocates the ring header and its slots in one block and registers the
// block as a GC root: the slots hold the pooled objects and live in memory
// the collector does not otherwise scan.
poolDequeue* poolDequeue::make(std::size_t size) {
  const std::size_t bytes = sizeof(poolDequeue) + size * sizeof(std::atomic<void*>);
  void* mem = ::operator new(bytes);
  auto* d = ::new (mem) poolDequeue(size);
  std::atomic<void*>* v = d->vals();
  for (std::size_t i = 0; i < size; i++) ::new (&v[i]) std::atomic<void*>(nullptr);
  gc_add_root(mem, bytes);
  return d;
}

void poolDequeue::destroy(poolDequeue* d) {
  if (d == nullptr) return;
  gc_remove_root(d);
  d->~poolDequeue();
  ::operator delete(static_cast<void*>(d));
}

// pushHead: the owner is alone at the head, so it only needs to check for
// room, write the slot and publish it by moving head (release: a stealer
// that sees the new head sees the value).
bool poolDequeue::pushHead(void* val) {
  const std::uint64_t ptrs = headTail_.load(std::memory_order_acquire);
  const std::uint32_t head = headOf(ptrs), tail = tailOf(ptrs);
  if (((tail + std::uint32_t(size_)) & mask) == head) return false;  // full
  std::atomic<void*>& slot = vals()[head & (size_ - 1)];
  // A stealer may have taken the tail index that maps here but not cleared
  // the slot yet: the ring is still full for us.
  if (slot.load(std::memory_order_acquire) != nullptr) return false;
  slot.store(val, std::memory_order_relaxed);
  headTail_.fetch_add(std::uint64_t(1) << dequeueBits, std::memory_order_release);
  return true;
}

// popHead: claim the head slot by moving head back with a CAS (a stealer may
// be claiming the same last element from the other end), then read it. Only
// the owner ever writes the head end, so after the CAS the slot is ours and
// clearing it races with nobody.
void* poolDequeue::popHead() {
  std::uint64_t ptrs = headTail_.load(std::memory_order_acquire);
  std::atomic<void*>* slot;
  for (;;) {
    const std::uint32_t head = headOf(ptrs), tail = tailOf(ptrs);
    if (tail == head) return nullptr;  // empty
    const std::uint32_t nh = head - 1;
    if (headTail_.compare_exchange_weak(ptrs, pack(nh, tail), std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      slot = &vals()[nh & (size_ - 1)];
      break;
    }
  }
  void* val = slot->load(std::memory_order_acquire);
  slot->store(nullptr, std::memory_order_relaxed);
  return val;
}

// popTail: claim the tail slot with a CAS that moves tail forward, then read
// it and clear it. The clear is a release store: it is what tells pushHead
// (acquire load) that the slot may be reused, after our read of it.
void* poolDequeue::popTail() {
  std::uint64_t ptrs = headTail_.load(std::memory_order_acquire);
  std::atomic<void*>* slot;
  for (;;) {
    const std::uint32_t head = headOf(ptrs), tail = tailOf(ptrs);
    if (tail == head) return nullptr;  // empty
    if (headTail_.compare_exchange_weak(ptrs, pack(head, tail + 1), std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      slot = &vals()[tail & (size_ - 1)];
      break;
    }
  }
  void* val = slot->load(std::memory_order_acquire);
  slot->store(nullptr, std::memory_order_release);
  return val;
}

// ---- poolChain ------------------------------------------------------------

poolChainElt* poolChain::newElt(std::size_t size) {
  auto* e = new poolChainElt;
  e->d = poolDequeue::make(size);
  return e;
}

void poolChain::freeElt(poolChainElt* e) {
  poolDequeue::destroy(e->d);
  delete e;
}

poolChain::~poolChain() {
  free_retired();
  for (poolChainElt* e = tail_.load(std::memory_order_relaxed); e != nullptr;) {
    poolChainElt* n = e->next.load(std::memory_order_relaxed);
    freeElt(e);
    e = n;
  }
}

// pushHead: push into the head ring; when it is full, append a ring twice its
// size and push there. The new ring's prev link is set before next publishes
// it, so a stealer that follows next finds a fully linked ring.
void poolChain::pushHead(void* val) {
  poolChainElt* d = head_;
  if (d == nullptr) {
    d = newElt(poolChainFirstSize);
    head_ = d;
    tail_.store(d, std::memory_order_release);
  }
  if (d->d->pushHead(val)) return;
  const std::size_t n = std::min(d->d->size() * 2, dequeueLimit);
  poolChainElt* d2 = newElt(n);
  d2->prev.store(d, std::memory_order_relaxed);
  d->next.store(d2, std::memory_order_release);
  head_ = d2;
  d2->d->pushHead(val);  // a fresh ring has room
}

// popHead walks from the newest ring back towards the tail. It never drops a
// ring: that is the stealers' job, at the other end.
void* poolChain::popHead() {
  for (poolChainElt* d = head_; d != nullptr; d = d->prev.load(std::memory_order_acquire)) {
    if (void* v = d->d->popHead()) return v;
  }
  return nullptr;
}

// popTail steals from the oldest ring; an empty tail ring that is no longer
// the head is dropped (moved to retired) and the next ring tried.
void* poolChain::popTail() {
  poolChainElt* d = tail_.load(std::memory_order_acquire);
  if (d == nullptr) return nullptr;
  for (;;) {
    // Load next before popping: if d is empty and next was still nullptr
    // before we looked, d really was the last ring and the chain was empty
    // at that moment; loading it after could see a ring the owner appended
    // after filling (and a stealer emptying) d, and so miss values.
    poolChainElt* d2 = d->next.load(std::memory_order_acquire);
    if (void* v = d->d->popTail()) return v;
    if (d2 == nullptr) return nullptr;
    // d is empty and the owner has moved on to d2: nothing will be pushed
    // into d again. Whoever wins this CAS unlinks and retires it; losers just
    // move on.
    poolChainElt* expect = d;
    if (tail_.compare_exchange_strong(expect, d2, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      // The owner's popHead may still walk into d through d2->prev; it finds
      // it empty. d is freed only once no pinned section can hold it.
      d2->prev.store(nullptr, std::memory_order_release);
      poolChainElt* old = retired_.load(std::memory_order_relaxed);
      do {
        d->retiredNext = old;
      } while (!retired_.compare_exchange_weak(old, d, std::memory_order_release,
                                               std::memory_order_relaxed));
    }
    d = d2;
  }
}

void poolChain::free_retired() {
  poolChainElt* e = retired_.exchange(nullptr, std::memory_order_acquire);
  while (e != nullptr) {
    poolChainElt* n = e->retiredNext;
    freeElt(e);
    e = n;
  }
}

std::size_t poolChain::count() const {
  std::size_t n = 0;
  for (poolChainElt* e = tail_.load(std::memory_order_acquire); e != nullptr;
       e = e->next.load(std::memory_order_acquire))
    n += e->d->count();
  return n;
}

std::size_t poolChain::nrings() const {
  std::size_t n = 0;
  for (poolChainElt* e = tail_.load(std::memory_order_acquire); e != nullptr;
       e = e->next.load(std::memory_order_acquire))
    n++;
  return n;
}

}  // namespace goro::detail
