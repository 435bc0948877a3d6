// debugvars_test.cpp — the text views of GORO_DEBUG: scheddetail's m= and
// lockedg= taken from the live G<->M binding, pooltrace's one line per Get
// and per poolCleanup, and seed=N making a GOMAXPROCS=1 run repeat itself.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "pool/pool.hpp"
#include "test_util.hpp"
#include "tools/goro-trace/trace_reader.hpp"

namespace goro::test {
namespace {

using namespace std::chrono_literals;

// EnvGuard sets an environment variable for one test.
struct EnvGuard {
  std::string name;
  EnvGuard(const char* n, const std::string& v) : name(n) { ::setenv(n, v.c_str(), 1); }
  ~EnvGuard() { ::unsetenv(name.c_str()); }
};

// ---------------------------------------------------------------------------
// scheddetail

using SchedDetail = ProcsTest;

// A detail dump taken while goroutines run on every P: each G's m= names an
// M whose curg= is that G, each M's curg names a G with that m=, and the
// locked goroutine and its M name each other.
TEST_P(SchedDetail, GsAndMsAgree) {
  std::string dump;
  goro::run(opts(), [&] {
    std::atomic<bool> stop{false};
    std::atomic<int> started{0};
    WaitGroup wg;
    const int n = nprocs() + 1;
    for (int i = 0; i < n; i++) {
      wg.add(1);
      go([&] {
        started++;
        for (Deadline d(5s); !stop.load() && !d.passed();) preempt_point();
        wg.done();
      });
    }
    wg.add(1);
    auto locked_ready = make_chan<int>(1);
    auto locked_go = make_chan<int>(1);
    go([&] {
      lock_os_thread();
      locked_ready.send(1);
      locked_go.recv();  // parked: its M sleeps for it (lockedg stays set)
      unlock_os_thread();
      wg.done();
    });
    locked_ready.recv();
    for (Deadline d(5s); started.load() < n && !d.passed();) yield();
    ::testing::internal::CaptureStderr();
    detail::schedtrace(detail::rt(), true);
    dump = ::testing::internal::GetCapturedStderr();
    stop = true;
    locked_go.send(1);
    wg.wait();
  });
  std::map<long, long> mcurg, mlockedg, gm, glockedm;
  std::istringstream in(dump);
  std::string line;
  // field reads the number after " key=" in line (no std::regex: GCC 12's
  // trips -Wmaybe-uninitialized in the sanitizer builds).
  auto field = [](const std::string& l, const char* key, long* out) {
    const std::size_t at = l.find(std::string(" ") + key + "=");
    if (at == std::string::npos) return false;
    *out = std::strtol(l.c_str() + at + std::strlen(key) + 2, nullptr, 10);
    return true;
  };
  while (std::getline(in, line)) {
    long id = 0, a = 0, b = 0;
    if (line.rfind("  M", 0) == 0 && std::sscanf(line.c_str(), "  M%ld:", &id) == 1 && field(line, "curg", &a) &&
        field(line, "lockedg", &b)) {
      mcurg[id] = a;
      mlockedg[id] = b;
    } else if (line.rfind("  G", 0) == 0 && std::sscanf(line.c_str(), "  G%ld:", &id) == 1 &&
               field(line, "m", &a) && field(line, "lockedm", &b)) {
      gm[id] = a;
      glockedm[id] = b;
    }
  }
  ASSERT_FALSE(mcurg.empty()) << dump;
  ASSERT_FALSE(gm.empty()) << dump;
  int running = 0;
  for (auto [g, m] : gm) {
    if (m < 0) continue;
    running++;
    ASSERT_TRUE(mcurg.count(m)) << "G" << g << " m=" << m << " has no M line\n" << dump;
    EXPECT_EQ(mcurg[m], g) << dump;
  }
  for (auto [m, g] : mcurg) {
    if (g >= 0) {
      EXPECT_EQ(gm[g], m) << dump;
    }
  }
  // The caller (main, running the dump) at least.
  EXPECT_GE(running, 1) << dump;
  int locked = 0;
  for (auto [m, g] : mlockedg) {
    if (g < 0) continue;
    locked++;
    EXPECT_EQ(glockedm[g], m) << dump;
  }
  EXPECT_EQ(locked, 1) << dump;
}

INSTANTIATE_TEST_SUITE_P(Procs, SchedDetail, ::testing::Values(1, 2, 4, 8), ProcsName);

// ---------------------------------------------------------------------------
// pooltrace

std::vector<std::string> pool_lines(const std::string& err) {
  std::vector<std::string> v;
  std::istringstream in(err);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("pooltrace: ", 0) == 0) v.push_back(line);
  return v;
}

// One Get per source, each checked against the line it printed.
TEST_F(RuntimeTest, PooltraceEveryGetSource) {
  EnvGuard env("GORO_DEBUG", "pooltrace=1");
  ::testing::internal::CaptureStderr();
  std::vector<std::string> got;
  goro::run(Options{.procs = 1}, [&] {
    Pool<int> pool([] { return gc::make<int>(0); });
    int* a = gc::make<int>(1);
    int* b = gc::make<int>(2);
    pool.put(a);
    pool.put(b);  // a private, b shared
    std::fflush(stderr);
    EXPECT_EQ(pool.get(), a);  // private
    EXPECT_EQ(pool.get(), b);  // shared
    (void)pool.get();          // New
    pool.put(a);
    pool.put(b);
    detail::pool_cleanup_stw_for_test();  // both to the victim
    EXPECT_EQ(pool.get(), a);  // victim private
    EXPECT_EQ(pool.get(), b);  // victim shared
    pool.put(a);
    detail::pool_cleanup_stw_for_test();  // a to the victim
    detail::pool_cleanup_stw_for_test();  // the victim dropped
  });
  const std::vector<std::string> lines = pool_lines(::testing::internal::GetCapturedStderr());
  std::vector<std::string> sources;
  std::vector<std::string> cleanups;
  for (const std::string& l : lines) {
    const std::size_t at = l.find(" served by ");
    if (at != std::string::npos) {
      sources.push_back(l.substr(at + 11));
      EXPECT_NE(l.find(" P0 "), std::string::npos) << l;
    } else if (l.find("poolCleanup") != std::string::npos) {
      cleanups.push_back(l.substr(l.find("poolCleanup")));
    }
  }
  EXPECT_EQ(sources, (std::vector<std::string>{"private", "shared", "New", "victim private", "victim shared"}));
  ASSERT_EQ(cleanups.size(), 3u);
  EXPECT_EQ(cleanups[0], "poolCleanup allPools=1 oldPools=0 moved-to-victim=2 dropped=0");
  EXPECT_EQ(cleanups[1], "poolCleanup allPools=1 oldPools=1 moved-to-victim=1 dropped=0");
  EXPECT_EQ(cleanups[2], "poolCleanup allPools=0 oldPools=1 moved-to-victim=0 dropped=1");
}

// A Get on one P served from another P's shared chain says which P.
TEST_F(RuntimeTest, PooltraceStolenFromP) {
  EnvGuard env("GORO_DEBUG", "pooltrace=1");
  bool stolen = false;
  for (int attempt = 0; attempt < 20 && !stolen; attempt++) {
    ::testing::internal::CaptureStderr();
    int putp = -1, getp = -1;
    goro::run(Options{.procs = 2}, [&] {
      Pool<int> pool;
      putp = proc_pin();
      proc_unpin();
      pool.put(gc::make<int>(1));
      pool.put(gc::make<int>(2));  // on putp's shared chain
      // Keep this P busy so the Get runs on the other one.
      std::atomic<bool> done{false};
      go([&] {
        getp = proc_pin();
        proc_unpin();
        if (getp != putp) (void)pool.get();
        done = true;
      });
      for (Deadline d(5s); !done.load() && !d.passed();) preempt_point();
      pool.get();  // drain
      pool.get();
    });
    const auto lines = pool_lines(::testing::internal::GetCapturedStderr());
    for (const std::string& l : lines)
      if (l.find("stolen from P" + std::to_string(putp)) != std::string::npos &&
          l.find(" P" + std::to_string(getp) + " ") != std::string::npos)
        stolen = true;
  }
  EXPECT_TRUE(stolen);
}

// ---------------------------------------------------------------------------
// seed=N

// schedule_of runs fn traced with GOMAXPROCS=1 and returns the run slices in
// time order as "G<id>:<why it stopped>".
std::vector<std::string> schedule_of(const std::string& seed, const std::function<void()>& fn) {
  const std::string path = "/tmp/goro_seed_test_" + std::to_string(::getpid()) + ".json";
  EnvGuard dbg("GORO_DEBUG", "seed=" + seed);
  EnvGuard tr("GORO_TRACE", path);
  goro::run(Options{.procs = 1}, fn);
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::vector<std::pair<double, std::string>> s;
  tracefile::read_trace(ss.str(), [&](const tracefile::TraceEv& e) {
    if (e.ph == "X" && e.pid == 2) s.emplace_back(e.ts, e.name + ":" + e.args_str("stopped"));
  });
  std::remove(path.c_str());
  std::sort(s.begin(), s.end());
  std::vector<std::string> out;
  for (auto& x : s) out.push_back(x.second);
  return out;
}

// expect_repeats runs fn twice with one seed and compares the schedules.
// sysmon's time-slice preemption is a timer race a loaded machine can lose
// (a goroutine descheduled by the OS for 10 ms looks like a hog): a pair in
// which either run was preempted is run again; every clean pair must agree.
void expect_repeats(const std::function<void()>& fn, std::size_t min_slices) {
  int clean = 0;
  for (int attempt = 0; attempt < 10 && clean < 2; attempt++) {
    const auto a = schedule_of("7", fn);
    const auto b = schedule_of("7", fn);
    auto preempted = [](const std::vector<std::string>& s) {
      return std::any_of(s.begin(), s.end(), [](const std::string& x) { return x.ends_with(":preempted"); });
    };
    if (preempted(a) || preempted(b)) continue;
    clean++;
    EXPECT_GE(a.size(), min_slices);
    EXPECT_EQ(a, b);
  }
  // Under a sanitizer every goroutine runs ~10x slower, and on a loaded
  // machine each run may cross sysmon's 10 ms slice somewhere.
  if (clean == 0 && kSanitized) GTEST_SKIP() << "every run was preempted by sysmon (sanitizer build, timer race)";
  EXPECT_GE(clean, 1) << "every run was preempted by sysmon (machine overloaded?)";
}

void prime_sieve() {
  auto ch = make_chan<int>();
  go([ch] {
    for (int i = 2;; i++) ch.send(i);
  });
  auto in = ch;
  for (int i = 0; i < 30; i++) {
    const int prime = *in.recv();
    auto out = make_chan<int>();
    go([in, out, prime] {
      for (;;) {
        const int v = *in.recv();
        if (v % prime != 0) out.send(v);
      }
    });
    in = out;
  }
}

TEST_F(RuntimeTest, SeedRepeatsPrimeSieve) {
  expect_repeats(prime_sieve, 100);
}

// select's poll order comes from fastrand: the same seed makes the same
// choices, another seed other choices.
std::vector<int> select_choices() {
  std::vector<int> picks;
  goro::run(Options{.procs = 1}, [&] {
    auto a = make_chan<int>(1);
    auto b = make_chan<int>(1);
    for (int i = 0; i < 200; i++) {
      a.send(1);
      b.send(2);
      int v = 0;
      select(case_recv(a, [&](std::optional<int> x) { v = *x; }),
             case_recv(b, [&](std::optional<int> x) { v = *x; }));
      picks.push_back(v);
      // Drain the other one.
      select(case_recv(a, [](std::optional<int>) {}), case_recv(b, [](std::optional<int>) {}));
    }
  });
  return picks;
}

TEST_F(RuntimeTest, SeedFixesSelectFairness) {
  std::vector<int> a, b, c;
  {
    EnvGuard dbg("GORO_DEBUG", "seed=1");
    a = select_choices();
    b = select_choices();
  }
  {
    EnvGuard dbg("GORO_DEBUG", "seed=2");
    c = select_choices();
  }
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Still fair: both cases chosen often.
  const long ones = std::count(a.begin(), a.end(), 1);
  EXPECT_GT(ones, 50);
  EXPECT_LT(ones, 150);
}

// The spawn order demo: with one P, the order goroutines run in is the
// same every run.
TEST_F(RuntimeTest, SeedRepeatsSpawnOrder) {
  auto spawn = [] {
    WaitGroup wg;
    for (int i = 0; i < 20; i++) {
      wg.add(1);
      go([&wg, i] {
        if (i % 3 == 0) yield();
        wg.done();
      });
    }
    wg.wait();
  };
  expect_repeats(spawn, 20);
}

}  // namespace
}  // namespace goro::test
