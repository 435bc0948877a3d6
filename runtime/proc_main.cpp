// proc_main.cpp — run(): start-up, main goroutine, shutdown (Go's
// rt0_go → schedinit → newproc(main) → mstart, and exit when main returns).
//
// run() turns the calling thread into M0, creates GOMAXPROCS Ps, makes
// main_fn goroutine 1 and runs the scheduler on M0 until main returns. Then
// every M leaves its loop (sched.exiting), the threads are joined, and every
// G, stack, P and M is freed, so run() can be called again with another
// configuration — each test uses its own runtime.
//
// Invariants: at most one runtime per process at a time (running); rt() is
// non-null exactly between schedinit and the end of teardown.
#include <cstdio>
#include <thread>

#include "gc/gc.hpp"
#include "goro/runtime.hpp"
#include "sched/nanotime.hpp"
#include "sched/netpoll.hpp"
#include "sched/proc.hpp"
#include "sched/sanitizers.hpp"
#include "sched/signal.hpp"

#if GORO_ASAN
#include <sanitizer/lsan_interface.h>
#endif

namespace goro {

namespace detail {
void sysmon(Runtime* r);
void netpoll_osinit();  // sched/netpoll.cpp: ignore SIGPIPE, raise RLIMIT_NOFILE
void reset_dying();

namespace {

std::atomic<bool> running{false};

void teardown(Runtime* r) {
  // Every M but this one has left schedule(); join them.
  std::vector<M*> ms;
  {
    std::lock_guard<Lock> lk(r->sched.lock);
    for (M* m = r->sched.allm; m != nullptr; m = m->alllink) ms.push_back(m);
  }
  // sysmon first: it may signal M threads, which must still exist.
  r->sysmonnote.wakeup();
  if (r->sysmon.joinable()) r->sysmon.join();
  for (M* m : ms)
    if (!m->is_m0 && m->thread.joinable()) m->thread.join();
  signals_uninstall();
  semtable_reset();
  // Every descriptor a net object still owns is closed, the poller's own
  // descriptors too; goroutines parked on them are abandoned with the rest.
  netpoll_teardown();

  // Goroutines that never started still own their callable: destroy it.
  // Goroutines that did start and are still parked are abandoned with their
  // stacks, as Go abandons them when main returns. Heap memory that only
  // their frames point to is lost with them; LeakSanitizer would call that a
  // leak, so sanitizer builds keep such stacks mapped and tell LSan to scan
  // them (a bounded cost, and only in those builds).
  bool abandoned = false;
  for (G* g = r->allgs; g != nullptr; g = g->alllink) {
    const Gstatus st = g->status.load(std::memory_order_relaxed);
    if (st != Gstatus::dead && g->entry == nullptr) {
      abandoned = true;
#if GORO_ASAN
      __lsan_register_root_region(g->fiber.stack_lo,
                                  static_cast<std::size_t>(g->fiber.stack_hi - g->fiber.stack_lo));
#endif
    }
  }
  for (G* g = r->allgs; g != nullptr;) {
    G* next = g->alllink;
    if (g->entry != nullptr) {
      g->entry->destroy(g->entry_arg);
      g->entry = nullptr;
    }
    fiber_release(g->fiber);
    g->~G();
    g = next;
  }
  r->allgs = nullptr;
  for (int i = 0; i < maxProcs; i++) {
    if (P* p = r->allp[i].load(std::memory_order_relaxed)) delete p;
    r->allp[i].store(nullptr, std::memory_order_relaxed);
  }
  if (trace_on) {
    trace_stop();  // frees every M's buffer
    trace_on = false;
  }
  pooltrace_on = pool_events = false;
  for (M* m : ms) delete m;
  if (!(GORO_ASAN && abandoned)) r->stacks.release_all();
}

}  // namespace
}  // namespace detail

void run(std::function<void()> main_fn) { run(Options{}, std::move(main_fn)); }

void run(const Options& opt, std::function<void()> main_fn) {
  using namespace detail;
  if (getg() != nullptr) throw Error("goro::run called from inside a goroutine");
  if (!main_fn) throw Error("goro::run: main_fn is empty");
  Config cfg = parse_config(opt);  // throws on a malformed environment
  bool expected = false;
  if (!running.compare_exchange_strong(expected, true))
    throw Error("goro::run: another runtime is already running in this process");

  auto r = std::make_unique<Runtime>();
  r->cfg = cfg;
  r->start_time = nanotime();
  r->sched.coarse_now.store(r->start_time, std::memory_order_relaxed);
  r->sched.lastpoll.store(r->start_time, std::memory_order_relaxed);
  netpoll_osinit();
  sys_init();
  r->stacks.init(cfg.stack_size, sizeof(G));
  gc_init(r.get());
  reset_dying();
  trace_on = !cfg.trace_file.empty() && trace_start(cfg.trace_file.c_str(), r->start_time);
  pooltrace_on = cfg.pooltrace;
  pool_events = pooltrace_on;  // Pool events go to the trace too when both are on
  rt_.store(r.get(), std::memory_order_release);
  signals_install(r.get());

  M* m0 = new_m0(r.get());
  r->m0 = m0;
  if (trace_on) trace_bind(m0->trace);
  schedinit_procs(r.get(), m0);
  r->sysmon = std::thread(sysmon, r.get());

  // Goroutine 1. newproc needs a current G for its bookkeeping; M0 is not
  // on one yet, so build main's G by hand, as rt0_go does.
  {
    r->main_g = newproc_main(r.get(), m0, &main_fn);
  }
  mstart(m0);
  teardown(r.get());
  gc_teardown(r.get());
  std::exception_ptr exc = r->main_exception;
  rt_.store(nullptr, std::memory_order_release);
  r.reset();
  running.store(false);
  if (exc) std::rethrow_exception(exc);
}

bool in_runtime() { return detail::getg() != nullptr; }

}  // namespace goro
