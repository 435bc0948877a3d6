// goro/net.hpp — goroutine-blocking sockets: Go's net package (TCP, Unix
// stream sockets, UDP) on the runtime's netpoller.
//
// A goroutine that reads a Conn with no data parks; its thread runs other
// goroutines; the netpoller (epoll, edge-triggered) readies it when data
// arrives. So a server is written as Go's are, a goroutine per connection,
// and 10,000 idle connections cost 10,000 parked goroutines, not threads.
//
//   goro::net::Listener ln = goro::net::listen("tcp", "127.0.0.1:0");
//   for (;;) {
//     goro::go([c = ln.accept()]() mutable { char b[512]; ... c.read(b, sizeof b) ... });
//   }
//
// Errors are goro::net::Error (a std::system_error: code() is the errno),
// with Go's texts in what() ("dial tcp 127.0.0.1:1: connect: connection
// refused", "read tcp ...: i/o timeout", "use of closed network connection").
// Every call outside a running runtime throws goro::Error. See docs/netpoll.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

#include "goro/runtime.hpp"
#include "goro/time.hpp"

namespace goro::net {

namespace detail {
struct netFD;  // net/fd.hpp
}

// Error is a failed network operation: code() is the errno (ETIMEDOUT for
// a deadline, EBADF for a closed object), what() Go's message.
class Error : public std::system_error {
 public:
  Error(int err, std::string what, bool timeout = false, bool closed = false, std::size_t transferred = 0);
  const char* what() const noexcept override { return what_.c_str(); }
  bool timeout() const { return timeout_; }   // a deadline expired ("i/o timeout")
  bool closed() const { return closed_; }     // "use of closed network connection"
  std::size_t transferred() const { return transferred_; }  // bytes a write got out first

 private:
  std::string what_;
  bool timeout_;
  bool closed_;
  std::size_t transferred_;
};

// Conn is a stream connection (TCP or Unix). Move-only; ~Conn closes it.
// One goroutine may read while another writes; close() and the deadline
// setters may be called from any goroutine.
class Conn {
 public:
  Conn() = default;  // not connected: every call throws Error(EBADF)
  explicit Conn(detail::netFD* fd) : fd_(fd) {}
  Conn(Conn&& o) noexcept : fd_(o.fd_) { o.fd_ = nullptr; }
  Conn& operator=(Conn&& o) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  std::size_t read(void* buf, std::size_t n);          // >= 1 byte, or 0 at EOF
  std::size_t write(const void* buf, std::size_t n);   // all n bytes, or throws
  std::size_t write(std::string_view s) { return write(s.data(), s.size()); }
  void close();        // wakes goroutines parked on it: they throw Error with closed()
  void close_write();  // half-close: the peer reads EOF, we can still read
  void set_deadline(Time t);  // read and write; Time{} clears
  void set_read_deadline(Time t);
  void set_write_deadline(Time t);
  std::string local_addr() const;
  std::string remote_addr() const;
  int fd() const;
  explicit operator bool() const;

 private:
  detail::netFD* fd_ = nullptr;
};

// Listener accepts stream connections. Move-only; ~Listener closes it.
class Listener {
 public:
  Listener() = default;  // not listening: accept() throws Error(EBADF)
  explicit Listener(detail::netFD* fd) : fd_(fd) {}
  Listener(Listener&& o) noexcept : fd_(o.fd_) { o.fd_ = nullptr; }
  Listener& operator=(Listener&& o) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();

  Conn accept();       // parks until a connection arrives
  void close();        // wakes a parked accept(): it throws Error with closed()
  void set_deadline(Time t);  // for accept(); Time{} clears
  std::string addr() const;   // with the real port when ":0" was asked
  int port() const;
  int fd() const;
  explicit operator bool() const;

 private:
  detail::netFD* fd_ = nullptr;
};

// listen: network "tcp", "tcp4", "tcp6" or "unix"; address "127.0.0.1:0",
// "[::1]:8080", "localhost:9000", ":0" (every address, dual-stack), a path.
Listener listen(std::string_view network, std::string_view address);
// dial connects; names are resolved off the P (getaddrinfo in blocking()),
// the connect itself parks on the poller. With a timeout, both together
// take at most that long.
Conn dial(std::string_view network, std::string_view address);
Conn dial(std::string_view network, std::string_view address, std::chrono::nanoseconds timeout);

// PacketConn is a UDP socket. Move-only; ~PacketConn closes it.
class PacketConn {
 public:
  PacketConn() = default;
  explicit PacketConn(detail::netFD* fd) : fd_(fd) {}
  PacketConn(PacketConn&& o) noexcept : fd_(o.fd_) { o.fd_ = nullptr; }
  PacketConn& operator=(PacketConn&& o) noexcept;
  PacketConn(const PacketConn&) = delete;
  PacketConn& operator=(const PacketConn&) = delete;
  ~PacketConn();

  // read_from parks until a datagram arrives; returns its size (truncated
  // to n) and, if from is given, the sender's address.
  std::size_t read_from(void* buf, std::size_t n, std::string* from = nullptr);
  std::size_t write_to(const void* buf, std::size_t n, std::string_view address);
  void close();
  void set_deadline(Time t);
  void set_read_deadline(Time t);
  void set_write_deadline(Time t);
  std::string local_addr() const;
  int port() const;
  int fd() const;
  explicit operator bool() const;

 private:
  detail::netFD* fd_ = nullptr;
};

// listen_packet: network "udp", "udp4" or "udp6".
PacketConn listen_packet(std::string_view network, std::string_view address);

}  // namespace goro::net
