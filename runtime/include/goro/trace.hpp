// goro/trace.hpp — user annotations in the execution trace (Go's
// runtime/trace: Log and WithRegion). They cost one branch when the trace is
// off (GORO_TRACE unset).
//
//   goro::trace::log("cache", "miss for key 42");   // an instant on this M's track
//   {
//     goro::trace::Region r("parse");               // a slice on this goroutine's
//     parse(input);                                 // track, from here to the
//   }                                               // end of the scope
//
// Both are no-ops outside a running goro runtime. See docs/trace.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace goro::trace {

// enabled reports whether this run records a trace (GORO_TRACE is set).
bool enabled();

// log records a message under a category at the current time, on the
// goroutine that calls it. Each string keeps at most 120 bytes.
void log(std::string_view category, std::string_view message);

// Region marks the lifetime of a scope as a named slice on the calling
// goroutine's track (it may span parks and moves between Ms).
class Region {
 public:
  explicit Region(std::string_view name);
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

 private:
  std::int64_t start_ = 0;  // 0: not recording
  std::uint64_t goid_ = 0;
  std::string name_;
};

}  // namespace goro::trace
