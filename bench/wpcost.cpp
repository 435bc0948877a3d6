// wpcost.cpp — what the kernel mechanism behind goro's concurrent mark costs
// on this machine, without goro: userfaultfd write-protection in
// asynchronous mode (gc/mdirty.hpp). Not a row of the goro-vs-Go table; it
// explains rows of it (bench/README.md, "What dirty-page tracking costs").
//
// Over a 32 MiB anonymous mapping registered the way goro registers its
// arena (WP_ASYNC | WP_UNPOPULATED, UFFD_USER_MODE_ONLY), with a second
// thread spinning in the same address space (as goro's other Ms do, so a
// page-table change must flush the other CPU's TLB), it prints microseconds
// per 4 KiB page, medians of 7 rounds:
//   write            a store to each page, nothing protected (the baseline)
//   protect          UFFDIO_WRITEPROTECT over the whole range, one ioctl
//   fault            the first store to each protected page (the WP-async
//                    fault the program pays on a page the mark protected)
//   unprotect        UFFDIO_WRITEPROTECT mode 0 over the whole range
//   after-unprotect  the first store to each page after protect + unprotect
//   ioctl-per-run    protect + unprotect of every other 32 KiB run, one ioctl
//                    each (as a heap of scattered full spans), per page
//   after-runs       the first store to each page after that
//
// Usage: wpcost [--thp]   (--thp: madvise(MADV_HUGEPAGE), as goro's arena)
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kBytes = std::size_t(32) << 20;
constexpr std::size_t kPage = 4096;
constexpr std::size_t kPages = kBytes / kPage;
constexpr std::uint64_t kFeatureWpUnpopulated = 1u << 13;  // as gc/mdirty.cpp
constexpr std::uint64_t kFeatureWpAsync = 1u << 15;
constexpr int kUserModeOnly = 1;

int uffd = -1;
char* mem = nullptr;

double now_us() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool writeprotect(std::size_t off, std::size_t len, bool on) {
  uffdio_writeprotect wp{};
  wp.range.start = reinterpret_cast<std::uintptr_t>(mem + off);
  wp.range.len = len;
  wp.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
  return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) == 0;
}

// touch stores to one byte of every page; returns microseconds per page.
double touch() {
  const double t0 = now_us();
  for (std::size_t i = 0; i < kBytes; i += kPage) mem[i] = static_cast<char>(mem[i] + 1);
  return (now_us() - t0) / kPages;
}

double timed(const std::function<void()>& f) {
  const double t0 = now_us();
  f();
  return (now_us() - t0) / kPages;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

bool setup(bool thp) {
  void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  mem = static_cast<char*>(p);
  if (thp) madvise(mem, kBytes, MADV_HUGEPAGE);
  std::memset(mem, 1, kBytes);
  uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | kUserModeOnly));
  if (uffd < 0) return false;
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = kFeatureWpAsync | kFeatureWpUnpopulated;
  if (ioctl(uffd, UFFDIO_API, &api) != 0) return false;
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<std::uintptr_t>(mem);
  reg.range.len = kBytes;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  return ioctl(uffd, UFFDIO_REGISTER, &reg) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bool thp = argc > 1 && std::strcmp(argv[1], "--thp") == 0;
  if (!setup(thp)) {
    std::perror("wpcost: userfaultfd write-protect (async) is not available");
    return 1;
  }
  std::atomic<bool> stop{false};
  std::thread spinner([&] {
    volatile std::uint64_t x = 0;
    while (!stop.load(std::memory_order_relaxed)) x = x + 1;
  });
  constexpr int kRounds = 7;
  std::vector<double> write, protect, fault, unprotect, after_unprotect, runs, after_runs;
  bool ok = true;
  for (int r = 0; r < kRounds && ok; r++) {
    write.push_back(touch());
    protect.push_back(timed([&] { ok = ok && writeprotect(0, kBytes, true); }));
    fault.push_back(touch());
    ok = ok && writeprotect(0, kBytes, true);
    unprotect.push_back(timed([&] { ok = ok && writeprotect(0, kBytes, false); }));
    after_unprotect.push_back(touch());
    runs.push_back(timed([&] {
      for (std::size_t o = 0; o < kBytes; o += 2 * 32768) ok = ok && writeprotect(o, 32768, true);
      for (std::size_t o = 0; o < kBytes; o += 2 * 32768) ok = ok && writeprotect(o, 32768, false);
    }));
    after_runs.push_back(touch());
  }
  stop.store(true);
  spinner.join();
  if (!ok) {
    std::perror("wpcost: UFFDIO_WRITEPROTECT");
    return 1;
  }
  std::printf("wpcost: us per 4 KiB page, median of %d, 32 MiB, %s\n", kRounds,
              thp ? "MADV_HUGEPAGE" : "4 KiB pages");
  std::printf("  %-16s %8.3f\n", "write", median(write));
  std::printf("  %-16s %8.3f\n", "protect", median(protect));
  std::printf("  %-16s %8.3f\n", "fault", median(fault));
  std::printf("  %-16s %8.3f\n", "unprotect", median(unprotect));
  std::printf("  %-16s %8.3f\n", "after-unprotect", median(after_unprotect));
  std::printf("  %-16s %8.3f\n", "ioctl-per-run", median(runs));
  std::printf("  %-16s %8.3f\n", "after-runs", median(after_runs));
  return 0;
}
