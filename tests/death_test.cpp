// death_test.cpp — the ways a goro program dies, checked in a child process:
// stack overflow, deadlock, a panicking goroutine, SIGQUIT; the ways it must
// not die (no false deadlock report); and the GORO_DEBUG schedtrace output.
// Every death is Go's: a message on stderr, a goroutine dump, exit status 2.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <stdexcept>
#include <thread>

#include "test_util.hpp"

namespace goro::test {
namespace {

using namespace std::chrono_literals;
using ::testing::ExitedWithCode;

class Death : public RuntimeTest {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// overflow recurses until the goroutine's stack runs into its guard page.
// 1 KiB per frame, used after the call, so it is neither elided nor turned
// into a loop.
volatile bool overflow_stop = false;  // never set: hides the recursion from -Winfinite-recursion

[[gnu::noinline]] int overflow(int depth) {
  if (overflow_stop) return 0;
  volatile char buf[1024];
  buf[depth % sizeof buf] = static_cast<char>(depth);
  return overflow(depth + 1) + buf[(depth * 7) % sizeof buf];
}

#if GORO_ASAN
// AddressSanitizer may see the fault first and report it itself (and then
// abort rather than exit 2).
constexpr const char* kOverflowRegex = "(fatal error: stack overflow|stack-overflow)";
bool overflow_exit(int status) {
  return (WIFEXITED(status) && WEXITSTATUS(status) != 0) || WIFSIGNALED(status);
}
#else
constexpr const char* kOverflowRegex = "goroutine stack exceeds.*fatal error: stack overflow";
bool overflow_exit(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 2; }
#endif

// wait_parked returns once `count` goroutines are parked with `reason`
// (read from the runtime's allgs list), or exits 3 after 10 s: the dumps
// below must not race with goroutines that are still on their way to park.
void wait_parked(goro::detail::WaitReason reason, int count) {
  goro::detail::Runtime* r = goro::detail::rt();
  Deadline deadline(10s);
  for (;;) {
    int n = 0;
    {
      std::lock_guard<goro::detail::Lock> lk(r->allglock);
      for (goro::detail::G* g = r->allgs; g != nullptr; g = g->alllink)
        n += g->status.load() == goro::detail::Gstatus::waiting && g->waitreason == reason;
    }
    if (n >= count) return;
    if (deadline.passed()) {
      std::fprintf(stderr, "wait_parked: only %d goroutines parked\n", n);
      std::_Exit(3);
    }
    goro::yield();
  }
}

TEST_F(Death, StackOverflow) {
  EXPECT_EXIT(
      {
        goro::run(procs(2), [] {
          goro::WaitGroup wg;
          wg.add(1);
          goro::go([&] {
            overflow(0);
            wg.done();
          });
          wg.wait();
        });
        std::exit(0);
      },
      overflow_exit, kOverflowRegex);
}

TEST_F(Death, StackOverflowOnMain) {
  EXPECT_EXIT(
      {
        goro::run(procs(1), [] { overflow(0); });
        std::exit(0);
      },
      overflow_exit, kOverflowRegex);
}

TEST_F(Death, DeadlockIsFatal) {
  EXPECT_EXIT(
      {
        goro::run(procs(2), [] {
          goro::WaitGroup wg;
          wg.add(1);
          wg.wait();
        });
        std::exit(0);
      },
      ExitedWithCode(2),
      "fatal error: all goroutines are asleep - deadlock!.*goroutine 1 \\[sync.WaitGroup.Wait\\]");
}

// Deadlock with other goroutines blocked too, and with GOMAXPROCS=1.
TEST_F(Death, DeadlockWithManyBlockedGoroutines) {
  EXPECT_EXIT(
      {
        goro::run(procs(1), [] {
          goro::WaitGroup never;
          never.add(1);
          for (int i = 0; i < 5; i++) goro::go([&never] { never.wait(); });
          never.wait();
        });
        std::exit(0);
      },
      ExitedWithCode(2),
      // Either order: goro dumps the newest goroutine first, Go the oldest.
      "fatal error: all goroutines are asleep - deadlock!"
      "(.*goroutine 1 \\[sync.WaitGroup.Wait\\].*goroutine [2-6] \\[sync.WaitGroup.Wait\\]:\n"
      "created by |.*goroutine [2-6] \\[sync.WaitGroup.Wait\\]:\ncreated by .*goroutine 1 "
      "\\[sync.WaitGroup.Wait\\])");
}

constexpr const char* kDeadlock = "fatal error: all goroutines are asleep - deadlock!";

// A goroutine that would park inside blocking()'s call has no P to park
// from: a fatal error that says so, on the lazy path (the runtime call takes
// the call first) and on Go's.
TEST_F(Death, ParkInsideBlockingIsFatal) {
  for (const char* debug : {"", "lazysyscall=0"}) {
    EXPECT_EXIT(
        {
          setenv("GORO_DEBUG", debug, 1);
          goro::run(procs(2), [] {
            auto ch = goro::make_chan<int>();
            goro::blocking([&] { return ch.recv(); });
          });
          std::exit(0);
        },
        ExitedWithCode(2), "fatal error: goroutine parked inside blocking\\(\\)'s call")
        << "GORO_DEBUG=" << debug;
  }
}

TEST_F(Death, DeadlockOnChannelReceive) {
  EXPECT_EXIT(
      {
        goro::run(procs(2), [] {
          auto ch = goro::make_chan<int>();
          ch.recv();
        });
        std::exit(0);
      },
      ExitedWithCode(2), std::string(kDeadlock) + ".*goroutine 1 \\[chan receive\\]:");
}

TEST_F(Death, DeadlockInEmptySelect) {
  EXPECT_EXIT(
      {
        goro::run(procs(1), [] { goro::select(); });
        std::exit(0);
      },
      ExitedWithCode(2), std::string(kDeadlock) + ".*goroutine 1 \\[select \\(no cases\\)\\]:");
}

// Two goroutines each receive from the channel the other would send on
// afterwards; main waits for both on a WaitGroup.
TEST_F(Death, DeadlockBetweenTwoGoroutines) {
  EXPECT_EXIT(
      {
        goro::run(procs(2), [] {
          auto a = goro::make_chan<int>();
          auto b = goro::make_chan<int>();
          goro::WaitGroup wg;
          wg.add(2);
          goro::go([&] {
            a.recv();
            b.send(1);
            wg.done();
          });
          goro::go([&] {
            b.recv();
            a.send(1);
            wg.done();
          });
          wg.wait();
        });
        std::exit(0);
      },
      ExitedWithCode(2),
      std::string(kDeadlock) + "(.*goroutine [0-9]+ \\[chan receive\\]:){2}");
}

TEST_F(Death, PanicInGoroutine) {
  EXPECT_EXIT(
      {
        goro::run(procs(2), [] {
          goro::WaitGroup wg;
          wg.add(1);
          goro::go([] { throw std::runtime_error("boom"); });
          wg.wait();
        });
        std::exit(0);
      },
      ExitedWithCode(2), "panic: boom.*goroutine [0-9]+ \\[running\\]:.*created by");
}

// A goro::Panic escaping a goroutine (here: the negative WaitGroup counter)
// dies the same way, with Go's message.
TEST_F(Death, RuntimePanicInGoroutine) {
  EXPECT_EXIT(
      {
        goro::run(procs(1), [] {
          goro::WaitGroup wg, bad;
          wg.add(1);
          goro::go([&bad] { bad.done(); });
          wg.wait();
        });
        std::exit(0);
      },
      ExitedWithCode(2), "panic: sync: negative WaitGroup counter");
}

TEST_F(Death, Sigquit) {
  EXPECT_EXIT(
      {
        goro::run(procs(2), [] {
          goro::WaitGroup wg;
          wg.add(1);
          goro::go([] { raise(SIGQUIT); });
          wg.wait();
        });
        std::exit(0);
      },
      ExitedWithCode(2), "SIGQUIT: quit.*goroutine [0-9]+ \\[running\\]:.*goroutine 1 ");
}

// The goroutine dump of SIGQUIT names every parked goroutine's wait reason
// and where it was created. raise() comes once both are parked.
void quit_with_parked_goroutines() {
  goro::run(procs(2), [] {
    auto never = goro::make_chan<int>();
    goro::go([never] { never.recv(); });
    goro::go([] { goro::sleep_for(1h); });
    wait_parked(goro::detail::WaitReason::chan_receive, 1);
    wait_parked(goro::detail::WaitReason::sleep, 1);
    raise(SIGQUIT);
  });
  std::exit(0);
}

TEST_F(Death, SigquitDumpShowsParkedGoroutines) {
  EXPECT_EXIT(quit_with_parked_goroutines(), ExitedWithCode(2),
              "SIGQUIT: quit.*goroutine 1 \\[running\\]:\nmain goroutine");
  EXPECT_EXIT(quit_with_parked_goroutines(), ExitedWithCode(2),
              "SIGQUIT: quit.*goroutine [0-9]+ \\[chan receive\\]:\ncreated by [^\n]* in "
              "goroutine 1\n\t[^\n]*death_test.cpp:[0-9]+\n");
  EXPECT_EXIT(quit_with_parked_goroutines(), ExitedWithCode(2),
              "SIGQUIT: quit.*goroutine [0-9]+ \\[sleep\\]:\ncreated by [^\n]* in "
              "goroutine 1\n\t[^\n]*death_test.cpp:[0-9]+\n");
}

// GOTRACEBACK=all: a panic's dump shows the other goroutines too, the
// panicking one first, then the others by id.
TEST_F(Death, PanicDumpWithGotracebackAllShowsParkedGoroutines) {
  EXPECT_EXIT(
      {
        setenv("GOTRACEBACK", "all", 1);
        goro::run(procs(2), [] {
          auto never = goro::make_chan<int>();
          goro::go([never] { never.recv(); });
          wait_parked(goro::detail::WaitReason::chan_receive, 1);
          goro::WaitGroup wg;
          wg.add(1);
          goro::go([] {
            // The dump must find main parked, not on its way there.
            wait_parked(goro::detail::WaitReason::wait_group_wait, 1);
            throw std::runtime_error("boom");
          });
          wg.wait();
        });
        std::exit(0);
      },
      ExitedWithCode(2),
      "panic: boom\n\ngoroutine [0-9]+ \\[running\\]:\ncreated by .*goroutine 1 "
      "\\[sync.WaitGroup.Wait\\]:\nmain goroutine.*goroutine 2 \\[chan receive\\]:\ncreated by ");
}

// GOTRACEBACK unset (single, Go's default): a panic prints only the
// panicking goroutine. The whole of stderr is matched.
void panic_with_a_parked_goroutine() {
  goro::run(procs(2), [] {
    auto never = goro::make_chan<int>();
    goro::go([never] { never.recv(); });
    wait_parked(goro::detail::WaitReason::chan_receive, 1);
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([] { throw std::runtime_error("boom"); });
    wg.wait();
  });
  std::exit(0);
}

TEST_F(Death, PanicDumpShowsOnlyThePanickingGoroutineByDefault) {
  EXPECT_EXIT(
      {
        unsetenv("GOTRACEBACK");
        panic_with_a_parked_goroutine();
      },
      ExitedWithCode(2),
      "^panic: boom\n\ngoroutine [0-9]+ \\[running\\]:\ncreated by [^\n]* in goroutine 1\n\t[^\n]*\n\n$");
  EXPECT_EXIT(
      {
        setenv("GOTRACEBACK", "single", 1);
        panic_with_a_parked_goroutine();
      },
      ExitedWithCode(2), "^panic: boom\n\ngoroutine [0-9]+ \\[running\\]:\ncreated by [^\n]*\n\t[^\n]*\n\n$");
}

// GOTRACEBACK=none: the panic message, no stacks.
TEST_F(Death, PanicWithGotracebackNonePrintsNoStacks) {
  EXPECT_EXIT(
      {
        setenv("GOTRACEBACK", "none", 1);
        panic_with_a_parked_goroutine();
      },
      ExitedWithCode(2), "^panic: boom\n$");
}

// Fatal errors print every goroutine whatever GOTRACEBACK says.
TEST_F(Death, FatalErrorShowsAllGoroutinesEvenWithGotracebackNone) {
  EXPECT_EXIT(
      {
        setenv("GOTRACEBACK", "none", 1);
        goro::run(procs(1), [] {
          auto never = goro::make_chan<int>();
          goro::go([never] { never.recv(); });
          never.recv();
        });
        std::exit(0);
      },
      ExitedWithCode(2),
      std::string(kDeadlock) + "\n\ngoroutine 1 \\[chan receive\\]:.*goroutine 2 \\[chan receive\\]:");
}

// The dump's order is Go's: the current goroutine first, then the others by
// id, whatever order the runtime keeps them in (goroutines 2 and 3 exit and
// their Gs are reused by later ones).
TEST_F(Death, SigquitDumpIsInIdOrder) {
  EXPECT_EXIT(
      {
        setenv("GOTRACEBACK", "single", 1);  // SIGQUIT shows all regardless
        goro::run(procs(1), [] {
          goro::WaitGroup wg;
          wg.add(2);
          for (int i = 0; i < 2; i++) goro::go([&wg] { wg.done(); });
          wg.wait();
          auto never = goro::make_chan<int>();
          goro::WaitGroup started;
          started.add(4);
          for (int i = 0; i < 4; i++) goro::go([never, &started] {
              started.done();
              never.recv();
            });
          started.wait();
          wait_parked(goro::detail::WaitReason::chan_receive, 4);
          // Only once main is asleep: main may be preempted between go()
          // and sleep_for (a safepoint), and would then dump as runnable.
          goro::go([] {
            wait_parked(goro::detail::WaitReason::sleep, 1);
            raise(SIGQUIT);
          });
          goro::sleep_for(1h);
        });
        std::exit(0);
      },
      ExitedWithCode(2),
      "SIGQUIT: quit\n\ngoroutine 8 \\[running\\]:.*goroutine 1 \\[sleep\\]:.*"
      "goroutine 4 \\[chan receive\\]:.*goroutine 5 \\[chan receive\\]:.*"
      "goroutine 6 \\[chan receive\\]:.*goroutine 7 \\[chan receive\\]:");
}

// What the program printed with printf and std::cout before dying reaches a
// file (fully buffered, unlike a terminal): the runtime flushes the streams
// before exit 2, on a panic, a fatal error and SIGQUIT.
std::string read_file(const std::string& path) {
  std::string out;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
  }
  return out;
}

void print_then_die(const std::string& path, int how) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ::dup2(fd, 1) < 0) std::_Exit(5);
  ::close(fd);
  goro::run(procs(2), [how] {
    std::printf("printf line\n");
    std::cout << "cout line\n";
    goro::WaitGroup wg;
    wg.add(1);
    if (how == 0) goro::go([] { throw std::runtime_error("boom"); });
    if (how == 2) goro::go([] { raise(SIGQUIT); });
    wg.wait();  // how == 1: nobody else: deadlock
  });
  std::exit(0);
}

TEST_F(Death, StdoutIsFlushedBeforeDying) {
  const std::string path = ::testing::TempDir() + "goro_death_flush.txt";
  const char* regex[] = {"panic: boom", "fatal error: all goroutines are asleep", "SIGQUIT: quit"};
  for (int how = 0; how < 3; how++) {
    SCOPED_TRACE(how);
    std::remove(path.c_str());
    EXPECT_EXIT(print_then_die(path, how), ExitedWithCode(2), regex[how]);
    const std::string out = read_file(path);
    EXPECT_CONTAINS(out, "printf line\n");
    EXPECT_CONTAINS(out, "cout line\n");
  }
  std::remove(path.c_str());
}

// Flushing never hangs the exit: with stdout's lock held for ever by
// another thread, a panic still exits 2 (the buffer is given up).
TEST_F(Death, StdoutLockedElsewhereDoesNotHangTheExit) {
  const std::string path = ::testing::TempDir() + "goro_death_locked.txt";
  EXPECT_EXIT(
      {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || ::dup2(fd, 1) < 0) std::_Exit(5);
        std::printf("buffered\n");
        static std::atomic<bool> locked{false};
        std::thread([] {
          flockfile(stdout);
          locked.store(true);
          for (;;) pause();
        }).detach();
        Deadline deadline(10s);
        while (!locked.load()) {
          if (deadline.passed()) std::_Exit(3);
          std::this_thread::yield();
        }
        goro::run(procs(2), [] {
          goro::WaitGroup wg;
          wg.add(1);
          goro::go([] { throw std::runtime_error("boom"); });
          wg.wait();
        });
        std::exit(0);
      },
      ExitedWithCode(2), "panic: boom");
  std::remove(path.c_str());
}

// No false deadlock: main asleep on a timer while every other goroutine is
// blocked forever is not a deadlock; neither is main inside blocking().
TEST_F(Death, NoFalseDeadlockWhileMainSleeps) {
  EXPECT_EXIT(
      {
        for (int n : {1, 2}) {
          goro::run(procs(n), [] {
            goro::WaitGroup never;
            never.add(1);
            for (int i = 0; i < 4; i++) goro::go([&never] { never.wait(); });
            goro::sleep_for(20ms);
          });
        }
        std::exit(0);
      },
      ExitedWithCode(0), "");
}

TEST_F(Death, NoFalseDeadlockWhileMainBlocks) {
  EXPECT_EXIT(
      {
        for (int n : {1, 2}) {
          goro::run(procs(n), [] {
            goro::WaitGroup never;
            never.add(1);
            for (int i = 0; i < 4; i++) goro::go([&never] { never.wait(); });
            goro::blocking([] { usleep(50000); });
          });
        }
        std::exit(0);
      },
      ExitedWithCode(0), "");
}

// A goroutine asleep on a timer keeps the program alive even when main
// waits on a WaitGroup only that goroutine will release.
TEST_F(Death, NoFalseDeadlockWhileOnlyATimerIsPending) {
  EXPECT_EXIT(
      {
        goro::run(procs(2), [] {
          goro::WaitGroup wg;
          wg.add(1);
          goro::go([&wg] {
            goro::sleep_for(30ms);
            wg.done();
          });
          wg.wait();
        });
        std::exit(0);
      },
      ExitedWithCode(0), "");
}

// Main asleep on a timer while the others are blocked forever on channels
// and in an empty select.
TEST_F(Death, NoFalseDeadlockWhileMainSleepsAndOthersWaitOnChannels) {
  EXPECT_EXIT(
      {
        for (int n : {1, 2}) {
          goro::run(procs(n), [] {
            auto never = goro::make_chan<int>();
            for (int i = 0; i < 3; i++) goro::go([never] { never.recv(); });
            goro::go([] { goro::select(); });
            wait_parked(goro::detail::WaitReason::chan_receive, 3);
            goro::sleep_for(20ms);
          });
        }
        std::exit(0);
      },
      ExitedWithCode(0), "");
}

// A goroutine inside blocking() is not asleep: main waits on the channel it
// sends on once the call returns.
TEST_F(Death, NoFalseDeadlockWhileAGoroutineBlocks) {
  EXPECT_EXIT(
      {
        for (int n : {1, 2}) {
          goro::run(procs(n), [] {
            auto done = goro::make_chan<int>();
            goro::go([done] {
              goro::blocking([] { usleep(50000); });
              done.send(1);
            });
            if (done.recv() != 1) std::_Exit(4);
          });
        }
        std::exit(0);
      },
      ExitedWithCode(0), "");
}

// Main locked to its thread (its M sleeps in sched.mlocked, not among the
// idle Ms) waiting on a timer, with another locked goroutine blocked
// forever: not a deadlock.
TEST_F(Death, NoFalseDeadlockWhileLockedMainSleeps) {
  EXPECT_EXIT(
      {
        for (int n : {1, 2}) {
          goro::run(procs(n), [] {
            goro::lock_os_thread();
            auto never = goro::make_chan<int>();
            goro::go([never] {
              goro::lock_os_thread();
              never.recv();
            });
            wait_parked(goro::detail::WaitReason::chan_receive, 1);
            goro::sleep_for(20ms);
            goro::sleep_for(1ms);
            goro::unlock_os_thread();
          });
        }
        std::exit(0);
      },
      ExitedWithCode(0), "");
}

TEST_F(Death, Schedtrace) {
  EXPECT_EXIT(
      {
        setenv("GORO_DEBUG", "schedtrace=10", 1);
        goro::run(procs(2), [] { goro::sleep_for(50ms); });
        std::exit(0);
      },
      ExitedWithCode(0),
      "SCHED [0-9]+ms: gomaxprocs=2 idleprocs=[0-9]+ threads=[0-9]+ spinningthreads=[0-9]+ "
      "idlethreads=[0-9]+ runqueue=[0-9]+ \\[[0-9]+ [0-9]+\\]");
}

TEST_F(Death, SchedtraceDetail) {
  EXPECT_EXIT(
      {
        setenv("GORO_DEBUG", "schedtrace=10,scheddetail=1", 1);
        goro::run(procs(2), [] { goro::sleep_for(50ms); });
        std::exit(0);
      },
      ExitedWithCode(0),
      "SCHED [0-9]+ms: gomaxprocs=2 idleprocs=[0-9]+ threads=[0-9]+.*\n  P0: status=[0-9]+ "
      ".*\n  P1: status=.*\n  M[0-9]+: p=-?[0-9]+ curg=.*\n  G1: status=[0-9]+");
}

// The gctrace line per mode: concurrent (the default: two short stops, no
// suffix), gcstoptheworld=1, and the fallback gcuffd=0, which says once why.
TEST_F(Death, GctraceConcurrentMark) {
  EXPECT_EXIT(
      {
        setenv("GORO_DEBUG", "gctrace=1", 1);
        goro::run(procs(2), [] { goro::gc::collect(); });
        std::exit(0);
      },
      ExitedWithCode(0),
      "gc 1 @[0-9.]+s [0-9]+%: [0-9.]+\\+[0-9.]+\\+[0-9.]+ ms clock, [0-9]+->[0-9]+->[0-9]+ MB, "
      "[0-9]+ MB goal, 2 P \\(forced\\)\n");
}

TEST_F(Death, GctraceStopTheWorldMark) {
  EXPECT_EXIT(
      {
        setenv("GORO_DEBUG", "gctrace=1,gcstoptheworld=1", 1);
        goro::run(procs(2), [] { goro::gc::collect(); });
        std::exit(0);
      },
      ExitedWithCode(0), "gc 1 @.* 2 P \\(forced\\) \\(stop-the-world mark\\)\n");
}

TEST_F(Death, GctraceSaysWhyTheMarkIsNotConcurrent) {
  EXPECT_EXIT(
      {
        setenv("GORO_DEBUG", "gctrace=1,gcuffd=0", 1);
        goro::run(procs(2), [] {
          goro::gc::collect();
          goro::gc::collect();
        });
        std::exit(0);
      },
      ExitedWithCode(0),
      "^gc: dirty-page tracking off \\(GORO_DEBUG=gcuffd=0\\): every mark runs with the world "
      "stopped\ngc 1 @.*\\(stop-the-world mark\\)\ngc 2 @.*\\(stop-the-world mark\\)\n$");
}

}  // namespace
}  // namespace goro::test
