// net_test.cpp — goro::net and the netpoller (sched/netpoll.cpp, net/).
//
// Loopback only: numeric 127.0.0.1/::1, "localhost" (from /etc/hosts) and
// Unix socket paths; a name that must fail is one the resolver rejects
// locally (a label over 63 bytes), so no test ever sends a DNS query.
// Every wait is bounded: a parked goroutine is found parked by polling a
// counter with a Deadline, never by sleeping "long enough".
#include <dirent.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sched/netpoll.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using goro::test::Deadline;
using goro::test::kSanitized;
using goro::test::ProcsTest;
using goro::test::RuntimeTest;
namespace gn = goro::net;

namespace {

// fill writes a recognisable pattern: byte i of message `seed`.
void fill(std::string& s, std::size_t n, unsigned seed) {
  s.resize(n);
  for (std::size_t i = 0; i < n; i++) s[i] = static_cast<char>((i * 131 + seed * 7) % 251);
}

// read_full reads exactly n bytes (false at EOF first).
bool read_full(gn::Conn& c, char* buf, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const std::size_t k = c.read(buf + got, n - got);
    if (k == 0) return false;
    got += k;
  }
  return true;
}

// echo serves one connection: everything read is written back until EOF.
void echo(gn::Conn c) {
  char buf[16384];
  try {
    for (;;) {
      const std::size_t n = c.read(buf, sizeof buf);
      if (n == 0) return;
      c.write(buf, n);
    }
  } catch (const gn::Error&) {
    // the peer reset us or the test closed the listener: this connection ends
  }
}

// serve accepts until the listener is closed, a goroutine per connection.
void serve(gn::Listener* ln, goro::WaitGroup* done) {
  for (;;) {
    gn::Conn c;
    try {
      c = ln->accept();
    } catch (const gn::Error& e) {
      if (e.closed()) break;
      continue;  // EMFILE etc.: keep serving
    }
    goro::go([c = std::move(c)]() mutable { echo(std::move(c)); });
  }
  done->done();
}

// wait_io_waiters yields until at least n goroutines are parked on the
// poller (bounded).
bool wait_io_waiters(int n) {
  Deadline d(20s);
  while (goro::detail::netpoll_waiters() < n) {
    if (d.passed()) return false;
    goro::sleep_for(1ms);
  }
  return true;
}

int count_threads() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') n++;
    closedir(d);
  }
  return n;
}

int count_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') n++;
    closedir(d);
  }
  return n - 1;  // the directory's own descriptor
}

bool have_ipv6() {
  const int s = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

class Net : public ProcsTest {};
GORO_INSTANTIATE_PROCS(Net);
class NetOnce : public RuntimeTest {};

}  // namespace

// Hundreds of connections at once, messages from 1 B to 64 KiB, every byte
// checked.
TEST_P(Net, EchoManyConnections) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    goro::WaitGroup served;
    served.add(1);
    goro::go([&] { serve(&ln, &served); });
    const int nconn = kSanitized ? 50 : 300;
    const std::size_t sizes[] = {1, 7, 100, 1460, 4096, 20000, 65536};
    std::atomic<int> ok{0};
    goro::WaitGroup wg;
    for (int i = 0; i < nconn; i++) {
      wg.add(1);
      goro::go([&, i] {
        gn::Conn c = gn::dial("tcp", ln.addr());
        std::string msg, back;
        bool good = true;
        for (int k = 0; k < 3; k++) {
          const std::size_t n = sizes[(i + k) % 7];
          fill(msg, n, static_cast<unsigned>(i * 3 + k));
          back.assign(n, '\0');
          // Write and read concurrently: a 64 KiB message does not fit the
          // socket buffers both ways while nobody reads.
          goro::WaitGroup w;
          w.add(1);
          goro::go([&] {
            EXPECT_EQ(c.write(msg), n);
            w.done();
          });
          good &= read_full(c, back.data(), n);
          w.wait();
          good &= back == msg;
        }
        if (good) ok.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(ok.load(), nconn);
    ln.close();
    served.wait();
  });
}

// A client that never sends does not hold up the others, even on one P:
// the server goroutine reading it is parked, not its thread.
TEST_P(Net, SilentClientDoesNotStall) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    goro::WaitGroup served;
    served.add(1);
    goro::go([&] { serve(&ln, &served); });
    gn::Conn silent = gn::dial("tcp", ln.addr());
    for (int i = 0; i < 20; i++) {
      gn::Conn c = gn::dial("tcp", ln.addr());
      c.write("ping");
      char buf[4];
      ASSERT_TRUE(read_full(c, buf, 4));
      EXPECT_EQ(std::string(buf, 4), "ping");
    }
    silent.close();
    ln.close();
    served.wait();
  });
}

TEST_P(Net, ReadDeadlineFiresAndCanBeClearedOrExtended) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    gn::Conn c = gn::dial("tcp", ln.addr());
    gn::Conn s = ln.accept();
    char b[8];
    // Fires: not before the deadline, and within a generous bound after.
    auto t0 = std::chrono::steady_clock::now();
    c.set_read_deadline(t0 + 50ms);
    try {
      c.read(b, sizeof b);
      ADD_FAILURE() << "read returned before its deadline with no data";
    } catch (const gn::Error& e) {
      EXPECT_TRUE(e.timeout());
      EXPECT_FALSE(e.closed());
      EXPECT_CONTAINS(e.what(), "i/o timeout");
      EXPECT_EQ(e.code().value(), ETIMEDOUT);
    }
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 50ms);
    EXPECT_LT(took, 5s);
    // Once passed it keeps failing, at once, until moved.
    EXPECT_THROW(c.read(b, sizeof b), gn::Error);
    // Cleared: the read waits for data however long it takes.
    c.set_read_deadline(goro::Time{});
    goro::go([&] {
      goro::sleep_for(100ms);
      s.write("x");
    });
    EXPECT_EQ(c.read(b, sizeof b), 1u);
    // Extended while a read waits: it fails at the later deadline only.
    t0 = std::chrono::steady_clock::now();
    c.set_read_deadline(t0 + 50ms);
    goro::go([&] { c.set_read_deadline(t0 + 300ms); });
    EXPECT_THROW(c.read(b, sizeof b), gn::Error);
    took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 300ms);
    // A deadline in the past wakes a parked reader at once.
    c.set_read_deadline(goro::Time{});
    goro::go([&] {
      EXPECT_TRUE(wait_io_waiters(1));
      c.set_read_deadline(std::chrono::steady_clock::now() - 1s);
    });
    EXPECT_THROW(c.read(b, sizeof b), gn::Error);
  });
}

TEST_P(Net, WriteDeadlineReportsTransferred) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    gn::Conn c = gn::dial("tcp", ln.addr());
    gn::Conn s = ln.accept();  // never reads
    // More than the loopback socket buffers hold (a few MiB each way).
    // ASan/TSan: 16 MiB, filling 64 MiB there takes seconds.
    std::string big;
    fill(big, kSanitized ? (16u << 20) : (64u << 20), 1);
    const auto t0 = std::chrono::steady_clock::now();
    c.set_write_deadline(t0 + 100ms);
    try {
      c.write(big);
      ADD_FAILURE() << "a write bigger than the socket buffers to a peer that never reads completed";
    } catch (const gn::Error& e) {
      EXPECT_TRUE(e.timeout());
      EXPECT_GT(e.transferred(), 0u);
      EXPECT_LT(e.transferred(), big.size());
    }
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
  });
}

// A deadline timer that fires late must not hit the next user of a reused
// PollDesc (rseq/wseq and fdseq).
TEST_P(Net, StaleDeadlineDoesNotHitReusedDescriptor) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    for (int i = 0; i < 20; i++) {
      gn::Conn a = gn::dial("tcp", ln.addr());
      gn::Conn as = ln.accept();
      a.set_read_deadline(std::chrono::steady_clock::now() + 20ms);
      a.close();
      as.close();
    }
    gn::Conn b = gn::dial("tcp", ln.addr());
    gn::Conn bs = ln.accept();
    goro::go([&] {
      goro::sleep_for(150ms);  // past every deadline above
      bs.write("ok");
    });
    char buf[2];
    EXPECT_TRUE(read_full(b, buf, 2));
  });
}

TEST_P(Net, CloseWakesParkedReaderAndAccept) {
  const int nprocs = GetParam();
  goro::run(opts(), [nprocs] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    gn::Conn c = gn::dial("tcp", ln.addr());
    gn::Conn s = ln.accept();
    goro::WaitGroup wg;
    std::atomic<int> closed{0};
    wg.add(2);
    goro::go([&] {
      char b[4];
      try {
        c.read(b, sizeof b);
      } catch (const gn::Error& e) {
        if (e.closed()) closed.fetch_add(1);
        EXPECT_CONTAINS(e.what(), "use of closed network connection");
      }
      wg.done();
    });
    goro::go([&] {
      try {
        ln.accept();
      } catch (const gn::Error& e) {
        if (e.closed()) closed.fetch_add(1);
      }
      wg.done();
    });
    ASSERT_TRUE(wait_io_waiters(2));
    const int cfd = c.fd();
    c.close();
    // The lifetime rule: the woken reader has not left yet (one P, and we
    // have not yielded), so the number is still open in the kernel and
    // cannot be reused under it.
    if (nprocs == 1) {
      EXPECT_NE(::fcntl(cfd, F_GETFD), -1) << "fd closed under a parked reader";
    }
    ln.close();
    wg.wait();
    EXPECT_EQ(::fcntl(cfd, F_GETFD), -1) << "fd still open after its last user left";
    EXPECT_EQ(closed.load(), 2);
    EXPECT_FALSE(c);
    EXPECT_EQ(c.fd(), -1);
    // close() of a closed object is an error with closed().
    try {
      c.close();
      ADD_FAILURE();
    } catch (const gn::Error& e) {
      EXPECT_TRUE(e.closed());
    }
  });
}

TEST_P(Net, ResetAndRefusedAreErrorsServerKeepsServing) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    // Refused: a port nobody listens on.
    std::string dead;
    {
      gn::Listener tmp = gn::listen("tcp", "127.0.0.1:0");
      dead = tmp.addr();
    }
    try {
      gn::dial("tcp", dead);
      ADD_FAILURE() << "dial to a closed port succeeded";
    } catch (const gn::Error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED);
      EXPECT_CONTAINS(e.what(), "connection refused");
      EXPECT_CONTAINS(e.what(), "dial tcp " + dead);
    }
    // Reset: the peer closes with SO_LINGER 0 while we read.
    gn::Conn c = gn::dial("tcp", ln.addr());
    gn::Conn s = ln.accept();
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      char b[4];
      try {
        const std::size_t n = s.read(b, sizeof b);
        EXPECT_EQ(n, 0u);  // the reset may also read as EOF
      } catch (const gn::Error& e) {
        EXPECT_EQ(e.code().value(), ECONNRESET);
      }
      wg.done();
    });
    ASSERT_TRUE(wait_io_waiters(1));
    linger lg{1, 0};
    ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    c.close();
    wg.wait();
    // Writing to the reset connection is an error, not a SIGPIPE.
    std::string big(1 << 20, 'x');
    EXPECT_THROW(
        {
          for (int i = 0; i < 64; i++) s.write(big);
        },
        gn::Error);
    // And the listener still serves.
    goro::WaitGroup served;
    served.add(1);
    goro::go([&] { serve(&ln, &served); });
    gn::Conn d = gn::dial("tcp", ln.addr());
    d.write("abc");
    char b[3];
    EXPECT_TRUE(read_full(d, b, 3));
    ln.close();
    served.wait();
  });
}

TEST_P(Net, HalfClose) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    goro::go([&] {
      gn::Conn s = ln.accept();
      std::string got;
      char b[64];
      for (int i = 0; i < 100; i++) {
        const std::size_t n = s.read(b, sizeof b);
        if (n == 0) break;
        got.append(b, n);
      }
      EXPECT_EQ(got, "hello");
      s.write("bye");
      s.close();
    });
    gn::Conn c = gn::dial("tcp", ln.addr());
    c.write("hello");
    c.close_write();
    std::string got;
    char b[64];
    for (int i = 0; i < 100; i++) {
      const std::size_t n = c.read(b, sizeof b);
      if (n == 0) break;
      got.append(b, n);
    }
    EXPECT_EQ(got, "bye");
  });
}

// One write of 32 MiB to a reader that takes its time: the write parks and
// continues as often as needed and returns all of it.
TEST_P(Net, BigWriteToSlowReader) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    gn::Conn c = gn::dial("tcp", ln.addr());
    gn::Conn s = ln.accept();
    const std::size_t total = kSanitized ? (8u << 20) : (32u << 20);
    std::string big;
    fill(big, total, 9);
    goro::WaitGroup wg;
    wg.add(1);
    std::size_t wrote = 0;
    goro::go([&] {
      wrote = c.write(big);
      c.close_write();
      wg.done();
    });
    std::string got;
    got.reserve(total);
    std::vector<char> b(64 * 1024);
    for (int i = 0; i < 1000000; i++) {
      const std::size_t n = s.read(b.data(), b.size());
      if (n == 0) break;
      got.append(b.data(), n);
      if (i % 64 == 0) goro::sleep_for(1ms);  // slow: the writer must wait
    }
    wg.wait();
    EXPECT_EQ(wrote, total);
    EXPECT_TRUE(got == big);
  });
}

TEST_P(Net, UnixStream) {
  goro::run(opts(), [] {
    const std::string path =
        "/tmp/goro_net_test_" + std::to_string(::getpid()) + "_" + std::to_string(goro::goid()) + ".sock";
    ::unlink(path.c_str());
    gn::Listener ln = gn::listen("unix", path);
    EXPECT_EQ(ln.addr(), path);
    goro::WaitGroup served;
    served.add(1);
    goro::go([&] { serve(&ln, &served); });
    gn::Conn c = gn::dial("unix", path);
    std::string msg;
    fill(msg, 10000, 3);
    c.write(msg);
    std::string back(msg.size(), '\0');
    EXPECT_TRUE(read_full(c, back.data(), back.size()));
    EXPECT_EQ(back, msg);
    c.close();
    ln.close();
    served.wait();
    struct stat st;
    EXPECT_NE(::stat(path.c_str(), &st), 0) << "a Unix listener removes its socket file on close";
  });
}

TEST_P(Net, UDP) {
  goro::run(opts(), [] {
    gn::PacketConn a = gn::listen_packet("udp", "127.0.0.1:0");
    gn::PacketConn b = gn::listen_packet("udp4", "127.0.0.1:0");
    EXPECT_GT(a.port(), 0);
    goro::go([&] {
      char buf[100];
      std::string from;
      for (int i = 0; i < 3; i++) {
        const std::size_t n = b.read_from(buf, sizeof buf, &from);
        b.write_to(buf, n, from);  // echo
      }
    });
    for (int i = 0; i < 3; i++) {
      const std::string msg = "datagram " + std::to_string(i);
      a.write_to(msg.data(), msg.size(), b.local_addr());
      char buf[100];
      std::string from;
      const std::size_t n = a.read_from(buf, sizeof buf, &from);
      EXPECT_EQ(std::string(buf, n), msg);
      EXPECT_EQ(from, b.local_addr());
    }
    a.set_read_deadline(std::chrono::steady_clock::now() + 30ms);
    char buf[8];
    try {
      a.read_from(buf, sizeof buf);
      ADD_FAILURE();
    } catch (const gn::Error& e) {
      EXPECT_TRUE(e.timeout());
    }
  });
}

TEST_P(Net, AddressesAndNames) {
  goro::run(opts(), [] {
    // ":0" listens on every address (dual-stack where there is IPv6);
    // an IPv4 peer reads as IPv4.
    gn::Listener any = gn::listen("tcp", ":0");
    EXPECT_GT(any.port(), 0);
    gn::Conn c = gn::dial("tcp", "127.0.0.1:" + std::to_string(any.port()));
    gn::Conn s = any.accept();
    EXPECT_EQ(s.remote_addr(), c.local_addr());
    EXPECT_EQ(s.remote_addr().rfind("127.0.0.1:", 0), 0u) << s.remote_addr();
    EXPECT_EQ(c.remote_addr(), "127.0.0.1:" + std::to_string(any.port()));
    // "localhost" comes from /etc/hosts.
    gn::Listener lh = gn::listen("tcp", "localhost:0");
    gn::Conn lc = gn::dial("tcp", "localhost:" + std::to_string(lh.port()));
    gn::Conn ls = lh.accept();
    lc.write("x");
    char b;
    EXPECT_EQ(ls.read(&b, 1), 1u);
    if (have_ipv6()) {
      gn::Listener l6 = gn::listen("tcp6", "[::1]:0");
      EXPECT_EQ(l6.addr().rfind("[::1]:", 0), 0u) << l6.addr();
      gn::Conn c6 = gn::dial("tcp", l6.addr());
      gn::Conn s6 = l6.accept();
      EXPECT_EQ(s6.remote_addr().rfind("[::1]:", 0), 0u);
    }
    auto fails = [](auto fn, const char* text) {
      try {
        fn();
        ADD_FAILURE() << "expected an error containing " << text;
      } catch (const gn::Error& e) {
        EXPECT_CONTAINS(e.what(), text);
      }
    };
    fails([] { gn::dial("tcp", "127.0.0.1"); }, "missing port in address");
    fails([] { gn::dial("tcpx", "127.0.0.1:80"); }, "unknown network tcpx");
    fails([] { gn::dial("tcp", "1:2:3"); }, "too many colons");
    fails([] { gn::listen("tcp", "127.0.0.1:99999"); }, "invalid port");
    fails([] { gn::dial("tcp", "[::1:80"); }, "missing ']'");
    fails([] { gn::dial("tcp4", "[::1]:80"); }, "no suitable address");
    // A label of 64 bytes: rejected locally, no query is sent.
    fails([] { gn::dial("tcp", std::string(64, 'a') + ".invalid:80"); }, "no such host");
    // A deadline already spent.
    try {
      gn::dial("tcp", any.addr(), 1ns);
      ADD_FAILURE();
    } catch (const gn::Error& e) {
      EXPECT_TRUE(e.timeout());
    }
    // The not-connected objects.
    gn::Conn none;
    char x;
    try {
      none.read(&x, 1);
      ADD_FAILURE();
    } catch (const gn::Error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
    }
    gn::Listener nl;
    EXPECT_THROW(nl.accept(), gn::Error);
    EXPECT_THROW(none.local_addr(), gn::Error);
    EXPECT_THROW(nl.addr(), gn::Error);
    EXPECT_THROW(gn::PacketConn().read_from(&x, 1), gn::Error);
    EXPECT_EQ(none.fd(), -1);
    EXPECT_FALSE(none);
    EXPECT_FALSE(nl);
    // Address in use.
    fails([&] { gn::listen("tcp", any.addr()); }, "address already in use");
  });
}

// A dial whose connect hangs (the listener's accept queue is full, so the
// kernel drops the SYNs) fails with "i/o timeout" once its timeout passes,
// parked on the poller meanwhile, and never before the timeout.
TEST_P(Net, DialTimeoutDuringSlowConnect) {
  // A listener nobody accepts from, with the smallest backlog, filled up by
  // non-blocking connects (raw sockets: goro's listen() picks its own backlog).
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(lfd, 0), 0);
  ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &sl), 0);
  std::vector<int> fill;
  for (int i = 0; i < 8; i++) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(c, 0);
    ::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa);  // EINPROGRESS or done
    fill.push_back(c);
  }
  const std::string addr = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  goro::run(opts(), [&] {
    std::atomic<bool> other_ran{false};
    goro::go([&] { other_ran = true; });
    const auto t0 = std::chrono::steady_clock::now();
    try {
      gn::dial("tcp", addr, 150ms);
      ADD_FAILURE() << "dial to a full accept queue connected";
    } catch (const gn::Error& e) {
      EXPECT_TRUE(e.timeout()) << e.what();
      EXPECT_CONTAINS(e.what(), "i/o timeout");
    }
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(waited, 150ms);
    EXPECT_LT(waited, 20s);
    EXPECT_TRUE(other_ran.load()) << "the dialer held its P while waiting";
  });
  for (int c : fill) ::close(c);
  ::close(lfd);
}

// Running out of descriptors makes accept() fail for that call; once
// descriptors are free again the waiting connection is accepted.
TEST_P(Net, EmfileAndRecovery) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    gn::Conn c = gn::dial("tcp", ln.addr());
    rlimit old{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    rlimit low = old;
    low.rlim_cur = static_cast<rlim_t>(count_fds() + 16);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    std::vector<int> filler;
    for (int i = 0; i < 64; i++) {
      const int f = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (f < 0) break;
      filler.push_back(f);
    }
    try {
      ln.accept();
      ADD_FAILURE() << "accept with no descriptor left succeeded";
    } catch (const gn::Error& e) {
      EXPECT_EQ(e.code().value(), EMFILE);
      EXPECT_CONTAINS(e.what(), "too many open files");
    }
    for (int f : filler) ::close(f);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    gn::Conn s = ln.accept();
    c.write("z");
    char b;
    EXPECT_EQ(s.read(&b, 1), 1u);
  });
}

// 5,000 idle connections, a goroutine parked reading on each end, and the
// thread count stays near GOMAXPROCS: nobody holds a thread while it waits.
// (TSan: 500; it needs ~30 s for 500 on a loaded 2-core machine, its cost
// per descriptor and per fiber switch is that much higher. ASan: the full
// 5,000.)
TEST_P(Net, ManyIdleConnectionsFewThreads) {
  const int nprocs = GetParam();
  goro::run(opts(), [nprocs] {
    const int nconn = GORO_TSAN ? 500 : 5000;
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    std::atomic<int> ended{0};
    goro::WaitGroup accepted;
    accepted.add(1);
    auto reader = [&ended](gn::Conn c) {
      char b;
      try {
        c.read(&b, 1);
      } catch (const gn::Error&) {
      }
      ended.fetch_add(1);
    };
    goro::go([&] {
      for (int i = 0; i < nconn; i++) goro::go([&reader, c = ln.accept()]() mutable { reader(std::move(c)); });
      accepted.done();
    });
    std::vector<gn::Conn> clients;
    clients.reserve(nconn);
    for (int i = 0; i < nconn; i++) clients.push_back(gn::dial("tcp", ln.addr()));
    accepted.wait();
    for (auto& c : clients) {
      gn::Conn* p = &c;
      goro::go([p] {
        char b;
        try {
          p->read(&b, 1);
        } catch (const gn::Error&) {
        }
      });
    }
    ASSERT_TRUE(wait_io_waiters(2 * nconn));
    const int threads = count_threads();
    EXPECT_LE(threads, nprocs + 8) << "threads with " << 2 * nconn << " goroutines parked on I/O";
    // Wake every server-side reader: the clients close.
    for (auto& c : clients) c.close();
    Deadline d(30s);
    while (ended.load() < nconn && !d.passed()) goro::sleep_for(1ms);
    EXPECT_EQ(ended.load(), nconn);
  });
}

// Goroutines waiting only for I/O, nothing else runnable and no timer: not
// a deadlock. A thread outside the runtime connects a while later.
TEST_P(Net, NoFalseDeadlockWithOnlyIOWaiters) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    const std::string addr = ln.addr();
    const int port = ln.port();
    std::thread outsider([port] {
      std::this_thread::sleep_for(200ms);  // the runtime is idle meanwhile
      const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<std::uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) (void)!::write(s, "hi", 2);
      ::close(s);
    });
    gn::Conn c = ln.accept();
    char b[2];
    EXPECT_TRUE(read_full(c, b, 2));
    outsider.join();
  });
}

// I/O is delivered while the only other goroutine sits in a long system
// call: the P handed off by sysmon keeps an M polling (handoffp).
TEST_P(Net, IODeliveredDuringLongSyscall) {
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    gn::Conn c = gn::dial("tcp", ln.addr());
    gn::Conn s = ln.accept();
    std::atomic<std::int64_t> woke_ms{-1};
    const auto t0 = std::chrono::steady_clock::now();
    goro::go([&] {
      char b;
      if (c.read(&b, 1) == 1)
        woke_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                      .count();
    });
    ASSERT_TRUE(wait_io_waiters(1));
    const int wfd = s.fd();
    std::thread writer([wfd] {
      std::this_thread::sleep_for(50ms);
      (void)!::write(wfd, "y", 1);
    });
    goro::blocking([] { std::this_thread::sleep_for(1500ms); });
    writer.join();
    EXPECT_GE(woke_ms.load(), 0);
    EXPECT_LT(woke_ms.load(), 1200) << "the reader waited for the system call to end";
  });
}

// An idle runtime with a goroutine parked in accept() uses no CPU: the last
// M blocks in epoll_wait, sysmon sleeps.
TEST_F(NetOnce, IdleAcceptBurnsNoCPU) {
  goro::run(goro::test::procs(4), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    goro::go([&] {
      try {
        ln.accept();
      } catch (const gn::Error&) {
      }
    });
    ASSERT_TRUE(wait_io_waiters(1));
    // Measure from a plain thread while every goroutine is parked on I/O,
    // main too: it reads a connection the thread writes to when done.
    gn::Listener ln2 = gn::listen("tcp", "127.0.0.1:0");
    gn::Conn c2 = gn::dial("tcp", ln2.addr());
    gn::Conn s2 = ln2.accept();
    double used = -1;
    const int wfd = s2.fd();
    std::thread watcher([&used, wfd] {
      std::this_thread::sleep_for(50ms);
      const double c0 = cpu_seconds();
      std::this_thread::sleep_for(500ms);
      used = cpu_seconds() - c0;
      (void)!::write(wfd, "x", 1);
    });
    char b;
    EXPECT_EQ(c2.read(&b, 1), 1u);
    watcher.join();
    EXPECT_LT(used, 0.05) << "CPU seconds used in 0.5 s of idling";
    ln.close();
  });
}

// The GC scans the stacks of goroutines parked on I/O like any parked
// goroutine: an object only they point to survives collections.
namespace {
std::atomic<int> tracked_alive{0};
struct Tracked {
  int v = 42;
  Tracked() { tracked_alive.fetch_add(1); }
  ~Tracked() { tracked_alive.fetch_sub(1); }
};
}  // namespace

TEST_P(Net, GCScansIOParkedGoroutines) {
  tracked_alive = 0;
  goro::run(opts(), [] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    gn::Conn c = gn::dial("tcp", ln.addr());
    gn::Conn s = ln.accept();
    goro::WaitGroup wg;
    wg.add(1);
    int seen = 0;
    goro::go([&] {
      Tracked* volatile t = goro::gc::make<Tracked>();
      char b;
      s.read(&b, 1);
      seen = t->v;
      wg.done();
    });
    ASSERT_TRUE(wait_io_waiters(1));
    for (int i = 0; i < 3; i++) goro::gc::collect();
    EXPECT_EQ(tracked_alive.load(), 1);
    // Stop the world and resize GOMAXPROCS with the reader parked.
    const int old = goro::gomaxprocs(3);
    goro::gomaxprocs(old);
    c.write("k");
    wg.wait();
    EXPECT_EQ(seen, 42);
  });
}

// run() ends with connections open and goroutines parked on them: every
// descriptor is closed, and a new run() uses the network afresh.
TEST_F(NetOnce, TeardownWithConnectionsOpenThenRunAgain) {
  std::vector<int> fds;
  const int before = count_fds();
  for (int round = 0; round < 2; round++) {
    fds.clear();
    // Handles that outlive run(): destroyed afterwards, outside any runtime,
    // they only free their memory (the descriptor was closed by teardown
    // and its number may belong to someone else by then).
    std::vector<gn::Conn*> outlive;
    gn::Listener* ln = nullptr;
    goro::run(goro::test::procs(2), [&] {
      ln = new gn::Listener(gn::listen("tcp", "127.0.0.1:0"));
      fds.push_back(ln->fd());
      for (int i = 0; i < 10; i++) {
        auto* c = new gn::Conn(gn::dial("tcp", ln->addr()));
        auto* s = new gn::Conn(ln->accept());
        fds.push_back(c->fd());
        fds.push_back(s->fd());
        outlive.push_back(c);
        // s is known only to this goroutine, parked when main returns:
        // abandoned with it, as Go abandons goroutines.
        goro::go([s] {
          char b;
          s->read(&b, 1);
        });
      }
      goro::go([ln] {
        try {
          ln->accept();
        } catch (const gn::Error&) {
        }
      });
      EXPECT_TRUE(wait_io_waiters(11));
    });
    for (int f : fds) EXPECT_EQ(::fcntl(f, F_GETFD), -1) << "fd " << f << " still open after run()";
    EXPECT_EQ(count_fds(), before);
    for (gn::Conn* c : outlive) {
      EXPECT_FALSE(goro::in_runtime());
      delete c;  // no throw, no close of a reused number
    }
    delete ln;
    EXPECT_EQ(count_fds(), before);
  }
}

TEST_F(NetOnce, MisuseOutsideRuntimeThrows) {
  EXPECT_THROW(gn::listen("tcp", "127.0.0.1:0"), goro::Error);
  EXPECT_THROW(gn::dial("tcp", "127.0.0.1:1"), goro::Error);
  EXPECT_THROW(gn::listen_packet("udp", "127.0.0.1:0"), goro::Error);
  gn::Conn c;
  char b;
  EXPECT_THROW(c.read(&b, 1), goro::Error);
  gn::Listener l;
  EXPECT_THROW(l.accept(), goro::Error);
}

// schedtrace and the execution trace show the poller's work.
TEST_F(NetOnce, SchedtraceAndTraceShowNetpoll) {
  const std::string trace = "/tmp/goro_net_trace_" + std::to_string(::getpid()) + ".json";
  {
    goro::test::ScopedEnv dbg("GORO_DEBUG", "schedtrace=20");
    goro::test::ScopedEnv tr("GORO_TRACE", trace.c_str());
    ::testing::internal::CaptureStderr();
    goro::run(goro::test::procs(2), [] {
      gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
      gn::Conn c = gn::dial("tcp", ln.addr());
      gn::Conn s = ln.accept();
      goro::go([&] {
        goro::sleep_for(60ms);  // the reader below is parked across schedtrace lines
        s.write("t");
      });
      char b;
      EXPECT_EQ(c.read(&b, 1), 1u);
      goro::sleep_for(30ms);
    });
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_CONTAINS(err, "netpollwaiters=");
    EXPECT_CONTAINS(err, "netpollready=");
  }
  std::string json;
  if (FILE* f = std::fopen(trace.c_str(), "r")) {
    char buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) json.append(buf, n);
    std::fclose(f);
  }
  ::unlink(trace.c_str());
  EXPECT_CONTAINS(json, "netpoll: ready");
  EXPECT_CONTAINS(json, "IO wait");
}
