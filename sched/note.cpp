// note.cpp — futex-backed notes. See note.hpp.
#include "sched/note.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "sched/nanotime.hpp"

namespace goro::detail {

namespace {

long futex(std::atomic<std::uint32_t>* addr, int op, std::uint32_t val, const timespec* ts) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), op | FUTEX_PRIVATE_FLAG, val,
                 ts, nullptr, 0);
}

}  // namespace

void Note::wakeup() {
  // The exchange both publishes the writes made before the wakeup (release)
  // and tells us whether anybody could be sleeping yet.
  if (key_.exchange(1, std::memory_order_acq_rel) != 0) return;  // double wakeup: harmless
  futex(&key_, FUTEX_WAKE, 1, nullptr);
}

void Note::sleep() {
  while (key_.load(std::memory_order_acquire) == 0) futex(&key_, FUTEX_WAIT, 0, nullptr);
}

bool Note::tsleep(std::int64_t ns) {
  // A deadline already past (ns <= 0) is a poll, never "no timeout".
  if (ns <= 0) return key_.load(std::memory_order_acquire) != 0;
  const std::int64_t deadline = nanotime() + ns;
  while (key_.load(std::memory_order_acquire) == 0) {
    const std::int64_t left = deadline - nanotime();
    if (left <= 0) return false;
    timespec ts{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
    futex(&key_, FUTEX_WAIT, 0, &ts);
  }
  return true;
}

}  // namespace goro::detail
