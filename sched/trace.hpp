// trace.hpp — the execution tracer behind GORO_TRACE=FILE (Go's
// runtime/trace, written as Chrome trace-event JSON so that Perfetto or
// chrome://tracing opens it directly).
//
// What it records: every stretch of time a goroutine ran, as a slice on the
// track of the M that ran it and on the track of the P it ran on, named after
// the goroutine and labelled with why it stopped (the wait reason, "yield",
// "preempted", "exit", "syscall"); and instant events for go() (with the
// parent), stop-the-world, and sysmon's handoffs of Ps blocked in system
// calls. Seeing a burst of goroutines fan out over the P tracks is the
// clearest picture of work stealing there is.
//
// Cost: off, one predictable branch per schedule; on, two clock reads and an
// append to the running M's own buffer (no locks, no atomics). Buffers are
// merged and written when run() ends. Each M keeps at most traceMaxEvents
// events; past that the trace is truncated and says so.
//
// Invariants: an M's buffer is written only by that M (on g0), or by
// sysmon's own buffer; they are read only after every M has been joined.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace goro::detail {

struct TraceEvent {
  std::int64_t ts;       // start, nanotime()
  std::int64_t dur;      // 0 for instant events
  std::uint64_t goid;
  std::uint64_t arg;     // parent goid (go), P id (slices)
  std::int32_t pid;      // P the slice ran on (-1: none)
  const char* what;      // static string: the stop reason or the event name
};

struct TraceBuf {
  std::vector<TraceEvent> ev;
  std::int64_t mid = 0;
  bool truncated = false;
};

inline constexpr std::size_t traceMaxEvents = 1 << 21;

extern bool trace_on;  // set once at start-up, read-only afterwards

void trace_add(TraceBuf* b, const TraceEvent& e);
// trace_write writes every buffer as one JSON file; returns false (and
// prints why to stderr) if it cannot.
bool trace_write(const std::string& path, const std::vector<TraceBuf*>& bufs, std::int64_t t0);

}  // namespace goro::detail
