// chan_test.cpp — channels (runtime/chan.cpp): send/receive across buffer
// sizes, close and its panics, nil channels, try_send/try_recv, range-for,
// move-only and non-default-constructible values, and the destruction of
// values left in a buffer.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "goro/goro.hpp"
#include "runtime/hchan.hpp"
#include "sched/proc.hpp"
#include "test_util.hpp"

namespace goro::test {
namespace {

class ChanTest : public ProcsTest {};
GORO_INSTANTIATE_PROCS(ChanTest);

// expect_panic runs fn and checks it throws goro::Panic with message msg.
template <class F>
void expect_panic(F&& fn, const std::string& msg) {
  try {
    fn();
    ADD_FAILURE() << "no panic, expected \"" << msg << "\"";
  } catch (const Panic& p) {
    EXPECT_EQ(std::string(p.what()), msg);
  }
}

// waiting counts the goroutines parked on ch, in its sendq (send) or recvq:
// how a test knows, without sleeping, that they have really blocked.
template <class T>
int waiting(const Chan<T>& ch, bool send) {
  detail::HchanBase* c = detail::hchan_of(ch);
  std::lock_guard<detail::Lock> lk(c->lock);
  int n = 0;
  for (detail::Sudog* s = (send ? c->sendq : c->recvq).first; s != nullptr; s = s->next) n++;
  return n;
}

// Four producers and four consumers over every buffer size 0..8: each value
// is received exactly once (count and sum), then close ends the consumers'
// range loops.
TEST_P(ChanTest, ManyProducersManyConsumers) {
  const long per = scaled(5000);
  for (std::size_t cap = 0; cap <= 8; cap++) {
    std::int64_t sum = 0, count = 0;
    run(opts(), [&] {
      auto ch = make_chan<std::int64_t>(cap);
      EXPECT_EQ(ch.cap(), cap);
      auto done = make_chan<std::pair<std::int64_t, std::int64_t>>();
      WaitGroup producers;
      for (int p = 0; p < 4; p++) {
        producers.add(1);
        go([=, &producers] {
          for (long i = 0; i < per; i++) ch.send(p * per + i + 1);
          producers.done();
        });
      }
      for (int c = 0; c < 4; c++) {
        go([=] {
          std::int64_t s = 0, n = 0;
          for (std::int64_t v : ch) {
            s += v;
            n++;
          }
          done.send({s, n});
        });
      }
      producers.wait();
      ch.close();
      for (int c = 0; c < 4; c++) {
        auto r = done.recv();
        ASSERT_TRUE(r.has_value());
        sum += r->first;
        count += r->second;
      }
    });
    const std::int64_t total = 4 * per;
    EXPECT_EQ(count, total) << "cap " << cap;
    EXPECT_EQ(sum, total * (total + 1) / 2) << "cap " << cap;
  }
}

// A buffered channel keeps FIFO order, including when a sender parked on a
// full ring moves its value into the tail as a receiver frees the head.
TEST_P(ChanTest, BufferedFifo) {
  run(opts(), [] {
    auto ch = make_chan<int>(3);
    const int n = 1000;
    go([=] {
      for (int i = 0; i < n; i++) ch.send(i);
      ch.close();
    });
    int want = 0;
    for (int v : ch) EXPECT_EQ(v, want++);
    EXPECT_EQ(want, n);
  });
}

TEST_P(ChanTest, UnbufferedRendezvous) {
  run(opts(), [] {
    auto ping = make_chan<int>();
    auto pong = make_chan<int>();
    go([=] {
      while (auto v = ping.recv()) pong.send(*v + 1);
      pong.close();
    });
    for (int i = 0; i < 1000; i++) {
      ping.send(i);
      EXPECT_EQ(pong.recv(), i + 1);
    }
    ping.close();
    EXPECT_EQ(pong.recv(), std::nullopt);
  });
}

TEST_P(ChanTest, LenCapAndIdentity) {
  run(opts(), [] {
    auto ch = make_chan<int>(4);
    EXPECT_EQ(ch.len(), 0u);
    EXPECT_EQ(ch.cap(), 4u);
    ch.send(1);
    ch.send(2);
    EXPECT_EQ(ch.len(), 2u);
    Chan<int> alias = ch;  // a reference: same channel
    EXPECT_TRUE(alias == ch);
    EXPECT_EQ(alias.recv(), 1);
    EXPECT_EQ(ch.len(), 1u);
    EXPECT_FALSE(make_chan<int>(4) == ch);
    Chan<int> nil;
    EXPECT_FALSE(nil);
    EXPECT_TRUE(ch);
    EXPECT_EQ(nil.len(), 0u);
    EXPECT_EQ(nil.cap(), 0u);
    EXPECT_TRUE(nil == Chan<int>());
    EXPECT_EQ(make_chan<int>().cap(), 0u);
  });
}

// Closing: buffered values are still delivered, then nullopt, forever;
// every misuse panics with Go's message.
TEST_P(ChanTest, CloseSemantics) {
  run(opts(), [] {
    auto ch = make_chan<int>(2);
    ch.send(7);
    ch.close();
    EXPECT_EQ(ch.recv(), 7);
    EXPECT_EQ(ch.recv(), std::nullopt);
    EXPECT_EQ(ch.recv(), std::nullopt);
    EXPECT_EQ(ch.try_recv(), std::nullopt);
    expect_panic([&] { ch.send(1); }, "send on closed channel");
    expect_panic([&] { ch.try_send(1); }, "send on closed channel");
    expect_panic([&] { ch.close(); }, "close of closed channel");
    Chan<int> nil;
    expect_panic([&] { nil.close(); }, "close of nil channel");
  });
}

// close wakes every parked receiver (nullopt) and every parked sender (which
// panics "send on closed channel").
TEST_P(ChanTest, CloseWakesAllWaiters) {
  run(opts(), [] {
    auto ch = make_chan<int>();
    auto results = make_chan<std::string>(16);
    std::atomic<int> parked{0};
    for (int i = 0; i < 4; i++) {
      go([=, &parked] {
        parked++;
        auto v = ch.recv();
        results.send(v ? "value" : "closed");
      });
      go([=, &parked] {
        parked++;
        try {
          ch.send(1);
          results.send("sent");
        } catch (const Panic& p) {
          results.send(p.what());
        }
      });
    }
    // The receivers and senders may pair up with each other before close:
    // each pair yields "value" + "sent". Whatever is left when close comes
    // yields "closed" or the panic.
    while (parked.load() < 8) yield();
    ch.close();
    int value = 0, sent = 0, closed = 0, panicked = 0;
    for (int i = 0; i < 8; i++) {
      auto r = results.recv();
      ASSERT_TRUE(r.has_value());
      if (*r == "value")
        value++;
      else if (*r == "sent")
        sent++;
      else if (*r == "closed")
        closed++;
      else if (*r == "send on closed channel")
        panicked++;
      else
        ADD_FAILURE() << "unexpected result " << *r;
    }
    EXPECT_EQ(value, sent);
    EXPECT_EQ(closed, 4 - value);
    EXPECT_EQ(panicked, 4 - sent);
  });
}

// Parked senders, then close: the deterministic version (nobody receives).
TEST_P(ChanTest, CloseWakesParkedSenders) {
  run(opts(), [] {
    auto ch = make_chan<int>(1);
    ch.send(0);  // full: every further send parks
    auto results = make_chan<std::string>(4);
    for (int i = 0; i < 4; i++) {
      go([=] {
        try {
          ch.send(1);
          results.send("sent");
        } catch (const Panic& p) {
          results.send(p.what());
        }
      });
    }
    // Wait until all four are parked in the channel's sendq.
    while (waiting(ch, true) < 4) yield();
    ch.close();
    for (int i = 0; i < 4; i++) EXPECT_EQ(results.recv(), "send on closed channel");
    EXPECT_EQ(ch.recv(), 0);  // the buffered value survives close
    EXPECT_EQ(ch.recv(), std::nullopt);
  });
}

TEST_P(ChanTest, TrySendTryRecv) {
  run(opts(), [] {
    auto ch = make_chan<int>(1);
    EXPECT_EQ(ch.try_recv(), std::nullopt);
    EXPECT_TRUE(ch.try_send(1));
    EXPECT_FALSE(ch.try_send(2));  // full
    EXPECT_EQ(ch.try_recv(), 1);
    EXPECT_EQ(ch.try_recv(), std::nullopt);

    auto unbuf = make_chan<int>();
    EXPECT_FALSE(unbuf.try_send(1));  // no receiver
    EXPECT_EQ(unbuf.try_recv(), std::nullopt);

    // A parked receiver makes try_send succeed (direct handoff).
    auto got = make_chan<int>(1);
    go([=] { got.send(*unbuf.recv()); });
    while (!unbuf.try_send(42)) yield();
    EXPECT_EQ(got.recv(), 42);
    // A parked sender makes try_recv succeed.
    go([=] { unbuf.send(43); });
    std::optional<int> v;
    while (!(v = unbuf.try_recv())) yield();
    EXPECT_EQ(v, 43);

    Chan<int> nil;
    EXPECT_FALSE(nil.try_send(1));
    EXPECT_EQ(nil.try_recv(), std::nullopt);
  });
}

TEST_P(ChanTest, RangeFor) {
  run(opts(), [] {
    auto ch = make_chan<std::string>(2);
    go([=] {
      for (int i = 0; i < 10; i++) ch.send(std::to_string(i));
      ch.close();
    });
    std::string all;
    for (std::string s : ch) all += s;
    EXPECT_EQ(all, "0123456789");
    // An empty, closed channel: the body never runs.
    auto empty = make_chan<int>();
    empty.close();
    for (int v : empty) ADD_FAILURE() << "got " << v;
  });
}

TEST_P(ChanTest, MoveOnlyValues) {
  for (std::size_t cap : {0u, 1u, 4u}) {
    run(opts(), [cap] {
      auto ch = make_chan<std::unique_ptr<int>>(cap);
      go([=] {
        for (int i = 0; i < 100; i++) ch.send(std::make_unique<int>(i));
        ch.close();
      });
      int want = 0;
      for (std::unique_ptr<int> p : ch) {
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(*p, want++);
      }
      EXPECT_EQ(want, 100);
    });
  }
}

// NoDefault has no default constructor, no copy and no assignment.
struct NoDefault {
  explicit NoDefault(int x) : v(x) {}
  NoDefault(NoDefault&& o) noexcept : v(o.v) { o.v = -1; }
  NoDefault(const NoDefault&) = delete;
  NoDefault& operator=(const NoDefault&) = delete;
  NoDefault& operator=(NoDefault&&) = delete;
  int v;
};

TEST_P(ChanTest, NonDefaultConstructible) {
  for (std::size_t cap : {0u, 2u}) {
    run(opts(), [cap] {
      auto ch = make_chan<NoDefault>(cap);
      go([=] {
        for (int i = 0; i < 50; i++) ch.send(NoDefault(i));
        ch.close();
      });
      int want = 0;
      for (auto&& x : ch) EXPECT_EQ(x.v, want++);
      EXPECT_EQ(want, 50);
    });
  }
}

// Counted tracks live instances: values left in a buffer are destroyed
// exactly once, when the last Chan goes away.
struct Counted {
  static inline std::atomic<int> live{0};
  static inline std::atomic<int> destroyed{0};
  explicit Counted(int x) : v(x) { live++; }
  Counted(Counted&& o) noexcept : v(o.v) { live++; }
  Counted(const Counted&) = delete;
  ~Counted() {
    live--;
    destroyed++;
  }
  int v;
};

TEST_P(ChanTest, BufferedValuesDestroyedOnce) {
  Counted::live = 0;
  Counted::destroyed = 0;
  run(opts(), [] {
    {
      auto ch = make_chan<Counted>(8);
      Chan<Counted> alias = ch;
      for (int i = 0; i < 6; i++) ch.send(Counted(i));
      EXPECT_EQ(Counted::live.load(), 6);  // the six in the ring
      EXPECT_EQ(ch.recv()->v, 0);          // one taken out (and destroyed)
      EXPECT_EQ(Counted::live.load(), 5);
      ch = Chan<Counted>();  // one reference left: nothing destroyed yet
      EXPECT_EQ(Counted::live.load(), 5);
      // Wrap the ring: recvx/sendx no longer start at 0.
      for (int i = 0; i < 3; i++) {
        EXPECT_TRUE(alias.try_send(Counted(10 + i)));
        EXPECT_TRUE(alias.try_recv().has_value());
      }
      EXPECT_EQ(Counted::live.load(), 5);
    }  // alias, the last reference, goes: the five buffered values die
    EXPECT_EQ(Counted::live.load(), 0);
  });
  EXPECT_EQ(Counted::live.load(), 0);
}

// A nil channel blocks forever; a goroutine stuck on one is abandoned when
// main returns (Go's behaviour), and does not stop the program.
TEST_P(ChanTest, NilChannelBlocks) {
  run(opts(), [] {
    // The goroutines are abandoned parked: they hold no reference to an
    // allocated channel (that would leak), so they borrow `started`.
    auto started = make_chan<int>(2);
    go([&started] {
      Chan<int> nil;
      started.send(1);
      nil.send(1);
      ADD_FAILURE() << "send on a nil channel returned";
    });
    go([&started] {
      Chan<int> nil;
      started.send(2);
      (void)nil.recv();
      ADD_FAILURE() << "recv on a nil channel returned";
    });
    started.recv();
    started.recv();
    for (int i = 0; i < 10; i++) yield();
  });
}

// Go's test/chancap.go: a buffer the allocator cannot serve is the panic
// "makechan: size out of range", never std::bad_alloc: above Go's maxAlloc
// (2^45 int64s are 2^48 bytes), and the largest sizes.
TEST_F(RuntimeTest, MakechanSizeOutOfRangePanics) {
  goro::run(procs(1), [] {
    expect_panic([] { make_chan<std::int64_t>(std::size_t(1) << 45); }, "makechan: size out of range");
    expect_panic([] { make_chan<std::int64_t>(SIZE_MAX); }, "makechan: size out of range");
    expect_panic([] { make_chan<char>(SIZE_MAX - 8); }, "makechan: size out of range");
    struct Big {
      char b[1 << 20];
    };
    expect_panic([] { make_chan<Big>(std::size_t(1) << 40); }, "makechan: size out of range");
    // Below the bound but more than the machine can give (64 TiB): the
    // allocation fails and that is the same panic. Only where the kernel
    // refuses such a request (overcommit heuristic or strict; with
    // overcommit_memory=1 the reservation would succeed), and not under the
    // sanitizers, whose allocators abort instead of failing.
    if (!kSanitized) {
      int mode = -1;
      if (FILE* f = std::fopen("/proc/sys/vm/overcommit_memory", "r")) {
        if (std::fscanf(f, "%d", &mode) != 1) mode = -1;
        std::fclose(f);
      }
      if (mode == 0 || mode == 2)
        expect_panic([] { make_chan<std::int64_t>(std::size_t(1) << 43); },
                     "makechan: size out of range");
    }
    // A size that fits is fine.
    auto ok = make_chan<std::int64_t>(1 << 20);
    EXPECT_EQ(ok.cap(), std::size_t(1) << 20);
  });
}

TEST_F(RuntimeTest, ChanOutsideRuntimeIsAnError) {
  auto ch = make_chan<int>(1);  // making one is fine anywhere
  EXPECT_THROW(ch.send(1), Error);
  EXPECT_THROW(ch.recv(), Error);
  EXPECT_EQ(ch.len(), 0u);
}

}  // namespace
}  // namespace goro::test
