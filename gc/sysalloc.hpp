// sysalloc.hpp — SysAllocator: a std allocator straight on mmap, for the
// collector's own bookkeeping while hogs are suspended.
//
// While the collector scans roots and drains, threads that lost their P to
// the preemption signal are stopped wherever they were (suspend_hogs), libc
// included: one may be stopped inside malloc or free, holding a malloc arena
// lock (free() of a block takes the lock of the arena that block came from,
// whichever thread calls it). A collector thread that called malloc on that
// arena would then wait for a thread that waits for the collector. Go's
// collector allocates its work buffers from memory the runtime maps itself
// (getempty, persistentalloc) for the same reason. goro's mark stacks and
// work batches are vectors on this allocator: mmap and munmap take no user
// space lock. They grow rarely (a worker's stack keeps its capacity from
// cycle to cycle, batches are recycled), so the system calls are few.
//
// Invariants: between suspend_hogs and resume_hogs the collector and its
// helper threads call no malloc, free or operator new (tests/gc_nomalloc_test
// checks it by interposing malloc).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <new>

namespace goro::detail {

template <class T>
struct SysAllocator {
  using value_type = T;
  SysAllocator() = default;
  template <class U>
  SysAllocator(const SysAllocator<U>&) noexcept {}

  static std::size_t round(std::size_t n) {
    const std::size_t pg = 4096;
    return (n * sizeof(T) + pg - 1) / pg * pg;
  }
  T* allocate(std::size_t n) {
    void* p = mmap(nullptr, round(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept { munmap(p, round(n)); }

  template <class U>
  bool operator==(const SysAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const SysAllocator<U>&) const noexcept { return false; }
};

}  // namespace goro::detail
