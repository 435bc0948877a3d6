// net.cpp — goro::net's public face: listen, dial, listen_packet and the
// Conn/Listener/PacketConn handles (Go's net/dial.go, tcpsock_posix.go,
// unixsock_posix.go, udpsock_posix.go, sock_posix.go).
//
// Every socket is created non-blocking and close-on-exec in one call
// (SOCK_NONBLOCK | SOCK_CLOEXEC: no window where a fork could inherit it),
// registered with the netpoller once (net/fd.cpp newFD), and then used
// through the fd_* operations, which park on the poller instead of
// blocking the thread. Listeners set SO_REUSEADDR (a restarted server can
// bind while old connections sit in TIME_WAIT); TCP connections set
// TCP_NODELAY, as Go does (small writes go out at once; request/response
// protocols do not wait 40 ms for Nagle).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "goro/net.hpp"
#include "net/addr.hpp"
#include "net/fd.hpp"
#include "sched/nanotime.hpp"

namespace goro::net {

namespace {

using detail::netFD;
using detail::Network;
using detail::SockAddr;

// somaxconn is the listen backlog: the kernel's limit, as Go reads it.
int somaxconn() {
  static const int v = [] {
    int n = SOMAXCONN;
    if (FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "r")) {
      if (std::fscanf(f, "%d", &n) != 1 || n <= 0) n = SOMAXCONN;
      std::fclose(f);
    }
    return n > 65535 ? 65535 : n;
  }();
  return v;
}

int new_socket(const char* op, const Network& n, int family, const std::string& address) {
  const int s = ::socket(family, n.sotype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) {
    const int err = errno;
    throw Error(err, std::string(op) + " " + n.name + " " + address + ": socket: " + detail::errno_text(err));
  }
  return s;
}

void set_int(int s, int level, int opt, int v) { ::setsockopt(s, level, opt, &v, sizeof v); }

[[noreturn]] void sys_fail(const char* op, const Network& n, const std::string& address, const char* call, int s) {
  const int err = errno;
  if (s >= 0) ::close(s);
  throw Error(err, std::string(op) + " " + n.name + " " + address + ": " + call + ": " + detail::errno_text(err));
}

// bind_socket creates, configures and binds a socket for listen or
// listen_packet; returns the descriptor.
int bind_socket(const char* op, const Network& n, const SockAddr& a, bool wildcard, const std::string& address) {
  int s = new_socket(op, n, a.family(), address);
  if (n.sotype == SOCK_STREAM && a.family() != AF_UNIX) set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
  if (n.sotype == SOCK_DGRAM) set_int(s, SOL_SOCKET, SO_BROADCAST, 1);
  if (a.family() == AF_INET6) {
    // "tcp"/"udp" on the wildcard is dual-stack: IPv4 peers arrive as
    // ::ffff:a.b.c.d. "tcp6" and a specific IPv6 address are IPv6 only.
    set_int(s, IPPROTO_IPV6, IPV6_V6ONLY, (wildcard && n.family == AF_UNSPEC) ? 0 : 1);
  }
  if (::bind(s, a.sa(), a.len) != 0) sys_fail(op, n, address, "bind", s);
  return s;
}

void require(const char* api) { detail::require_runtime(api); }

// need is every accessor's check: inside a runtime, on a real object.
netFD* need(netFD* fd, const char* api) {
  require(api);
  if (fd == nullptr) throw Error(EBADF, std::string(api) + ": " + detail::errno_text(EBADF));
  return fd;
}

}  // namespace

// ---------------------------------------------------------------------------
// listen / dial / listen_packet

Listener listen(std::string_view network, std::string_view address) {
  require("goro::net::listen");
  const Network n = detail::parse_network("listen", network, true);
  bool wildcard = false;
  std::vector<SockAddr> addrs = detail::resolve("listen", n, address, true, &wildcard);
  const std::string astr(address);
  SockAddr a = addrs.front();
  int s = -1;
  try {
    s = bind_socket("listen", n, a, wildcard, astr);
  } catch (const Error& e) {
    // No IPv6 on this machine: the wildcard falls back to IPv4, as Go's
    // favoriteAddrFamily does.
    if (!(wildcard && a.family() == AF_INET6 && e.code().value() == EAFNOSUPPORT)) throw;
    a = SockAddr{};
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.ss);
    sin->sin_family = AF_INET;
    sin->sin_port = reinterpret_cast<const sockaddr_in6*>(&addrs.front().ss)->sin6_port;
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    a.len = sizeof(sockaddr_in);
    s = bind_socket("listen", n, a, wildcard, astr);
  }
  if (::listen(s, somaxconn()) != 0) sys_fail("listen", n, astr, "listen", s);
  netFD* fd = detail::newFD(s, a.family(), SOCK_STREAM, n.name, "listen");
  fd->laddr = a.family() == AF_UNIX ? astr : detail::local_name(s);
  if (a.family() == AF_UNIX && !astr.empty() && astr[0] != '@') fd->unlink_path = astr;
  return Listener(fd);
}

Conn dial(std::string_view network, std::string_view address) {
  return dial(network, address, std::chrono::nanoseconds(0));
}

Conn dial(std::string_view network, std::string_view address, std::chrono::nanoseconds timeout) {
  require("goro::net::dial");
  const std::int64_t deadline = timeout.count() > 0 ? goro::detail::nanotime() + timeout.count() : 0;
  const Network n = detail::parse_network("dial", network, true);
  bool wildcard = false;
  const std::vector<SockAddr> addrs = detail::resolve("dial", n, address, false, &wildcard);
  // Try each address in turn (IPv4 first); report the first failure if all
  // fail, as Go's dialSerial does.
  std::exception_ptr first;
  for (const SockAddr& a : addrs) {
    const std::string text =
        a.family() == AF_UNIX ? std::string(address) : detail::sockaddr_string(a.sa(), a.len);
    if (deadline != 0 && goro::detail::nanotime() >= deadline)
      throw Error(ETIMEDOUT, "dial " + n.name + " " + text + ": i/o timeout", true);
    const int s = new_socket("dial", n, a.family(), text);
    netFD* fd = detail::newFD(s, a.family(), SOCK_STREAM, n.name, "dial");
    fd->raddr = text;
    Conn c(fd);  // closes fd if connect throws
    try {
      detail::fd_connect(fd, a.sa(), a.len, deadline, text);
    } catch (const Error&) {
      if (!first) first = std::current_exception();
      continue;
    }
    if (a.family() != AF_UNIX) set_int(fd->sysfd, IPPROTO_TCP, TCP_NODELAY, 1);
    fd->laddr = detail::local_name(fd->sysfd);
    if (a.family() != AF_UNIX) fd->raddr = detail::peer_name(fd->sysfd);
    return c;
  }
  std::rethrow_exception(first);
}

PacketConn listen_packet(std::string_view network, std::string_view address) {
  require("goro::net::listen_packet");
  const Network n = detail::parse_network("listen", network, false);
  bool wildcard = false;
  std::vector<SockAddr> addrs = detail::resolve("listen", n, address, true, &wildcard);
  const std::string astr(address);
  const SockAddr& a = addrs.front();
  const int s = bind_socket("listen", n, a, wildcard, astr);
  netFD* fd = detail::newFD(s, a.family(), SOCK_DGRAM, n.name, "listen");
  fd->laddr = detail::local_name(s);
  return PacketConn(fd);
}

// ---------------------------------------------------------------------------
// Conn

Conn& Conn::operator=(Conn&& o) noexcept {
  if (this != &o) {
    detail::fd_release(fd_);
    fd_ = o.fd_;
    o.fd_ = nullptr;
  }
  return *this;
}

Conn::~Conn() { detail::fd_release(fd_); }

std::size_t Conn::read(void* buf, std::size_t n) { return detail::fd_read(fd_, buf, n); }
std::size_t Conn::write(const void* buf, std::size_t n) { return detail::fd_write(fd_, buf, n); }
void Conn::close() { detail::fd_close(fd_, "close"); }
void Conn::close_write() { detail::fd_shutdown(fd_, SHUT_WR); }
void Conn::set_deadline(Time t) { detail::fd_set_deadline(fd_, t, 'r' + 'w'); }
void Conn::set_read_deadline(Time t) { detail::fd_set_deadline(fd_, t, 'r'); }
void Conn::set_write_deadline(Time t) { detail::fd_set_deadline(fd_, t, 'w'); }
std::string Conn::local_addr() const { return need(fd_, "goro::net::Conn::local_addr")->laddr; }
std::string Conn::remote_addr() const { return need(fd_, "goro::net::Conn::remote_addr")->raddr; }
int Conn::fd() const { return fd_ != nullptr && !fd_->mu.closed() ? fd_->sysfd : -1; }
Conn::operator bool() const { return fd_ != nullptr && !fd_->mu.closed(); }

// ---------------------------------------------------------------------------
// Listener

Listener& Listener::operator=(Listener&& o) noexcept {
  if (this != &o) {
    detail::fd_release(fd_);
    fd_ = o.fd_;
    o.fd_ = nullptr;
  }
  return *this;
}

Listener::~Listener() { detail::fd_release(fd_); }

Conn Listener::accept() { return Conn(detail::fd_accept(fd_)); }
void Listener::close() { detail::fd_close(fd_, "close"); }
void Listener::set_deadline(Time t) { detail::fd_set_deadline(fd_, t, 'r'); }
std::string Listener::addr() const { return need(fd_, "goro::net::Listener::addr")->laddr; }
int Listener::port() const {
  if (need(fd_, "goro::net::Listener::port")->family == AF_UNIX) return 0;
  const auto colon = fd_->laddr.rfind(':');
  return colon == std::string::npos ? 0 : std::stoi(fd_->laddr.substr(colon + 1));
}
int Listener::fd() const { return fd_ != nullptr && !fd_->mu.closed() ? fd_->sysfd : -1; }
Listener::operator bool() const { return fd_ != nullptr && !fd_->mu.closed(); }

// ---------------------------------------------------------------------------
// PacketConn

PacketConn& PacketConn::operator=(PacketConn&& o) noexcept {
  if (this != &o) {
    detail::fd_release(fd_);
    fd_ = o.fd_;
    o.fd_ = nullptr;
  }
  return *this;
}

PacketConn::~PacketConn() { detail::fd_release(fd_); }

std::size_t PacketConn::read_from(void* buf, std::size_t n, std::string* from) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const std::size_t k = detail::fd_recvfrom(fd_, buf, n, &ss, &len);
  if (from != nullptr) *from = detail::sockaddr_string(reinterpret_cast<sockaddr*>(&ss), len);
  return k;
}

std::size_t PacketConn::write_to(const void* buf, std::size_t n, std::string_view address) {
  need(fd_, "goro::net::PacketConn::write_to");
  Network net = detail::parse_network("write", fd_->net, false);
  // A dual-stack socket sends to IPv4 peers as ::ffff:a.b.c.d.
  if (fd_->family == AF_INET) net.family = AF_INET;
  bool wildcard = false;
  std::vector<SockAddr> addrs = detail::resolve("write", net, address, false, &wildcard);
  SockAddr to = addrs.front();
  if (fd_->family == AF_INET6 && to.family() == AF_INET) {
    SockAddr m;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&m.ss);
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&to.ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = sin->sin_port;
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&sin6->sin6_addr.s6_addr[12], &sin->sin_addr, 4);
    m.len = sizeof(sockaddr_in6);
    to = m;
  }
  return detail::fd_sendto(fd_, buf, n, to.sa(), to.len, std::string(address));
}

void PacketConn::close() { detail::fd_close(fd_, "close"); }
void PacketConn::set_deadline(Time t) { detail::fd_set_deadline(fd_, t, 'r' + 'w'); }
void PacketConn::set_read_deadline(Time t) { detail::fd_set_deadline(fd_, t, 'r'); }
void PacketConn::set_write_deadline(Time t) { detail::fd_set_deadline(fd_, t, 'w'); }
std::string PacketConn::local_addr() const { return need(fd_, "goro::net::PacketConn::local_addr")->laddr; }
int PacketConn::port() const {
  need(fd_, "goro::net::PacketConn::port");
  const auto colon = fd_->laddr.rfind(':');
  return colon == std::string::npos ? 0 : std::stoi(fd_->laddr.substr(colon + 1));
}
int PacketConn::fd() const { return fd_ != nullptr && !fd_->mu.closed() ? fd_->sysfd : -1; }
PacketConn::operator bool() const { return fd_ != nullptr && !fd_->mu.closed(); }

}  // namespace goro::net
