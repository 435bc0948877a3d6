// access.hpp — Access, the one friend the public API types declare: the
// runtime's own view of their private parts, for the test suite (and
// anything else inside the project) without a test hook in a public header.
// Not installed.
#pragma once

#include <cstdint>

#include "goro/goro.hpp"

namespace goro::detail {

struct Access {
  // The type-erased sync.Pool behind a Pool<T> (pool/pool.hpp).
  template <class T>
  static pool* impl(Pool<T>& p) {
    return p.p_;
  }
  // A Mutex's state word (mutexLocked | mutexWoken | mutexStarving | waiters).
  static std::int32_t state(const Mutex& m) { return m.state_.load(std::memory_order_relaxed); }
  // An RWMutex's readerCount (negative while a writer is pending or inside).
  static std::int32_t reader_count(const RWMutex& rw) {
    return rw.readerCount_.load(std::memory_order_acquire);
  }
};

}  // namespace goro::detail
