// trace.cpp — the GORO_TRACE writer: per-M record buffers, formatted into
// Chrome trace-event JSON when full, at the end, or when the program dies.
// See trace.hpp for the design and the invariants.
#include "sched/trace.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "sched/nanotime.hpp"
#include "sched/proc.hpp"

namespace goro::detail {

bool trace_on = false;
bool pooltrace_on = false;
bool pool_events = false;

namespace {

// Track layout in the JSON: process 1 holds one thread per M, process 2 one
// per P, process 3 the runtime-wide GC and stop-the-world tracks and the
// counters, process 4 one track per goroutine that opened a Region.
constexpr int pidM = 1, pidP = 2, pidRuntime = 3, pidRegions = 4;
constexpr int tidGC = 1, tidSTW = 2;
constexpr std::int64_t tidSysmon = 99999, tidOther = 99998;

// The writer: the file, the text being assembled, the list of buffers. All
// under mu (rank tracewriter, sched/lockrank.hpp: a leaf, since events are
// emitted with any other runtime lock held).
struct Writer {
  Lock mu{LockRank::tracewriter};
  int fd = -1;
  bool closed = true;
  std::int64_t t0 = 0;
  TraceBuf* bufs = nullptr;
  std::string out;
  std::atomic<std::uint64_t> flows{0};
};
Writer w;

thread_local TraceBuf* tls_buf = nullptr;

// Where format() writes: the writer's text (under w.mu), or the flushing
// M's own text, formatted outside the lock and then written under it.
thread_local std::string* tls_out = nullptr;
std::string& O() { return tls_out != nullptr ? *tls_out : w.out; }

void drain() {
  std::size_t off = 0;
  while (off < w.out.size()) {
    const ssize_t n = ::write(w.fd, w.out.data() + off, w.out.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // disk full: drop the rest rather than spin
    off += static_cast<std::size_t>(n);
  }
  w.out.clear();
}

void put(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void put(const char* fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (static_cast<std::size_t>(n) >= sizeof tmp) n = sizeof tmp - 1;
  O().append(tmp, static_cast<std::size_t>(n));
  if (tls_out == nullptr && w.out.size() >= (1u << 19)) drain();
}

// The hot events (slices, unblocks, flows) skip printf: lit, num and us
// append directly.
void lit(std::string_view s) { O().append(s); }
void num(std::int64_t v) {
  char b[24];
  auto [end, ec] = std::to_chars(b, b + sizeof b, v);
  (void)ec;
  O().append(b, static_cast<std::size_t>(end - b));
}
void us(std::int64_t ns) {
  if (ns < 0) ns = 0;
  num(ns / 1000);
  const auto f = static_cast<int>(ns % 1000);
  const char d[4] = {'.', static_cast<char>('0' + f / 100), static_cast<char>('0' + f / 10 % 10),
                     static_cast<char>('0' + f % 10)};
  O().append(d, 4);
}

// esc appends s as the body of a JSON string.
void esc(const char* s, std::size_t n) {
  std::string& out = O();
  for (std::size_t i = 0; i < n; i++) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char u[8];
      std::snprintf(u, sizeof u, "\\u%04x", c);
      out.append(u);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
}
void esc(const char* s) {
  if (s != nullptr) esc(s, std::strlen(s));
}

// ts prints a time in microseconds (the format's unit), keeping nanoseconds.
struct Us {
  char b[32];
  explicit Us(std::int64_t ns) {
    if (ns < 0) ns = 0;
    std::snprintf(b, sizeof b, "%lld.%03lld", static_cast<long long>(ns / 1000),
                  static_cast<long long>(ns % 1000));
  }
};

using ll = long long;
using ull = unsigned long long;

std::int64_t tid_of(const TraceBuf* b) {
  if (b == nullptr) return tidOther;
  return b->mid < 0 ? tidSysmon : b->mid;
}

// instant writes an "i" event on the M's track with the common args open;
// the caller appends more args and closes with "}}".
void instant(const char* name, std::int64_t tid, const TraceRec& r) {
  put(R"({"ph":"i","s":"t","name":"%s","pid":%d,"tid":%lld,"ts":%s,"args":{"g":%llu,"p":%d)", name,
      pidM, static_cast<ll>(tid), Us(r.ts - w.t0).b, static_cast<ull>(r.g), r.p);
}

// format writes one record (and its inline string) as JSON lines.
void format(const TraceRec& r, const char* str, std::int64_t tid) {
  const std::string_view inl(str != nullptr ? str : "", r.slen);
  switch (r.kind) {
    case TraceKind::slice: {
      static const char* const cats[] = {"other",  "preempted", "yield",   "chan send", "chan recv",
                                         "select", "sync",      "sleep",   "network",   "GC",
                                         "syscall", "exit"};
      const char* cat = r.a >= 0 && r.a < 12 ? cats[r.a] : "other";
      // On the P's track only (the M is an argument: goro-trace draws the
      // M lanes from it), which keeps the file a third smaller.
      const bool onp = r.p >= 0;
      lit(R"({"ph":"X","name":"G)");
      num(static_cast<std::int64_t>(r.g));
      lit(R"(","cat":")");
      lit(cat);
      lit(onp ? R"(","pid":2,"tid":)" : R"(","pid":1,"tid":)");
      num(onp ? r.p : tid);
      lit(R"(,"ts":)");
      us(r.ts - w.t0);
      lit(R"(,"dur":)");
      us(r.dur);
      lit(R"(,"args":{"g":)");
      num(static_cast<std::int64_t>(r.g));
      lit(R"(,"m":)");
      num(tid);
      lit(R"(,"stopped":")");
      esc(r.s);
      lit(R"(","wokenBy":)");
      num(r.b);
      lit("}},\n");
      if (r.c != 0) {
        lit(R"({"ph":"f","bp":"e","name":"wakeup","cat":"flow","id":)");
        num(r.c);
        lit(onp ? R"(,"pid":2,"tid":)" : R"(,"pid":1,"tid":)");
        num(onp ? r.p : tid);
        lit(R"(,"ts":)");
        us(r.ts - w.t0);
        lit("},\n");
      }
      return;
    }
    case TraceKind::go_create:
      instant("GoCreate", tid, r);
      put(R"(,"parent":%lld,"at":")", static_cast<ll>(r.a));
      esc(r.s);
      if (r.b > 0) put(":%lld", static_cast<ll>(r.b));
      put("\"}},\n");
      return;
    case TraceKind::unblock:
      lit(R"({"ph":"i","s":"t","name":"GoUnblock","pid":1,"tid":)");
      num(tid);
      lit(R"(,"ts":)");
      us(r.ts - w.t0);
      lit(R"(,"args":{"g":)");
      num(static_cast<std::int64_t>(r.g));
      lit(R"(,"p":)");
      num(r.p);
      lit(R"(,"by":)");
      num(r.a);
      lit("}},\n");
      // The flow starts in the readier's slice: on its P's track.
      lit(R"({"ph":"s","name":"wakeup","cat":"flow","id":)");
      num(r.b);
      lit(r.p >= 0 ? R"(,"pid":2,"tid":)" : R"(,"pid":1,"tid":)");
      num(r.p >= 0 ? r.p : tid);
      lit(R"(,"ts":)");
      us(r.ts - w.t0);
      lit("},\n");
      return;
    case TraceKind::syscall:
      put(R"({"ph":"X","name":"syscall","cat":"syscall","pid":%d,"tid":%lld,"ts":%s,"dur":%s,)"
          R"("args":{"g":%llu,"p":%d,"handoff":%lld}},)"
          "\n",
          pidM, static_cast<ll>(tid), Us(r.ts - w.t0).b, Us(r.dur).b, static_cast<ull>(r.g),
          r.p, static_cast<ll>(r.a));
      return;
    case TraceKind::proc_start: instant("ProcStart", tid, r); break;
    case TraceKind::proc_stop: instant("ProcStop", tid, r); break;
    case TraceKind::steal:
      instant("Steal", tid, r);
      put(R"(,"n":%lld,"victim":%lld,"runnext":%lld)", static_cast<ll>(r.a), static_cast<ll>(r.b),
          static_cast<ll>(r.c));
      break;
    case TraceKind::globrunq:
      instant("GlobalRunqGet", tid, r);
      put(R"(,"n":%lld,"fairness61":%lld)", static_cast<ll>(r.a), static_cast<ll>(r.b));
      break;
    case TraceKind::spinning:
      instant("SpinningOn", tid, r);
      put(R"(,"nmspinning":%lld)", static_cast<ll>(r.a));
      break;
    case TraceKind::spinning_off:
      instant("SpinningOff", tid, r);
      put(R"(,"nmspinning":%lld)", static_cast<ll>(r.a));
      break;
    case TraceKind::wakep: instant("Wakep", tid, r); break;
    case TraceKind::startm:
      instant("Startm", tid, r);
      put(R"(,"m":%lld,"newThread":%lld,"spinning":%lld)", static_cast<ll>(r.a), static_cast<ll>(r.b),
          static_cast<ll>(r.c));
      break;
    case TraceKind::stopm: instant("Stopm", tid, r); break;
    case TraceKind::handoffp:
      instant("Handoffp", tid, r);
      put(R"(,"toM":%lld)", static_cast<ll>(r.a));
      break;
    case TraceKind::stw:
      put(R"({"ph":"X","name":"STW: )");
      esc(r.s);
      put(R"(","cat":"stw","pid":%d,"tid":%d,"ts":%s,"dur":%s,"args":{"reason":")", pidRuntime, tidSTW,
          Us(r.ts - w.t0).b, Us(r.dur).b);
      esc(r.s);
      put(R"(","g":%llu,"m":%lld}},)"
          "\n",
          static_cast<ull>(r.g), static_cast<ll>(tid));
      return;
    case TraceKind::gc_phase:
      put(R"({"ph":"X","name":")");
      esc(r.s);
      put(R"(","cat":"gc","pid":%d,"tid":%d,"ts":%s,"dur":%s,"args":{"g":%llu,"cycle":%lld}},)"
          "\n",
          pidRuntime, tidGC, Us(r.ts - w.t0).b, Us(r.dur).b, static_cast<ull>(r.g),
          static_cast<ll>(r.a));
      return;
    case TraceKind::counter:
      put(R"({"ph":"C","name":"%s","pid":%d,"ts":%s,"args":{"%s":%lld}},)"
          "\n",
          r.s, pidRuntime, Us(r.ts - w.t0).b, r.s, static_cast<ll>(r.a));
      return;
    case TraceKind::log:
    {
      // Inline: category, NUL, message.
      const std::size_t nul = inl.find('\0');
      const std::string_view cat = inl.substr(0, nul);
      const std::string_view msg = nul == std::string_view::npos ? std::string_view{} : inl.substr(nul + 1);
      instant("Log", tid, r);
      put(R"(,"category":")");
      esc(cat.data(), cat.size());
      put(R"(","message":")");
      esc(msg.data(), msg.size());
      put("\"}},\n");
      return;
    }
    case TraceKind::region:
      put(R"({"ph":"X","name":")");
      esc(inl.data(), inl.size());
      put(R"(","cat":"region","pid":%d,"tid":%llu,"ts":%s,"dur":%s,"args":{"g":%llu}},)"
          "\n",
          pidRegions, static_cast<ull>(r.g), Us(r.ts - w.t0).b, Us(r.dur).b,
          static_cast<ull>(r.g));
      return;
    case TraceKind::pool_get:
      instant("PoolGet", tid, r);
      put(R"(,"pool":%lld,"from":"%s","victimP":%lld)", static_cast<ll>(r.a), r.s, static_cast<ll>(r.b));
      break;
    case TraceKind::pool_cleanup:
      instant("PoolCleanup", tid, r);
      put(R"(,"allPools":%lld,"oldPools":%lld,"movedToVictim":%lld,"dropped":%lld)", static_cast<ll>(r.a),
          static_cast<ll>(r.b), static_cast<ll>(r.c), static_cast<ll>(r.dur));
      break;
    case TraceKind::netpoll:
      instant("NetpollReady", tid, r);
      put(R"(,"ready":%lld)", static_cast<ll>(r.a));
      break;
    case TraceKind::sysmon:
      instant(r.s != nullptr ? r.s : "sysmon", tid, r);
      break;
    case TraceKind::p_name:
      put(R"({"ph":"M","pid":%d,"tid":%d,"name":"thread_name","args":{"name":"P%d"}},)"
          "\n",
          pidP, r.p, r.p);
      put(R"({"ph":"M","pid":%d,"tid":%d,"name":"thread_sort_index","args":{"sort_index":%d}},)"
          "\n",
          pidP, r.p, r.p);
      return;
    case TraceKind::text: return;
  }
  put("}},\n");
}

// flush_locked formats b's published records (w.mu held) and, unless the
// program is dying (its owner may be appending right now), empties it.
void flush_locked(TraceBuf* b, bool reset = true) {
  const std::uint32_t n = b->len.load(std::memory_order_acquire);
  const std::int64_t tid = tid_of(b);
  if (!w.closed) {
    for (std::uint32_t i = 0; i < n; i++) {
      const TraceRec& r = b->rec[i];
      const char* str = r.slen > 0 ? reinterpret_cast<const char*>(&b->rec[i + 1]) : nullptr;
      format(r, str, tid);
      if (r.slen > 0) i += (r.slen + sizeof(TraceRec) - 1) / sizeof(TraceRec);
    }
  }
  if (reset) b->len.store(0, std::memory_order_release);
}

// flush_own: the owner formats its full buffer outside the lock (other Ms
// keep flushing meanwhile), then writes it and empties the buffer under the
// lock. If the crash path closed the file in between, it has already
// written these records: the text is dropped.
void flush_own(TraceBuf* b) {
  thread_local std::string text;
  text.clear();
  const std::uint32_t n = b->len.load(std::memory_order_relaxed);
  const std::int64_t tid = tid_of(b);
  tls_out = &text;
  for (std::uint32_t i = 0; i < n; i++) {
    const TraceRec& r = b->rec[i];
    const char* str = r.slen > 0 ? reinterpret_cast<const char*>(&b->rec[i + 1]) : nullptr;
    format(r, str, tid);
    if (r.slen > 0) i += (r.slen + sizeof(TraceRec) - 1) / sizeof(TraceRec);
  }
  tls_out = nullptr;
  std::lock_guard<Lock> lk(w.mu);
  if (!w.closed) {
    drain();  // keep the writer's own text ahead
    w.out.swap(text);
    drain();
    w.out.swap(text);
  }
  b->len.store(0, std::memory_order_release);
}

void header() {
  put("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"goro\",\"version\":1},\"traceEvents\":[\n");
  const struct {
    int pid;
    const char* name;
  } procs[] = {{pidM, "Ms (threads)"}, {pidP, "Ps (processors)"}, {pidRuntime, "Runtime"},
               {pidRegions, "Goroutine regions"}};
  for (const auto& p : procs) {
    put(R"({"ph":"M","pid":%d,"name":"process_name","args":{"name":"%s"}},)"
        "\n",
        p.pid, p.name);
    put(R"({"ph":"M","pid":%d,"name":"process_sort_index","args":{"sort_index":%d}},)"
        "\n",
        p.pid, p.pid == pidP ? 0 : p.pid);
  }
  put(R"({"ph":"M","pid":%d,"tid":%d,"name":"thread_name","args":{"name":"GC"}},)"
      "\n",
      pidRuntime, tidGC);
  put(R"({"ph":"M","pid":%d,"tid":%d,"name":"thread_name","args":{"name":"STW"}},)"
      "\n",
      pidRuntime, tidSTW);
  put(R"({"ph":"M","pid":%d,"tid":%lld,"name":"thread_name","args":{"name":"sysmon"}},)"
      "\n",
      pidM, static_cast<ll>(tidSysmon));
}

void footer(const char* why) {
  put(R"({"ph":"M","pid":%d,"name":"trace_end","args":{"complete":%s,"why":")", pidRuntime,
      why == nullptr ? "true" : "false");
  esc(why == nullptr ? "run() returned" : why);
  put("\"}}\n]}\n");
  drain();
  ::close(w.fd);
  w.fd = -1;
  w.closed = true;
}

}  // namespace

bool trace_start(const char* path, std::int64_t t0) {
  std::lock_guard<Lock> lk(w.mu);
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "goro: GORO_TRACE=%s: cannot write the trace: %s\n", path, std::strerror(errno));
    return false;
  }
  w.fd = fd;
  w.closed = false;
  w.t0 = t0;
  w.bufs = nullptr;
  w.out.clear();
  w.out.reserve(1u << 20);
  w.flows.store(0, std::memory_order_relaxed);
  header();
  return true;
}

TraceBuf* trace_newbuf(std::int64_t mid) {
  auto* b = new TraceBuf();
  b->mid = mid;
  std::lock_guard<Lock> lk(w.mu);
  b->next = w.bufs;
  w.bufs = b;
  if (!w.closed && mid >= 0)
    put(R"({"ph":"M","pid":%d,"tid":%lld,"name":"thread_name","args":{"name":"M%lld"}},)"
        "\n",
        pidM, static_cast<ll>(mid), static_cast<ll>(mid));
  return b;
}

void trace_bind(TraceBuf* b) { tls_buf = b; }

void trace_stop() {
  std::lock_guard<Lock> lk(w.mu);
  for (TraceBuf* b = w.bufs; b != nullptr; b = b->next) flush_locked(b);
  if (!w.closed) footer(nullptr);
  while (TraceBuf* b = w.bufs) {
    w.bufs = b->next;
    delete b;
  }
  tls_buf = nullptr;
}

void trace_crash(const char* why) {
  if (!trace_on) return;
  // The dying thread may hold the lock (it died inside a flush): wait a
  // little, then write anyway — a torn line beats an unterminated file.
  bool locked = false;
  for (int i = 0; i < 2000 && !(locked = w.mu.try_lock()); i++) usleep(100);
  if (!w.closed) {
    for (TraceBuf* b = w.bufs; b != nullptr; b = b->next) flush_locked(b, false);
    footer(why);
  }
  if (locked) w.mu.unlock();
}

std::int64_t trace_now() { return nanotime(); }

std::uint64_t trace_newflow() { return w.flows.fetch_add(1, std::memory_order_relaxed) + 1; }

void trace_emit(TraceKind k, std::uint64_t g, std::int32_t p, std::int64_t a, std::int64_t b, std::int64_t c,
                const char* s, std::int64_t ts, std::int64_t dur, std::string_view inline_str) {
  TraceRec r{ts != 0 ? ts : nanotime(), dur, g, a, b, c, s, p, k, 0};
  const std::size_t slen = inline_str.size() > 255 ? 255 : inline_str.size();
  r.slen = static_cast<std::uint16_t>(slen);
  const std::uint32_t need = 1 + static_cast<std::uint32_t>((slen + sizeof(TraceRec) - 1) / sizeof(TraceRec));
  TraceBuf* buf = tls_buf;
  if (buf == nullptr) {
    // A thread without a buffer (a GC helper, a foreign thread): straight
    // to the file.
    std::lock_guard<Lock> lk(w.mu);
    if (!w.closed) format(r, inline_str.data(), tidOther);
    return;
  }
  // acquire: trace_stop/flush under the lock may have emptied it.
  std::uint32_t n = buf->len.load(std::memory_order_acquire);
  if (n + need > traceBufRecs) {
    flush_own(buf);
    n = 0;
  }
  buf->rec[n] = r;
  if (slen > 0) std::memcpy(&buf->rec[n + 1], inline_str.data(), slen);
  buf->len.store(n + need, std::memory_order_release);
}

void trace_counters() {
  Runtime* r = rt();
  if (r == nullptr) return;
  std::int64_t n = r->allglen.load(std::memory_order_relaxed) -
                   r->sched.gFreeCount.load(std::memory_order_relaxed) -
                   r->sched.ngsys.load(std::memory_order_relaxed);
  const int procs = r->gomaxprocs.load(std::memory_order_relaxed);
  for (int i = 0; i < procs; i++)
    if (P* p = r->allp[i].load(std::memory_order_relaxed))
      n -= p->gFreeCount.load(std::memory_order_relaxed);
  trace_emit(TraceKind::counter, 0, -1, n < 0 ? 0 : n, 0, 0, "goroutines");
}

}  // namespace goro::detail
