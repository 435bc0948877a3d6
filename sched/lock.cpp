// lock.cpp — the runtime's futex mutex and its debug-build rank checks.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "sched/lockrank.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

void Lock::lock_slow() {
  // Spin briefly: runtime critical sections are a few dozen instructions.
  for (int i = 0; i < 64; i++) {
    __builtin_ia32_pause();
    std::uint32_t z = 0;
    if (key_.load(std::memory_order_relaxed) == 0 &&
        key_.compare_exchange_weak(z, 1, std::memory_order_acquire))
      return;
  }
  // Mark contended and sleep; whoever unlocks a contended lock wakes one.
  // unlock_plain (channel locks) can miss a mark made right after its read
  // of the key: a channel lock's sleeper looks again after 100 us (more,
  // with the thread's timer slack) in that case.
  static constexpr timespec plainUnlockWait{0, 100'000};
  const timespec* timeout = plain_unlock_ok(rank_) ? &plainUnlockWait : nullptr;
  while (key_.exchange(2, std::memory_order_acquire) != 0) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&key_), FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 2,
            timeout, nullptr, 0);
  }
}

void Lock::unlock_plain_misuse() { fatal("Lock::unlock_plain on a lock whose sleepers wait without a timeout"); }

void Lock::unlock_slow() {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&key_), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1,
          nullptr, nullptr, 0);
}

// The ranks held by this thread, innermost last. Locks are never held across
// a park, so per thread is per M is exact (mark helper threads have no M and
// are checked all the same). Several locks of one "several" rank held in a
// row share one entry with a count, so select over many channels and the
// collector holding every root shard fit.
namespace {
struct HeldRank {
  LockRank rank;
  int n;
};
constexpr int maxHeld = 24;  // more than there are ranks
[[maybe_unused]] [[gnu::tls_model("initial-exec")]] thread_local HeldRank held[maxHeld];
[[maybe_unused]] [[gnu::tls_model("initial-exec")]] thread_local int nheld = 0;

// several: ranks of which a thread may hold more than one (lockrank.hpp).
[[maybe_unused]] bool several(LockRank r) {
  return r == LockRank::hchan || r == LockRank::roots;
}

[[maybe_unused]] void rank_acquire(LockRank r) {
  if (nheld > 0) {
    HeldRank& top = held[nheld - 1];
    if (r == top.rank && several(r)) {
      top.n++;
      return;
    }
    if (static_cast<int>(r) <= static_cast<int>(top.rank)) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "lock ordering problem: rank %d taken while holding rank %d",
                    static_cast<int>(r), static_cast<int>(top.rank));
      fatal(buf);
    }
  }
  if (nheld == maxHeld) fatal("too many runtime locks held at once");
  held[nheld++] = {r, 1};
}

[[maybe_unused]] void rank_release(LockRank r) {
  // Release order need not be LIFO (select unlocks in reverse address
  // order anyway); drop the innermost entry of that rank.
  for (int i = nheld - 1; i >= 0; i--) {
    if (held[i].rank == r) {
      if (--held[i].n > 0) return;
      for (int j = i; j + 1 < nheld; j++) held[j] = held[j + 1];
      nheld--;
      return;
    }
  }
  char buf[160];
  int n = std::snprintf(buf, sizeof buf, "unlock of a runtime lock that is not held (rank %d; held:",
                        static_cast<int>(r));
  for (int i = 0; i < nheld && n < 140; i++)
    n += std::snprintf(buf + n, sizeof buf - n, " %d", static_cast<int>(held[i].rank));
  std::snprintf(buf + n, sizeof buf - n, ")");
  fatal(buf);
}
}  // namespace

void lock_rank_acquire(LockRank r) { rank_acquire(r); }
void lock_rank_release(LockRank r) { rank_release(r); }

}  // namespace goro::detail
