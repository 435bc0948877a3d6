// test_util.hpp — what every goro test file shares: the GOMAXPROCS values the
// suite is parameterised over, the sanitizer switch that shrinks the big
// tests, and the fixture whose TearDown is the leak check (no goroutine left
// on this thread, and the runtime fully torn down after each test).
#pragma once

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <cstdlib>
#include <optional>
#include <string>

#include "goro/goro.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

namespace goro::test {

// kSanitized is true in the ASan and TSan builds: the slow ones, where the
// big tests run at a tenth of their size.
inline constexpr bool kSanitized = GORO_ASAN || GORO_TSAN;

// scaled picks the normal size or, under a sanitizer, a tenth of it.
constexpr long scaled(long n) { return kSanitized ? n / 10 : n; }

inline pid_t gettid_() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// Deadline is a bound on a loop that waits for something to happen, so that
// a runtime that never does it fails the test instead of hanging it.
class Deadline {
 public:
  explicit Deadline(std::chrono::milliseconds d) : end_(std::chrono::steady_clock::now() + d) {}
  bool passed() const { return std::chrono::steady_clock::now() >= end_; }

 private:
  std::chrono::steady_clock::time_point end_;
};

// spin burns a little CPU without entering the runtime.
inline void spin(int iters) {
  volatile unsigned x = 0;
  for (int i = 0; i < iters; i++) x = x + static_cast<unsigned>(i);
}

// Watchdog aborts the process if the test is still running after `limit`:
// for tests that exercise a known hang, so that they fail in seconds
// instead of at meson's 300 s timeout.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : t_([this, limit] {
          std::unique_lock<std::mutex> lk(mu_);
          if (!cv_.wait_for(lk, limit, [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: %s hung for %llds\n",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                         static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      done_ = true;
    }
    cv_.notify_one();
    t_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread t_;
};

// ScopedEnv sets (or unsets) an environment variable for its lifetime.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

inline Options procs(int n) {
  Options o;
  o.procs = n;
  return o;
}

// RuntimeTest's TearDown is the leak check every test ends with.
class RuntimeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_FALSE(goro::in_runtime());
    EXPECT_EQ(goro::detail::rt(), nullptr) << "the runtime was not torn down";
  }
};

// ProcsTest is a RuntimeTest run once per GOMAXPROCS value.
class ProcsTest : public RuntimeTest, public ::testing::WithParamInterface<int> {
 protected:
  int nprocs() const { return GetParam(); }
  Options opts() const { return procs(GetParam()); }
};

inline std::string ProcsName(const ::testing::TestParamInfo<int>& info) {
  return "procs" + std::to_string(info.param);
}

}  // namespace goro::test

// EXPECT_CONTAINS: the string `hay` contains `needle` (gtest without gmock).
#define EXPECT_CONTAINS(hay, needle)                                                        \
  EXPECT_NE(std::string(hay).find(needle), std::string::npos)                              \
      << "\"" << (hay) << "\" does not contain \"" << (needle) << "\""

#define GORO_INSTANTIATE_PROCS(Suite) \
  INSTANTIATE_TEST_SUITE_P(Gomaxprocs, Suite, ::testing::Values(1, 2, 4, 8), ::goro::test::ProcsName)
