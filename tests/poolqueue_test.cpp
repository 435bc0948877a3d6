// poolqueue_test.cpp — poolDequeue and poolChain (pool/poolqueue.cpp), on
// plain threads: the queues know nothing of goroutines, only of "one owner,
// many stealers". Mirrors Go's TestPoolDequeue / TestPoolChain.
#include "pool/poolqueue.hpp"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace goro::test {
namespace {

using detail::poolChain;
using detail::poolDequeue;

// val turns a small integer into a non-null fake pointer and back.
void* val(std::uintptr_t i) {
  return reinterpret_cast<void*>((i + 1) << 4);
}
std::uintptr_t idx(void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) >> 4) - 1;
}

TEST(PoolDequeue, FifoAtTailLifoAtHead) {
  poolDequeue* d = poolDequeue::make(8);
  EXPECT_EQ(d->popHead(), nullptr);
  EXPECT_EQ(d->popTail(), nullptr);
  for (std::uintptr_t i = 0; i < 8; i++) EXPECT_TRUE(d->pushHead(val(i)));
  EXPECT_FALSE(d->pushHead(val(8))) << "a ring of 8 holds 8";
  EXPECT_EQ(d->popTail(), val(0));
  EXPECT_EQ(d->popHead(), val(7));
  EXPECT_TRUE(d->pushHead(val(9)));  // the slot popTail freed is reusable
  EXPECT_TRUE(d->pushHead(val(10)));
  EXPECT_FALSE(d->pushHead(val(11)));
  EXPECT_EQ(d->popHead(), val(10));
  for (std::uintptr_t i = 1; i < 7; i++) EXPECT_EQ(d->popTail(), val(i));
  EXPECT_EQ(d->popTail(), val(9));
  EXPECT_EQ(d->popTail(), nullptr);
  EXPECT_EQ(d->popHead(), nullptr);
  poolDequeue::destroy(d);
}

// Head and tail are 32-bit counters reduced mod the size: many laps must
// keep working.
TEST(PoolDequeue, ManyLaps) {
  poolDequeue* d = poolDequeue::make(4);
  for (std::uintptr_t i = 0; i < 100000; i++) {
    ASSERT_TRUE(d->pushHead(val(i)));
    ASSERT_TRUE(d->pushHead(val(i + 1)));
    ASSERT_EQ(d->popTail(), val(i));
    ASSERT_EQ(d->popHead(), val(i + 1));
  }
  poolDequeue::destroy(d);
}

TEST(PoolChain, GrowsByDoublingAndStealersDropDrainedRings) {
  poolChain c;
  EXPECT_EQ(c.popTail(), nullptr);
  EXPECT_EQ(c.popHead(), nullptr);
  // first + 2*first + 4*first values fill three rings (8 + 16 + 32 = 56,
  // or 2 + 4 + 8 = 14 in the small_queues build).
  constexpr std::uintptr_t f = goro::detail::poolChainFirstSize, three = f + 2 * f + 4 * f;
  for (std::uintptr_t i = 0; i < three; i++) c.pushHead(val(i));
  EXPECT_EQ(c.nrings(), 3u);
  c.pushHead(val(three));
  EXPECT_EQ(c.nrings(), 4u);
  // Stealing drains the oldest ring first, in push order, and drops it.
  for (std::uintptr_t i = 0; i < f + 1; i++) EXPECT_EQ(c.popTail(), val(i));
  EXPECT_EQ(c.nrings(), 3u);
  // The owner pops newest first, walking back over rings.
  for (std::uintptr_t i = three; i >= f + 1; i--) EXPECT_EQ(c.popHead(), val(i));
  EXPECT_EQ(c.popHead(), nullptr);
  EXPECT_EQ(c.popTail(), nullptr);
  // Stealers on an empty chain drop every ring but the head.
  EXPECT_EQ(c.nrings(), 1u);
  c.free_retired();
}

// One owner pushes (and sometimes pops) while stealers pop from the tail:
// every value comes out exactly once. Go's TestPoolDequeue/TestPoolChain.
template <class Q>
void oneProducerManyStealers(Q& q, long n, int nstealers) {
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n));
  for (auto& s : seen) s.store(0);
  std::atomic<bool> stop{false};
  std::atomic<long> got{0};
  auto record = [&](void* v) {
    const std::uintptr_t i = idx(v);
    ASSERT_LT(i, std::uintptr_t(n));
    EXPECT_EQ(seen[i].fetch_add(1), 0) << "value " << i << " popped twice";
    got.fetch_add(1);
  };
  std::vector<std::thread> ts;
  for (int s = 0; s < nstealers; s++)
    ts.emplace_back([&] {
      for (;;) {
        if (void* v = q.popTail()) {
          record(v);
        } else if (stop.load()) {
          if (void* w = q.popTail())
            record(w);
          else
            return;
        }
      }
    });
  for (long i = 0; i < n; i++) {
    while (!q.pushHead(val(std::uintptr_t(i)))) {  // a full ring: let stealers catch up
      if (void* v = q.popHead()) record(v);
    }
    if (i % 10 == 0) {
      if (void* v = q.popHead()) record(v);
    }
  }
  stop.store(true);
  for (auto& t : ts) t.join();
  while (void* v = q.popHead()) record(v);
  EXPECT_EQ(got.load(), n);
  for (long i = 0; i < n; i++) ASSERT_EQ(seen[std::size_t(i)].load(), 1) << "value " << i;
}

// pushHead on a chain never fails; adapt it to the dequeue's bool contract.
struct ChainQ {
  poolChain c;
  bool pushHead(void* v) {
    c.pushHead(v);
    return true;
  }
  void* popHead() { return c.popHead(); }
  void* popTail() { return c.popTail(); }
};

struct DequeQ {
  poolDequeue* d = poolDequeue::make(16);
  ~DequeQ() { poolDequeue::destroy(d); }
  bool pushHead(void* v) { return d->pushHead(v); }
  void* popHead() { return d->popHead(); }
  void* popTail() { return d->popTail(); }
};

class PoolQueueStress : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(Stealers, PoolQueueStress, ::testing::Values(1, 2, 4, 8),
                         [](const auto& i) { return "stealers" + std::to_string(i.param); });

TEST_P(PoolQueueStress, DequeueEveryValueOnce) {
  DequeQ q;
  oneProducerManyStealers(q, scaled(400000), GetParam());
}

TEST_P(PoolQueueStress, ChainEveryValueOnce) {
  ChainQ q;
  oneProducerManyStealers(q, scaled(400000), GetParam());
  q.c.free_retired();
}

}  // namespace
}  // namespace goro::test
