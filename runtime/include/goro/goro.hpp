// goro/goro.hpp — the one header a goro program includes.
//
//   goro::run(main)          start the runtime; main is goroutine 1
//   goro::go(fn)             start a goroutine
//   goro::make_chan<T>(n)    a channel; goro::select(case_recv(...), ...)
//   goro::WaitGroup, ...     goroutine-aware synchronisation
//   goro::after, Timer, ...  timers and tickers on channels (Go's time)
//   goro::gc::make<T>(...)   an object on the garbage-collected heap
//   goro::Pool<T>            sync.Pool: a per-P cache of reusable GC objects
//   goro::trace::log, Region annotations in the GORO_TRACE execution trace
//   goro::net::listen, dial  goroutine-blocking sockets on the netpoller
//
// See README.md for a tour and docs/ for how it works inside.
#pragma once

#include "goro/chan.hpp"
#include "goro/gc.hpp"
#include "goro/net.hpp"
#include "goro/pool.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"
#include "goro/sync.hpp"
#include "goro/time.hpp"
#include "goro/trace.hpp"
