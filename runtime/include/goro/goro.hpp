// goro/goro.hpp — the one header a goro program includes.
//
//   goro::run(main)          start the runtime; main is goroutine 1
//   goro::go(fn)             start a goroutine
//   goro::WaitGroup, ...     goroutine-aware synchronisation
//
// See README.md for a tour and docs/ for how it works inside.
#pragma once

#include "goro/runtime.hpp"
#include "goro/sync.hpp"
