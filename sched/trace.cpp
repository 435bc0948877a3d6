// trace.cpp — the GORO_TRACE writer. See trace.hpp.
#include "sched/trace.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace goro::detail {

bool trace_on = false;

void trace_add(TraceBuf* b, const TraceEvent& e) {
  if (b->ev.size() >= traceMaxEvents) {
    b->truncated = true;
    return;
  }
  b->ev.push_back(e);
}

namespace {

// Chrome's trace format counts microseconds; keep nanosecond precision in
// the fraction.
void put_us(std::FILE* f, std::int64_t ns) {
  std::fprintf(f, "%lld.%03lld", static_cast<long long>(ns / 1000), static_cast<long long>(ns % 1000));
}

}  // namespace

bool trace_write(const std::string& path, const std::vector<TraceBuf*>& bufs, std::int64_t t0) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "goro: GORO_TRACE=%s: cannot write the trace: %s\n", path.c_str(),
                 std::strerror(errno));
    return false;
  }
  // Two processes in the viewer: "Ms (threads)" with a track per M, and
  // "Ps (processors)" with a track per P.
  std::fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n", f);
  std::fputs("{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"Ms (threads)\"}},\n", f);
  std::fputs("{\"ph\":\"M\",\"pid\":2,\"name\":\"process_name\",\"args\":{\"name\":\"Ps (processors)\"}}", f);
  std::vector<bool> pseen;
  bool truncated = false;
  for (TraceBuf* b : bufs) {
    truncated |= b->truncated;
    std::fprintf(f, ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":%lld,\"name\":\"thread_name\",\"args\":{\"name\":\"%s%lld\"}}",
                 static_cast<long long>(b->mid), b->mid < 0 ? "sysmon" : "M",
                 static_cast<long long>(b->mid < 0 ? 0 : b->mid));
    for (const TraceEvent& e : b->ev) {
      if (e.pid >= 0 && static_cast<std::size_t>(e.pid) >= pseen.size())
        pseen.resize(static_cast<std::size_t>(e.pid) + 1);
      if (e.pid >= 0) pseen[static_cast<std::size_t>(e.pid)] = true;
      if (e.dur > 0) {
        for (int track = 0; track < (e.pid >= 0 ? 2 : 1); track++) {
          std::fprintf(f, ",\n{\"ph\":\"X\",\"name\":\"G%llu\",\"pid\":%d,\"tid\":%lld,\"ts\":",
                       static_cast<unsigned long long>(e.goid), track == 0 ? 1 : 2,
                       static_cast<long long>(track == 0 ? b->mid : e.pid));
          put_us(f, e.ts - t0);
          std::fputs(",\"dur\":", f);
          put_us(f, e.dur);
          std::fprintf(f, ",\"args\":{\"goid\":%llu,\"stopped\":\"%s\"}}",
                       static_cast<unsigned long long>(e.goid), e.what);
        }
      } else {
        std::fprintf(f, ",\n{\"ph\":\"i\",\"s\":\"t\",\"name\":\"%s\",\"pid\":1,\"tid\":%lld,\"ts\":", e.what,
                     static_cast<long long>(b->mid));
        put_us(f, e.ts - t0);
        std::fprintf(f, ",\"args\":{\"goid\":%llu,\"arg\":%llu}}", static_cast<unsigned long long>(e.goid),
                     static_cast<unsigned long long>(e.arg));
      }
    }
  }
  for (std::size_t p = 0; p < pseen.size(); p++) {
    if (pseen[p])
      std::fprintf(f, ",\n{\"ph\":\"M\",\"pid\":2,\"tid\":%zu,\"name\":\"thread_name\",\"args\":{\"name\":\"P%zu\"}}", p, p);
  }
  std::fprintf(f, "\n],\"otherData\":{\"producer\":\"goro\",\"truncated\":%s}}\n",
               truncated ? "true" : "false");
  const bool ok = std::fclose(f) == 0;
  if (truncated)
    std::fprintf(stderr, "goro: GORO_TRACE: an M passed %zu events; the trace is truncated\n",
                 traceMaxEvents);
  return ok;
}

}  // namespace goro::detail
