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
// The dump lists goroutines in Go's order: the current (or panicking) one
// first, then the others by id. How much a panic prints is GOTRACEBACK's
// choice, as in Go: only the panicking goroutine (single, the default),
// every goroutine (all), or no stacks (none). A fatal error and SIGQUIT
// always print every goroutine.
//
// These run when things have gone wrong, possibly in a signal handler: they
// write with write(2) from stack buffers, sort the dump in an mmap'd array
// (no malloc), and take allglock only with try_lock. Before exiting they
// flush stdout and the C++ streams, so a program's printed output is not lost
// when stdout is a file or a pipe (Go's os.Stdout is unbuffered; C's is not) —
// but only a stream whose lock they can take within a bounded wait: the
// dying thread, or another one, may hold it, and exiting with a buffer lost
// beats never exiting.
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "sched/config.hpp"
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
// A stream flush_stream gave up on: its lock is held by a thread that is
// not coming back.
std::atomic<bool> stdio_stuck{false};

// flush_stream flushes f if its lock can be had within about 50 ms; false
// if not (its holder is stuck, or is this very thread in the middle of a
// write that the fatal error interrupted: ftrylockfile succeeds for the
// owner, and flushing then is no worse than losing the buffer).
bool flush_stream(FILE* f, std::ostream* cxx1, std::ostream* cxx2) {
  bool locked = false;
  for (int i = 0; i < 50 && !(locked = ftrylockfile(f) == 0); i++) usleep(1000);
  if (!locked) {
    stdio_stuck.store(true, std::memory_order_relaxed);
    return false;
  }
  // The C++ streams first: synced with stdio (the default) they write
  // through to f, whose lock we hold (it is recursive); unsynced they have
  // their own buffer over the same descriptor. Through the stream buffer,
  // not ostream::flush: that would first flush the stream cerr is tied to
  // (cout), whose lock may be the one held elsewhere.
  try {
    if (cxx1 != nullptr && cxx1->rdbuf() != nullptr) cxx1->rdbuf()->pubsync();
    if (cxx2 != nullptr && cxx2->rdbuf() != nullptr) cxx2->rdbuf()->pubsync();
  } catch (...) {
  }
  fflush_unlocked(f);
  funlockfile(f);
  return true;
}

// sorted_others returns the Gs to dump after self, sorted by goid, in an
// mmap'd array (*n entries; munmap with *bytes), or nullptr if it cannot get
// one (then the caller walks allgs unsorted). allglock is held.
G** sorted_others(Runtime* r, G* self, std::size_t* n, std::size_t* bytes) {
  std::size_t count = 0;
  for (G* g = r->allgs; g != nullptr; g = g->alllink) count += g != self;
  *n = 0;
  *bytes = std::max<std::size_t>(count, 1) * sizeof(G*);
  void* mem = mmap(nullptr, *bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  auto* gs = static_cast<G**>(mem);
  for (G* g = r->allgs; g != nullptr && *n < count; g = g->alllink)
    if (g != self) gs[(*n)++] = g;
  std::sort(gs, gs + *n, [](G* a, G* b) { return a->goid < b->goid; });
  return gs;
}

}  // namespace

// exit_dying ends the process with code, without atexit handlers or
// destructors (Go's exit(2) after a fatal error). Under ThreadSanitizer,
// _exit is intercepted and flushes stdout and stderr first, waiting for
// their locks: with a lock held for ever elsewhere that wait never ends, so
// the process leaves by the system call itself, skipping TSan's exit report
// (with halt_on_error a race has already ended the run).
void exit_dying(int code) {
#if GORO_TSAN
  if (stdio_stuck.load(std::memory_order_relaxed)) syscall(SYS_exit_group, code);
#endif
  _exit(code);
}

void flush_stdio() {
  flush_stream(stdout, &std::cout, nullptr);
  flush_stream(stderr, &std::cerr, &std::clog);
}

void dump_goroutines(int fd, G* self, bool all) {
  Runtime* r = rt();
  if (r == nullptr) return;
  const std::int64_t now = nanotime();
  if (self != nullptr) dump_one(fd, self, self, now);
  if (!all) return;
  // The dying thread may hold allglock (checkdead does not, but a fault
  // could strike anywhere): never wait for it.
  bool locked = false;
  for (int i = 0; i < 1000 && !(locked = r->allglock.try_lock()); i++) usleep(100);
  std::size_t n = 0, bytes = 0;
  if (G** gs = sorted_others(r, self, &n, &bytes)) {
    for (std::size_t i = 0; i < n; i++) dump_one(fd, gs[i], self, now);
    munmap(gs, bytes);
  } else {
    for (G* g = r->allgs; g != nullptr; g = g->alllink)
      if (g != self) dump_one(fd, g, self, now);
  }
  if (locked) r->allglock.unlock();
}

void fatal(const char* msg) {
  if (dying.exchange(true)) {
    // A second fatal error while printing the first: stop here.
    put(2, "fatal error: ");
    put(2, msg);
    put(2, " (while dying)\n");
    exit_dying(2);
  }
  flush_stdio();  // what the program printed comes before the error
  put(2, "fatal error: ");
  put(2, msg);
  put(2, "\n\n");
  dump_goroutines(2, getg(), true);
  trace_crash("fatal error");
  exit_dying(2);
}

void fatal_panic(G* g, const char* what) {
  if (dying.exchange(true)) exit_dying(2);
  flush_stdio();
  Runtime* r = rt();
  const Traceback tb = r != nullptr ? r->cfg.traceback : Traceback::single;
  put(2, "panic: ");
  put(2, what);
  if (tb == Traceback::none) {
    put(2, "\n");
  } else {
    put(2, "\n\n");
    dump_goroutines(2, g, tb == Traceback::all);
  }
  trace_crash("panic");
  exit_dying(2);
}

void reset_dying() { dying.store(false); }

}  // namespace goro::detail
