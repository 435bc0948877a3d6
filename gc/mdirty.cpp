// mdirty.cpp — userfaultfd write-protect (async) + PAGEMAP_SCAN: see
// mdirty.hpp for the mechanism. Debian 12's headers predate both, so the
// constants are spelled out here, with the kernel's names.
#include "gc/mdirty.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace goro::detail {

namespace {

constexpr std::uint64_t kFeatureWpUnpopulated = 1u << 13;  // UFFD_FEATURE_WP_UNPOPULATED (6.4)
constexpr std::uint64_t kFeatureWpAsync = 1u << 15;        // UFFD_FEATURE_WP_ASYNC (6.7)
constexpr int kUserModeOnly = 1;                           // UFFD_USER_MODE_ONLY (5.11)

// struct pm_scan_arg and its flags (linux/fs.h, 6.7).
struct pmScanArg {
  std::uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  std::uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, pmScanArg);
constexpr std::uint64_t kScanWpMatching = 1 << 0;   // PM_SCAN_WP_MATCHING
constexpr std::uint64_t kScanCheckWpAsync = 1 << 1;  // PM_SCAN_CHECK_WPASYNC
constexpr std::uint64_t kPageIsWritten = 1 << 1;     // PAGE_IS_WRITTEN

bool fail(DirtyTracker& t, const char* why) {
  t.why = why;
  dirty_close(t);
  return false;
}

}  // namespace

bool dirty_init(DirtyTracker& t, std::uintptr_t lo, std::uintptr_t hi) {
  t.uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | kUserModeOnly));
  if (t.uffd < 0) return fail(t, "userfaultfd(2) is not available");
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = kFeatureWpAsync | kFeatureWpUnpopulated;
  if (ioctl(t.uffd, UFFDIO_API, &api) != 0)
    return fail(t, "userfaultfd lacks asynchronous write-protection (Linux 6.7+)");
  uffdio_register reg{};
  reg.range.start = lo;
  reg.range.len = hi - lo;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (ioctl(t.uffd, UFFDIO_REGISTER, &reg) != 0)
    return fail(t, "userfaultfd cannot write-protect the heap");
  t.pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (t.pagemap < 0) return fail(t, "/proc/self/pagemap cannot be opened");
  // One empty scan proves PAGEMAP_SCAN exists (Linux 6.7+).
  std::uintptr_t end = 0;
  if (dirty_scan_once(t, lo, lo + 4096, false, &end) < 0)
    return fail(t, "PAGEMAP_SCAN is not available (Linux 6.7+)");
  t.why = nullptr;
  return true;
}

void dirty_close(DirtyTracker& t) {
  if (t.pagemap >= 0) close(t.pagemap);
  if (t.uffd >= 0) close(t.uffd);  // unregisters the range too
  t.pagemap = t.uffd = -1;
}

namespace {
bool writeprotect(DirtyTracker& t, std::uintptr_t lo, std::uintptr_t hi, bool on) {
  if (lo >= hi) return true;
  uffdio_writeprotect wp{};
  wp.range.start = lo;
  wp.range.len = hi - lo;
  wp.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  if (ioctl(t.uffd, UFFDIO_WRITEPROTECT, &wp) != 0) {
    t.why = "UFFDIO_WRITEPROTECT failed";
    return false;
  }
  return true;
}
}  // namespace

bool dirty_protect(DirtyTracker& t, std::uintptr_t lo, std::uintptr_t hi) {
  if (!writeprotect(t, lo, hi, true)) return false;
  t.runs.push_back({lo, hi, 0});
  return true;
}

void dirty_end(DirtyTracker& t) {
  for (const pageRegion& r : t.runs) writeprotect(t, r.start, r.end, false);
  t.runs.clear();
}

long dirty_scan_once(DirtyTracker& t, std::uintptr_t lo, std::uintptr_t hi, bool reprotect,
                     std::uintptr_t* walk_end) {
  pmScanArg a{};
  a.size = sizeof a;
  a.flags = reprotect ? kScanWpMatching | kScanCheckWpAsync : 0;
  a.start = lo;
  a.end = hi;
  a.vec = reinterpret_cast<std::uintptr_t>(t.regions);
  a.vec_len = DirtyTracker::kRegions;
  a.category_mask = kPageIsWritten;
  a.return_mask = kPageIsWritten;
  t.scans++;
  // No retry on EINTR: a walk that re-protected part of the range before
  // failing has consumed those pages' written bits. The caller treats a
  // failure as "everything written".
  const long n = ioctl(t.pagemap, kPagemapScan, &a);
  if (n < 0) {
    t.why = "PAGEMAP_SCAN failed";
    return -1;
  }
  *walk_end = static_cast<std::uintptr_t>(a.walk_end);
  return n;
}

}  // namespace goro::detail
