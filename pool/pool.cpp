// pool.cpp — sync.Pool (Go's sync/pool.go): per-P caches of reusable
// objects, emptied over two garbage-collection cycles.
//
// Glossary:
//   P             a processor (sched/runtime2.hpp): a goroutine runs only
//                 while its M holds a P; P ids are 0..GOMAXPROCS-1.
//   pin           Go's procPin: here the runtime-entry guard every Get and
//                 Put opens (Entry, sched/proc.hpp), which raises m.locks:
//                 the goroutine stays on its P and cannot be preempted, and
//                 no stop-the-world can begin, until it closes (unpin).
//   poolLocal     one P's cache in one pool: a `private` slot and a `shared`
//                 poolChain (pool/poolqueue.hpp). pool.local is an array of
//                 them indexed by P id.
//   victim        the previous cycle's local array: what survived one GC.
//   allPools      pools with a non-empty primary cache (local != nullptr).
//   oldPools      pools with a victim cache.
//   poolCleanup   the GC cleanup hook: at the start of every cycle, with the
//                 world stopped, drop the victims and demote every primary
//                 cache to victim. An object put and not taken back therefore
//                 survives one cycle (in the victim) and is gone after two.
//
// Get looks, in order, at: this P's private slot; this P's shared chain
// (popHead, newest first, for locality); the other Ps' shared chains (popTail,
// starting at the P after ours); the victim (our private, then every shared);
// and finally calls New. Put fills the private slot if it is empty, else
// pushes on this P's shared chain. All of it runs pinned: the P cannot change
// under us, so private needs no synchronisation at all, and the world cannot
// stop half-way, so poolCleanup never sees a pool mid-operation.
//
// pin is the fast path: the Entry, then localSize (acquire) and local
// (acquire), in that order; pinSlow stores them in the opposite order, so a
// pinned goroutine always sees an array at least localSize long. If our P id
// is beyond localSize — first use, the cycle just cleared local, or
// GOMAXPROCS grew — pinSlow takes poolsLock, lists the pool in allPools and
// allocates a local array of GOMAXPROCS entries.
//
// What differs from Go, and why:
//   - Go takes allPoolsMu (a sync.Mutex, which may park) with the goroutine
//     unpinned, then pins. poolsLock is a runtime Lock (a futex, never parks
//     the goroutine) and is only ever held while pinned (or by poolCleanup,
//     with the world stopped, when nobody is pinned). A holder can therefore
//     never be stopped by a stop-the-world while another pinned goroutine
//     waits for it — the deadlock a futex lock taken unpinned would allow.
//   - Go's locals and rings are GC objects reachable from the allPools
//     global. goro's collector does not scan malloc memory or globals, so
//     every locals array and every ring registers itself as a GC root when
//     allocated and unregisters when freed (gc_add_root, goro/gc.hpp).
//   - Go drops a replaced locals array and lets the GC free it. Here a
//     replaced array (GOMAXPROCS grew) may still be in use by a goroutine
//     pinned on another P, so it goes on pool.retired and poolCleanup frees it
//     with the world stopped: no pinned section can span a stop-the-world, so
//     that is the grace period. Dropped rings are retired the same way.
//   - The cleanup hook is registered on first use of any pool (Go registers
//     in sync's init): static initialisation order across files would
//     otherwise decide whether the collector's hook list exists yet.
//   - A Pool is a C++ object with a destructor: pool_delete unlists it under
//     poolsLock, pinned, so poolCleanup (world stopped) sees it either fully
//     listed or not at all.
//
// Rejected: a global lock per pool (every Get contends); thread-local caches
// (goroutines migrate between threads; a P is the unit that runs one
// goroutine at a time, which is what makes the private slot lock-free).
//
// Invariants:
//   - pool.local[i].private_ and the head end of pool.local[i].shared are
//     touched only by the goroutine pinned to P i (or with the world stopped).
//   - local, localSize, victim, victimSize change only under poolsLock while
//     pinned (pinSlow, pool_delete) or with the world stopped (poolCleanup);
//     the one exception is getSlow's victimSize = 0, a benign pinned store.
//   - pool.inAllPools <=> the pool is in allPools <=> local != nullptr (the
//     array is allocated only after listing). Same for oldPools and victim.
//   - Every locals array, and every ring in it, is a registered GC root from
//     allocation to free; arrays and rings are freed only with the world
//     stopped or by pool_delete.
//   - poolsLock has its own rank, pool (the order is the table in
//     sched/lockrank.hpp): it is taken with no other runtime lock held,
//     except in poolCleanup, which runs under the collector's noplock and
//     hooks lock; under it only malloc and the root registry's locks are
//     taken.
#include "pool/pool.hpp"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <mutex>
#include <new>
#include <vector>

#include <optional>

#include "goro/gc.hpp"
#include "goro/runtime.hpp"
#include "sched/lockrank.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

namespace goro::detail {

namespace {

// poolsLock guards allPools, oldPools, every pool's inAllPools/inOldPools and
// retired list, and the writes of local/localSize in pinSlow. Rank pool
// (sched/lockrank.hpp).
Lock poolsLock{LockRank::pool};
std::vector<pool*> allPools;  // GUARDED_BY(poolsLock)
std::vector<pool*> oldPools;  // GUARDED_BY(poolsLock)
std::once_flag cleanupOnce;   // poolCleanup registered with the collector
std::atomic<bool> victimEnabled{true};

poolLocal* indexLocal(poolLocal* l, std::size_t i) {
  return l + i;
}

// allocLocals allocates n poolLocals and registers them as a GC root (their
// private slots hold pooled objects).
poolLocal* allocLocals(std::size_t n) {
  auto* l = new poolLocal[n];
  gc_add_root(l, n * sizeof(poolLocal));
  return l;
}

// freeLocals frees an array and all its rings. No goroutine may be using it.
void freeLocals(poolLocal* l, std::size_t n) {
  (void)n;
  if (l == nullptr) return;
  gc_remove_root(l);
  delete[] l;  // ~poolChain frees the rings, retired ones included
}

void freeRetiredLocals(pool* p) {
  for (pool::retiredLocals* r = p->retired; r != nullptr;) {
    pool::retiredLocals* n = r->next;
    freeLocals(r->l, r->n);
    delete r;
    r = n;
  }
  p->retired = nullptr;
}

// pin is Go's runtime_procPin: here, the runtime-entry guard every Get and
// Put opens (Entry, sched/proc.hpp). While it is open m.locks is raised: no
// preemption, no stop-the-world, no move to another P, so the P id indexes
// local[] safely; opening it is the safepoint a pending stop-the-world or a
// lost P (the preemption signal) is waited for. Go's sync calls procPin
// directly for the same reason: on the Get/Put fast path the saved calls
// are most of the cost.
inline int procPin(Entry& e) {
  return e.entered_m()->p->id;
}

void unlist(std::vector<pool*>& v, pool* p) {
  v.erase(std::remove(v.begin(), v.end(), p), v.end());
}

// pinSlow is pin's slow path: list the pool in allPools and (re)allocate its
// locals. Called pinned; returns pinned, with *pid the (possibly new) P id.
poolLocal* pinSlow(pool* p, int* pid) {
  // (Go unpins here to take allPoolsMu, a goroutine-blocking mutex; poolsLock
  // is a runtime Lock, taken pinned, so we stay on our P.)
  // Register poolCleanup with the collector, once per process. Not under
  // poolsLock: the collector runs hooks holding its hook lock, and the hook
  // takes poolsLock. (Pinned, it cannot meet a running hook anyway: hooks run
  // with the world stopped.)
  std::call_once(cleanupOnce, [] { gc::register_cleanup([] { poolCleanup(); }); });
  std::lock_guard<Lock> lk(poolsLock);
  const std::size_t s = p->localSize.load(std::memory_order_relaxed);
  poolLocal* l = p->local.load(std::memory_order_relaxed);
  if (std::size_t(*pid) < s) return indexLocal(l, std::size_t(*pid));  // another P did it
  if (!p->inAllPools) {
    allPools.push_back(p);
    p->inAllPools = true;
  }
  // GOMAXPROCS cannot change while we are pinned (it needs the world
  // stopped), so this size covers our P id.
  const std::size_t size = std::size_t(rt()->gomaxprocs.load(std::memory_order_relaxed));
  poolLocal* nl = allocLocals(size);
  if (l != nullptr) p->retired = new pool::retiredLocals{l, s, p->retired};
  p->local.store(nl, std::memory_order_release);
  p->localSize.store(size, std::memory_order_release);
  return indexLocal(nl, std::size_t(*pid));
}

// pin returns the pinned goroutine's poolLocal and P id (the caller holds
// the Entry, which is the pin).
inline poolLocal* pin(pool* p, Entry& e, int* pid) {
  const int id = procPin(e);
  *pid = id;
  // Load order matters: localSize first. See the essay.
  const std::size_t s = p->localSize.load(std::memory_order_acquire);
  poolLocal* l = p->local.load(std::memory_order_acquire);
  // Index with id, not *pid: pinSlow takes pid's address, and a reload
  // through memory would put a store-to-load forward on the hot path.
  if (std::size_t(id) < s) return indexLocal(l, std::size_t(id));
  return pinSlow(p, pid);
}

// getSlow: steal from the other Ps, then try the victim. Pinned.
void* getSlow(pool* p, int pid, getSource* src, int* stealP) {
  std::size_t size = p->localSize.load(std::memory_order_acquire);
  poolLocal* locals = p->local.load(std::memory_order_acquire);
  // Steal, starting with the P after ours so that stealers spread out.
  for (std::size_t i = 0; i < size; i++) {
    poolLocal* l = indexLocal(locals, (std::size_t(pid) + i + 1) % size);
    if (void* x = l->shared.popTail()) {
      *src = getSource::steal;
      if (stealP != nullptr) *stealP = static_cast<int>((std::size_t(pid) + i + 1) % size);
      return x;
    }
  }
  // The victim, the same way. victim's private slot of our P id is ours as
  // much as the primary one is.
  size = p->victimSize.load(std::memory_order_acquire);
  if (std::size_t(pid) >= size) return nullptr;
  locals = p->victim.load(std::memory_order_acquire);
  poolLocal* l = indexLocal(locals, std::size_t(pid));
  if (void* x = l->private_.load(std::memory_order_relaxed)) {
    l->private_.store(nullptr, std::memory_order_relaxed);
    *src = getSource::victimPrivate;
    return x;
  }
  for (std::size_t i = 0; i < size; i++) {
    l = indexLocal(locals, (std::size_t(pid) + i) % size);
    if (void* x = l->shared.popTail()) {
      *src = getSource::victimShared;
      return x;
    }
  }
  // The victim is empty: later Gets skip it until the next cycle refills it.
  p->victimSize.store(0, std::memory_order_relaxed);
  return nullptr;
}

}  // namespace

const char* getSourceName(getSource s) {
  switch (s) {
    case getSource::privateSlot: return "private";
    case getSource::shared: return "shared";
    case getSource::steal: return "steal";
    case getSource::victimPrivate: return "victim private";
    case getSource::victimShared: return "victim shared";
    case getSource::none: return "none (New)";
  }
  return "?";
}

pool* pool_new() {
  return new pool;
}

// pool_delete unlists p and frees its caches. Pinned (on a goroutine) so that
// no stop-the-world, hence no poolCleanup, runs while p is half-unlisted; the
// caller guarantees nobody else still uses p.
void pool_delete(pool* p) {
  if (p == nullptr) return;
  // Pinned when on a goroutine; a Pool destroyed outside the runtime has
  // nothing to pin against.
  std::optional<Entry> pinned;
  if (getg() != nullptr) pinned.emplace("goro::Pool destructor");
  poolLocal* l;
  std::size_t ln;
  poolLocal* v;
  std::size_t vn;
  {
    std::lock_guard<Lock> lk(poolsLock);
    if (p->inAllPools) unlist(allPools, p);
    if (p->inOldPools) unlist(oldPools, p);
    p->inAllPools = p->inOldPools = false;
    l = p->local.exchange(nullptr, std::memory_order_relaxed);
    ln = p->localSize.exchange(0, std::memory_order_relaxed);
    v = p->victim.exchange(nullptr, std::memory_order_relaxed);
    vn = p->victimLen;
    p->victimSize.store(0, std::memory_order_relaxed);
    p->victimLen = 0;
  }
  pinned.reset();
  freeLocals(l, ln);
  freeLocals(v, vn);
  freeRetiredLocals(p);
  delete p;
}

// getImpl is Get; Trace: record which step served it (the demo's and the
// tests' pool_get_traced), compiled out of the plain pool_get.
template <bool Trace>
inline void* getImpl(pool* p, getSource* src, int* pidOut = nullptr, int* stealP = nullptr) {
  Entry e("goro::Pool::get");
  if (e.entered_m()->p == nullptr) [[unlikely]] {
    // Inside a blocking() call the goroutine has no P, so no local pool: the
    // caller gets New's object, as from an empty pool.
    if (Trace) *src = getSource::none;
    return nullptr;
  }
  int pid;
  poolLocal* l = pin(p, e, &pid);
  if (Trace && pidOut != nullptr) *pidOut = pid;
  if (Trace) *src = getSource::privateSlot;
  void* x = l->private_.load(std::memory_order_relaxed);
  if (x != nullptr) {
    l->private_.store(nullptr, std::memory_order_relaxed);
  } else {
    if (Trace) *src = getSource::shared;
    x = l->shared.popHead();
    if (x == nullptr) {
      getSource ignored;
      x = getSlow(p, pid, Trace ? src : &ignored, Trace ? stealP : nullptr);
    }
  }
  if (Trace && x == nullptr) *src = getSource::none;
  return x;
}

void* pool_get_traced(pool* p, getSource* src) {
  return getImpl<true>(p, src);
}

// pool_get_logged is Get with GORO_DEBUG=pooltrace=1 or GORO_TRACE on: one
// stderr line (pooltrace) and one trace event saying which step served it.
[[gnu::noinline]] void* pool_get_logged(pool* p) {
  getSource src = getSource::none;
  int pid = -1, stealP = -1;
  void* x = getImpl<true>(p, &src, &pid, &stealP);
  const char* from = src == getSource::none ? "New" : getSourceName(src);
  if (pooltrace_on) {
    if (src == getSource::steal)
      std::fprintf(stderr, "pooltrace: Get pool=%p P%d served by stolen from P%d\n", static_cast<void*>(p), pid,
                   stealP);
    else
      std::fprintf(stderr, "pooltrace: Get pool=%p P%d served by %s\n", static_cast<void*>(p), pid, from);
  }
  if (trace_on) {
    G* g = getg();
    trace_emit(TraceKind::pool_get, g != nullptr ? g->goid : 0, pid,
               static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(p)), stealP, 0, from);
  }
  return x;
}

void* pool_get(pool* p) {
  if (pool_events) [[unlikely]]
    return pool_get_logged(p);
  return getImpl<false>(p, nullptr);
}

void pool_put(pool* p, void* x) {
#if !GORO_TSAN
  // Not under TSan: gc_is_object_start reads the span's allocBits word while
  // the owning P may be allocating a neighbour in the same word (gc/mgc.cpp;
  // benign for our own, already-set bit, but a data race to TSan).
  assert(gc_is_object_start(x) && "goro::Pool::put: x does not come from goro::gc::make");
#endif
  Entry e("goro::Pool::put");
  if (e.entered_m()->p == nullptr) [[unlikely]]
    return;  // no P (inside blocking()): dropped, as Go may
  int pid;
  poolLocal* l = pin(p, e, &pid);
  if (l->private_.load(std::memory_order_relaxed) == nullptr)
    l->private_.store(x, std::memory_order_relaxed);
  else
    l->shared.pushHead(x);
}

// poolCleanup runs at the start of every GC cycle with the world stopped:
// nobody is pinned, so nobody is inside Get or Put. poolsLock is free in the
// normal case (it is only held pinned); taking it covers a Pool destroyed on
// a thread outside the runtime.
namespace {

// localsCount counts the objects in n locals (pooltrace, world stopped).
std::size_t localsCount(poolLocal* l, std::size_t n) {
  std::size_t c = 0;
  for (std::size_t i = 0; l != nullptr && i < n; i++)
    c += (l[i].private_.load(std::memory_order_relaxed) != nullptr) + l[i].shared.count();
  return c;
}

}  // namespace

void poolCleanup() {
  std::lock_guard<Lock> lk(poolsLock);
  const bool events = pool_events;
  const std::size_t nall = allPools.size(), nold = oldPools.size();
  std::size_t moved = 0, dropped = 0;
  if (events) {
    for (pool* p : oldPools) dropped += localsCount(p->victim.load(std::memory_order_relaxed), p->victimLen);
    for (pool* p : allPools) {
      const std::size_t c =
          localsCount(p->local.load(std::memory_order_relaxed), p->localSize.load(std::memory_order_relaxed));
      (victimEnabled.load(std::memory_order_relaxed) ? moved : dropped) += c;
    }
    if (pooltrace_on)
      std::fprintf(stderr, "pooltrace: poolCleanup allPools=%zu oldPools=%zu moved-to-victim=%zu dropped=%zu\n",
                   nall, nold, moved, dropped);
    if (trace_on) {
      G* g = getg();
      trace_emit(TraceKind::pool_cleanup, g != nullptr ? g->goid : 0, -1, static_cast<std::int64_t>(nall),
                 static_cast<std::int64_t>(nold), static_cast<std::int64_t>(moved), nullptr, 0,
                 static_cast<std::int64_t>(dropped));
    }
  }
  // Drop the victims of the previous cycle: whatever nobody took back in a
  // whole cycle is garbage now (the collector frees it if nothing else holds
  // it).
  for (pool* p : oldPools) {
    freeLocals(p->victim.exchange(nullptr, std::memory_order_relaxed), p->victimLen);
    p->victimSize.store(0, std::memory_order_relaxed);
    p->victimLen = 0;
    p->inOldPools = false;
  }
  oldPools.clear();
  // Demote every primary cache to victim.
  const bool keep = victimEnabled.load(std::memory_order_relaxed);
  for (pool* p : allPools) {
    poolLocal* l = p->local.exchange(nullptr, std::memory_order_relaxed);
    const std::size_t n = p->localSize.exchange(0, std::memory_order_relaxed);
    freeRetiredLocals(p);  // the stop-the-world is their grace period
    p->inAllPools = false;
    if (!keep) {
      freeLocals(l, n);
      continue;
    }
    for (std::size_t i = 0; i < n; i++) l[i].shared.free_retired();
    p->victim.store(l, std::memory_order_relaxed);
    p->victimSize.store(n, std::memory_order_relaxed);
    p->victimLen = n;
    p->inOldPools = true;
    oldPools.push_back(p);
  }
  allPools.clear();
}

void pool_cleanup_stw_for_test() {
  stop_the_world("pool cleanup (test)");
  poolCleanup();
  start_the_world();
}

void pool_set_victim_enabled_for_test(bool on) {
  victimEnabled.store(on, std::memory_order_relaxed);
}

void pool_counts_for_test(std::size_t* all, std::size_t* old) {
  std::lock_guard<Lock> lk(poolsLock);
  *all = allPools.size();
  *old = oldPools.size();
}

}  // namespace goro::detail
