// nanotime.hpp — the runtime's monotonic clock, in nanoseconds since an
// arbitrary origin (CLOCK_MONOTONIC through the vDSO: no system call). It is
// the same clock as std::chrono::steady_clock, so user deadlines convert 1:1.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace goro::detail {

inline std::int64_t nanotime() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

inline std::int64_t to_nanotime(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

inline std::chrono::steady_clock::time_point from_nanotime(std::int64_t ns) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace goro::detail
