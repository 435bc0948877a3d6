// goro/time.hpp — timers and tickers that deliver on channels (Go's time
// package: time.After, time.Timer, time.Ticker).
//
// A Timer sends the current Time on its channel once its duration has
// passed; a Ticker sends it every period. Both channels have capacity 1 and
// the runtime sends without blocking, so a slow reader of a Ticker misses
// ticks instead of queueing them — Go's behaviour. The sends are made by the
// runtime's per-P timers (sched/timer.hpp), from the scheduler loop: no
// goroutine or thread per timer. The design is in runtime/time.cpp.
//
// Semantics are those of Go up to 1.22 (buffered channel): stop() returning
// false means the timer already fired or was stopped; its value may be
// waiting in the channel, so the idiom to reuse a Timer is
//     if (!t.stop()) t.c().try_recv();   // or recv() if it surely fired
//     t.reset(d);
// A Timer or Ticker must not outlive the run() that created it; destroying
// one stops it (its channel, if copied, simply receives nothing more).
#pragma once

#include <chrono>

#include "goro/chan.hpp"
#include "goro/runtime.hpp"

namespace goro {

using Time = std::chrono::steady_clock::time_point;

namespace detail {
struct TimeTimer;  // a runtime timer plus its channel (runtime/time.cpp)
}

// after returns a channel that receives the time once d has passed
// (time.After). The timer is not reachable otherwise and cannot be stopped;
// it is recycled as soon as it fires.
Chan<Time> after(std::chrono::nanoseconds d);

// Timer delivers one Time on c() after its duration (time.Timer). A zero or
// negative duration fires at once.
class Timer {
 public:
  explicit Timer(std::chrono::nanoseconds d);  // time.NewTimer
  ~Timer();
  Timer(Timer&& o) noexcept;
  Timer& operator=(Timer&& o) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  Chan<Time> c() const;  // Timer.C
  // stop prevents the timer from firing. It returns true if this call
  // stopped it, false if it had already fired or been stopped.
  bool stop();
  // reset makes the timer fire d from now. It returns true if the timer had
  // been active (armed), false if it had fired or been stopped.
  bool reset(std::chrono::nanoseconds d);

 private:
  detail::TimeTimer* t_;
};

// Ticker delivers the time on c() every period (time.Ticker). Ticks a slow
// reader has not taken are dropped, as in Go. A non-positive period panics
// with Go's message "non-positive interval for NewTicker".
class Ticker {
 public:
  explicit Ticker(std::chrono::nanoseconds d);  // time.NewTicker
  ~Ticker();
  Ticker(Ticker&& o) noexcept;
  Ticker& operator=(Ticker&& o) noexcept;
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

  Chan<Time> c() const;  // Ticker.C
  // stop turns the ticker off: no more ticks are sent (one already being
  // sent may still arrive). The channel is not closed, as in Go.
  void stop();
  // reset stops the ticker and restarts it with period d (Go 1.15's
  // Ticker.Reset); non-positive d panics "non-positive interval for Ticker.Reset".
  void reset(std::chrono::nanoseconds d);

 private:
  detail::TimeTimer* t_;
};

}  // namespace goro
