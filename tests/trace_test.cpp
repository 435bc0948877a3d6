// trace_test.cpp — GORO_TRACE: the file parses, and each kind of event shows
// up when a program does the thing it records: a steal, a hand-off of a P
// left in a system call, a GC with its cleanup hooks, wakeups with their flow
// arrows, user annotations; and a program that dies leaves a complete file.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "gc/mgc.hpp"
#include "test_util.hpp"
#include "tools/goro-trace/trace_reader.hpp"

namespace goro::test {
namespace {

using tracefile::TraceEv;

std::string trace_path(const char* tag, pid_t pid = ::getpid()) {
  return "/tmp/goro_trace_test_" + std::to_string(pid) + "_" + tag + ".json";
}

// Traced runs a program with GORO_TRACE set and reads back what it wrote.
struct Traced {
  std::vector<TraceEv> ev;
  tracefile::ReadResult res;
  std::string text;

  std::size_t count(std::string_view ph, std::string_view name) const {
    std::size_t n = 0;
    for (const TraceEv& e : ev) n += e.ph == ph && e.name == name;
    return n;
  }
  template <class F>
  std::size_t count_if(F f) const {
    std::size_t n = 0;
    for (const TraceEv& e : ev) n += f(e);
    return n;
  }
};

Traced read_file(const std::string& path) {
  Traced t;
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  t.text = ss.str();
  t.res = tracefile::read_trace(t.text, [&](const TraceEv& e) {
    TraceEv c = e;
    c.args.resize(e.nargs);
    t.ev.push_back(std::move(c));
  });
  return t;
}

Traced traced_run(const char* tag, int procs, std::function<void()> fn) {
  const std::string path = trace_path(tag);
  ::setenv("GORO_TRACE", path.c_str(), 1);
  goro::run(Options{.procs = procs}, std::move(fn));
  ::unsetenv("GORO_TRACE");
  Traced t = read_file(path);
  std::remove(path.c_str());
  return t;
}

using Trace = ProcsTest;

// Every run's trace parses completely, names a track for every P, and its
// goroutine slices and wakeup flows are consistent.
TEST_P(Trace, WellFormedWithFlows) {
  const int procs = GetParam();
  Traced t = traced_run("wf", procs, [] {
    auto c = make_chan<int>();
    auto done = make_chan<int>(0);
    go([=] {
      for (int i = 0; i < 200; i++) c.send(i);
      done.send(1);
    });
    for (int i = 0; i < 200; i++) c.recv();
    done.recv();
  });
  ASSERT_TRUE(t.res.ok) << t.res.error;
  std::set<std::int64_t> pnames;
  for (const TraceEv& e : t.ev)
    if (e.ph == "M" && e.name == "thread_name" && e.pid == 2) pnames.insert(e.tid);
  EXPECT_EQ(static_cast<int>(pnames.size()), procs);
  // The complete marker closes the file.
  ASSERT_FALSE(t.ev.empty());
  EXPECT_EQ(t.ev.back().name, "trace_end");
  EXPECT_EQ(t.ev.back().args_str("complete"), "true");
  // Goroutine slices: on a P's track, naming their M, with a known stop
  // category; 200 handoffs over an unbuffered channel block on both ends.
  std::map<std::string, int> cats;
  for (const TraceEv& e : t.ev)
    if (e.ph == "X" && e.pid == 2) cats[e.cat]++;
  const std::set<std::string> known = {"other", "preempted", "yield", "chan send", "chan recv", "select",
                                       "sync", "sleep", "network", "GC", "syscall", "exit"};
  for (auto& [c, n] : cats) {
    EXPECT_TRUE(known.count(c)) << c;
  }
  EXPECT_GT(cats["chan recv"] + cats["chan send"], 50);
  // main's exit at least (the sender's may come after main returned: then
  // it is abandoned, as Go abandons goroutines when main returns).
  EXPECT_GE(cats["exit"], 1);
  std::set<std::int64_t> ms;
  for (const TraceEv& e : t.ev)
    if (e.ph == "M" && e.name == "thread_name" && e.pid == 1) ms.insert(e.tid);
  for (const TraceEv& e : t.ev) {
    if (e.ph == "X" && e.pid == 2) {
      EXPECT_TRUE(ms.count(e.argi("m"))) << "slice on unnamed M " << e.argi("m");
    }
  }
  // Every flow end has its start, and unblocks name the readier.
  std::set<std::int64_t> starts;
  for (const TraceEv& e : t.ev)
    if (e.ph == "s") starts.insert(e.id);
  std::size_t ends = 0;
  for (const TraceEv& e : t.ev)
    if (e.ph == "f") {
      ends++;
      EXPECT_TRUE(starts.count(e.id)) << "flow " << e.id << " has no start";
    }
  EXPECT_GT(ends, 50u);
  EXPECT_GT(t.count_if([](const TraceEv& e) { return e.name == "GoUnblock" && e.argi("by") > 0; }), 50u);
  // The creation of the second goroutine names this file.
  EXPECT_GE(t.count_if([](const TraceEv& e) {
    return e.name == "GoCreate" && e.args_str("at").find("trace_test.cpp:") != std::string::npos;
  }), 1u);
}

INSTANTIATE_TEST_SUITE_P(Procs, Trace, ::testing::Values(1, 2, 4, 8), ProcsName);

// A burst of goroutines made on one P while it stays busy: the other Ps can
// only get them by stealing (or from the global queue).
TEST_F(RuntimeTest, TraceSteal) {
  bool stole = false;
  for (int attempt = 0; attempt < 20 && !stole; attempt++) {
    Traced t = traced_run("steal", 4, [] {
      WaitGroup wg;
      for (int i = 0; i < 64; i++) {
        wg.add(1);
        go([&wg] {
          spin(200000);
          wg.done();
        });
      }
      spin(2000000);
      wg.wait();
    });
    ASSERT_TRUE(t.res.ok) << t.res.error;
    for (const TraceEv& e : t.ev) {
      if (e.name != "Steal") continue;
      stole = true;
      EXPECT_GE(e.argi("n"), 1);
      EXPECT_NE(e.argi("victim"), e.argi("p"));
      EXPECT_TRUE(e.arg("runnext") != nullptr);
    }
    EXPECT_GT(t.count("i", "SpinningOn"), 0u);
    EXPECT_GT(t.count("i", "Wakep"), 0u);
    EXPECT_GT(t.count("i", "Startm"), 0u);
  }
  EXPECT_TRUE(stole);
}

// A goroutine blocked in a system call while others are runnable: sysmon
// takes its P (hand-off), and the call shows as a syscall slice with
// handoff=1.
TEST_F(RuntimeTest, TraceSyscallHandoff) {
  Traced t = traced_run("handoff", 1, [] {
    auto stop = std::make_shared<std::atomic<bool>>(false);
    WaitGroup wg;
    wg.add(1);
    go([stop, &wg] {
      for (int i = 0; i < 100000 && !stop->load(); i++) yield();
      wg.done();
    });
    blocking([] { ::usleep(100 * 1000); });
    stop->store(true);
    wg.wait();
  });
  ASSERT_TRUE(t.res.ok) << t.res.error;
  EXPECT_GE(t.count("i", "SysmonRetake"), 1u);
  EXPECT_GE(t.count_if([](const TraceEv& e) { return e.name == "syscall" && e.argi("handoff") == 1; }), 1u);
  EXPECT_GE(t.count("i", "Handoffp") + t.count("i", "Startm"), 1u);
}

// A collection: its stop-the-world, its phases (the cleanup hooks their own
// slice) and the heap counters.
TEST_F(RuntimeTest, TraceGCWithHooks) {
  static bool concurrent;
  Traced t = traced_run("gc", 2, [] {
    concurrent = goro::detail::rt()->gc->dirty.why == nullptr;  // the kernel tracks dirty pages
    std::atomic<int> ran{0};
    const gc::HookId id = gc::register_cleanup([&] { ran++; });
    for (int i = 0; i < 1000; i++) (void)gc::make<int>(i);
    gc::collect();
    gc::unregister_cleanup(id);
    EXPECT_GE(ran.load(), 1);
  });
  ASSERT_TRUE(t.res.ok) << t.res.error;
  EXPECT_GE(t.count("X", "STW: GC"), 1u);
  EXPECT_GE(t.count("X", "GC cleanup hooks"), 1u);
  EXPECT_GE(t.count("X", "GC mark"), 1u);
  if (concurrent) {
    // The concurrent mark between two stops: the second is mark termination.
    EXPECT_GE(t.count("X", "GC mark termination"), 1u);
    EXPECT_GE(t.count("X", "STW: GC mark termination"), 1u);
  }
  EXPECT_GE(t.count("X", "GC sweep termination"), 1u);
  EXPECT_GE(t.count("C", "heap live"), 1u);
  EXPECT_GE(t.count("C", "heap goal"), 1u);
  EXPECT_GE(t.count("C", "threads"), 1u);
  // The hooks slice lies inside the stop.
  double s0 = -1, s1 = -1, h0 = -1;
  for (const TraceEv& e : t.ev) {
    if (e.name == "STW: GC" && s0 < 0) s0 = e.ts, s1 = e.ts + e.dur;
    if (e.name == "GC cleanup hooks" && h0 < 0) h0 = e.ts;
  }
  EXPECT_GE(h0, s0);
  EXPECT_LE(h0, s1);
}

// goro::trace::log and Region land in the trace with their strings intact
// (escaped as JSON).
TEST_F(RuntimeTest, TraceAnnotations) {
  Traced t = traced_run("ann", 2, [] {
    EXPECT_TRUE(goro::trace::enabled());
    goro::trace::Region r("outer \"region\"");
    goro::trace::log("cat", "hello\nworld");
    sleep_for(std::chrono::milliseconds(1));
  });
  ASSERT_TRUE(t.res.ok) << t.res.error;
  bool log = false, region = false;
  for (const TraceEv& e : t.ev) {
    if (e.name == "Log" && e.args_str("category") == "cat" && e.args_str("message") == "hello\nworld") log = true;
    if (e.ph == "X" && e.name == "outer \"region\"" && e.pid == 4 && e.dur >= 900) region = true;
  }
  EXPECT_TRUE(log);
  EXPECT_TRUE(region);
  // And a sleep stopped with reason "sleep".
  EXPECT_GE(t.count_if([](const TraceEv& e) { return e.ph == "X" && e.cat == "sleep"; }), 1u);
}

// With pooltrace on too, each Get and poolCleanup is a trace event.
TEST_F(RuntimeTest, TracePoolEvents) {
  ::setenv("GORO_DEBUG", "pooltrace=1", 1);
  ::testing::internal::CaptureStderr();
  Traced t = traced_run("pool", 1, [] {
    Pool<int> pool([] { return gc::make<int>(0); });
    pool.put(gc::make<int>(1));
    (void)pool.get();  // private
    (void)pool.get();  // New
    gc::collect();     // poolCleanup
  });
  ::testing::internal::GetCapturedStderr();
  ::unsetenv("GORO_DEBUG");
  ASSERT_TRUE(t.res.ok) << t.res.error;
  std::vector<std::string> from;
  for (const TraceEv& e : t.ev)
    if (e.name == "PoolGet") from.push_back(e.args_str("from"));
  EXPECT_EQ(from, (std::vector<std::string>{"private", "New"}));
  EXPECT_GE(t.count("i", "PoolCleanup"), 1u);
}

// A long run's trace goes to the file as it runs: many more events than
// one M's buffer holds, all of them there.
TEST_F(RuntimeTest, TraceStreamsPastTheBuffer) {
  Traced t = traced_run("long", 2, [] {
    auto c = make_chan<int>();
    go([=] {
      for (int i = 0; i < 20000; i++) c.send(i);
    });
    for (int i = 0; i < 20000; i++) c.recv();
  });
  ASSERT_TRUE(t.res.ok) << t.res.error;
  EXPECT_GE(t.count("i", "GoUnblock"), 19000u);
}

// A goroutine's panic ends the process; the trace must still be complete
// JSON, closed by the crash path, with the events up to the panic.
TEST_F(RuntimeTest, TraceOfPanickingProgramLoads) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string path = trace_path("panic");
  EXPECT_EXIT(
      {
        // The child (forked, or re-run by the threadsafe style): its parent
        // is this test, which reads the file.
        ::setenv("GORO_TRACE", trace_path("panic", ::getppid()).c_str(), 1);
        goro::run(Options{.procs = 2}, [] {
          auto c = make_chan<int>();
          go([=] {
            for (int i = 0; i < 100; i++) c.send(i);
            throw std::runtime_error("boom");
          });
          for (int i = 0; i < 100; i++) c.recv();
          sleep_for(std::chrono::seconds(10));
        });
      },
      ::testing::ExitedWithCode(2), "panic: boom");
  Traced t = read_file(path);
  std::remove(path.c_str());
  ASSERT_TRUE(t.res.ok) << t.res.error;
  ASSERT_FALSE(t.ev.empty());
  EXPECT_EQ(t.ev.back().name, "trace_end");
  EXPECT_EQ(t.ev.back().args_str("why"), "panic");
  EXPECT_GE(t.count("i", "GoUnblock"), 90u);
}

// A truncated file (SIGKILL) still yields the events before the cut.
TEST(TraceReader, TolerantOfTruncation) {
  const std::string s =
      R"({"traceEvents":[{"ph":"i","name":"a","pid":1,"tid":2,"ts":1.5,"args":{"g":3,"s":"x\"y"}},)"
      R"({"ph":"X","name":"b","pid":1,"tid":2,"ts":2,"dur":1},{"ph":"i","na)";
  std::vector<std::string> names;
  auto r = tracefile::read_trace(s, [&](const TraceEv& e) {
    names.push_back(e.name);
    if (e.name == "a") {
      EXPECT_EQ(e.argi("g"), 3);
      EXPECT_EQ(e.args_str("s"), "x\"y");
    }
  });
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace goro::test
