// lifecycle_test.cpp — run(): twice in a row, exceptions out of main, misuse
// (run inside a goroutine, concurrent runs, API calls outside a runtime) and
// the parsing of the environment at start-up.
#include <memory>
#include <atomic>
#include <future>
#include <string>
#include <thread>

#include "test_util.hpp"

namespace goro::test {
namespace {

using namespace std::chrono_literals;

class Lifecycle : public ProcsTest {};
GORO_INSTANTIATE_PROCS(Lifecycle);

// EXPECT_ERROR_OUTSIDE checks that `stmt` throws goro::Error saying it was
// called outside the runtime.
#define EXPECT_ERROR_OUTSIDE(stmt)                                                   \
  do {                                                                               \
    try {                                                                            \
      stmt;                                                                          \
      ADD_FAILURE() << #stmt " did not throw outside the runtime";                  \
    } catch (const goro::Error& e) {                                                 \
      EXPECT_NE(std::string(e.what()).find("outside"), std::string::npos) << e.what(); \
    } catch (...) {                                                                  \
      ADD_FAILURE() << #stmt " threw something other than goro::Error";             \
    }                                                                                \
  } while (0)

TEST_P(Lifecycle, RunReturnsAfterMain) {
  bool ran = false;
  goro::run(opts(), [&] {
    EXPECT_TRUE(goro::in_runtime());
    EXPECT_EQ(goro::gomaxprocs(), nprocs());
    ran = true;
  });
  EXPECT_TRUE(ran);
}

// run() twice in a row, with different GOMAXPROCS, each a fresh runtime
// (main is goroutine 1 again).
TEST_F(RuntimeTest, RunTwiceWithDifferentProcs) {
  for (int n : {2, 4, 1, 3}) {
    int seen = 0;
    std::uint64_t id = 0;
    std::atomic<int> work{0};
    goro::run(procs(n), [&] {
      seen = goro::gomaxprocs();
      id = goro::goid();
      goro::WaitGroup wg;
      wg.add(100);
      for (int i = 0; i < 100; i++)
        goro::go([&] {
          work.fetch_add(1);
          wg.done();
        });
      wg.wait();
    });
    EXPECT_EQ(seen, n);
    EXPECT_EQ(id, 1u);
    EXPECT_EQ(work.load(), 100);
    EXPECT_EQ(goro::detail::rt(), nullptr);
  }
}

// main returning while other goroutines are still parked or runnable: they
// are abandoned, run() still returns and tears everything down (including
// never-started goroutines' callables: their captured shared_ptr is freed).
TEST_P(Lifecycle, MainReturnsWithGoroutinesAlive) {
  auto token = std::make_shared<int>(42);
  std::weak_ptr<int> weak = token;
  goro::run(opts(), [&, t = std::move(token)]() mutable {
    // On the heap: the waiters outlive main's frame (in Go it would escape).
    auto never = std::make_shared<goro::WaitGroup>();
    never->add(1);
    for (int i = 0; i < 10; i++) goro::go([never] { never->wait(); });
    for (int i = 0; i < 10; i++) goro::go([c = t] { (void)c; });  // maybe never started
    t.reset();
  });
  EXPECT_TRUE(weak.expired()) << "a goroutine's callable was not destroyed at teardown";
}

// An exception escaping main is rethrown from run(), with its type and
// message.
TEST_P(Lifecycle, ExceptionFromMainIsRethrown) {
  try {
    goro::run(opts(), [] { throw std::runtime_error("main failed"); });
    ADD_FAILURE() << "run() returned normally";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "main failed");
  }
  // A non-std exception type survives too, and so does one thrown after
  // goroutines were started and parked.
  struct Custom {
    int code;
  };
  try {
    goro::run(opts(), [] {
      // On the heap: the goroutine outlives main's frame, which the
      // exception unwinds while it waits (in Go, `never` would escape).
      auto never = std::make_shared<goro::WaitGroup>();
      never->add(1);
      goro::go([never] { never->wait(); });
      goro::yield();
      throw Custom{7};
    });
    ADD_FAILURE() << "run() returned normally";
  } catch (const Custom& c) {
    EXPECT_EQ(c.code, 7);
  }
  // And the next run is clean.
  bool ran = false;
  goro::run(opts(), [&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST_P(Lifecycle, RunInsideGoroutineThrows) {
  std::atomic<int> errors{0};
  goro::run(opts(), [&] {
    try {
      goro::run([] {});
    } catch (const goro::Error&) {
      errors.fetch_add(1);
    }
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      try {
        goro::run(procs(1), [] {});
      } catch (const goro::Error&) {
        errors.fetch_add(1);
      }
      wg.done();
    });
    wg.wait();
    EXPECT_TRUE(goro::in_runtime());  // the failed run() left us alone
  });
  EXPECT_EQ(errors.load(), 2);
}

// A second run() on another thread while one is running is refused.
TEST_F(RuntimeTest, ConcurrentRunThrows) {
  std::promise<void> started, release;
  auto release_f = release.get_future();
  std::thread t([&] {
    goro::run(procs(2), [&] {
      started.set_value();
      goro::blocking([&] { release_f.wait(); });
    });
  });
  started.get_future().wait();
  bool threw = false;
  try {
    goro::run(procs(1), [] {});
  } catch (const goro::Error& e) {
    threw = true;
    EXPECT_CONTAINS(e.what(), "already running");
  }
  release.set_value();
  t.join();
  EXPECT_TRUE(threw);
}

TEST_F(RuntimeTest, RunRejectsBadArguments) {
  EXPECT_THROW(goro::run(std::function<void()>{}), goro::Error);
  EXPECT_THROW(goro::run(procs(-1), [] {}), goro::Error);
}

// Every scheduler call outside a running runtime throws goro::Error saying
// so, never crashes.
TEST_F(RuntimeTest, ApiMisuseOutsideRuntimeThrows) {
  EXPECT_FALSE(goro::in_runtime());
  EXPECT_ERROR_OUTSIDE(goro::yield());
  EXPECT_ERROR_OUTSIDE(goro::preempt_point());
  EXPECT_ERROR_OUTSIDE(goro::sleep_for(1ms));
  EXPECT_ERROR_OUTSIDE(goro::sleep_until(std::chrono::steady_clock::now()));
  EXPECT_ERROR_OUTSIDE(goro::goid());
  EXPECT_ERROR_OUTSIDE(goro::gomaxprocs());
  EXPECT_ERROR_OUTSIDE(goro::gomaxprocs(2));
  EXPECT_ERROR_OUTSIDE(goro::num_goroutine());
  EXPECT_ERROR_OUTSIDE(goro::num_cpu());
  EXPECT_ERROR_OUTSIDE(goro::proc_pin());
  EXPECT_ERROR_OUTSIDE(goro::proc_unpin());
  EXPECT_ERROR_OUTSIDE(goro::lock_os_thread());
  EXPECT_ERROR_OUTSIDE(goro::unlock_os_thread());
  EXPECT_ERROR_OUTSIDE(goro::go([] {}));
  EXPECT_ERROR_OUTSIDE(goro::blocking([] { return 1; }));
  goro::WaitGroup wg;
  EXPECT_ERROR_OUTSIDE(wg.wait());
  // The same from a thread that is not run()'s while a runtime is running.
  goro::run(procs(2), [] {
    std::thread t([] {
      EXPECT_FALSE(goro::in_runtime());
      EXPECT_ERROR_OUTSIDE(goro::yield());
      EXPECT_ERROR_OUTSIDE(goro::go([] {}));
      EXPECT_ERROR_OUTSIDE(goro::gomaxprocs());
    });
    goro::blocking([&] { t.join(); });
  });
}

// ---------------------------------------------------------------------------
// The environment

// expect_run_error runs with the environment as it is and expects goro::Error
// whose message names `var`.
void expect_run_error(const char* var) {
  try {
    goro::run([] { ADD_FAILURE() << "main ran despite the malformed environment"; });
    ADD_FAILURE() << "run() accepted a malformed " << var;
  } catch (const goro::Error& e) {
    EXPECT_CONTAINS(e.what(), var);
  }
}

TEST_F(RuntimeTest, MalformedGomaxprocsThrows) {
  for (const char* v : {"abc", "0", "-3", "4x", "99999999999999999999"}) {
    SCOPED_TRACE(v);
    ScopedEnv env("GOMAXPROCS", v);
    expect_run_error("GOMAXPROCS");
  }
  // Afterwards run() works again.
  ScopedEnv env("GOMAXPROCS", nullptr);
  bool ran = false;
  goro::run(procs(1), [&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST_F(RuntimeTest, GomaxprocsFromEnvironment) {
  ScopedEnv env("GOMAXPROCS", "3");
  int n = 0;
  goro::run([&] { n = goro::gomaxprocs(); });
  EXPECT_EQ(n, 3);
  goro::run(procs(2), [&] { n = goro::gomaxprocs(); });  // Options win
  EXPECT_EQ(n, 2);
}

TEST_F(RuntimeTest, DefaultGomaxprocsIsNumCpu) {
  ScopedEnv env("GOMAXPROCS", nullptr);
  int n = 0, cpus = 0;
  goro::run([&] {
    n = goro::gomaxprocs();
    cpus = goro::num_cpu();
  });
  EXPECT_EQ(n, cpus);
}

TEST_F(RuntimeTest, MalformedGoroDebugThrows) {
  for (const char* v : {"bogus=1", "schedtrace=abc", "schedtrace", "scheddetail=-1", "forcegc=0"}) {
    SCOPED_TRACE(v);
    ScopedEnv env("GORO_DEBUG", v);
    expect_run_error("GORO_DEBUG");
  }
}

TEST_F(RuntimeTest, MalformedGogcThrows) {
  for (const char* v : {"abc", "-5", "offf"}) {
    SCOPED_TRACE(v);
    ScopedEnv env("GOGC", v);
    expect_run_error("GOGC");
  }
  for (const char* v : {"off", "50"}) {
    SCOPED_TRACE(v);
    ScopedEnv env("GOGC", v);
    bool ran = false;
    goro::run(procs(1), [&] { ran = true; });
    EXPECT_TRUE(ran);
  }
}

// API.md: GOMAXPROCS and GOGC numbers are plain decimal digits: no sign, no
// spaces, no prefix (Go's atoi would take some of these), and the error
// names the variable.
TEST_F(RuntimeTest, GomaxprocsAndGogcArePlainDigitsOnly) {
  for (const char* v : {" 2", "2 ", "+2", "0x2", "2.0", "\t2", "２"}) {
    SCOPED_TRACE(v);
    {
      ScopedEnv env("GOMAXPROCS", v);
      expect_run_error("GOMAXPROCS");
    }
    ScopedEnv env("GOGC", v);
    expect_run_error("GOGC");
  }
  {
    ScopedEnv env("GOGC", "99999999999");  // above INT_MAX
    expect_run_error("GOGC");
  }
  // Digits alone are accepted, including a leading zero.
  ScopedEnv maxprocs("GOMAXPROCS", "02");
  ScopedEnv gogc("GOGC", "0150");
  int n = 0;
  goro::run([&] { n = goro::gomaxprocs(); });
  EXPECT_EQ(n, 2);
}

TEST_F(RuntimeTest, MalformedGotracebackThrows) {
  for (const char* v : {"bogus", "All", "2", "single "}) {
    SCOPED_TRACE(v);
    ScopedEnv env("GOTRACEBACK", v);
    expect_run_error("GOTRACEBACK");
  }
  for (const char* v : {"single", "all", "none"}) {
    SCOPED_TRACE(v);
    ScopedEnv env("GOTRACEBACK", v);
    bool ran = false;
    goro::run(procs(1), [&] { ran = true; });
    EXPECT_TRUE(ran);
  }
}

TEST_F(RuntimeTest, EmptyGoroDebugIsAccepted) {
  ScopedEnv env("GORO_DEBUG", "");
  bool ran = false;
  goro::run(procs(1), [&] { ran = true; });
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace goro::test
