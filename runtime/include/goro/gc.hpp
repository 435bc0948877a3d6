// goro/gc.hpp — the garbage-collected heap (Go's new/make and runtime.GC).
//
//   T* p = goro::gc::make<T>(args...);     // never freed by hand
//   T* a = goro::gc::make_array<T>(n);     // n value-initialised T
//   goro::gc::set_finalizer(p, fn);        // runtime.SetFinalizer
//   goro::gc::collect();                   // runtime.GC()
//
// The collector is conservative: any word in a goroutine's stack, a Root, a
// registered runtime structure or another live GC object that points anywhere
// into an allocated object keeps that object alive. It does not scan
// malloc/new memory, globals or thread_locals: a GC pointer kept only there
// must be held by a Root. See docs/gc.md, "What the GC sees".
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

namespace goro::detail {

// DtorFn destroys n objects starting at p (the finalizer of make/make_array).
using DtorFn = void (*)(void* p, std::size_t n);

// mallocgc allocates size zeroed bytes on the GC heap (malloc.go's
// mallocgc). noscan: the object holds no pointers and is never scanned.
// dtor != nullptr: the object gets a 16-byte header {dtor, n} in front of the
// returned pointer and ~T runs on the finalizer goroutine once it is
// unreachable.
void* mallocgc(std::size_t size, bool noscan, DtorFn dtor, std::size_t n);

// RootNode is one registered extra root, [lo, lo+len), scanned conservatively
// by every cycle while it is linked. It is an intrusive list node embedded in
// whatever registers (gc::Root, a channel's buffer), so registering allocates
// nothing and cannot fail. The registry (gc/roots.cpp) keeps the nodes in
// shards, one per P, each under its own lock: registrations on different Ps
// do not contend. The registry belongs to the process, not to one run():
// a node linked before run() or in an earlier run stays linked until removed.
struct RootNode {
  const void* lo = nullptr;
  std::size_t len = 0;
  RootNode* prev = nullptr;  // shard list links, under the shard's lock
  RootNode* next = nullptr;
  std::uint32_t shard = 0;
  bool linked = false;
};
// gc_root_add links n for [p, p+len); gc_root_remove unlinks it (a node never
// linked, or already removed, is ignored). Usable on any thread, in or
// outside a running runtime.
void gc_root_add(RootNode* n, const void* p, std::size_t len) noexcept;
void gc_root_remove(RootNode* n) noexcept;

// gc_add_root / gc_remove_root are the keyed form, for memory that cannot
// embed a RootNode (sync.Pool's locals arrays and rings): the node is
// allocated and found again by p. Usable outside a running runtime.
void gc_add_root(const void* p, std::size_t len);
void gc_remove_root(const void* p);

// gc_is_object_start: p is exactly a pointer returned by make/make_array
// (Pool::put's debug check).
bool gc_is_object_start(const void* p);

// gcPauseRing is how many recent pauses are kept, as Go's MemStats.PauseNs.
inline constexpr std::size_t gcPauseRing = 256;


// gc_noscan_v: T holds no pointers (arithmetic or enum, or arrays of them), so
// its span is never scanned. Like Go, an integer is not a pointer: a GC
// pointer hidden in a uintptr_t does not keep its object alive.
template <class T>
inline constexpr bool gc_noscan_v = std::is_scalar_v<std::remove_all_extents_t<T>> &&
                                    !std::is_pointer_v<std::remove_all_extents_t<T>> &&
                                    !std::is_member_pointer_v<std::remove_all_extents_t<T>>;

}  // namespace goro::detail

namespace goro::gc {

// pointer_free<T> says T holds no GC pointers: its objects (make<T>,
// make_array<T>, Allocator<T>) and channel buffers of T (Chan<T>) are never
// scanned. True for arithmetic and enum types and arrays of them
// (detail::gc_noscan_v). A program may specialise it to true for its own
// pointer-free structs, e.g. `template <> struct goro::gc::pointer_free<Point>
// : std::true_type {};` — a lie frees objects still in use.
template <class T>
struct pointer_free : std::bool_constant<detail::gc_noscan_v<T>> {};
template <class T, std::size_t N>
struct pointer_free<T[N]> : pointer_free<T> {};
template <class T>
inline constexpr bool pointer_free_v = pointer_free<std::remove_cv_t<T>>::value;

}  // namespace goro::gc

namespace goro::detail {

// FinCallFn runs a set_finalizer finalizer: call(closure, obj).
using FinCallFn = void (*)(void* closure, void* obj);

// gc_set_finalizer records (closure != nullptr) or clears the finalizer of
// the object obj starts (gc/mfinal.cpp); panics as Go's SetFinalizer.
void gc_set_finalizer(const void* obj, void* closure, FinCallFn call);

// FinClosure holds a finalizer and its captures on the GC heap (so the
// captures are scanned, and are roots while the finalizer is pending).
template <class T, class F>
struct FinClosure {
  F fn;
  static void call(void* self, void* obj) { static_cast<FinClosure*>(self)->fn(static_cast<T*>(obj)); }
};

template <class T>
void gc_destroy_n(void* p, std::size_t n) {
  T* t = static_cast<T*>(p);
  for (std::size_t i = 0; i < n; i++) t[i].~T();
}

}  // namespace goro::detail

namespace goro::gc {

template <class T, class... A>
T* make(A&&... args) {
  static_assert(alignof(T) <= 16, "goro::gc::make: alignment above 16 is not supported");
  constexpr bool trivial = std::is_trivially_destructible_v<T>;
  void* mem = detail::mallocgc(sizeof(T), pointer_free_v<T>,
                               trivial ? nullptr : &detail::gc_destroy_n<T>, 1);
  if constexpr (trivial) {
    return ::new (mem) T(std::forward<A>(args)...);
  } else {
    // A throwing constructor leaves a header whose count says 1: mark it 0 so
    // the finalizer destroys nothing.
    try {
      return ::new (mem) T(std::forward<A>(args)...);
    } catch (...) {
      static_cast<std::size_t*>(mem)[-1] = 0;
      throw;
    }
  }
}

template <class T>
T* make_array(std::size_t n) {
  static_assert(alignof(T) <= 16, "goro::gc::make_array: alignment above 16 is not supported");
  constexpr bool trivial = std::is_trivially_destructible_v<T>;
  if (n > (std::size_t(1) << 40) / (sizeof(T) ? sizeof(T) : 1)) throw std::bad_alloc();
  void* mem = detail::mallocgc(sizeof(T) * n, pointer_free_v<T>,
                               trivial ? nullptr : &detail::gc_destroy_n<T>, n);
  T* t = static_cast<T*>(mem);
  if constexpr (std::is_trivially_default_constructible_v<T> && trivial) {
    return t;  // already zeroed == value-initialised
  } else {
    std::size_t i = 0;
    try {
      for (; i < n; i++) ::new (static_cast<void*>(t + i)) T();
    } catch (...) {
      if constexpr (!trivial) static_cast<std::size_t*>(mem)[-1] = i;
      throw;
    }
    return t;
  }
}

// set_finalizer is runtime.SetFinalizer: fn(obj) runs on the finalizer
// goroutine once obj is unreachable (obj: a pointer returned by make or
// make_array). If A points to B and both die, A's finalizer runs first and B
// lives until it has: B is finalized (and freed) in a later cycle. fn's
// captures are roots while the finalizer is pending (capturing obj keeps it
// alive for ever). If T has a destructor, fn runs first and ~T() when the
// memory is finally reclaimed. As Go, a pointer not at the start of a make'd
// object, or a second finalizer while one is set, panics (goro::Panic).
template <class T, class F>
void set_finalizer(T* obj, F fn) {
  static_assert(std::is_invocable_v<F&, T*>, "goro::gc::set_finalizer: fn must take T*");
  using C = detail::FinClosure<T, F>;
  C* c = make<C>(C{std::move(fn)});
  detail::gc_set_finalizer(obj, c, &C::call);
}

// set_finalizer(obj, nullptr) clears obj's finalizer (none set: nothing).
template <class T>
void set_finalizer(T* obj, std::nullptr_t) {
  detail::gc_set_finalizer(obj, nullptr, nullptr);
}

void collect();            // runtime.GC(): a full cycle, returns when it is done
int set_percent(int pct);  // debug.SetGCPercent; returns the previous value

using HookId = std::uint64_t;
// register_cleanup: hook runs with the world stopped at the start of every
// cycle, hooks in registration order (runtime_registerPoolCleanup). Hooks
// belong to the process, not to one run(): a hook stays registered, and runs
// in the cycles of every later run(), until unregister_cleanup(id). Both may
// be called outside a running runtime. A hook must not park or wait for
// another goroutine (the world is stopped).
HookId register_cleanup(std::function<void()> hook);
void unregister_cleanup(HookId id);

struct Stats {
  std::uint64_t num_gc, heap_alloc, heap_objects, heap_sys, total_alloc, mallocs, frees, next_gc,
      pause_total_ns, last_pause_ns;
  // Go's PauseNs: the stop-the-world time of the last 256 cycles (a cycle's
  // pauses added), cycle n (1-based) at [(n - 1) % 256], so the latest is at
  // [(num_gc + 255) % 256] and equals last_pause_ns; 0 where no cycle ran.
  std::uint64_t pause_ns[256];
};
Stats stats();  // runtime.ReadMemStats (stops the world briefly, as Go's does)

// Root keeps a T* alive from memory the GC does not scan (malloc'd
// structures, globals). Not copyable; movable. A Root registers itself (an
// embedded detail::RootNode: no allocation, no failure) for as long as it
// exists, whether or not a runtime is running: a global Root or one made
// before run() works in every run. What it points to does not outlive the
// run() that allocated it (the heap is unmapped when run() returns), so reset
// it before reusing it in a later run.
template <class T>
class Root {
 public:
  Root() noexcept : Root(nullptr) {}
  explicit Root(T* p) noexcept : p_(p) { detail::gc_root_add(&node_, &p_, sizeof p_); }
  Root(const Root&) = delete;
  Root& operator=(const Root&) = delete;
  Root(Root&& o) noexcept : Root(o.p_) { o.p_ = nullptr; }
  Root& operator=(Root&& o) noexcept {
    p_ = o.p_;
    o.p_ = nullptr;
    return *this;
  }
  ~Root() { detail::gc_root_remove(&node_); }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  void reset(T* p = nullptr) { p_ = p; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  T* p_;
  detail::RootNode node_;
};

// Allocator is a std allocator on the GC heap: the container's buffer is a GC
// object (noscan for scalar element types), reclaimed when unreachable;
// deallocate does nothing. The container itself must be somewhere the GC scans.
template <class T>
struct Allocator {
  using value_type = T;
  Allocator() noexcept = default;
  template <class U>
  Allocator(const Allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    static_assert(alignof(T) <= 16, "goro::gc::Allocator: alignment above 16 is not supported");
    return static_cast<T*>(detail::mallocgc(n * sizeof(T), pointer_free_v<T>, nullptr, 0));
  }
  void deallocate(T*, std::size_t) noexcept {}
  template <class U>
  bool operator==(const Allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace goro::gc
