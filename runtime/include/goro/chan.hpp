// goro/chan.hpp — channels: Go's `chan T`.
//
// Chan<T> is a reference to a channel, as a Go chan value is: copies share one
// channel, and the channel lives until the last copy goes away. The default-
// constructed Chan is the nil channel. make_chan<T>(n) is `make(chan T, n)`.
//
// Only the element type is a template here. The channel itself — its lock,
// ring buffer and wait queues, and the algorithm of send, receive, close and
// select — is one type-erased core (detail::HchanBase, runtime/chan.cpp and
// runtime/select.cpp), Go's hchan. The template hands it a ChanType: how big a
// T is and how to move and destroy one, Go's chantype. So the algorithm is
// compiled once, and select, which mixes channels of many element types in one
// call, drives them all through the same code.
//
// Element values. T may be move-only (std::unique_ptr) and need not be default
// constructible: the buffer is raw storage, and a value is move-constructed
// into it on send and out of it on receive, never assigned. A receiver's
// destination is a std::optional<T>, filled (emplaced) by whoever delivers the
// value; it stays empty when the channel was closed instead. Values still
// buffered when the last reference goes are destroyed then, exactly once.
// The runtime moves values while holding the channel's lock, so T's move
// constructor must not throw; if it does, the process terminates.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "goro/gc.hpp"
#include "goro/runtime.hpp"

namespace goro {

template <class T>
class Chan;

namespace detail {

struct HchanBase;

// ChanType describes an element type to the type-erased core (Go's chantype
// with its elem *_type). Every operation is noexcept: they run under the
// channel's lock.
struct ChanType {
  std::size_t size;
  std::size_t align;
  // move_construct builds a T at raw storage dst from the T at src, leaving
  // src moved-from (the caller still destroys it).
  void (*move_construct)(void* dst, void* src) noexcept;
  // destroy ends the lifetime of the T at p.
  void (*destroy)(void* p) noexcept;
  // recv_into emplaces the T at src, moved, into the std::optional<T> at dst.
  void (*recv_into)(void* dst, void* src) noexcept;
  // noscan: a T holds no GC pointers (gc::pointer_free<T>, Go's ptrdata ==
  // 0), so the buffer is never registered as a root nor scanned.
  bool noscan;
};

template <class T>
struct ChanTypeOf {
  static void move_construct(void* dst, void* src) noexcept {
    ::new (dst) T(std::move(*static_cast<T*>(src)));
  }
  static void destroy(void* p) noexcept { static_cast<T*>(p)->~T(); }
  static void recv_into(void* dst, void* src) noexcept {
    static_cast<std::optional<T>*>(dst)->emplace(std::move(*static_cast<T*>(src)));
  }
  static constexpr ChanType type{sizeof(T), alignof(T), &move_construct, &destroy, &recv_into,
                                 gc::pointer_free_v<T>};
};

// The core's entry points (runtime/chan.cpp). `elem` is, for a send, the
// address of the sender's T (moved from if the send happens); for a receive,
// the address of the receiver's std::optional<T> (emplaced if a value is
// received, left empty if the channel is closed and drained).
HchanBase* makechan(const ChanType* t, std::size_t size);  // refcount 1
void chanretain(HchanBase* c) noexcept;
void chanrelease(HchanBase* c) noexcept;
// chansend and chanrecv report whether the operation happened; with
// block == true they always do (or park forever on a nil channel).
bool chansend(HchanBase* c, void* elem, bool block);
bool chanrecv(HchanBase* c, void* elem, bool block);
void closechan(HchanBase* c);
std::size_t chanlen(const HchanBase* c) noexcept;
std::size_t chancap(const HchanBase* c) noexcept;

// hchan_of is select's view of a Chan's core (select.hpp builds its cases
// from it); not public API.
template <class T>
HchanBase* hchan_of(const Chan<T>& ch) noexcept;

}  // namespace detail

// Chan is a channel of T: Go's `chan T`. See the file comment.
template <class T>
class Chan {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                "goro::Chan<T>: T must be a non-const object type");
  static_assert(!std::is_array_v<T>, "goro::Chan<T>: T must not be an array (use std::array)");
  static_assert(std::is_move_constructible_v<T> && std::is_destructible_v<T>,
                "goro::Chan<T>: T must be move-constructible and destructible");

 public:
  using value_type = T;

  // Chan() is the nil channel: send and recv block forever, close panics,
  // select never picks it.
  Chan() noexcept = default;
  Chan(const Chan& o) noexcept : c_(o.c_) {
    if (c_ != nullptr) detail::chanretain(c_);
  }
  Chan(Chan&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  Chan& operator=(const Chan& o) noexcept {
    if (o.c_ != nullptr) detail::chanretain(o.c_);
    reset(o.c_);
    return *this;
  }
  Chan& operator=(Chan&& o) noexcept {
    if (this != &o) reset(std::exchange(o.c_, nullptr));
    return *this;
  }
  ~Chan() { reset(nullptr); }

  // send is `ch <- v`: it blocks until a receiver takes v or the buffer has
  // room. Panics (goro::Panic) "send on closed channel".
  void send(T v) const { detail::chansend(c_, &v, true); }

  // recv is `v, ok := <-ch`: the next value, or nullopt once the channel is
  // closed and drained.
  std::optional<T> recv() const {
    std::optional<T> r;
    detail::chanrecv(c_, &r, true);
    return r;
  }

  // try_send is `select { case ch <- v: return true; default: return false }`.
  // v is dropped when it returns false.
  bool try_send(T v) const { return detail::chansend(c_, &v, false); }

  // try_recv is a receive with a default case: nullopt when nothing is ready
  // (or the channel is closed and drained).
  std::optional<T> try_recv() const {
    std::optional<T> r;
    detail::chanrecv(c_, &r, false);
    return r;
  }

  // close is `close(ch)`. Panics "close of nil channel", "close of closed
  // channel"; wakes every waiting receiver (they see nullopt once the buffer
  // is drained) and every waiting sender (they panic).
  void close() const { detail::closechan(c_); }

  std::size_t len() const noexcept { return detail::chanlen(c_); }
  std::size_t cap() const noexcept { return detail::chancap(c_); }
  explicit operator bool() const noexcept { return c_ != nullptr; }
  friend bool operator==(const Chan& a, const Chan& b) noexcept { return a.c_ == b.c_; }

  // iterator makes `for (T v : ch)` Go's `for v := range ch`: each step is a
  // receive; the loop ends when the channel is closed and drained. operator*
  // yields an rvalue so that move-only T works with `for (T v : ch)`
  // (bind it as `T v`, `auto&&` or `const auto&`).
  class iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    T&& operator*() const { return std::move(*cur_); }
    T* operator->() const { return &*cur_; }
    iterator& operator++() {
      cur_.reset();
      detail::chanrecv(c_, &cur_, true);
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.cur_.has_value();
    }

   private:
    friend class Chan;
    explicit iterator(detail::HchanBase* c) : c_(c) { ++*this; }
    detail::HchanBase* c_ = nullptr;  // the range's Chan keeps it alive
    mutable std::optional<T> cur_;
  };
  iterator begin() const { return iterator(c_); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  template <class U>
  friend detail::HchanBase* detail::hchan_of(const Chan<U>& ch) noexcept;
  template <class U>
  friend Chan<U> make_chan(std::size_t cap);

  explicit Chan(detail::HchanBase* c) noexcept : c_(c) {}
  void reset(detail::HchanBase* c) noexcept {
    detail::HchanBase* old = std::exchange(c_, c);
    if (old != nullptr) detail::chanrelease(old);
  }

  detail::HchanBase* c_ = nullptr;
};

// make_chan is `make(chan T, cap)`: cap == 0 is unbuffered (every send waits
// for its receiver). Panics "makechan: size out of range" if the buffer
// cannot be allocated.
template <class T>
Chan<T> make_chan(std::size_t cap = 0) {
  return Chan<T>(detail::makechan(&detail::ChanTypeOf<T>::type, cap));
}

namespace detail {
template <class T>
HchanBase* hchan_of(const Chan<T>& ch) noexcept {
  return ch.c_;
}
}  // namespace detail

}  // namespace goro
