// mdirty.hpp — which heap pages were written since a given moment: the
// kernel's userfaultfd write-protection in asynchronous mode, read back with
// PAGEMAP_SCAN (Linux 6.7 and later). This is how goro's concurrent mark
// learns what the program changed behind the markers' backs, without a
// compiler-inserted write barrier (Go has one; C++ has none).
//
// How it works:
//   - dirty_init registers the whole arena with a userfaultfd in write-protect
//     mode, asking for WP_ASYNC: a write to a protected page does not stop
//     the writer for a handler (there is none); the kernel just clears the
//     page's protection, which is exactly the "written" bit we want. A write
//     by the kernel itself (read(2) into a heap buffer) works the same way:
//     nothing in the program has to know.
//   - dirty_protect starts a tracking period: every page in the range reads
//     as clean from then on.
//   - dirty_for_each reports the pages written since, as address ranges
//     (PAGEMAP_SCAN with category PAGE_IS_WRITTEN); with reprotect it also
//     protects them again in the same walk, starting a new period for them,
//     so no write between "report" and "protect again" is lost.
//   - A page the program never touched, or one returned to the OS, reads as
//     zeros: it holds no pointer, and is rightly never reported. A page
//     written after that is populated unprotected, so it is reported.
//
// Where userfaultfd is missing or forbidden (an older kernel, a sandbox,
// vm.unprivileged_userfaultfd with a kernel that lacks UFFD_USER_MODE_ONLY),
// dirty_init says why and the collector keeps its whole mark inside the
// pause. An mprotect + SIGSEGV scheme is deliberately not offered: a system
// call writing into a protected page fails with EFAULT instead of faulting.
//
// Nothing here allocates: the mark termination calls dirty_for_each with
// threads suspended that may hold malloc's locks (sysalloc.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sysalloc.hpp"

namespace goro::detail {

// pageRegion is the kernel's struct page_region (linux/fs.h, 6.7+).
struct pageRegion {
  std::uint64_t start, end, categories;
};

struct DirtyTracker {
  int uffd = -1;
  int pagemap = -1;             // /proc/self/pagemap, where PAGEMAP_SCAN lives
  const char* why = "not set up";  // nullptr: tracking works; else why not
  static constexpr std::size_t kRegions = 512;
  pageRegion regions[kRegions];  // one PAGEMAP_SCAN's output
  std::uint64_t scans = 0;       // PAGEMAP_SCAN calls made (gctrace, tests)
  // The address ranges protected for the current cycle, in address order
  // (dirty_protect adds to it): the only pages whose protection means
  // anything. The concurrent passes re-protect inside them and nowhere
  // else, and dirty_end unprotects exactly them. Never the whole heap: on a
  // virtual machine a page-table change is dear even where nothing was
  // protected. A blanket unprotect of the used heap once per cycle, with
  // nothing in it protected, made binary-trees 1.7 times slower here
  // (bench/README.md, "What dirty-page tracking costs").
  std::vector<pageRegion, SysAllocator<pageRegion>> runs;
};

// dirty_init registers [lo, hi) (page aligned); false (and t.why) if the
// kernel cannot track it.
bool dirty_init(DirtyTracker& t, std::uintptr_t lo, std::uintptr_t hi);
void dirty_close(DirtyTracker& t);
// dirty_protect: from now on [lo, hi) is clean. False on failure (t.why).
bool dirty_protect(DirtyTracker& t, std::uintptr_t lo, std::uintptr_t hi);
// dirty_end ends a tracking period: unprotects the runs and forgets them.
// From then on every page counts as written until protected again.
void dirty_end(DirtyTracker& t);

// dirty_for_each calls fn(lo, hi) for every run of pages in [lo, hi)
// written since they were last protected; reprotect: protect those again.
// Returns false if the kernel refused (t.why): the caller must then treat
// everything as written.
template <class F>
bool dirty_for_each(DirtyTracker& t, std::uintptr_t lo, std::uintptr_t hi, bool reprotect, F&& fn);

// dirty_scan_once is one PAGEMAP_SCAN call from lo: it fills t.regions and
// returns how many (-1: error), setting *walk_end to where the walk stopped.
long dirty_scan_once(DirtyTracker& t, std::uintptr_t lo, std::uintptr_t hi, bool reprotect,
                     std::uintptr_t* walk_end);

template <class F>
bool dirty_for_each(DirtyTracker& t, std::uintptr_t lo, std::uintptr_t hi, bool reprotect,
                    F&& fn) {
  while (lo < hi) {
    std::uintptr_t end = hi;
    const long n = dirty_scan_once(t, lo, hi, reprotect, &end);
    if (n < 0) return false;
    for (long i = 0; i < n; i++)
      fn(static_cast<std::uintptr_t>(t.regions[i].start),
         static_cast<std::uintptr_t>(t.regions[i].end));
    if (end <= lo) return false;  // no progress: never loop for ever
    lo = end;
  }
  return true;
}

}  // namespace goro::detail
