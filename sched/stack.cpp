// stack.cpp — the slab stack allocator. See stack.hpp.
#include "sched/stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <cstdlib>

#include "sched/sanitizers.hpp"

#if GORO_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13; glibc headers may not have it yet
#endif

namespace goro::detail {

namespace {

// Whether the kernel accepted MADV_GUARD_INSTALL; decided by the first try.
enum class GuardMode { unknown, madvise, mprotect };
std::atomic<GuardMode> guard_mode{GuardMode::unknown};

std::size_t page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

void install_guard(char* at, std::size_t len) {
  GuardMode mode = guard_mode.load(std::memory_order_relaxed);
  if (mode != GuardMode::mprotect) {
    if (madvise(at, len, MADV_GUARD_INSTALL) == 0) {
      guard_mode.store(GuardMode::madvise, std::memory_order_relaxed);
      return;
    }
    guard_mode.store(GuardMode::mprotect, std::memory_order_relaxed);
  }
  if (mprotect(at, len, PROT_NONE) != 0) {
    std::fprintf(stderr, "fatal error: cannot install stack guard page: mprotect: errno %d\n",
                 errno);
    std::fprintf(stderr, "(is vm.max_map_count too low for this many goroutines?)\n");
    std::_Exit(2);
  }
}

}  // namespace

std::size_t StackAllocator::default_size() {
  // Sanitizers make frames several times larger (redzones, shadow frames).
  return (GORO_ASAN || GORO_TSAN) ? 256 * 1024 : 64 * 1024;
}

void StackAllocator::init(std::size_t stack_size, std::size_t g_size) {
  const std::size_t pg = page_size();
  if (stack_size == 0) stack_size = default_size();
  if (stack_size < 16 * 1024) stack_size = 16 * 1024;
  stack_size = (stack_size + pg - 1) / pg * pg;
  guard_ = pg;
  slot_ = guard_ + stack_size;
  // About 16 MiB a slab: few enough mappings for a million goroutines, small
  // enough that a small program reserves little.
  std::size_t per = (16u << 20) / slot_;
  if (per < 4) per = 4;
  gsize_ = (g_size + 63) / 64 * 64;
  gtable_ = (per * gsize_ + pg - 1) / pg * pg;
  slab_ = gtable_ + per * slot_;
  table_.assign(kMaxSlabs, nullptr);
  ntable_.store(0, std::memory_order_relaxed);
}

void StackAllocator::new_slab() {
  // MAP_NORESERVE: only touched pages count; a million 64 KiB stacks reserve
  // 68 GB of address space but commit what they use.
  void* p = mmap(nullptr, slab_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "fatal error: out of memory allocating goroutine stacks (mmap errno %d)\n",
                 errno);
    std::_Exit(2);
  }
  gnext_ = static_cast<char*>(p);
  next_ = gnext_ + gtable_;
  end_ = gnext_ + slab_;
#if GORO_ASAN
  // The kernel may hand back addresses an earlier run's stacks used; ASan's
  // shadow of them still holds that run's redzones.
  __asan_unpoison_memory_region(gnext_, slab_);
#endif
  mapped_ += slab_;
  slabs_.emplace_back(gnext_, slab_);
  const std::size_t n = ntable_.load(std::memory_order_relaxed);
  if (n < kMaxSlabs) {
    table_[n] = gnext_;
    ntable_.store(n + 1, std::memory_order_release);
  }
}

char* StackAllocator::alloc(void** g_mem) {
  std::lock_guard<Lock> lk(mu_);
  if (next_ == end_) new_slab();
  char* slot = next_;
  next_ += slot_;
  *g_mem = gnext_;
  gnext_ += gsize_;
  install_guard(slot, guard_);
  return slot;
}

bool StackAllocator::in_guard(const void* addr) const {
  const char* a = static_cast<const char*>(addr);
  const std::size_t n = ntable_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; i++) {
    const char* base = table_[i];
    if (a >= base + gtable_ && a < base + slab_)
      return static_cast<std::size_t>(a - base - gtable_) % slot_ < guard_;
  }
  return false;
}

void StackAllocator::release_all() {
  std::lock_guard<Lock> lk(mu_);
  for (auto& [base, len] : slabs_) {
#if GORO_ASAN
    __asan_unpoison_memory_region(base, len);
#endif
    munmap(base, len);
  }
  slabs_.clear();
  gnext_ = next_ = end_ = nullptr;
  mapped_ = 0;
  ntable_.store(0, std::memory_order_release);
}

}  // namespace goro::detail
