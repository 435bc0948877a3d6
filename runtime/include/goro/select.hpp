// goro/select.hpp — Go's select statement.
//
//   goro::select(
//       goro::case_recv(in, [](std::optional<int> v) { ... }),  // v: nullopt if closed
//       goro::case_send(out, 42, [] { ... }),
//       goro::case_default([] { ... }));                        // at most one
//
// select waits until one case can proceed, runs it (the receive or send, then
// its function) and returns its index among the arguments. When several are
// ready it picks one uniformly at random; with a default case it never waits.
// Cases on a nil channel are never picked; select() with no cases at all
// blocks forever, as `select {}` does.
//
// goro::select(std::span<AnyCase>) is the same select over a number of cases
// known only at run time (Go's reflect.Select), with type-erased cases.
//
// The cases are small structs; select gives the channel core one
// detail::Scase per case (channel, element address, direction) and
// detail::selectgo (runtime/select.cpp) does the rest: the same algorithm
// whatever the element types.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>

#include "goro/chan.hpp"
#include "goro/gc.hpp"

namespace goro {

namespace detail {

// Scase is one case of a select as the core sees it (Go's scase). A case with
// c == nullptr — a nil channel, or the default case — is never chosen.
struct Scase {
  HchanBase* c = nullptr;
  void* elem = nullptr;  // send: the T to send; receive: the std::optional<T> to fill
  bool send = false;
};

// selectgo runs a select over cases[0..n) (runtime/select.cpp). It returns
// the index of the case that proceeded, or -1 if none was ready and
// block == false (the caller then runs its default case).
int selectgo(Scase* cases, int n, bool block);

struct NoFn {
  void operator()() const noexcept {}
};

// CaseChan is a case's channel. A case made from a Chan lvalue borrows it:
// in `select(case_recv(a), case_recv(b))` the cases live only as long as
// the select statement, and a and b outlive it, so the case takes no
// reference — a copy would cost two atomic read-modify-writes per case and
// per select, on the channel's contended cache line. A case made from an
// rvalue (`case_recv(goro::after(d))`) owns the channel, as does any copy
// or move of a case: a case kept beyond its statement (an AnyCase, or a
// case stored in a variable and moved) holds its own reference. The borrowed
// Chan is read when the select starts, as Go evaluates a case's channel
// expression on entering the select.
template <class T>
class CaseChan {
 public:
  explicit CaseChan(const Chan<T>& c) noexcept : borrowed_(&c) {}
  explicit CaseChan(Chan<T>&& c) noexcept : owned_(std::move(c)) {}
  CaseChan(const CaseChan& o) noexcept : owned_(o.get()) {}
  CaseChan(CaseChan&& o) noexcept
      : owned_(o.borrowed_ != nullptr ? Chan<T>(*o.borrowed_) : std::move(o.owned_)) {}
  CaseChan& operator=(const CaseChan& o) noexcept {
    owned_ = o.get();  // a copy: o may be this, or borrow what owned_ holds
    borrowed_ = nullptr;
    return *this;
  }
  CaseChan& operator=(CaseChan&& o) noexcept {
    if (this != &o) owned_ = o.borrowed_ != nullptr ? Chan<T>(*o.borrowed_) : std::move(o.owned_);
    borrowed_ = nullptr;
    return *this;
  }

  const Chan<T>& get() const noexcept { return borrowed_ != nullptr ? *borrowed_ : owned_; }

 private:
  const Chan<T>* borrowed_ = nullptr;
  Chan<T> owned_;
};

// recv_fn_ok: a receive case's function takes std::optional<T> or nothing.
template <class T, class F>
inline constexpr bool recv_fn_ok =
    std::is_invocable_v<std::decay_t<F>&, std::optional<T>> || std::is_invocable_v<std::decay_t<F>&>;

template <class T, class F>
struct RecvCase {
  CaseChan<T> ch;
  F fn;
  std::optional<T> val;

  void prepare(Scase& s) {
    s.c = hchan_of(ch.get());
    s.elem = &val;
    s.send = false;
  }
  void run() {
    if constexpr (std::is_invocable_v<F&, std::optional<T>>) {
      // val was filled through a void* (selectgo): GCC 12 cannot see that
      // and warns that moving it may read uninitialised bytes.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
      fn(std::move(val));
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    } else {
      fn();
    }
  }
};

template <class T, class F>
struct SendCase {
  CaseChan<T> ch;
  T val;
  F fn;

  void prepare(Scase& s) {
    s.c = hchan_of(ch.get());
    s.elem = &val;
    s.send = true;
  }
  void run() { fn(); }
};

template <class F>
struct DefaultCase {
  F fn;

  void prepare(Scase& s) { s = Scase{}; }
  void run() { fn(); }
};

template <class C>
inline constexpr bool is_default_case = false;
template <class F>
inline constexpr bool is_default_case<DefaultCase<F>> = true;

template <class C>
inline constexpr bool is_select_case = false;
template <class T, class F>
inline constexpr bool is_select_case<RecvCase<T, F>> = true;
template <class T, class F>
inline constexpr bool is_select_case<SendCase<T, F>> = true;
template <class F>
inline constexpr bool is_select_case<DefaultCase<F>> = true;

template <class C>
inline constexpr bool is_send_case = false;
template <class T, class F>
inline constexpr bool is_send_case<SendCase<T, F>> = true;

template <class C>
inline constexpr bool is_recv_case = false;
template <class T, class F>
inline constexpr bool is_recv_case<RecvCase<T, F>> = true;

// case_value_t is the element type of a channel case (void for default).
template <class C>
struct case_value {
  using type = void;
};
template <class T, class F>
struct case_value<RecvCase<T, F>> {
  using type = T;
};
template <class T, class F>
struct case_value<SendCase<T, F>> {
  using type = T;
};

// AnyCaseBase is AnyCase's type-erased case (the variadic select's cases
// behind one interface, as reflect.SelectCase is for Go's reflect.Select).
struct AnyCaseBase {
  virtual ~AnyCaseBase() = default;
  virtual void prepare(Scase& s) = 0;  // a receive starts with an empty value
  virtual void run() = 0;
  bool is_default = false;
  bool spent = false;  // a send case that ran: its value is gone
};

template <class C>
struct AnyCaseImpl final : AnyCaseBase {
  C c;
  // The case lives in malloc'd memory, which the GC does not scan: a value
  // that may hold GC pointers (the one to send, or the one received while
  // the select is parked) is a root while the case exists, unless its type
  // holds no GC pointers (gc::pointer_free, as for channel buffers).
  static constexpr bool scan = !std::is_void_v<typename case_value<C>::type> &&
                               !gc::pointer_free_v<typename case_value<C>::type>;
  explicit AnyCaseImpl(C&& x) : c(std::move(x)) {
    is_default = is_default_case<C>;
    if constexpr (scan) gc_add_root(this, sizeof *this);
  }
  ~AnyCaseImpl() override {
    if constexpr (scan) gc_remove_root(this);
  }
  void prepare(Scase& s) override {
    if constexpr (is_recv_case<C>) c.val.reset();
    c.prepare(s);
  }
  void run() override {
    if constexpr (is_send_case<C>) spent = true;
    c.run();
  }
};

}  // namespace detail

class AnyCase;
std::size_t select(std::span<AnyCase> cases);

// AnyCase is one case of a select whose cases are known only at run time
// (Go's reflect.SelectCase): implicitly constructible from what case_recv,
// case_send and case_default return; movable, not copyable. A receive case
// may be reused by later selects (each starts with an empty value); a send
// case that ran is spent (its value was sent), and a select given it again
// throws goro::Error.
class AnyCase {
 public:
  template <class C>
    requires detail::is_select_case<std::remove_cvref_t<C>>
  AnyCase(C&& c)  // NOLINT(google-explicit-constructor): implicit on purpose
      : p_(std::make_unique<detail::AnyCaseImpl<std::remove_cvref_t<C>>>(
            std::remove_cvref_t<C>(std::forward<C>(c)))) {}
  AnyCase(AnyCase&&) noexcept = default;
  AnyCase& operator=(AnyCase&&) noexcept = default;

 private:
  std::unique_ptr<detail::AnyCaseBase> p_;
  friend std::size_t select(std::span<AnyCase> cases);
};

// case_recv is `case v, ok := <-ch:`; fn receives std::optional<T> (nullopt:
// closed and drained) or takes no argument; it may be omitted. The two
// overloads accept what a by-value `Chan<T> ch` would: an lvalue is borrowed
// for the select statement, an rvalue is kept (detail::CaseChan).
template <class T, class F = detail::NoFn>
detail::RecvCase<T, std::decay_t<F>> case_recv(const Chan<T>& ch, F&& fn = {}) {
  static_assert(detail::recv_fn_ok<T, F>, "goro::case_recv: fn must take std::optional<T> (or nothing)");
  return {detail::CaseChan<T>(ch), std::forward<F>(fn), std::nullopt};
}
template <class T, class F = detail::NoFn>
detail::RecvCase<T, std::decay_t<F>> case_recv(Chan<T>&& ch, F&& fn = {}) {
  static_assert(detail::recv_fn_ok<T, F>, "goro::case_recv: fn must take std::optional<T> (or nothing)");
  return {detail::CaseChan<T>(std::move(ch)), std::forward<F>(fn), std::nullopt};
}

// case_send is `case ch <- v:`; fn() runs after the send; it may be omitted.
// If another case is chosen, v is dropped. ch as for case_recv.
template <class T, class F = detail::NoFn>
detail::SendCase<T, std::decay_t<F>> case_send(const Chan<T>& ch, std::type_identity_t<T> v, F&& fn = {}) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "goro::case_send: fn must take nothing");
  return {detail::CaseChan<T>(ch), std::move(v), std::forward<F>(fn)};
}
template <class T, class F = detail::NoFn>
detail::SendCase<T, std::decay_t<F>> case_send(Chan<T>&& ch, std::type_identity_t<T> v, F&& fn = {}) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "goro::case_send: fn must take nothing");
  return {detail::CaseChan<T>(std::move(ch)), std::move(v), std::forward<F>(fn)};
}

// case_default is `default:`; at most one per select.
template <class F = detail::NoFn>
detail::DefaultCase<std::decay_t<F>> case_default(F&& fn = {}) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "goro::case_default: fn must take nothing");
  return {std::forward<F>(fn)};
}

// select: see the file comment. Returns the index of the case that ran.
// (Not for a single range of AnyCase: that is the overload below.)
template <class... Cases>
  requires(!(sizeof...(Cases) == 1 && (std::is_convertible_v<Cases&&, std::span<AnyCase>> && ...)))
std::size_t select(Cases&&... cases) {
  static_assert((detail::is_select_case<std::remove_cvref_t<Cases>> && ...),
                "goro::select takes case_recv, case_send and case_default");
  static_assert(!(std::is_const_v<std::remove_reference_t<Cases>> || ...),
                "goro::select: cases must not be const");
  constexpr int ndefault = (0 + ... + int(detail::is_default_case<std::remove_cvref_t<Cases>>));
  static_assert(ndefault <= 1, "goro::select: at most one case_default");
  constexpr std::size_t n = sizeof...(Cases);

  detail::Scase sc[n == 0 ? 1 : n];
  {
    std::size_t i = 0;
    (cases.prepare(sc[i++]), ...);
  }
  int chosen = detail::selectgo(sc, static_cast<int>(n), ndefault == 0);
  if (chosen < 0) {
    // Nothing was ready: run the default case.
    std::size_t i = 0;
    (((detail::is_default_case<std::remove_cvref_t<Cases>>) ? (chosen = static_cast<int>(i), 0) : 0,
      i++),
     ...);
  }
  {
    std::size_t i = 0;
    ((i++ == static_cast<std::size_t>(chosen) ? cases.run() : void()), ...);
  }
  return static_cast<std::size_t>(chosen);
}

// select over a run-time number of cases (Go's reflect.Select), e.g. fan-in
// over N channels:
//
//   std::vector<goro::AnyCase> cases;
//   for (auto& ch : inputs) cases.push_back(goro::case_recv(ch, on_value));
//   std::size_t i = goro::select(cases);
//
// The same rules as the variadic select: a uniform choice among ready cases,
// at most one default (a second is goro::Panic), cases on nil channels never
// chosen, no cases at all blocks forever. Returns the index in cases.
// (runtime/select.cpp)
std::size_t select(std::span<AnyCase> cases);

}  // namespace goro
