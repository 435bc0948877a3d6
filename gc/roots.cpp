// roots.cpp — the registry of extra roots: memory outside the GC heap and the
// goroutine stacks that the collector must scan all the same (gc::Root
// handles, channel buffers, sync.Pool's locals and rings). Go needs no such
// thing: its globals and its channels' buffers are scanned by type. goro's
// collector does not scan malloc memory or globals, so such memory announces
// itself here.
//
// A registration is a RootNode (goro/gc.hpp) embedded in the registrant and
// linked into one of kRootShards doubly-linked lists, each under its own
// lock. A goroutine registers in the shard of its P (P id mod kRootShards);
// a thread without a P in a shard picked by the node's address. So making
// and dropping channels or Roots on every P at once neither allocates nor
// contends: each P touches its own shard's lock and list head, and unlinking
// is O(1) wherever the node is dropped (the node remembers its shard).
//
// The collector, with the world stopped, takes every shard lock in index
// order (lockrank.hpp: rank roots, "several") and scans every node. Holding
// them all at once matters: threads outside the runtime and goroutines in
// blocking() keep running during the mark, and one of them moving a Root (a
// new node linked in shard A, then the old one cleared in shard B) must not
// slip between the scans of A and B.
//
// The keyed form (gc_add_root(p, len) / gc_remove_root(p)) is for memory
// that cannot embed a node: it allocates the node and finds it again through
// a map keyed by address (rootkeys, under its own lock, which is held while
// the node is linked or unlinked).
//
// The registry belongs to the process, not to one run(): it is constant-
// initialised (usable from static constructors, before main) and nodes stay
// linked across runs until their owner removes them.
//
// Invariants:
//   - n->linked <=> n is on the list of shard n->shard; the lists and links
//     change only under that shard's lock.
//   - Every node on a list describes memory its owner keeps valid until it
//     calls gc_root_remove.
#include <unordered_map>

#include "gc/malloc.hpp"
#include "sched/lockrank.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

namespace {

// kRootShards: enough for one shard per P on the machines goro runs on; Ps
// beyond it share.
constexpr std::uint32_t kRootShards = 64;

struct alignas(64) RootShard {
  Lock lock{LockRank::roots};
  RootNode* head = nullptr;  // GUARDED_BY(lock)
};

constinit RootShard shards[kRootShards];

// The keyed registrations: address -> its node.
constinit Lock rootkeysLock{LockRank::rootkeys};
std::unordered_map<const void*, RootNode*>* rootkeys = nullptr;  // GUARDED_BY(rootkeysLock)

std::uint32_t pick_shard(const RootNode* n) {
  if (M* m = getm(); m != nullptr && m->p != nullptr)
    return static_cast<std::uint32_t>(m->p->id) % kRootShards;
  const auto a = reinterpret_cast<std::uintptr_t>(n);
  return static_cast<std::uint32_t>((a >> 6) ^ (a >> 12)) % kRootShards;
}

}  // namespace

void gc_root_add(RootNode* n, const void* p, std::size_t len) noexcept {
  n->lo = p;
  n->len = len;
  n->shard = pick_shard(n);
  RootShard& s = shards[n->shard];
  s.lock.lock();
  n->prev = nullptr;
  n->next = s.head;
  if (s.head != nullptr) s.head->prev = n;
  s.head = n;
  n->linked = true;
  s.lock.unlock();
}

void gc_root_remove(RootNode* n) noexcept {
  if (!n->linked) return;  // never added (a noscan channel), or removed already
  RootShard& s = shards[n->shard];
  s.lock.lock();
  if (n->prev != nullptr)
    n->prev->next = n->next;
  else
    s.head = n->next;
  if (n->next != nullptr) n->next->prev = n->prev;
  n->prev = n->next = nullptr;
  n->linked = false;
  s.lock.unlock();
}

void gc_add_root(const void* p, std::size_t len) {
  std::lock_guard<Lock> lk(rootkeysLock);
  if (rootkeys == nullptr) rootkeys = new std::unordered_map<const void*, RootNode*>();
  RootNode*& n = (*rootkeys)[p];
  if (n == nullptr)
    n = new RootNode();
  else
    gc_root_remove(n);  // registered again: the new length replaces the old
  gc_root_add(n, p, len);
}

void gc_remove_root(const void* p) {
  std::lock_guard<Lock> lk(rootkeysLock);
  if (rootkeys == nullptr) return;
  auto it = rootkeys->find(p);
  if (it == rootkeys->end()) return;
  gc_root_remove(it->second);
  delete it->second;
  rootkeys->erase(it);
}

// roots_lock_all / roots_unlock_all: the collector's hold on the whole
// registry (world stopped), in index order.
void roots_lock_all() {
  for (RootShard& s : shards) s.lock.lock();
}
void roots_unlock_all() {
  for (std::uint32_t i = kRootShards; i-- > 0;) shards[i].lock.unlock();
}

// roots_for_each calls fn on every registered range (every shard locked).
void roots_for_each(const std::function<void(std::uintptr_t lo, std::uintptr_t hi)>& fn) {
  for (RootShard& s : shards) {
    for (const RootNode* n = s.head; n != nullptr; n = n->next) {
      const auto lo = reinterpret_cast<std::uintptr_t>(n->lo);
      fn(lo, lo + n->len);
    }
  }
}

}  // namespace goro::detail
