// trace.hpp — the execution tracer behind GORO_TRACE=FILE (Go's
// runtime/trace, written as Chrome trace-event JSON so that Perfetto,
// chrome://tracing or goro's own viewer, goro-trace, open it directly).
//
// What it records, in Go's tracer vocabulary (docs/trace.md lists every
// event and its arguments):
//   - goroutines: create (GoCreate, with the creator and file:line), each run
//     slice (GoStart..GoStop as one "X" slice on the P's track, the M in its
//     args, named G<id>, with why it stopped: preempted, yield, chan send,
//     chan recv, select, sync, sleep, network, GC, syscall, exit) and unblock
//     (GoUnblock, with a flow arrow from the readier's slice to the readied
//     goroutine's next slice);
//   - system calls (a slice on the M), hand-offs of Ps left in them;
//   - Ps and Ms: P start/stop, steals (thief, victim, how many, runnext),
//     global-queue takes (the 1-in-61 fairness check marked), spinning
//     on/off, wakep, startm, stopm, handoffp;
//   - stop-the-world slices with their reason, GC phases (sweep termination,
//     cleanup hooks, mark) and counters (goroutines, heap live, heap goal,
//     threads); Pool events when GORO_DEBUG=pooltrace=1;
//   - user annotations (goro::trace::log, goro::trace::Region).
//
// How it is written: as Go's tracer does, each M appends fixed-size binary
// records to its own buffer (no lock, no atomic read-modify-write: one
// release store of the length), and when the buffer is full the M formats
// it into the file under the writer's lock. Memory is therefore bounded
// (one buffer per M) however long the program runs. Threads without an M
// (sysmon has its own buffer; a mark helper has none) write through the
// lock directly.
//
// A program that dies: fatal(), a goroutine's panic and SIGQUIT call
// trace_crash(), which flushes every M's buffer up to its published length
// and closes the JSON, so the file always parses. (Records below the
// published length are never rewritten except under the writer's lock,
// which the crash path holds: it can read them while their owners run on.)
//
// Cost: off, one predictable branch at each site (`if (trace_on)`); on, a
// clock read and a 64-byte store per event, plus the formatting at flush.
//
// Invariants:
//   - a TraceBuf's records [0, len) are complete; only its owner thread
//     appends, and only a holder of the writer lock reads them or resets len;
//   - the file is a JSON object whose "traceEvents" array every line but the
//     last ends with ",": closing it is appending one event and "]}".
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace goro::detail {

// Event kinds; trace.cpp's table gives each its JSON name and argument names.
enum class TraceKind : std::uint16_t {
  slice,        // a goroutine ran: ts, dur, g, p; s = stop detail; a = category, b = waker, c = wakeup flow id
  go_create,    // g created by goid a at s:b
  unblock,      // g made runnable by goid a; flow id b
  syscall,      // g in a system call on this M: ts, dur; a = 1 if its P was handed off meanwhile
  proc_start,   // this M took P p
  proc_stop,    // this M let P p go
  steal,        // P p (thief) took a Gs from P b, c = 1 if it took runnext
  globrunq,     // P p took a Gs from the global queue; b = 1: the 1-in-61 fairness check
  spinning,     // this M starts spinning (a = nmspinning after)
  spinning_off, // this M stops spinning (a = nmspinning after)
  wakep,        // woke a spinning M for new work
  startm,       // gave P p to M a (a new thread when b = 1), spinning c
  stopm,        // this M goes to sleep
  handoffp,     // handed P p away (a = 1: to an M, it had work)
  stw,          // stop-the-world slice, reason s
  gc_phase,     // GC phase slice s (sweep termination, cleanup hooks, mark)
  counter,      // counter s = a
  log,          // user log: category s, message inline
  region,       // user region slice: name inline, on the goroutine's track
  pool_get,     // Pool.Get of pool a served by s (b = victim P for steals)
  pool_cleanup, // poolCleanup: a allPools, b oldPools, c moved to victim, dur = dropped
  netpoll,      // the netpoller readied a goroutines
  sysmon,       // a sysmon action s on P p (goroutine g)
  p_name,       // metadata: P p exists
  text,         // continuation record holding inline string bytes
};

struct TraceRec {
  std::int64_t ts;
  std::int64_t dur;
  std::uint64_t g;
  std::int64_t a, b, c;
  const char* s;          // a static string (or nullptr)
  std::int32_t p;
  TraceKind kind;
  std::uint16_t slen;     // inline string bytes in the following text records
};
static_assert(sizeof(TraceRec) == 64);

inline constexpr std::uint32_t traceBufRecs = 2048;  // 128 KiB per M

struct TraceBuf {
  std::atomic<std::uint32_t> len{0};
  std::int64_t mid = 0;   // the M id (-1: sysmon)
  TraceBuf* next = nullptr;  // the writer's list of every buffer
  TraceRec rec[traceBufRecs];
};

extern bool trace_on;  // set once at start-up, read-only afterwards
// GORO_DEBUG=pooltrace=1: stderr lines, and Pool events in the trace when it
// is on too; pool_events selects the Pool's logged Get. Set at start-up.
extern bool pooltrace_on;
extern bool pool_events;

// Lifecycle (proc_main.cpp, idle.cpp, sysmon.cpp).
bool trace_start(const char* path, std::int64_t t0);  // false: could not open (printed)
void trace_stop();                   // every thread joined: flush everything, close
void trace_crash(const char* why);   // dying: flush what is published, close
TraceBuf* trace_newbuf(std::int64_t mid);  // register a buffer for M mid
void trace_bind(TraceBuf* b);        // the calling thread's buffer (nullptr: none)

// Emit one record from the calling thread; ts = 0 means now. inline_str
// (at most 255 bytes are kept) is copied into the buffer.
void trace_emit(TraceKind k, std::uint64_t g, std::int32_t p, std::int64_t a = 0, std::int64_t b = 0,
                std::int64_t c = 0, const char* s = nullptr, std::int64_t ts = 0, std::int64_t dur = 0,
                std::string_view inline_str = {});
std::int64_t trace_now();
std::uint64_t trace_newflow();

// The goroutine counter (a cheap, racy sum, as num_goroutine). Threads are
// counted by newm, heap live and goal by the collector.
void trace_counters();

// For the netpoller (issue 11): call with trace_on set when netpoll made n
// goroutines runnable; a goroutine parked on network I/O should use a wait
// reason whose string is Go's "IO wait" so its stop shows as "network".
inline void trace_netpoll_ready(int n) {
  if (trace_on) trace_emit(TraceKind::netpoll, 0, -1, n);
}

}  // namespace goro::detail
