// bench_util.hpp — the harness every goro benchmark program shares: the
// clock, running a benchmark body as goro's main goroutine, and reporting
// work done by other goroutines as manual time.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <goro/goro.hpp>
#include <mutex>
#include <string>
#include <thread>

namespace goro_bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// cpu_seconds is the user+sys CPU time of the whole process, every thread
// (getrusage(RUSAGE_SELF)), as the Go peers' cpuSeconds.
inline double cpu_seconds() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const struct timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// in_goro runs body as goro's main goroutine; a failure is reported as the
// benchmark's error instead of ending the program.
inline void in_goro(benchmark::State& state, const goro::Options& opt,
                    const std::function<void()>& body) {
  try {
    goro::run(opt, body);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// WarmRuntime is one goro runtime that lives as long as the benchmark
// program, as one Go process serves all of a Go peer's runs. The Go harness
// warms up once and then measures five runs in that process, each after the
// ones before it: its stacks, Gs and heap are already faulted in and on free
// lists. A fresh goro::run() per repetition would start each measurement
// from a cold runtime instead (on this machine a first page fault costs
// 10-16 us, so a round that needs more stacks than the last one pays for
// them; timers paid about 10 % of its time that way). So the rows that
// mirror Go's harness run their repetitions in this runtime.
//
// Its main goroutine waits in goro::blocking for a body from the benchmark
// thread, runs it, and reports back; at exit the destructor ends it.
class WarmRuntime {
 public:
  static WarmRuntime& get() {
    static WarmRuntime rt;
    return rt;
  }

  // run runs body as the runtime's main goroutine and waits for it; the
  // message of an exception it threw, or "".
  std::string run(const std::function<void()>& body) {
    std::unique_lock<std::mutex> lk(mu_);
    job_ = &body;
    done_ = false;
    cv_.notify_all();
    cv_.wait(lk, [&] { return done_; });
    return std::move(error_);
  }

  ~WarmRuntime() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  WarmRuntime() : thread_([this] { goro::run({}, [this] { serve(); }); }) {}

  void serve() {
    for (;;) {
      // The wait blocks this thread, so it runs outside the P (blocking);
      // the std::mutex is never held across a park.
      const std::function<void()>* job = goro::blocking([&] {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return job_ != nullptr || quit_; });
        return quit_ ? nullptr : job_;
      });
      if (job == nullptr) return;
      std::string error;
      try {
        (*job)();
      } catch (const std::exception& e) {
        error = e.what();
      }
      std::lock_guard<std::mutex> lk(mu_);
      job_ = nullptr;
      error_ = std::move(error);
      done_ = true;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()>* job_ = nullptr;
  std::string error_;
  bool done_ = false;
  bool quit_ = false;
  std::thread thread_;  // last: started once the fields above exist
};

// in_warm_goro runs body in the program's WarmRuntime as its main goroutine,
// with GOMAXPROCS set to procs (> 0) for the body and restored after it, as
// the Go peers' withProcs does; procs 0 keeps $GOMAXPROCS. *warmed is the
// caller's "already warmed up" flag: body receives whether this is the
// first repetition, which does the Go peer's one warm-up run.
inline void in_warm_goro(benchmark::State& state, int procs, bool* warmed,
                         const std::function<void(bool first)>& body) {
  const std::string error = WarmRuntime::get().run([&] {
    const int prev = procs > 0 ? goro::gomaxprocs(procs) : 0;
    struct Restore {
      int prev;
      ~Restore() {
        if (prev > 0) goro::gomaxprocs(prev);
      }
    } restore{prev};
    const bool first = !*warmed;
    *warmed = true;
    body(first);
  });
  if (!error.empty()) state.SkipWithError(error.c_str());
}

// count_iterations runs the benchmark loop empty (the ops were done by other
// goroutines) and reports el seconds as the manual time of all iterations.
inline void count_iterations(benchmark::State& state, double el) {
  for (auto _ : state) {
  }
  state.SetIterationTime(el);
}

}  // namespace goro_bench
