// stack.hpp — goroutine stacks: Go's runtime/stack.go, for fixed-size stacks.
//
// Go grows stacks by copying; C++ frames hold raw pointers into their own
// stack, so goro's stacks cannot move and are fixed-size (Options.stack_size,
// 64 KiB by default). They are reserved, not committed: the kernel backs a
// page only when it is first touched, so a goroutine that uses 3 KiB of its
// 64 KiB costs one page.
//
// The layout of one slab (stacks grow down):
//
//     | G table: one G per slot | slot 0 | slot 1 | ... | slot n-1 |
//     slot i:  | guard page | stack .......................  | closure |
//                                                                    lo → hi
//
// Slot i's G is entry i of the table at the start of its slab, not the top
// of its stack: the run queues and free lists walk Gs by their schedlink,
// and a walk over a million goroutines (spawn's global queue, a free-list
// refill) then reads a few dense pages instead of one cold page and TLB
// entry per G. (The Gs used to live at the tops of their slots; spawn spent
// 40 % of its time in those walks.) Slots are carved from slabs of many
// slots (one mmap each): a mapping per stack would hit vm.max_map_count
// (65530) at about 32k goroutines. Guard pages are installed with
// MADV_GUARD_INSTALL (Linux 6.13+), which does not split the mapping; older
// kernels fall back to mprotect(PROT_NONE), which splits it, so there the
// count of goroutines that can ever exist is bounded by vm.max_map_count / 2
// (the README says so).
//
// Slots are never returned one by one: a dead G keeps its stack and goes to a
// free list (gFree), as in Go, and all slabs are unmapped when run() ends.
//
// Invariants: slot_size = guard + stack_size, both multiples of the page
// size; every slot handed out has its guard installed; a slab is gtable
// bytes (a multiple of the page size) and then per-slab slots; slot i's G
// record is gsize bytes at gtable offset i * gsize.
#pragma once

#include <cstddef>
#include <atomic>
#include <vector>

#include "sched/lockrank.hpp"

namespace goro::detail {

class StackAllocator {
 public:
  // init fixes the stack size (rounded up to pages, at least 16 KiB) and
  // the size of a G record (a multiple of 64).
  void init(std::size_t stack_size, std::size_t g_size);
  // alloc returns a fresh slot's lowest address and, in *g_mem, the memory
  // for its G; the usable stack is [slot + guard(), slot + slot_size()).
  char* alloc(void** g_mem);
  // guarded reports whether addr lies in the guard page of some slot, and
  // if so the slot's base. Used by the SIGSEGV handler (async-signal-safe:
  // reads only immutable slab bounds).
  bool in_guard(const void* addr) const;
  void release_all();

  std::size_t guard() const { return guard_; }
  std::size_t slot_size() const { return slot_; }
  std::size_t stack_size() const { return slot_ - guard_; }
  std::size_t mapped_bytes() const { return mapped_; }
  static std::size_t default_size();

 private:
  void new_slab();

  Lock mu_{LockRank::stackalloc};  // guards the fields below
  std::size_t guard_ = 0;
  std::size_t slot_ = 0;
  std::size_t slab_ = 0;
  std::size_t gsize_ = 0;   // bytes per G record
  std::size_t gtable_ = 0;  // bytes of G table at the start of each slab
  char* gnext_ = nullptr;   // the next slot's G record
  char* next_ = nullptr;
  char* end_ = nullptr;
  std::size_t mapped_ = 0;
  std::vector<std::pair<char*, std::size_t>> slabs_;
  // For the signal handler: slabs are appended to a fixed table published
  // with a release store, so in_guard never takes mu_.
  static constexpr std::size_t kMaxSlabs = 1 << 16;
  std::vector<char*> table_;
  std::atomic<std::size_t> ntable_{0};
};

}  // namespace goro::detail
