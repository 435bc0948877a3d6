// pool.hpp — sync.Pool's internal structures (Go's sync/pool.go), shared by
// pool/pool.cpp, the tests and the benchmarks. The essay and the invariants
// are at the top of pool.cpp.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "goro/pool.hpp"
#include "pool/poolqueue.hpp"

namespace goro::detail {

// poolLocalInternal is one P's part of one pool.
struct poolLocalInternal {
  // private is used only by the goroutine pinned to this P. Atomic (relaxed)
  // only so that a collector scanning roots concurrently is not a data race.
  std::atomic<void*> private_{nullptr};
  // shared: the owner P pushes/pops at the head, any P steals at the tail.
  poolChain shared;
};

// poolLocal pads poolLocalInternal to a multiple of 128 bytes, so two Ps'
// locals never share a cache line (nor an adjacent-line prefetch pair).
struct alignas(128) poolLocal : poolLocalInternal {};
static_assert(sizeof(poolLocal) % 128 == 0);

// pool is the type-erased goro::Pool<T>.
struct pool {
  // local is the per-P array, indexed by P id; localSize its length. Stored
  // local first, localSize second (both release); pin loads localSize first
  // (acquire), so the array it then loads is at least that long.
  std::atomic<poolLocal*> local{nullptr};
  std::atomic<std::size_t> localSize{0};

  // victim is the previous cycle's local, victimSize its length as Get sees
  // it (set to 0 once Get finds the victim empty), victimLen its real length
  // (for freeing). Written only by poolCleanup, with the world stopped, and
  // by getSlow's victimSize = 0.
  std::atomic<poolLocal*> victim{nullptr};
  std::atomic<std::size_t> victimSize{0};
  std::size_t victimLen = 0;

  // Guarded by poolsLock (pool.cpp):
  bool inAllPools = false;  // listed in allPools
  bool inOldPools = false;  // listed in oldPools
  struct retiredLocals {    // locals arrays replaced by a larger one
    poolLocal* l;
    std::size_t n;
    retiredLocals* next;
  }* retired = nullptr;
};

// getSource says which step of Get produced the value (demo and tests).
enum class getSource { privateSlot, shared, steal, victimPrivate, victimShared, none };
const char* getSourceName(getSource s);
void* pool_get_traced(pool* p, getSource* src);

// poolCleanup is the GC cleanup hook: drop the victims, move every primary
// cache to the victim. The world must be stopped.
void poolCleanup();

// ---- test and benchmark hooks ---------------------------------------------


// pool_cleanup_stw_for_test stops the world, runs poolCleanup and starts the
// world: one GC cycle as far as pools are concerned, without the collector.
// Call it on a goroutine.
void pool_cleanup_stw_for_test();
// pool_set_victim_enabled_for_test(false): poolCleanup drops the primary
// caches instead of keeping them as victims (pool_expensive_new's baseline).
void pool_set_victim_enabled_for_test(bool on);
// pool_counts_for_test: the lengths of allPools and oldPools.
void pool_counts_for_test(std::size_t* all, std::size_t* old);

}  // namespace goro::detail
