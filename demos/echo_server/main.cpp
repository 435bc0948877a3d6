// echo_server — a TCP echo server with a goroutine per connection (Go's
// canonical net example).
//
// Each accepted connection gets its own goroutine that reads and writes as if
// blocking. A goroutine waiting for data parks on the netpoller; the thread
// runs other goroutines; epoll readies the goroutine when bytes arrive. Try:
//
//   demos/run echo_server            prints "listening on 127.0.0.1:PORT"
//   nc 127.0.0.1 PORT                type lines: they come back
//   demos/run echo_server --smoke N  serve N clients of its own, check every
//                                    byte, exit 0 (the smoke test)
#include <goro/goro.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

namespace gn = goro::net;

// handle echoes one connection until the peer closes it.
void handle(gn::Conn c) {
  const std::string peer = c.remote_addr();
  char buf[4096];
  try {
    for (;;) {
      const std::size_t n = c.read(buf, sizeof buf);
      if (n == 0) break;  // the peer closed
      c.write(buf, n);
    }
  } catch (const gn::Error& e) {
    std::fprintf(stderr, "%s: %s\n", peer.c_str(), e.what());
  }
}

// client is one smoke-test client: sends `rounds` messages, checks each echo.
bool client(const std::string& addr, int id, int rounds) {
  gn::Conn c = gn::dial("tcp", addr);
  for (int r = 0; r < rounds; r++) {
    const std::string msg = "client " + std::to_string(id) + " round " + std::to_string(r) + "\n";
    c.write(msg);
    std::string back;
    char buf[256];
    while (back.size() < msg.size()) {
      const std::size_t n = c.read(buf, sizeof buf);
      if (n == 0) return false;
      back.append(buf, n);
    }
    if (back != msg) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const bool smoke = argc >= 2 && std::strcmp(argv[1], "--smoke") == 0;
  const int nclients = smoke && argc >= 3 ? std::atoi(argv[2]) : 20;
  int status = 0;
  goro::run([&] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    std::printf("listening on %s (a goroutine per connection)\n", ln.addr().c_str());
    std::fflush(stdout);
    goro::go([&ln] {
      for (;;) {
        try {
          goro::go([c = ln.accept()]() mutable { handle(std::move(c)); });
        } catch (const gn::Error& e) {
          if (e.closed()) return;  // the listener was closed: stop serving
          std::fprintf(stderr, "accept: %s\n", e.what());
        }
      }
    });
    if (!smoke) {
      for (;;) goro::sleep_for(std::chrono::hours(1));  // serve until killed
    }
    std::atomic<int> ok{0};
    goro::WaitGroup wg;
    wg.add(nclients);
    for (int i = 0; i < nclients; i++) {
      goro::go([&, i] {
        if (client(ln.addr(), i, 10)) ok.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    ln.close();
    std::printf("%d of %d clients got every byte back\n", ok.load(), nclients);
    status = ok.load() == nclients ? 0 : 1;
  });
  return status;
}
