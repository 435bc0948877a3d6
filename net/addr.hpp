// addr.hpp — network names and socket addresses (Go's net/ipsock.go,
// net/lookup.go, net/sockaddr_posix.go, much smaller).
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

namespace goro::net::detail {

// Network is a parsed network name: "tcp", "tcp4", "tcp6", "udp", "udp4",
// "udp6", "unix".
struct Network {
  std::string name;
  int sotype = 0;   // SOCK_STREAM or SOCK_DGRAM
  int family = 0;   // AF_UNSPEC (either), AF_INET, AF_INET6, AF_UNIX
};

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

// parse_network throws Error("... unknown network X") for anything else;
// `stream` says which kinds the caller accepts.
Network parse_network(const char* op, std::string_view network, bool stream);

// resolve turns an address into the socket addresses to try, IPv4 first
// (Go's preference for listening, and a fine order for dialling loopback).
// A numeric host needs no resolver; a name is checked locally first (Go's
// isDomainName) and then resolved with getaddrinfo inside goro::blocking(),
// so the calling goroutine's P runs other goroutines meanwhile. An empty
// host means every address when listening (the dual-stack "[::]" for
// "tcp"/"udp") and the local system when dialling. Throws Error with Go's
// message on failure.
std::vector<SockAddr> resolve(const char* op, const Network& n, std::string_view address, bool listening,
                              bool* wildcard);

}  // namespace goro::net::detail
