// conns1000 — 1,000 open connections, a goroutine parked reading on each
// end, and the thread count stays at GOMAXPROCS plus a few.
//
// 2,000 goroutines wait for I/O; none holds a thread. They are parked on
// the netpoller (waitreason "IO wait"); the only thread that waits is the
// one M blocked in epoll_wait for all of them. schedtrace (on every 100 ms
// here) shows it: threads= stays small, netpollwaiters= counts the parked
// goroutines, netpollready= the ones the poller has woken so far. Then
// every client sends one byte and the server side wakes and answers.
// (Lesson 8 of the course, docs/lessons/08-netpoller.md, runs it.)
//
//   demos/run conns1000 [N]           (default 1000)
#include <dirent.h>
#include <goro/goro.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

namespace gn = goro::net;

int count_threads() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') n++;
    closedir(d);
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc >= 2 ? std::atoi(argv[1]) : 1000;
  if (std::getenv("GORO_DEBUG") == nullptr) setenv("GORO_DEBUG", "schedtrace=100", 1);
  int status = 0;
  goro::run([&] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    std::atomic<int> answered{0};
    goro::WaitGroup served;
    served.add(n);
    // reading counts the goroutines that reached their read: each calls
    // done() just before it, finds no data there and parks on the poller.
    goro::WaitGroup reading;
    reading.add(2 * n);
    // Server: a goroutine per connection, parked in read until its byte
    // comes, then it answers and ends.
    goro::go([&] {
      for (int i = 0; i < n; i++) {
        goro::go([&, c = ln.accept()]() mutable {
          char b;
          reading.done();
          if (c.read(&b, 1) == 1) c.write(&b, 1);
          served.done();
        });
      }
    });
    std::vector<gn::Conn> clients(static_cast<std::size_t>(n));
    goro::WaitGroup got;
    got.add(n);
    std::vector<char> start(static_cast<std::size_t>(n), 0);
    for (int i = 0; i < n; i++) clients[static_cast<std::size_t>(i)] = gn::dial("tcp", ln.addr());
    // Client side: a goroutine per connection, parked until the answer.
    for (auto& c : clients) {
      gn::Conn* p = &c;
      goro::go([p, &got, &answered, &reading] {
        char b;
        reading.done();
        if (p->read(&b, 1) == 1) answered.fetch_add(1);
        got.done();
      });
    }
    // Every goroutine is at its read (and parked, or about to park). Wait
    // a little so that schedtrace prints the idle picture: 2n waiters.
    reading.wait();
    goro::sleep_for(std::chrono::milliseconds(400));
    std::printf("%d connections, %d goroutines, GOMAXPROCS=%d, OS threads=%d\n", n,
                goro::num_goroutine(), goro::gomaxprocs(), count_threads());
    std::fflush(stdout);
    for (auto& c : clients) c.write("x");
    served.wait();
    got.wait();
    std::printf("%d of %d answered; OS threads=%d\n", answered.load(), n, count_threads());
    status = answered.load() == n && count_threads() <= goro::gomaxprocs() + 8 ? 0 : 1;
  });
  return status;
}
