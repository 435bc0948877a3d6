// fd.cpp — operations on a network descriptor: Go's internal/poll/fd_unix.go
// (Read, Write, Accept, Close) and net/fd_unix.go (connect), on the
// netpoller (sched/netpoll.cpp).
//
// Every operation has the same shape:
//   1. take the read or write lock of the fdMutex (or a plain reference):
//      fails with "use of closed network connection" once close() began;
//   2. poll_reset: forget an old readiness; fails at once if the deadline
//      has passed or the descriptor is closing;
//   3. loop: try the system call; EINTR → again; EAGAIN → poll_wait (park
//      until the poller says ready, or fail on deadline/close) → again;
//   4. unlock; the last reference of a closed descriptor destroys it.
// Trying the call before parking is what edge-triggered epoll wants: the
// kernel reports a change once, so the caller must drain until EAGAIN, and
// a readiness noted while nobody waited is kept in the PollDesc (pdReady).
//
// A write parks as often as it needs to get every byte out ("partial writes
// continued"); if it fails halfway, Error::transferred() says how far it got.
#include "net/fd.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::net {

Error::Error(int err, std::string what, bool timeout, bool closed, std::size_t transferred)
    : std::system_error(err, std::generic_category()),
      what_(std::move(what)),
      timeout_(timeout),
      closed_(closed),
      transferred_(transferred) {}

namespace detail {

namespace gd = goro::detail;

// Reads and writes are capped as Go caps them (maxRW): a 2 GiB read(2)
// would be truncated by Linux anyway.
constexpr std::size_t maxRW = 1 << 30;

// require_runtime is a runtime entry opened and closed at once: goro::Error
// outside a running runtime, else a safepoint (the socket calls themselves
// are user code, as Go's internal/poll is; the poller's entries open their
// own Entry).
void require_runtime(const char* api) { gd::Entry e(api); }

std::string errno_text(int err) {
  // Go's syscall error table spells these in lower case; glibc's strerror
  // capitalises. The common network ones, as Go prints them:
  switch (err) {
    case ECONNREFUSED: return "connection refused";
    case ECONNRESET: return "connection reset by peer";
    case EPIPE: return "broken pipe";
    case EMFILE: return "too many open files";
    case ENFILE: return "too many open files in system";
    case EADDRINUSE: return "address already in use";
    case EADDRNOTAVAIL: return "cannot assign requested address";
    case ETIMEDOUT: return "connection timed out";
    case ENETUNREACH: return "network is unreachable";
    case EHOSTUNREACH: return "no route to host";
    case ECONNABORTED: return "software caused connection abort";
    case EBADF: return "bad file descriptor";
    case EINVAL: return "invalid argument";
    case ENOENT: return "no such file or directory";
    case EACCES: return "permission denied";
    case EAFNOSUPPORT: return "address family not supported by protocol";
    case ENOTCONN: return "transport endpoint is not connected";
    case EMSGSIZE: return "message too long";
    case ENOBUFS: return "no buffer space available";
  }
  std::string s = std::strerror(err);
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

std::string op_prefix(const netFD* fd, const char* op) {
  std::string s = op;
  if (fd == nullptr) return s;
  s += ' ';
  s += fd->net;
  if (!fd->raddr.empty()) {
    s += ' ';
    if (!fd->laddr.empty() && std::strcmp(op, "dial") != 0) s += fd->laddr + "->";
    s += fd->raddr;
  } else if (!fd->laddr.empty()) {
    s += ' ';
    s += fd->laddr;
  }
  return s;
}

void throw_op(const netFD* fd, const char* op, int err, const char* syscall, std::size_t transferred) {
  std::string what = op_prefix(fd, op) + ": ";
  if (syscall != nullptr) what += std::string(syscall) + ": ";
  what += errno_text(err);
  throw Error(err, std::move(what), false, false, transferred);
}

void throw_closed(const netFD* fd, const char* op) {
  throw Error(EBADF, op_prefix(fd, op) + ": use of closed network connection", false, true);
}

void throw_timeout(const netFD* fd, const char* op, std::size_t transferred) {
  throw Error(ETIMEDOUT, op_prefix(fd, op) + ": i/o timeout", true, false, transferred);
}

namespace {

// destroy is the kernel close, run by the last reference after close().
void destroy(netFD* fd) {
  gd::poll_close(fd->pd);
  fd->pd = nullptr;
  ::close(fd->sysfd);  // the number may be reused from here on
  fd->sysfd = -1;
  if (fd->life.fetch_or(lifeDestroyed, std::memory_order_acq_rel) & lifeHandleGone) delete fd;
}

// Guard holds the read lock, the write lock or a plain reference for one
// operation, and drops it on every exit path.
class Guard {
 public:
  enum Kind { ref, read, write };
  Guard(netFD* fd, Kind k, const char* op) : fd_(fd), k_(k) {
    require_runtime("goro::net");
    if (fd == nullptr) throw Error(EBADF, std::string(op) + ": " + errno_text(EBADF));
    const bool ok = k == ref ? fd->mu.incref() : fd->mu.rwlock(k == read);
    if (!ok) throw_closed(fd, op);
  }
  ~Guard() {
    const bool last = k_ == ref ? fd_->mu.decref() : fd_->mu.rwunlock(k_ == read);
    if (last) destroy(fd_);
  }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  netFD* fd_;
  Kind k_;
};

// check turns a poll error into the exception Go's net package returns.
void check(netFD* fd, gd::PollErr e, const char* op, std::size_t transferred = 0) {
  if (e == gd::PollErr::closing) {
    Error err(EBADF, op_prefix(fd, op) + ": use of closed network connection", false, true, transferred);
    throw err;
  }
  if (e == gd::PollErr::timeout) throw_timeout(fd, op, transferred);
}

}  // namespace

netFD* newFD(int s, int family, int sotype, std::string net, const char* op) {
  auto* fd = new netFD();
  fd->sysfd = s;
  fd->family = family;
  fd->sotype = sotype;
  fd->net = std::move(net);
  fd->epoch = gd::netpoll_epoch();
  int err = 0;
  fd->pd = gd::poll_open(s, &err);
  if (fd->pd == nullptr) {
    ::close(s);
    std::string n = fd->net;
    delete fd;
    throw Error(err, std::string(op) + " " + n + ": " + errno_text(err));
  }
  return fd;
}

std::size_t fd_read(netFD* fd, void* buf, std::size_t n) {
  Guard g(fd, Guard::read, "read");
  check(fd, gd::poll_reset(fd->pd, 'r'), "read");
  if (n == 0) return 0;
  if (n > maxRW) n = maxRW;
  for (;;) {
    const ssize_t k = ::read(fd->sysfd, buf, n);
    if (k >= 0) return static_cast<std::size_t>(k);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      check(fd, gd::poll_wait(fd->pd, 'r'), "read");
      continue;
    }
    throw_op(fd, "read", errno);
  }
}

std::size_t fd_write(netFD* fd, const void* buf, std::size_t n) {
  Guard g(fd, Guard::write, "write");
  check(fd, gd::poll_reset(fd->pd, 'w'), "write");
  const char* p = static_cast<const char*>(buf);
  std::size_t nn = 0;
  while (nn < n) {
    std::size_t chunk = n - nn;
    if (chunk > maxRW) chunk = maxRW;
    const ssize_t k = ::write(fd->sysfd, p + nn, chunk);
    if (k > 0) {
      nn += static_cast<std::size_t>(k);
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && errno == EAGAIN) {
      check(fd, gd::poll_wait(fd->pd, 'w'), "write", nn);
      continue;
    }
    throw_op(fd, "write", k == 0 ? EIO : errno, nullptr, nn);
  }
  return nn;
}

netFD* fd_accept(netFD* fd) {
  Guard g(fd, Guard::read, "accept");
  check(fd, gd::poll_reset(fd->pd, 'r'), "accept");
  for (;;) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    const int s = ::accept4(fd->sysfd, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s >= 0) {
      netFD* c = newFD(s, fd->family, fd->sotype, fd->net, "accept");
      if (fd->family != AF_UNIX) {
        const int one = 1;
        ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      c->laddr = local_name(s);
      c->raddr = fd->family == AF_UNIX ? std::string() : sockaddr_string(reinterpret_cast<sockaddr*>(&sa), len);
      if (fd->family == AF_UNIX && c->laddr.empty()) c->laddr = fd->laddr;
      return c;
    }
    switch (errno) {
      case EINTR:
      case ECONNABORTED:  // the peer gave up before we took it: take the next
        continue;
      case EAGAIN:
        check(fd, gd::poll_wait(fd->pd, 'r'), "accept");
        continue;
      default:
        // EMFILE/ENFILE included: an error for this call; the connection
        // stays in the backlog for a later accept (Go's servers sleep and
        // retry; the caller decides).
        throw_op(fd, "accept", errno, "accept4");
    }
  }
}

std::size_t fd_recvfrom(netFD* fd, void* buf, std::size_t n, sockaddr_storage* from, socklen_t* fromlen) {
  Guard g(fd, Guard::read, "read");
  check(fd, gd::poll_reset(fd->pd, 'r'), "read");
  if (n > maxRW) n = maxRW;
  for (;;) {
    *fromlen = sizeof *from;
    const ssize_t k = ::recvfrom(fd->sysfd, buf, n, 0, reinterpret_cast<sockaddr*>(from), fromlen);
    if (k >= 0) return static_cast<std::size_t>(k);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      check(fd, gd::poll_wait(fd->pd, 'r'), "read");
      continue;
    }
    throw_op(fd, "read", errno);
  }
}

std::size_t fd_sendto(netFD* fd, const void* buf, std::size_t n, const sockaddr* to, socklen_t tolen,
                      const std::string& to_text) {
  Guard g(fd, Guard::write, "write");
  check(fd, gd::poll_reset(fd->pd, 'w'), "write");
  for (;;) {
    const ssize_t k = ::sendto(fd->sysfd, buf, n, 0, to, tolen);
    if (k >= 0) return static_cast<std::size_t>(k);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      check(fd, gd::poll_wait(fd->pd, 'w'), "write");
      continue;
    }
    const int err = errno;
    throw Error(err, "write " + fd->net + " " + fd->laddr + "->" + to_text + ": " + errno_text(err));
  }
}

void fd_connect(netFD* fd, const sockaddr* sa, socklen_t len, std::int64_t deadline, const std::string& addr) {
  auto fail = [&](int err, bool timeout) {
    std::string what = "dial " + fd->net + " " + addr + ": ";
    if (timeout) throw Error(ETIMEDOUT, what + "i/o timeout", true);
    throw Error(err, what + "connect: " + errno_text(err));
  };
  for (;;) {
    if (::connect(fd->sysfd, sa, len) == 0) return;
    if (errno == EINTR) continue;  // the connect goes on in the kernel: wait for it below
    if (errno == EINPROGRESS || errno == EALREADY) break;
    if (errno == EISCONN) return;
    fail(errno, false);
  }
  Guard g(fd, Guard::write, "dial");
  if (deadline != 0) gd::poll_set_deadline(fd->pd, deadline <= gd::nanotime() ? -1 : deadline, 'w');
  for (;;) {
    // A fresh socket is reported writable once when registered: the
    // connect is over only when SO_ERROR says so and the peer is known.
    const gd::PollErr e = gd::poll_wait(fd->pd, 'w');
    if (e == gd::PollErr::timeout) fail(ETIMEDOUT, true);
    if (e == gd::PollErr::closing) throw_closed(fd, "dial");
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (::getsockopt(fd->sysfd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) fail(errno, false);
    if (soerr == EINPROGRESS || soerr == EALREADY || soerr == EINTR) continue;
    if (soerr != 0 && soerr != EISCONN) fail(soerr, false);
    sockaddr_storage peer{};
    socklen_t pl = sizeof peer;
    if (::getpeername(fd->sysfd, reinterpret_cast<sockaddr*>(&peer), &pl) == 0) break;
  }
  if (deadline != 0) gd::poll_set_deadline(fd->pd, 0, 'w');
}

void fd_close(netFD* fd, const char* op) {
  require_runtime("goro::net close");
  if (fd == nullptr) throw Error(EBADF, std::string(op) + ": " + errno_text(EBADF));
  if (!fd->mu.increfAndClose()) throw_closed(fd, op);
  // A Unix listener's socket file goes with it (Go's unlinkOnClose).
  if (!fd->unlink_path.empty()) ::unlink(fd->unlink_path.c_str());
  // Wake everybody parked on the descriptor; they fail with closed() and,
  // leaving, drop their references. The last one closes it in the kernel.
  gd::poll_unblock(fd->pd);
  if (fd->mu.decref()) destroy(fd);
}

void fd_shutdown(netFD* fd, int how) {
  Guard g(fd, Guard::ref, "close");
  if (::shutdown(fd->sysfd, how) != 0) throw_op(fd, "close", errno, "shutdown");
}

void fd_set_deadline(netFD* fd, Time t, int mode) {
  Guard g(fd, Guard::ref, "set deadline");
  std::int64_t d = 0;
  if (t != Time{}) {
    d = gd::to_nanotime(t);
    if (d <= gd::nanotime()) d = -1;  // already passed: fail waiters now
  }
  gd::poll_set_deadline(fd->pd, d, mode);
}

void fd_release(netFD* fd) noexcept {
  if (fd == nullptr) return;
  if (fd->epoch != gd::netpoll_epoch()) {
    // Made by an earlier run(): its teardown closed the descriptor already
    // (and the number may belong to someone else now). Only free memory.
    delete fd;
    return;
  }
  if (!fd->mu.closed()) {
    try {
      fd_close(fd, "close");
    } catch (...) {
      // Destructors never throw: a concurrent close() won the race.
    }
  }
  if (fd->life.fetch_or(lifeHandleGone, std::memory_order_acq_rel) & lifeDestroyed) delete fd;
}

}  // namespace detail
}  // namespace goro::net
