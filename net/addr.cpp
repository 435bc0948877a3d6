// addr.cpp — parsing "host:port", resolving names, formatting socket
// addresses (Go's net.SplitHostPort, isDomainName, lookup and
// sockaddrToTCP, in goro's words).
//
// The resolver never runs on a P: getaddrinfo may block for seconds on a
// DNS query, so it runs inside goro::blocking(), where the scheduler hands
// the goroutine's P to another thread if the call takes long. Numeric
// addresses skip it entirely, and names that cannot be valid (a label over
// 63 bytes, a character DNS does not allow) are rejected here without
// asking anybody, as Go's resolver rejects them.
#include "net/addr.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "net/fd.hpp"

namespace goro::net::detail {

namespace {

[[noreturn]] void addr_error(const char* op, const Network& n, std::string_view address, const std::string& why) {
  throw Error(EINVAL, std::string(op) + " " + n.name + ": address " + std::string(address) + ": " + why);
}

// split_host_port is Go's net.SplitHostPort.
void split_host_port(const char* op, const Network& n, std::string_view a, std::string* host, std::string* port) {
  const auto colon = a.rfind(':');
  if (colon == std::string_view::npos) addr_error(op, n, a, "missing port in address");
  if (!a.empty() && a[0] == '[') {
    const auto end = a.find(']');
    if (end == std::string_view::npos) addr_error(op, n, a, "missing ']' in address");
    if (end + 1 != colon) {
      if (end + 1 == a.size()) addr_error(op, n, a, "missing port in address");
      addr_error(op, n, a, "too many colons in address");
    }
    *host = std::string(a.substr(1, end - 1));
  } else {
    *host = std::string(a.substr(0, colon));
    if (host->find(':') != std::string::npos) addr_error(op, n, a, "too many colons in address");
    if (host->find_first_of("[]") != std::string::npos) addr_error(op, n, a, "unexpected '[' in address");
  }
  *port = std::string(a.substr(colon + 1));
}

int parse_port(const char* op, const Network& n, const std::string& port) {
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw Error(EINVAL, std::string(op) + " " + n.name + ": lookup " + n.name + "/" + port + ": unknown port");
  const int p = std::stoi(port);
  if (p > 65535)
    throw Error(EINVAL, std::string(op) + " " + n.name + ": address " + port + ": invalid port");
  return p;
}

// is_domain_name is Go's isDomainName: what a DNS name may look like.
bool is_domain_name(const std::string& s) {
  if (s.empty() || s.size() > 254 || (s.size() == 254 && s.back() != '.')) return false;
  bool nonNumeric = false;
  char last = '.';
  std::size_t partlen = 0;
  for (char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
      nonNumeric = true;
      partlen++;
    } else if (c >= '0' && c <= '9') {
      partlen++;
    } else if (c == '-') {
      if (last == '.') return false;
      partlen++;
      nonNumeric = true;
    } else if (c == '.') {
      if (last == '.' || last == '-') return false;
      if (partlen > 63 || partlen == 0) return false;
      partlen = 0;
    } else {
      return false;
    }
    last = c;
  }
  if (last == '-' || partlen > 63) return false;
  return nonNumeric;
}

SockAddr make4(const in_addr& a, int port) {
  SockAddr r;
  auto* sin = reinterpret_cast<sockaddr_in*>(&r.ss);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(static_cast<std::uint16_t>(port));
  sin->sin_addr = a;
  r.len = sizeof(sockaddr_in);
  return r;
}

SockAddr make6(const in6_addr& a, int port) {
  SockAddr r;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&r.ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(static_cast<std::uint16_t>(port));
  sin6->sin6_addr = a;
  r.len = sizeof(sockaddr_in6);
  return r;
}

bool family_ok(const Network& n, int fam) { return n.family == AF_UNSPEC || n.family == fam; }

}  // namespace

Network parse_network(const char* op, std::string_view network, bool stream) {
  Network n;
  n.name = std::string(network);
  if (stream) {
    n.sotype = SOCK_STREAM;
    if (network == "tcp") n.family = AF_UNSPEC;
    else if (network == "tcp4") n.family = AF_INET;
    else if (network == "tcp6") n.family = AF_INET6;
    else if (network == "unix") n.family = AF_UNIX;
    else throw Error(EINVAL, std::string(op) + " " + n.name + ": unknown network " + n.name);
  } else {
    n.sotype = SOCK_DGRAM;
    if (network == "udp") n.family = AF_UNSPEC;
    else if (network == "udp4") n.family = AF_INET;
    else if (network == "udp6") n.family = AF_INET6;
    else throw Error(EINVAL, std::string(op) + " " + n.name + ": unknown network " + n.name);
  }
  return n;
}

std::vector<SockAddr> resolve(const char* op, const Network& n, std::string_view address, bool listening,
                              bool* wildcard) {
  *wildcard = false;
  if (n.family == AF_UNIX) {
    SockAddr r;
    auto* sun = reinterpret_cast<sockaddr_un*>(&r.ss);
    sun->sun_family = AF_UNIX;
    if (address.empty() || address.size() >= sizeof sun->sun_path)
      throw Error(EINVAL, std::string(op) + " unix " + std::string(address) + ": " + errno_text(EINVAL));
    std::memcpy(sun->sun_path, address.data(), address.size());
    if (address[0] == '@') sun->sun_path[0] = '\0';  // Linux abstract namespace, as Go
    r.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + (address[0] == '@' ? 0 : 1));
    return {r};
  }
  std::string host, port;
  split_host_port(op, n, address, &host, &port);
  const int p = parse_port(op, n, port);
  std::vector<SockAddr> out;
  if (host.empty()) {
    if (listening) {
      *wildcard = true;
      if (n.family == AF_INET) return {make4(in_addr{htonl(INADDR_ANY)}, p)};
      return {make6(in6addr_any, p)};  // dual-stack unless tcp6/udp6 (see net.cpp)
    }
    if (n.family == AF_INET6) return {make6(in6addr_loopback, p)};
    return {make4(in_addr{htonl(INADDR_LOOPBACK)}, p)};
  }
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    if (n.family == AF_INET6) addr_error(op, n, host, "no suitable address found");
    return {make4(a4, p)};
  }
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (n.family == AF_INET) addr_error(op, n, host, "no suitable address found");
    if (listening && IN6_IS_ADDR_UNSPECIFIED(&a6)) *wildcard = true;
    return {make6(a6, p)};
  }
  if (!is_domain_name(host))
    throw Error(ENOENT, std::string(op) + " " + n.name + ": lookup " + host + ": no such host");
  // A name: ask the system resolver, off the P.
  addrinfo hints{};
  hints.ai_family = n.family;
  hints.ai_socktype = n.sotype;
  addrinfo* res = nullptr;
  const int rc = goro::blocking([&] { return ::getaddrinfo(host.c_str(), nullptr, &hints, &res); });
  if (rc != 0) {
    const std::string why = rc == EAI_NONAME || rc == EAI_NODATA ? "no such host" : gai_strerror(rc);
    throw Error(ENOENT, std::string(op) + " " + n.name + ": lookup " + host + ": " + why);
  }
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET && family_ok(n, AF_INET))
      out.push_back(make4(reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, p));
    else if (ai->ai_family == AF_INET6 && family_ok(n, AF_INET6))
      out.push_back(make6(reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, p));
  }
  ::freeaddrinfo(res);
  // IPv4 first, duplicates out (getaddrinfo lists one per socket type).
  std::stable_sort(out.begin(), out.end(), [](const SockAddr& a, const SockAddr& b) {
    return a.family() == AF_INET && b.family() != AF_INET;
  });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const SockAddr& a, const SockAddr& b) {
                          return a.len == b.len && std::memcmp(&a.ss, &b.ss, a.len) == 0;
                        }),
            out.end());
  if (out.empty()) addr_error(op, n, host, "no suitable address found");
  return out;
}

std::string sockaddr_string(const sockaddr* sa, socklen_t len) {
  char buf[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    const int port = ntohs(sin6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      // An IPv4 peer of a dual-stack socket reads as IPv4, as in Go.
      inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(port);
    }
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port);
  }
  if (sa->sa_family == AF_UNIX) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(sa);
    const auto n = static_cast<std::size_t>(len) - offsetof(sockaddr_un, sun_path);
    if (len <= offsetof(sockaddr_un, sun_path) || n == 0) return "";
    if (sun->sun_path[0] == '\0') return "@" + std::string(sun->sun_path + 1, n - 1);
    return std::string(sun->sun_path, strnlen(sun->sun_path, n));
  }
  return "";
}

std::string local_name(int s) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(s, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  return sockaddr_string(reinterpret_cast<sockaddr*>(&ss), len);
}

std::string peer_name(int s) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(s, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  return sockaddr_string(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace goro::net::detail
