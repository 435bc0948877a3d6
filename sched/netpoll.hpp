// netpoll.hpp — the network poller's interface: Go's runtime/netpoll.go as
// the scheduler and the net package (net/) see it.
//
// The essay and the invariants are in netpoll.cpp. In short: each socket has
// a PollDesc with two one-goroutine semaphores (read and write). A goroutine
// whose read(2) returned EAGAIN parks on the read semaphore (poll_wait); the
// poller (epoll, edge-triggered) marks the semaphore ready when the kernel
// says the socket is readable and hands the parked goroutine to the
// scheduler. Deadlines and close() wake the same semaphores with an error.
#pragma once

#include <atomic>
#include <cstdint>

#include "sched/lockrank.hpp"
#include "sched/timer.hpp"

namespace goro::detail {

struct G;
struct M;
struct Runtime;

// The states of PollDesc.rg and .wg (Go's pdNil, pdReady, pdWait); any other
// value is the G parked on that side.
inline constexpr std::uintptr_t pdNil = 0;
inline constexpr std::uintptr_t pdReady = 1;
inline constexpr std::uintptr_t pdWait = 2;

// The results of poll_reset/poll_wait (Go's pollNoError, pollErrClosing,
// pollErrTimeout). EPOLLERR needs no error of its own here: it makes both
// sides ready, and the read or write that follows returns the socket error.
enum class PollErr : int { none = 0, closing = 1, timeout = 2 };

// PollDesc is one descriptor registered with the poller (Go's pollDesc).
// PollDescs are never freed while a runtime runs: a closed one goes back to
// the pollcache and is reused, which is why every event and every deadline
// timer carries a sequence number to check against (fdseq, rseq, wseq).
struct PollDesc {
  PollDesc* link = nullptr;   // pollcache free list (pollcache lock)
  PollDesc* alllink = nullptr;  // every PollDesc ever made (teardown)
  int fd = -1;                // the descriptor while in use
  bool inuse = false;         // between poll_open and poll_close (pollcache lock)
  // fdseq changes at every poll_open; epoll events carry it, so an event
  // for the previous user of this PollDesc is recognised and dropped.
  std::atomic<std::uint32_t> fdseq{0};

  // The two semaphores: pdNil, pdReady, pdWait or a parked G. Changed by
  // CAS only (netpollblock, netpollunblock), never under `lock` alone.
  std::atomic<std::uintptr_t> rg{pdNil};
  std::atomic<std::uintptr_t> wg{pdNil};

  // lock guards the deadlines (rd, wd writes, rt, wt, rseq, wseq) and
  // closing's transition; rank netpoll, outermost (it is held across
  // modtimer, which may take sched.lock).
  Lock lock{LockRank::netpoll};
  std::atomic<bool> closing{false};  // poll_unblock ran: every wait fails
  // Deadlines as nanotime(): 0 none, -1 passed, > 0 pending. Written under
  // lock, read without it by netpollcheckerr.
  std::atomic<std::int64_t> rd{0};
  std::atomic<std::int64_t> wd{0};
  std::uintptr_t rseq = 0;  // bumped whenever rt's meaning changes (lock)
  std::uintptr_t wseq = 0;
  bool rt_armed = false;    // Go's rt.f != nil (lock)
  bool wt_armed = false;
  Timer rt;                 // read deadline timer
  Timer wt;                 // write deadline timer
};

// Called by the net package (net/fd.cpp), on a goroutine.
// poll_open registers fd with epoll (read and write, edge-triggered) and
// returns its PollDesc; on failure returns nullptr with *err the errno.
PollDesc* poll_open(int fd, int* err);
// poll_close unregisters pd (its fd is still open; the caller closes it
// afterwards) and returns it to the pollcache. poll_unblock must have run.
void poll_close(PollDesc* pd);
// poll_reset prepares a read ('r') or write ('w'): the semaphore forgets an
// old readiness. Returns the error that makes the operation fail at once.
PollErr poll_reset(PollDesc* pd, int mode);
// poll_wait parks the goroutine until pd is ready for mode, or a deadline
// passes, or pd is closed.
PollErr poll_wait(PollDesc* pd, int mode);
// poll_set_deadline sets the read ('r'), write ('w') or both ('r'+'w')
// deadline: d is nanotime() of the deadline, 0 clears, < 0 already passed.
void poll_set_deadline(PollDesc* pd, std::int64_t d, int mode);
// poll_unblock marks pd closing and wakes its waiters (close()).
void poll_unblock(PollDesc* pd);

// Called by the scheduler.
bool netpollinited();
// netpoll_waiters is the number of goroutines parked in poll_wait.
std::int32_t netpoll_waiters();
// netpoll checks for ready descriptors, waiting up to delay ns (< 0:
// forever, 0: not at all), and returns the goroutines to ready as a list
// linked through G.schedlink, still _Gwaiting. *n is the list's length.
G* netpoll(std::int64_t delay, int* n);
// netpollBreak interrupts a netpoll blocked in epoll_wait.
void netpollBreak();
// injectglist makes every G of the list runnable, in one batch: some go to
// the global queue with an idle P started for each, the rest to the current
// P's queue (Go's injectglist).
void injectglist(G* list, int n);
// findrunnable_netpoll is findrunnable's last resort before stopm: block in
// the poller until I/O or the next timer. Returns a G to run (m then holds a
// P) or nullptr (m has no P; the caller goes to sleep on its note).
G* findrunnable_netpoll(Runtime* r, M* m);
// sysmon_netpoll polls without blocking when nobody has for 10 ms.
void sysmon_netpoll(Runtime* r, std::int64_t now);
// netpoll_teardown (run()'s teardown, every thread joined) closes every
// descriptor still registered, the epoll and eventfd descriptors, and frees
// every PollDesc; the goroutines parked on them are abandoned with the rest.
void netpoll_teardown();
// netpoll_epoch changes at every teardown: a net object made in an earlier
// run() knows by it that its descriptor was closed for it.
std::uint64_t netpoll_epoch();

}  // namespace goro::detail
