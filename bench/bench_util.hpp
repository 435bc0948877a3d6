// bench_util.hpp — the harness every goro benchmark program shares: the
// clock, running a benchmark body as goro's main goroutine, and reporting
// work done by other goroutines as manual time.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <exception>
#include <functional>
#include <goro/goro.hpp>

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

// count_iterations runs the benchmark loop empty (the ops were done by other
// goroutines) and reports el seconds as the manual time of all iterations.
inline void count_iterations(benchmark::State& state, double el) {
  for (auto _ : state) {
  }
  state.SetIterationTime(el);
}

}  // namespace goro_bench
