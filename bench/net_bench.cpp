// net_bench.cpp — goro's side of the network rows (Go twins in
// bench/peers/go/net.go). All traffic is TCP over 127.0.0.1, through
// goro::net and the netpoller.
//
//  * net_pingpong  64 B request and its echo over one connection; ns per
//                  round trip.
//  * net_echo      64 connections doing 64 B round trips at once; ns per
//                  round trip (total wall time / total round trips).
//  * net_accept    dial + accept + 1 byte + close; ns per connection. The
//                  server closes first, as in the Go twin, so TIME_WAIT stays
//                  on its side and the client's ephemeral ports last.
//  * net_idle      9,000 connections, a goroutine parked reading on each
//                  end; counter bytes_per_conn = RSS growth / 9,000. Each
//                  repetition is a fresh run(), as "parked" is.
// Each timed row warms up once (untimed) in the same run(), like the Go
// peer's measure(); iteration counts are the Go peer's op counts.
#include <benchmark/benchmark.h>
#include <goro/goro.hpp>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

using namespace goro_bench;
namespace gn = goro::net;

void read_full(gn::Conn& c, char* b, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const std::size_t k = c.read(b + got, n - got);
    if (k == 0) throw std::runtime_error("unexpected EOF");
    got += k;
  }
}

// echo_server accepts until ln is closed and echoes each connection, a
// goroutine per connection (as the Go twin's echoServer).
void echo_server(gn::Listener* ln) {
  for (;;) {
    gn::Conn c;
    try {
      c = ln->accept();
    } catch (const gn::Error&) {
      return;
    }
    goro::go([c = std::move(c)]() mutable {
      char buf[4096];
      try {
        for (;;) {
          const std::size_t n = c.read(buf, sizeof buf);
          if (n == 0) return;
          c.write(buf, n);
        }
      } catch (const gn::Error&) {
      }
    });
  }
}

void round_trips(gn::Conn& c, long n) {
  char msg[64] = {};
  char back[64];
  for (long i = 0; i < n; i++) {
    c.write(msg, sizeof msg);
    read_full(c, back, sizeof back);
  }
}

constexpr long kPingpongN = 50'000;

void BM_net_pingpong(benchmark::State& state) {
  in_goro(state, {}, [&] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    goro::go([&] { echo_server(&ln); });
    gn::Conn c = gn::dial("tcp", ln.addr());
    round_trips(c, kPingpongN);  // warm-up
    char msg[64] = {};
    char back[64];
    for (auto _ : state) {
      c.write(msg, sizeof msg);
      read_full(c, back, sizeof back);
    }
    c.close();
    ln.close();
  });
}
BENCHMARK(BM_net_pingpong)->Name("net_pingpong")->Iterations(kPingpongN)->UseRealTime();

constexpr int kEchoConns = 64;
constexpr long kEchoPer = 2'000;

void BM_net_echo(benchmark::State& state) {
  in_goro(state, {}, [&] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    goro::go([&] { echo_server(&ln); });
    std::vector<gn::Conn> cs;
    for (int i = 0; i < kEchoConns; i++) cs.push_back(gn::dial("tcp", ln.addr()));
    auto once = [&] {
      goro::WaitGroup wg;
      wg.add(kEchoConns);
      const auto t0 = Clock::now();
      for (auto& c : cs) {
        gn::Conn* p = &c;
        goro::go([p, &wg] {
          round_trips(*p, kEchoPer);
          wg.done();
        });
      }
      wg.wait();
      return seconds_since(t0);
    };
    once();  // warm-up
    count_iterations(state, once());
    for (auto& c : cs) c.close();
    ln.close();
  });
}
BENCHMARK(BM_net_echo)->Name("net_echo")->Iterations(kEchoConns * kEchoPer)->UseManualTime();

constexpr long kAcceptN = 5'000;

void BM_net_accept(benchmark::State& state) {
  in_goro(state, {}, [&] {
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    goro::go([&] {
      for (;;) {
        gn::Conn c;
        try {
          c = ln.accept();
        } catch (const gn::Error&) {
          return;
        }
        goro::go([c = std::move(c)]() mutable {
          char b;
          try {
            c.read(&b, 1);
          } catch (const gn::Error&) {
          }
          c.close();
        });
      }
    });
    const std::string addr = ln.addr();
    auto one = [&] {
      gn::Conn c = gn::dial("tcp", addr);
      char b = 0;
      c.write(&b, 1);
      c.read(&b, 1);  // EOF: the server closed
      c.close();
    };
    for (long i = 0; i < kAcceptN; i++) one();  // warm-up
    for (auto _ : state) one();
    ln.close();
  });
}
BENCHMARK(BM_net_accept)->Name("net_accept")->Iterations(kAcceptN)->UseRealTime();

std::int64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long size = 0, resident = 0;
  const int got = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  if (got != 2) return -1;
  return static_cast<std::int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

constexpr int kIdleN = 9'000;  // 18,000 descriptors: the hard limit here is 20,000

void BM_net_idle(benchmark::State& state) {
  for (auto _ : state) {
    in_goro(state, {}, [&] {
      gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
      goro::WaitGroup parked;
      parked.add(2 * kIdleN);
      auto reader = [&parked](gn::Conn* c) {
        char b;
        parked.done();
        try {
          c->read(&b, 1);
        } catch (const gn::Error&) {
        }
      };
      std::vector<gn::Conn> server(kIdleN), client(kIdleN);
      const auto t0 = Clock::now();
      const std::int64_t rss0 = rss_bytes();
      goro::go([&] {
        for (int i = 0; i < kIdleN; i++) {
          server[static_cast<std::size_t>(i)] = ln.accept();
          gn::Conn* p = &server[static_cast<std::size_t>(i)];
          goro::go([&reader, p] { reader(p); });
        }
      });
      for (int i = 0; i < kIdleN; i++) {
        client[static_cast<std::size_t>(i)] = gn::dial("tcp", ln.addr());
        gn::Conn* p = &client[static_cast<std::size_t>(i)];
        goro::go([&reader, p] { reader(p); });
      }
      parked.wait();
      const std::int64_t rss1 = rss_bytes();
      state.counters["bytes_per_conn"] = static_cast<double>(rss1 - rss0) / kIdleN;
      state.SetIterationTime(seconds_since(t0));
      // Server side closes first (TIME_WAIT there); the readers end.
      for (auto& c : server) c.close();
      for (auto& c : client) c.close();
    });
  }
}
BENCHMARK(BM_net_idle)->Name("net_idle")->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
