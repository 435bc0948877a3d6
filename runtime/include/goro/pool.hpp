// goro/pool.hpp — sync.Pool: a per-P cache of reusable GC objects.
//
//   goro::Pool<Buf> bufs([] { return goro::gc::make<Buf>(); });
//   Buf* b = bufs.get();    // a cached Buf, or a new one
//   ...
//   bufs.put(b);            // hand it back for reuse
//
// A Pool is a cache, not a container: anything in it may be dropped at any
// time. A collection moves everything to a victim cache and the next one
// drops it, so an object put and never taken back is gone after two GC
// cycles. Objects must come from goro::gc::make: the Pool holds them where
// the collector can see them, and freeing is the collector's job.
// The algorithm (per-P locals, pin, poolChain, victim, poolCleanup) lives in
// pool/pool.cpp, type-erased; see docs/pool.md.
#pragma once

#include <functional>
#include <type_traits>
#include <utility>

namespace goro {

namespace detail {
struct pool;        // pool/pool.hpp
struct Access;      // the runtime's own view of API objects' internals (runtime/access.hpp)
pool* pool_new();
void pool_delete(pool* p);
void* pool_get(pool* p);          // nullptr when every cache is empty
void pool_put(pool* p, void* x);  // x != nullptr
}  // namespace detail

template <class T>
class Pool {
 public:
  // new_fn is Go's Pool.New: what get() calls when the pool is empty. Without
  // it an empty pool's get() returns nullptr.
  explicit Pool(std::function<T*()> new_fn = nullptr)
      : p_(detail::pool_new()), new_fn_(std::move(new_fn)) {}
  ~Pool() { detail::pool_delete(p_); }
  Pool(const Pool&) = delete;  // Go: a Pool must not be copied after first use
  Pool& operator=(const Pool&) = delete;

  // get takes an arbitrary object out of the pool: this P's, another P's, or
  // one that survived the last collection; else new_fn(), else nullptr. Call
  // it on a goroutine.
  T* get() {
    if (void* x = detail::pool_get(p_)) return static_cast<T*>(x);
    return new_fn_ ? new_fn_() : nullptr;
  }

  // put adds x to the pool; nullptr is ignored. x must have come from
  // goro::gc::make (checked in debug builds). Call it on a goroutine.
  void put(T* x) {
    if (x != nullptr) detail::pool_put(p_, const_cast<std::remove_cv_t<T>*>(x));
  }

 private:
  friend struct detail::Access;
  detail::pool* p_;
  std::function<T*()> new_fn_;
};

}  // namespace goro
