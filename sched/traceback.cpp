// traceback.cpp — goroutine dumps, fatal errors and panics (Go's
// traceback.go and panic.go, the parts that print).
//
// Go's formats, kept exactly where they carry over:
//   panic: <message>
//
//   goroutine 7 [running]:
//   created by <function> in goroutine 1
//   	<file>:<line>
//
// and "fatal error: <message>" for the runtime's own unrecoverable errors.
// Both exit with status 2. goro has no symbolic stack walk of a parked C++
// stack; where Go prints frames, goro prints where the goroutine was created
// (go()'s std::source_location), which is what one needs to find it.
//
// These run when things have gone wrong, possibly in a signal handler: they
// write with write(2) from stack buffers and take allglock only with
// try_lock.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sched/nanotime.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"

namespace goro::detail {

const char* gstatus_name(Gstatus s) {
  switch (s) {
    case Gstatus::idle: return "idle";
    case Gstatus::runnable: return "runnable";
    case Gstatus::running: return "running";
    case Gstatus::syscall: return "syscall";
    case Gstatus::waiting: return "waiting";
    case Gstatus::dead: return "dead";
  }
  return "???";
}

const char* pstatus_name(Pstatus s) {
  switch (s) {
    case Pstatus::idle: return "idle";
    case Pstatus::running: return "running";
    case Pstatus::syscall: return "syscall";
    case Pstatus::gcstop: return "gcstop";
    case Pstatus::dead: return "dead";
  }
  return "???";
}

const char* wait_reason_string(WaitReason r) {
  switch (r) {
    case WaitReason::zero: return "";
    case WaitReason::chan_receive: return "chan receive";
    case WaitReason::chan_send: return "chan send";
    case WaitReason::chan_receive_nil: return "chan receive (nil chan)";
    case WaitReason::chan_send_nil: return "chan send (nil chan)";
    case WaitReason::select: return "select";
    case WaitReason::select_no_cases: return "select (no cases)";
    case WaitReason::sleep: return "sleep";
    case WaitReason::semacquire: return "semacquire";
    case WaitReason::sync_mutex_lock: return "sync.Mutex.Lock";
    case WaitReason::sync_rwmutex_lock: return "sync.RWMutex.Lock";
    case WaitReason::sync_rwmutex_rlock: return "sync.RWMutex.RLock";
    case WaitReason::sync_cond_wait: return "sync.Cond.Wait";
    case WaitReason::wait_group_wait: return "sync.WaitGroup.Wait";
    case WaitReason::gc_finalizer_wait: return "finalizer wait";
    case WaitReason::gc_sweep_wait: return "GC sweep wait";
    case WaitReason::force_gc_idle: return "force gc (idle)";
    case WaitReason::gc_stop_the_world: return "stop the world";
    case WaitReason::preempted: return "preempted";
    case WaitReason::timer_goroutine_idle: return "timer goroutine (idle)";
    case WaitReason::debug_call: return "debug call";
    case WaitReason::io_wait: return "IO wait";
  }
  return "???";
}

namespace {

void put(int fd, const char* s, std::size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

void put(int fd, const char* s) { put(fd, s, std::strlen(s)); }

// dump_one reads a goroutine's fields while its owner may be changing them:
// the dump is a best-effort picture of a dying process, as Go's traceback of
// other goroutines is, so it is exempt from ThreadSanitizer.
GORO_NO_TSAN void dump_one(int fd, G* g, G* self, std::int64_t now) {
  const Gstatus st = g->status.load(std::memory_order_relaxed);
  if (st == Gstatus::dead || st == Gstatus::idle) return;
  char state[96];
  if (g == self) {
    std::snprintf(state, sizeof state, "running");
  } else if (st == Gstatus::waiting) {
    const std::int64_t mins = g->waitsince != 0 ? (now - g->waitsince) / 60000000000LL : 0;
    if (mins >= 1)
      std::snprintf(state, sizeof state, "%s, %lld minutes", wait_reason_string(g->waitreason),
                    static_cast<long long>(mins));
    else
      std::snprintf(state, sizeof state, "%s", wait_reason_string(g->waitreason));
  } else {
    std::snprintf(state, sizeof state, "%s", gstatus_name(st));
  }
  char buf[1024];
  int n = std::snprintf(buf, sizeof buf, "goroutine %llu [%s]:\n",
                        static_cast<unsigned long long>(g->goid), state);
  put(fd, buf, static_cast<std::size_t>(n));
  Runtime* r = rt();
  if (r != nullptr && g == r->main_g) {
    n = std::snprintf(buf, sizeof buf, "main goroutine (goro::run)\n\n");
  } else {
    n = std::snprintf(buf, sizeof buf, "created by %s in goroutine %llu\n\t%s:%u\n\n",
                      g->created_by.function_name(),
                      static_cast<unsigned long long>(g->parent_goid), g->created_by.file_name(),
                      static_cast<unsigned>(g->created_by.line()));
  }
  put(fd, buf, static_cast<std::size_t>(n > 0 && static_cast<std::size_t>(n) < sizeof buf ? n : sizeof buf - 1));
}

std::atomic<bool> dying{false};

}  // namespace

void dump_goroutines(int fd, G* self) {
  Runtime* r = rt();
  if (r == nullptr) return;
  const std::int64_t now = nanotime();
  if (self != nullptr) dump_one(fd, self, self, now);
  // The dying thread may hold allglock (checkdead does not, but a fault
  // could strike anywhere): never wait for it.
  bool locked = false;
  for (int i = 0; i < 1000 && !(locked = r->allglock.try_lock()); i++) usleep(100);
  for (G* g = r->allgs; g != nullptr; g = g->alllink)
    if (g != self) dump_one(fd, g, self, now);
  if (locked) r->allglock.unlock();
}

void fatal(const char* msg) {
  if (dying.exchange(true)) {
    // A second fatal error while printing the first: stop here.
    put(2, "fatal error: ");
    put(2, msg);
    put(2, " (while dying)\n");
    _exit(2);
  }
  put(2, "fatal error: ");
  put(2, msg);
  put(2, "\n\n");
  dump_goroutines(2, getg());
  trace_crash("fatal error");
  _exit(2);
}

void fatal_panic(G* g, const char* what) {
  if (dying.exchange(true)) _exit(2);
  put(2, "panic: ");
  put(2, what);
  put(2, "\n\n");
  dump_goroutines(2, g);
  trace_crash("panic");
  _exit(2);
}

void reset_dying() { dying.store(false); }

}  // namespace goro::detail
