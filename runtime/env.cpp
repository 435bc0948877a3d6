// env.cpp — configuration from Options and the environment (Go's
// parsedebugvars and the GOMAXPROCS/GOGC reading in schedinit/gcinit).
//
// Go's names and syntax: GOMAXPROCS=N, GOGC=N|off, GORO_DEBUG as GODEBUG
// (name=value pairs separated by commas), GOTRACEBACK=single|all|none. Unlike
// Go, a malformed or unknown setting is an error at start-up naming the
// variable: a typo in a debug variable silently ignored costs an afternoon.
// Numbers in GOMAXPROCS and GOGC are plain decimal digits (" 2", "+2", "0x2"
// are errors, where Go's atoi would take or ignore them).
#include <sched.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "sched/config.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

bool parse_int(const char* s, std::int64_t* out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  *out = v;
  return true;
}

// parse_digits reads a plain decimal number: one or more of 0-9 and nothing
// else (no sign, no spaces, no 0x), at most INT_MAX. GOMAXPROCS and GOGC are
// read with it: API.md's rule is stricter than Go's atoi on purpose.
bool parse_digits(const char* s, std::int64_t* out) {
  if (s == nullptr || *s == '\0') return false;
  std::int64_t v = 0;
  for (const char* c = s; *c != '\0'; c++) {
    if (*c < '0' || *c > '9') return false;
    v = v * 10 + (*c - '0');
    if (v > INT_MAX) return false;
  }
  *out = v;
  return true;
}

int ncpu() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

namespace {

[[noreturn]] void bad(const std::string& var, const std::string& value, const char* why) {
  throw Error("goro: malformed " + var + "=\"" + value + "\": " + why);
}

void parse_debug(const char* env, Config* c) {
  std::string s = env;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    std::size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    std::string item = s.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) {
      if (comma == s.size()) break;
      continue;
    }
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos) bad("GORO_DEBUG", s, ("setting \"" + item + "\" has no =value").c_str());
    const std::string key = item.substr(0, eq);
    const std::string val = item.substr(eq + 1);
    std::int64_t v = 0;
    if (!parse_int(val.c_str(), &v) || v < 0)
      bad("GORO_DEBUG", s, (key + " needs a non-negative integer").c_str());
    if (key == "schedtrace") {
      c->schedtrace_ms = v;
    } else if (key == "scheddetail") {
      c->scheddetail = v != 0;
    } else if (key == "gctrace") {
      c->gctrace = v != 0;
    } else if (key == "gcstoptheworld") {
      c->gcstoptheworld = v != 0;
    } else if (key == "gcuffd") {
      c->gcuffd = v != 0;
    } else if (key == "pooltrace") {
      c->pooltrace = v != 0;
    } else if (key == "lazysyscall") {
      c->lazysyscall = v != 0;
    } else if (key == "seed") {
      c->seed_set = true;
      c->seed = static_cast<std::uint64_t>(v);
    } else if (key == "forcegc") {
      if (v == 0) bad("GORO_DEBUG", s, "forcegc needs a period in milliseconds > 0");
      c->forcegc_ms = v;
    } else {
      bad("GORO_DEBUG", s,
          ("unknown setting \"" + key +
           "\" (known: schedtrace, scheddetail, gctrace, gcstoptheworld, gcuffd, lazysyscall, "
           "forcegc, pooltrace, seed)")
              .c_str());
    }
    if (comma == s.size()) break;
  }
}

}  // namespace

Config parse_config(const Options& opt) {
  Config c;
  // GOMAXPROCS
  if (opt.procs < 0) throw Error("goro::Options.procs must be >= 0");
  if (opt.procs > 0) {
    c.procs = opt.procs;
  } else if (const char* e = std::getenv("GOMAXPROCS"); e != nullptr && *e != '\0') {
    std::int64_t v = 0;
    if (!parse_digits(e, &v) || v <= 0)
      bad("GOMAXPROCS", e, "want a positive integer, plain decimal digits");
    c.procs = static_cast<int>(v > maxProcs ? maxProcs : v);
  } else {
    c.procs = ncpu();
  }
  if (c.procs > maxProcs) c.procs = maxProcs;
  // GOGC
  if (opt.gc_percent != 0) {
    c.gc_percent = opt.gc_percent < 0 ? -1 : opt.gc_percent;
  } else if (const char* e = std::getenv("GOGC"); e != nullptr && *e != '\0') {
    std::int64_t v = 0;
    if (std::strcmp(e, "off") == 0) {
      c.gc_percent = -1;
    } else if (parse_digits(e, &v)) {
      c.gc_percent = static_cast<int>(v);
    } else {
      bad("GOGC", e, "want a non-negative integer (plain decimal digits) or \"off\"");
    }
  }
  c.stack_size = opt.stack_size;
  if (const char* e = std::getenv("GORO_DEBUG"); e != nullptr) parse_debug(e, &c);
  // GOTRACEBACK: what a panic prints (Go's gotraceback levels 0, 1, 2).
  if (const char* e = std::getenv("GOTRACEBACK"); e != nullptr && *e != '\0') {
    if (std::strcmp(e, "none") == 0)
      c.traceback = Traceback::none;
    else if (std::strcmp(e, "single") == 0)
      c.traceback = Traceback::single;
    else if (std::strcmp(e, "all") == 0)
      c.traceback = Traceback::all;
    else
      bad("GOTRACEBACK", e, "want single, all or none");
  }
  if (const char* e = std::getenv("GORO_TRACE"); e != nullptr) {
    if (*e == '\0') bad("GORO_TRACE", e, "want a file name");
    c.trace_file = e;
  }
  return c;
}

}  // namespace goro::detail
