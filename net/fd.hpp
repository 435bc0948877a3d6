// fd.hpp — a network descriptor: Go's internal/poll.FD and net.netFD in one
// struct, and Go's fdMutex (internal/poll/fd_mutex.go).
//
// The lifetime rule (why there is an fdMutex at all). close() may be called
// while other goroutines are inside read(), write() or accept() on the same
// descriptor. If close() released the number to the kernel at once, a
// concurrent socket() or accept() anywhere in the process could get the same
// number, and the reader, still looping, would read someone else's
// connection. So every operation holds a reference; close() only marks the
// descriptor closed, wakes everybody parked on it (they fail with "use of
// closed network connection") and drops its own reference; the kernel close
// happens when the last reference goes (destroy).
//
// fdMutex state, one 64-bit word as Go's:
//   bit 0        mutexClosed
//   bit 1        mutexRLock   a reader holds the read lock
//   bit 2        mutexWLock   a writer holds the write lock
//   bits 3..22   references (every operation, read/write lock holders too)
//   bits 23..42  readers waiting for the read lock (on rsema)
//   bits 43..62  writers waiting for the write lock (on wsema)
// Readers are serialised among themselves (one read at a time, so bytes are
// not interleaved between two readers) and writers likewise; a read and a
// write run at once.
//
// Invariants:
//   - sysfd is open in the kernel until destroy(); destroy runs exactly once,
//     when the reference count drops to zero with mutexClosed set.
//   - The netFD's memory is freed when both its handle (Conn, Listener,
//     PacketConn) is gone and destroy has run, by whichever is last (life).
//   - A netFD from an earlier run() (epoch != netpoll_epoch()) was closed by
//     that run's teardown; its handle only frees the memory.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "goro/net.hpp"
#include "sched/netpoll.hpp"

namespace goro::net::detail {

class fdMutex {
 public:
  bool incref();           // false if closed
  bool increfAndClose();   // false if already closed; wakes every lock waiter
  bool decref();           // true: the last reference of a closed fd (destroy)
  bool rwlock(bool read);  // false if closed
  bool rwunlock(bool read);  // true: destroy
  bool closed() const { return (state_.load(std::memory_order_acquire) & 1) != 0; }

 private:
  std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint32_t> rsema_{0};
  std::atomic<std::uint32_t> wsema_{0};
};

struct netFD {
  int sysfd = -1;
  int family = 0;            // AF_INET, AF_INET6, AF_UNIX
  int sotype = 0;            // SOCK_STREAM, SOCK_DGRAM
  std::string net;           // "tcp", "tcp4", "unix", "udp" ... (for messages)
  std::string laddr;
  std::string raddr;
  std::string unlink_path;   // a Unix listener's socket file, removed on close
  goro::detail::PollDesc* pd = nullptr;
  std::uint64_t epoch = 0;
  fdMutex mu;
  std::atomic<int> life{0};  // lifeHandleGone | lifeDestroyed
};

inline constexpr int lifeHandleGone = 1;
inline constexpr int lifeDestroyed = 2;

// newFD wraps an open non-blocking socket and registers it with the poller;
// on failure closes s and throws Error (op names the operation).
netFD* newFD(int s, int family, int sotype, std::string net, const char* op);

// The operations. Each throws Error with Go's message on failure.
std::size_t fd_read(netFD* fd, void* buf, std::size_t n);
std::size_t fd_write(netFD* fd, const void* buf, std::size_t n);
netFD* fd_accept(netFD* fd);
std::size_t fd_recvfrom(netFD* fd, void* buf, std::size_t n, sockaddr_storage* from, socklen_t* fromlen);
std::size_t fd_sendto(netFD* fd, const void* buf, std::size_t n, const sockaddr* to, socklen_t tolen,
                      const std::string& to_text);
void fd_close(netFD* fd, const char* op);   // throws closed() if closed already
void fd_shutdown(netFD* fd, int how);
void fd_set_deadline(netFD* fd, Time t, int mode);
// fd_connect connects s (registered in fd) to sa, parking on the poller;
// deadline is nanotime() (0: none). Throws "connect: ..." errors.
void fd_connect(netFD* fd, const sockaddr* sa, socklen_t len, std::int64_t deadline, const std::string& addr);
// fd_release is the handle's destructor: close if still open, then free
// the memory now or leave it to the last operation.
void fd_release(netFD* fd) noexcept;

// Error helpers.
std::string errno_text(int err);  // Go's texts ("connection refused", ...)
[[noreturn]] void throw_op(const netFD* fd, const char* op, int err, const char* syscall = nullptr,
                           std::size_t transferred = 0);
[[noreturn]] void throw_closed(const netFD* fd, const char* op);
[[noreturn]] void throw_timeout(const netFD* fd, const char* op, std::size_t transferred = 0);
std::string op_prefix(const netFD* fd, const char* op);  // "read tcp 127.0.0.1:1->127.0.0.1:2"

// Addresses (addr.cpp).
std::string sockaddr_string(const sockaddr* sa, socklen_t len);
std::string local_name(int s);
std::string peer_name(int s);
void require_runtime(const char* api);  // goro::Error outside a runtime

}  // namespace goro::net::detail
