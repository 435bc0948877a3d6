// trace_api.cpp — goro::trace::log and goro::trace::Region (goro/trace.hpp)
// on top of the tracer in sched/trace.cpp.
#include "goro/trace.hpp"

#include "sched/proc.hpp"

namespace goro::trace {

bool enabled() { return detail::trace_on; }

void log(std::string_view category, std::string_view message) {
  using namespace detail;
  if (!trace_on) return;
  G* g = getg();
  if (g == nullptr) return;
  // Both strings go inline, separated by a NUL (trace.cpp splits them).
  std::string s(category.substr(0, 120));
  s.push_back('\0');
  s.append(message.substr(0, 120));
  M* m = g->m;
  trace_emit(TraceKind::log, g->goid, m != nullptr && m->p != nullptr ? m->p->id : -1, 0, 0, 0, nullptr, 0, 0, s);
}

Region::Region(std::string_view name) {
  using namespace detail;
  if (!trace_on) return;
  G* g = getg();
  if (g == nullptr) return;
  goid_ = g->goid;
  name_.assign(name.substr(0, 200));
  start_ = trace_now();
}

Region::~Region() {
  using namespace detail;
  if (start_ == 0 || !trace_on) return;
  const std::int64_t now = trace_now();
  trace_emit(TraceKind::region, goid_, -1, 0, 0, 0, nullptr, start_, now - start_, name_);
}

}  // namespace goro::trace
