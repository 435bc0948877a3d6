// poolqueue.hpp — the lock-free queues behind each P's shared pool cache
// (Go's sync/poolqueue.go): poolDequeue, a fixed-size ring with one producer
// and many consumers, and poolChain, a list of such rings that grows.
//
// Glossary:
//   head      the end the owner P pushes to and pops from (pushHead/popHead).
//   tail      the end other Ps steal from (popTail).
//   headTail  head and tail packed into one 64-bit atomic, so that one
//             compare-and-swap moves either end and sees the other end at
//             the same instant. head is the high 32 bits, tail the low 32;
//             both count up forever and are reduced mod the ring size.
//   slot      one ring entry, nullptr when free. Pool never stores nullptr
//             (Put ignores it), so nullptr can mean "empty" — Go needs a
//             dequeueNil sentinel here because an interface can be nil.
//
// Design. The owner is the goroutine pinned to the P that owns the local;
// being pinned, it is alone at the head. Stealers race each other at the tail
// and race the owner only for the last element, which the CAS on headTail
// settles. A stealer that wins the CAS for slot i still has to read the slot
// and clear it; until it clears it the owner must not reuse the slot, so
// pushHead treats a non-null slot at head as "full" (Go does the same).
//
// poolChain links rings from tail (oldest, where stealers drain) to head
// (newest, where the owner pushes). When the head ring is full the owner
// appends a ring twice as large (8, 16, ... up to dequeueLimit), so a burst of
// Puts costs O(log n) allocations and a steady state none. Stealers drop a
// tail ring that is empty and no longer the head.
//
// Rejected: a mutex-protected deque per P (Go 1.12 and earlier: every Get
// contended with stealers for the lock); one unbounded ring that is copied
// when it grows (a stealer would need to know which copy is current).
//
// Reclamation. Go lets the GC free a dropped ring. goro's rings live in
// malloc memory (registered as GC roots so the collector sees the values in
// them), so a dropped ring is put on the chain's `retired` list and freed
// later, when no goroutine can still be reading it: every ring access happens
// inside a pinned section, and a stop-the-world waits for all pinned sections
// to end, so poolCleanup (world stopped) frees retired rings safely — the
// stop-the-world is the grace period.
//
// Invariants:
//   - Only the owner P's pinned goroutine calls pushHead/popHead; any pinned
//     goroutine may call popTail.
//   - A slot is non-null exactly from the pushHead that fills it to the pop
//     that clears it; pushHead never overwrites a non-null slot.
//   - 0 <= head - tail <= size (mod 2^32), size a power of two <= dequeueLimit.
//   - Every ring is registered with gc_add_root (goro/gc.hpp) from allocation to free.
//   - A ring on `retired` is unreachable from tail/next/prev and empty; it is
//     freed only with the world stopped or by the chain's destructor.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace goro::detail {

inline constexpr unsigned dequeueBits = 32;
// dequeueLimit is the largest ring: a quarter of the index space, so that
// head - tail can never be confused with a wrapped-around difference (Go's
// value).
inline constexpr std::size_t dequeueLimit = (std::size_t(1) << dequeueBits) / 4;
// poolChainFirstSize is the first ring's size (Go: 8; 2 with the
// small_queues build option, so a chain grows at its third put).
#if GORO_SMALL_QUEUES
inline constexpr std::size_t poolChainFirstSize = 2;
#else
inline constexpr std::size_t poolChainFirstSize = 8;
#endif

// poolDequeue is a lock-free fixed-size single-producer multi-consumer ring
// of non-null void*. Allocate with make, free with destroy (its slots follow
// it in the same allocation).
class poolDequeue {
 public:
  static poolDequeue* make(std::size_t size);  // size: a power of two
  static void destroy(poolDequeue* d);

  // pushHead adds val at the head; false if the ring is full. Owner only.
  bool pushHead(void* val);
  // popHead removes and returns the head value, nullptr if empty. Owner only.
  void* popHead();
  // popTail removes and returns the tail value, nullptr if empty. Any P.
  void* popTail();

  std::size_t size() const { return size_; }
  // count is how many values it holds (pooltrace; exact with the world stopped).
  std::size_t count() const {
    const std::uint64_t ht = headTail_.load(std::memory_order_acquire);
    const std::uint64_t mask = (std::uint64_t(1) << dequeueBits) - 1;
    return static_cast<std::size_t>(((ht >> dequeueBits) - (ht & mask)) & mask);
  }

 private:
  explicit poolDequeue(std::size_t size) : size_(size) {}
  static std::uint64_t pack(std::uint32_t head, std::uint32_t tail) {
    return (std::uint64_t(head) << dequeueBits) | tail;
  }
  std::atomic<void*>* vals() { return reinterpret_cast<std::atomic<void*>*>(this + 1); }

  std::atomic<std::uint64_t> headTail_{0};
  std::size_t size_;
};

// poolChainElt is one ring of a chain with its links. next is written by the
// owner (when it appends a ring) and read by stealers; prev is written by
// the owner and cleared by the stealer that drops the ring before it.
struct poolChainElt {
  poolDequeue* d = nullptr;
  std::atomic<poolChainElt*> next{nullptr};
  std::atomic<poolChainElt*> prev{nullptr};
  poolChainElt* retiredNext = nullptr;  // link on poolChain::retired
};

// poolChain is a dynamically sized poolDequeue: the same single-producer
// multi-consumer contract, never full.
class poolChain {
 public:
  poolChain() = default;
  poolChain(const poolChain&) = delete;
  poolChain& operator=(const poolChain&) = delete;
  ~poolChain();  // frees every ring; no concurrent user may remain

  void pushHead(void* val);  // owner only
  void* popHead();           // owner only
  void* popTail();           // any P

  // free_retired frees the rings stealers dropped. Call with the world
  // stopped (or with no other user of the chain).
  void free_retired();

  // nrings counts the live rings, tail to head (tests; no concurrent user).
  std::size_t nrings() const;
  // count is how many values the chain holds (pooltrace; no concurrent user).
  std::size_t count() const;

 private:
  static poolChainElt* newElt(std::size_t size);
  static void freeElt(poolChainElt* e);

  poolChainElt* head_ = nullptr;              // owner only
  std::atomic<poolChainElt*> tail_{nullptr};  // stealers advance it
  std::atomic<poolChainElt*> retired_{nullptr};
};

}  // namespace goro::detail
