// runq_test.cpp — the per-P run queue on its own (sched/runq.cpp), with the
// shapes of Go's RunSchedLocalQueueTest, RunSchedLocalQueueStealTest and
// RunSchedLocalQueueEmptyTest (runtime/export_test.go, driven by
// TestSchedLocalQueue* in proc_test.go): Ps and Gs made by the test, no
// scheduler running, so every put, get and steal is the test's own.
//
// In the small_queues build runqSize is 4: the loops below then cover every
// fill level of the ring, and the overflow test reaches runqputslow with five
// goroutines.
#include <atomic>
#include <memory>
#include <thread>

#include "test_util.hpp"

namespace goro::detail {
namespace {

// gs returns n Gs that are never run: only their addresses (and sig, our
// mark) matter to the queue.
struct TestG {
  G g;
  int sig = 0;
};

std::unique_ptr<TestG[]> make_gs(std::size_t n) { return std::make_unique<TestG[]>(n); }

TestG* of(G* g, TestG* base, std::size_t n) {
  for (std::size_t i = 0; i < n; i++)
    if (&base[i].g == g) return &base[i];
  return nullptr;
}

G* get(P* p) {
  bool inherit = false;
  return runqget(p, &inherit);
}

// RunSchedLocalQueueTest: for every fill level, put i Gs and get them back
// in order; the queue is empty before and after.
TEST(Runq, LocalQueue) {
  auto p = std::make_unique<P>();
  auto gs = make_gs(runqSize);
  for (std::uint32_t i = 0; i < runqSize; i++) {
    ASSERT_EQ(get(p.get()), nullptr) << "runq is not empty initially, iter " << i;
    for (std::uint32_t j = 0; j < i; j++) runqput(p.get(), &gs[j].g, false);
    EXPECT_EQ(runqlen(p.get()), i);
    for (std::uint32_t j = 0; j < i; j++)
      ASSERT_EQ(get(p.get()), &gs[j].g) << "bad element at iter " << i << "/" << j;
    ASSERT_EQ(get(p.get()), nullptr) << "runq is not empty afterwards, iter " << i;
    EXPECT_TRUE(runqempty(p.get()));
  }
}

// runnext jumps the queue, and a second runnext kicks the first to the tail.
TEST(Runq, RunnextFirstAndKickedToTail) {
  auto p = std::make_unique<P>();
  auto gs = make_gs(3);
  runqput(p.get(), &gs[0].g, false);
  runqput(p.get(), &gs[1].g, true);
  runqput(p.get(), &gs[2].g, true);  // gs[1] goes to the tail
  bool inherit = false;
  EXPECT_EQ(runqget(p.get(), &inherit), &gs[2].g);
  EXPECT_TRUE(inherit) << "runnext inherits the time slice";
  EXPECT_EQ(runqget(p.get(), &inherit), &gs[0].g);
  EXPECT_FALSE(inherit);
  EXPECT_EQ(runqget(p.get(), &inherit), &gs[1].g);
  EXPECT_EQ(runqget(p.get(), &inherit), nullptr);
}

// RunSchedLocalQueueStealTest: p2 steals from p1 holding i Gs; every G is
// found exactly once (by the thief or left with the victim), and the thief
// took half, rounded up.
TEST(Runq, LocalQueueSteal) {
  auto p1 = std::make_unique<P>();
  auto p2 = std::make_unique<P>();
  auto gs = make_gs(runqSize);
  for (std::uint32_t i = 0; i < runqSize; i++) {
    for (std::uint32_t j = 0; j < i; j++) {
      gs[j].sig = 0;
      runqput(p1.get(), &gs[j].g, false);
    }
    std::uint32_t s = 0;
    if (G* g = runqsteal(p2.get(), p1.get(), true)) {
      s++;
      of(g, gs.get(), runqSize)->sig++;
    }
    while (G* g = get(p2.get())) {
      s++;
      of(g, gs.get(), runqSize)->sig++;
    }
    while (G* g = get(p1.get())) of(g, gs.get(), runqSize)->sig++;
    for (std::uint32_t j = 0; j < i; j++)
      ASSERT_EQ(gs[j].sig, 1) << "bad element " << j << " at iter " << i;
    ASSERT_TRUE(s == i / 2 || s == i / 2 + 1)
        << "bad steal " << s << ", want " << i / 2 << " or " << i / 2 + 1 << ", iter " << i;
  }
}

// A thief with stealRunNext takes runnext when the ring is empty (the P is
// idle, so it does not wait for the owner).
TEST(Runq, StealTakesRunnextFromAnIdleP) {
  auto p1 = std::make_unique<P>();
  auto p2 = std::make_unique<P>();
  auto gs = make_gs(1);
  runqput(p1.get(), &gs[0].g, true);
  EXPECT_EQ(runqsteal(p2.get(), p1.get(), false), nullptr) << "runnext is not stolen unless asked";
  EXPECT_EQ(runqsteal(p2.get(), p1.get(), true), &gs[0].g);
  EXPECT_TRUE(runqempty(p1.get()));
}

// RunSchedLocalQueueEmptyTest: runqempty must never report empty while a G
// is queued, even as the owner moves it between runnext and the ring; a
// second thread looks at the moment the owner puts and gets. Go starts a
// goroutine per iteration; here one watcher thread meets the owner at a
// rendezvous each iteration (a thread per iteration costs a minute on a
// loaded machine).
TEST(Runq, LocalQueueEmpty) {
  const int iters = static_cast<int>(goro::test::scaled(5000));
  auto p = std::make_unique<P>();
  auto gs = make_gs(2);
  std::atomic<int> round{-1};   // the owner opens round i
  std::atomic<int> ready{0};    // both sides arrived: go
  std::atomic<int> checked{-1}; // the watcher finished round i
  std::atomic<int> empty_at{-1};
  goro::test::Deadline deadline(std::chrono::seconds(120));
  auto wait = [&](auto cond) {
    while (!cond()) {
      if (deadline.passed()) return false;
      std::this_thread::yield();
    }
    return true;
  };
  // A jthread: if an assertion below ends the test early, its destructor
  // stops the watcher and joins it.
  std::jthread watcher([&](std::stop_token st) {
    for (int i = 0; i < iters; i++) {
      if (!wait([&] { return round.load() == i || st.stop_requested(); }) || st.stop_requested())
        return;
      ready.fetch_add(1);
      if (!wait([&] { return ready.load() == 2 || st.stop_requested(); }) || st.stop_requested())
        return;
      if (runqempty(p.get())) empty_at.store(i);
      checked.store(i);
    }
  });
  for (int i = 0; i < iters; i++) {
    const bool next0 = (i & 1) == 0;
    const bool next1 = (i & 2) == 0;
    ready.store(0);
    runqput(p.get(), &gs[0].g, next0);
    round.store(i);
    ready.fetch_add(1);
    ASSERT_TRUE(wait([&] { return ready.load() == 2; })) << "watcher lost, iter " << i;
    runqput(p.get(), &gs[1].g, next1);
    get(p.get());
    ASSERT_TRUE(wait([&] { return checked.load() == i; })) << "watcher lost, iter " << i;
    ASSERT_EQ(empty_at.load(), -1) << "queue reported empty, next0 " << next0 << " next1 " << next1;
    get(p.get());
    ASSERT_TRUE(runqempty(p.get()));
  }
  watcher.join();
}

// A full ring overflows to the global queue: runqputslow moves half of it
// plus the new G there in one batch, in order. Needs the runtime's sched
// (sched.lock), so it runs inside goro::run, on Ps the test made.
TEST(Runq, OverflowMovesHalfToGlobalQueue) {
  goro::run(goro::test::procs(1), [] {
    auto p = std::make_unique<P>();
    auto gs = make_gs(runqSize + 1);
    for (std::uint32_t j = 0; j <= runqSize; j++) runqput(p.get(), &gs[j].g, false);
    EXPECT_EQ(runqlen(p.get()), runqSize / 2) << "half of the ring stays";
    // Take the moved batch back off the global queue, under sched.lock, and
    // check it is the oldest half plus the new G, in order.
    Runtime* r = rt();
    std::lock_guard<Lock> lk(r->sched.lock);
    ASSERT_GE(r->sched.runqsize.load(), static_cast<std::int32_t>(runqSize / 2 + 1));
    for (std::uint32_t j = 0; j < runqSize / 2; j++) EXPECT_EQ(get(p.get()), &gs[runqSize / 2 + j].g);
    // What is left of the batch must be ours: drain exactly runqSize/2 + 1.
    std::uint32_t found = 0;
    G* prev = nullptr;
    for (G* g = r->sched.runqhead_; g != nullptr; prev = g, g = g->schedlink) {
      TestG* t = of(g, gs.get(), runqSize + 1);
      if (t == nullptr) continue;
      const auto idx = static_cast<std::uint32_t>(t - gs.get());
      EXPECT_EQ(idx, found == runqSize / 2 ? runqSize : found) << "batch order";
      found++;
    }
    (void)prev;
    EXPECT_EQ(found, runqSize / 2 + 1);
    // Unlink our Gs again so the scheduler never sees them.
    G** link = &r->sched.runqhead_;
    G* last = nullptr;
    while (*link != nullptr) {
      if (of(*link, gs.get(), runqSize + 1) != nullptr) {
        *link = (*link)->schedlink;
        r->sched.runqsize.fetch_sub(1);
      } else {
        last = *link;
        link = &(*link)->schedlink;
      }
    }
    r->sched.runqtail_ = last;
  });
}

}  // namespace
}  // namespace goro::detail
