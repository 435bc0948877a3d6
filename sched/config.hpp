// config.hpp — one run's configuration, from goro::Options and the
// environment (GOMAXPROCS, GOGC, GORO_DEBUG, GORO_TRACE, GOTRACEBACK), parsed once at
// start-up by parse_config. A malformed variable is a goro::Error naming it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "goro/runtime.hpp"

namespace goro::detail {

// Traceback is GOTRACEBACK: how much a panic prints (fatal errors and
// SIGQUIT always print every goroutine).
enum class Traceback { none, single, all };

struct Config {
  int procs = 1;
  std::size_t stack_size = 0;
  int gc_percent = 100;          // < 0: off
  std::int64_t schedtrace_ms = 0;
  bool scheddetail = false;
  bool gctrace = false;
  bool gcstoptheworld = false;   // GORO_DEBUG=gcstoptheworld=1: the whole mark inside the pause
  bool gcuffd = true;            // GORO_DEBUG=gcuffd=0: act as if userfaultfd were unavailable
  bool lazysyscall = true;       // GORO_DEBUG=lazysyscall=0: every blocking() call as Go's
  std::int64_t forcegc_ms = 2 * 60 * 1000;  // Go's forcegcperiod: 2 minutes
  std::string trace_file;
  bool pooltrace = false;        // GORO_DEBUG=pooltrace=1
  bool seed_set = false;         // GORO_DEBUG=seed=N: every random choice from N
  std::uint64_t seed = 0;
  Traceback traceback = Traceback::single;  // GOTRACEBACK
};

// parse_config merges opt with the environment; throws goro::Error.
Config parse_config(const Options& opt);

// ncpu is the number of CPUs this process may run on (its affinity mask).
int ncpu();

// Parsers for single values, exposed for the tests.
bool parse_int(const char* s, std::int64_t* out);
bool parse_digits(const char* s, std::int64_t* out);  // [0-9]+ only, <= INT_MAX

}  // namespace goro::detail
