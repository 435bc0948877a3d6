// gc.hpp — the collector's entry points for the rest of the runtime: what
// run() (runtime/proc_main.cpp) and sysmon (sched/sysmon.cpp) call. The
// collector's own interface is malloc.hpp and mgc.hpp; the user's is
// goro/gc.hpp.
#pragma once

#include <cstdint>

namespace goro::detail {

struct Runtime;

// gc_init makes the run's collector state (r->gc: reserves the heap arena,
// sets GOGC from r->cfg); called by run() before any goroutine exists.
void gc_init(Runtime* r);
// gc_teardown destroys it (joins the mark helpers, unmaps the heap); called
// by run() after every thread of the runtime is gone.
void gc_teardown(Runtime* r);
// gc_sysmon_check is sysmon's forcegc test: ready the forcegc helper if no
// cycle ran for cfg.forcegc_ms.
void gc_sysmon_check(Runtime* r, std::int64_t now);

}  // namespace goro::detail
