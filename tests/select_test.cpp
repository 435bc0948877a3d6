// select_test.cpp — select (runtime/select.cpp): ready cases, default, nil
// channels, fairness, parking on several channels, send and receive of one
// channel in one select, closing channels, and many-case selects.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "goro/goro.hpp"
#include "runtime/hchan.hpp"
#include "test_util.hpp"

namespace goro::test {
namespace {

class SelectTest : public ProcsTest {};
GORO_INSTANTIATE_PROCS(SelectTest);

TEST_P(SelectTest, ReadyCaseRunsItsFunction) {
  run(opts(), [] {
    auto a = make_chan<int>(1);
    auto b = make_chan<std::string>(1);
    b.send("hi");
    std::string got;
    std::size_t i = select(case_recv(a, [](std::optional<int>) { ADD_FAILURE(); }),
                           case_recv(b, [&](std::optional<std::string> v) { got = *v; }));
    EXPECT_EQ(i, 1u);
    EXPECT_EQ(got, "hi");

    bool sent = false;
    i = select(case_recv(b), case_send(a, 5, [&] { sent = true; }));
    EXPECT_EQ(i, 1u);
    EXPECT_TRUE(sent);
    EXPECT_EQ(a.recv(), 5);

    // fn may be omitted, or take no argument.
    a.send(6);
    EXPECT_EQ(select(case_recv(a)), 0u);
    a.send(7);
    int calls = 0;
    EXPECT_EQ(select(case_recv(a, [&] { calls++; })), 0u);
    EXPECT_EQ(calls, 1);
  });
}

TEST_P(SelectTest, DefaultWhenNothingReady) {
  run(opts(), [] {
    auto a = make_chan<int>();
    auto full = make_chan<int>(1);
    full.send(0);
    bool dflt = false;
    std::size_t i = select(case_recv(a), case_send(full, 1), case_default([&] { dflt = true; }));
    EXPECT_EQ(i, 2u);
    EXPECT_TRUE(dflt);
    EXPECT_EQ(full.recv(), 0);  // the send case's value was dropped, not sent
    EXPECT_EQ(full.len(), 0u);
    EXPECT_EQ(select(case_default()), 0u);
    // The default may come first.
    EXPECT_EQ(select(case_default(), case_recv(a)), 0u);
    full.send(3);
    EXPECT_EQ(select(case_default(), case_recv(full)), 1u);
  });
}

TEST_P(SelectTest, NilChannelIsSkipped) {
  run(opts(), [] {
    Chan<int> nil;
    auto ready = make_chan<int>(1);
    for (int k = 0; k < 100; k++) {
      ready.send(k);
      std::optional<int> got;
      std::size_t i = select(case_recv(nil, [](std::optional<int>) { ADD_FAILURE(); }),
                             case_send(nil, 1, [] { ADD_FAILURE(); }),
                             case_recv(ready, [&](std::optional<int> v) { got = v; }));
      EXPECT_EQ(i, 2u);
      EXPECT_EQ(got, k);
    }
    EXPECT_EQ(select(case_recv(nil), case_send(nil, 1), case_default()), 2u);
  });
}

// Two always-ready channels: over 10k selects each is chosen 40-60%.
TEST_P(SelectTest, FairAmongReadyCases) {
  run(opts(), [] {
    auto a = make_chan<int>(1);
    auto b = make_chan<int>(1);
    const int n = 10000;
    int na = 0, nb = 0;
    for (int k = 0; k < n; k++) {
      if (a.len() == 0) a.send(1);
      if (b.len() == 0) b.send(2);
      select(case_recv(a, [&](std::optional<int>) { na++; }),
             case_recv(b, [&](std::optional<int>) { nb++; }));
    }
    EXPECT_EQ(na + nb, n);
    EXPECT_GE(na, n * 4 / 10);
    EXPECT_LE(na, n * 6 / 10);
  });
}

// A parked select is woken by whichever channel gets a partner first, and
// withdraws from the others: later operations on those channels do not
// see a stale waiter.
TEST_P(SelectTest, ParksOnAllChannels) {
  run(opts(), [] {
    auto a = make_chan<int>();
    auto b = make_chan<int>();
    auto c = make_chan<int>();
    auto result = make_chan<std::size_t>();
    const int rounds = static_cast<int>(scaled(2000));
    go([=] {
      for (int k = 0; k < rounds; k++) {
        int v = -1;
        std::size_t i =
            select(case_recv(a, [&](std::optional<int> x) { v = *x; }),
                   case_recv(b, [&](std::optional<int> x) { v = *x; }), case_send(c, k));
        result.send(i * 1000000 + static_cast<std::size_t>(v + 1));
      }
    });
    for (int k = 0; k < rounds; k++) {
      switch (k % 3) {
        case 0: {
          a.send(k);
          EXPECT_EQ(result.recv(), 0 * 1000000 + static_cast<std::size_t>(k + 1));
          break;
        }
        case 1: {
          b.send(k);
          EXPECT_EQ(result.recv(), 1 * 1000000 + static_cast<std::size_t>(k + 1));
          break;
        }
        case 2: {
          EXPECT_EQ(c.recv(), k);
          EXPECT_EQ(result.recv(), 2 * 1000000u);
          break;
        }
      }
    }
  });
}

// Go's TestSelfSelect: two goroutines each select on sending to and
// receiving from the same channel. They must pair with each other, never
// with themselves.
TEST_P(SelectTest, SendAndRecvSameChannel) {
  for (std::size_t cap : {0u, 10u}) {
    run(opts(), [cap] {
      auto ch = make_chan<int>(cap);
      WaitGroup wg;
      std::atomic<int> sends{0}, recvs{0};
      const int iters = static_cast<int>(scaled(2000));
      for (int p = 0; p < 2; p++) {
        wg.add(1);
        go([=, &wg, &sends, &recvs] {
          for (int i = 0; i < iters; i++) {
            if (p == 0 || i % 2 == 0) {
              select(case_send(ch, p, [&] { sends++; }), case_recv(ch, [&](std::optional<int> v) {
                       recvs++;
                       if (cap == 0) {
                         EXPECT_NE(*v, p) << "self receive";
                       }
                     }));
            } else {
              select(case_recv(ch,
                               [&](std::optional<int> v) {
                                 recvs++;
                                 if (cap == 0) {
                                   EXPECT_NE(*v, p) << "self receive";
                                 }
                               }),
                     case_send(ch, p, [&] { sends++; }));
            }
          }
          wg.done();
        });
      }
      wg.wait();
      EXPECT_EQ(sends.load() - recvs.load(), static_cast<int>(ch.len()));
      EXPECT_EQ(sends.load() + recvs.load(), 2 * iters);
    });
  }
}

// A consumer selects in a loop over a data channel and a second channel
// until the data channel is closed; every value arrives once, then nullopt.
TEST_P(SelectTest, LoopAgainstClosingChannel) {
  for (std::size_t cap : {0u, 3u}) {
    run(opts(), [cap] {
      auto data = make_chan<int>(cap);
      auto other = make_chan<int>();
      const int n = static_cast<int>(scaled(5000));
      go([=] {
        for (int i = 1; i <= n; i++) data.send(i);
        data.close();
      });
      std::int64_t sum = 0;
      int count = 0;
      bool closed = false;
      while (!closed) {
        select(case_recv(data,
                         [&](std::optional<int> v) {
                           if (!v) {
                             closed = true;
                             return;
                           }
                           sum += *v;
                           count++;
                         }),
               case_recv(other, [](std::optional<int>) { ADD_FAILURE(); }));
      }
      EXPECT_EQ(count, n);
      EXPECT_EQ(sum, static_cast<std::int64_t>(n) * (n + 1) / 2);
      // A closed channel is always ready in a select.
      EXPECT_EQ(select(case_recv(other), case_recv(data)), 1u);
    });
  }
}

// The quit pattern: a producer selects between sending and a quit channel;
// close(quit) wakes it while it is parked in the select.
TEST_P(SelectTest, CloseWakesParkedSelect) {
  run(opts(), [] {
    auto out = make_chan<int>();
    auto quit = make_chan<int>();
    auto done = make_chan<int>();
    go([=] {
      int sent = 0;
      for (;;) {
        bool stop = false;
        select(case_send(out, sent, [&] { sent++; }), case_recv(quit, [&](std::optional<int> v) {
                 EXPECT_FALSE(v.has_value());
                 stop = true;
               }));
        if (stop) break;
      }
      done.send(sent);
    });
    for (int i = 0; i < 100; i++) EXPECT_EQ(out.recv(), i);
    quit.close();
    EXPECT_EQ(done.recv(), 100);
  });
}

TEST_P(SelectTest, SendOnClosedChannelPanics) {
  run(opts(), [] {
    auto ch = make_chan<int>(1);
    ch.close();
    try {
      select(case_send(ch, 1), case_default());
      ADD_FAILURE() << "no panic";
    } catch (const Panic& p) {
      EXPECT_STREQ(p.what(), "send on closed channel");
    }
    // Parked in a select's send case when the channel is closed.
    auto unbuf = make_chan<int>();
    auto never = make_chan<int>();
    auto result = make_chan<std::string>(1);
    go([=] {
      try {
        select(case_send(unbuf, 1), case_recv(never));
        result.send("no panic");
      } catch (const Panic& p) {
        result.send(p.what());
      }
    });
    // Close only once it is parked (or it panics in pass 1: same message).
    yield();
    unbuf.close();
    EXPECT_EQ(result.recv(), "send on closed channel");
  });
}

// Many goroutines select over several shared channels, sending and
// receiving: every value is received exactly once.
TEST_P(SelectTest, StressManySelects) {
  run(opts(), [] {
    std::array<Chan<int>, 3> chs = {make_chan<int>(), make_chan<int>(1), make_chan<int>(4)};
    const int per = static_cast<int>(scaled(3000));
    WaitGroup senders, receivers;
    std::atomic<std::int64_t> sum{0};
    std::atomic<int> count{0};
    for (int p = 0; p < 4; p++) {
      senders.add(1);
      go([=, &senders] {
        for (int i = 0; i < per; i++) {
          const int v = p * per + i + 1;
          select(case_send(chs[0], v), case_send(chs[1], v), case_send(chs[2], v));
        }
        senders.done();
      });
    }
    auto quit = make_chan<int>();
    for (int c = 0; c < 4; c++) {
      receivers.add(1);
      go([=, &receivers, &sum, &count] {
        auto take = [&](std::optional<int> v) {
          sum += *v;
          count++;
        };
        for (;;) {
          bool stop = false;
          select(case_recv(chs[0], take), case_recv(chs[1], take), case_recv(chs[2], take),
                 case_recv(quit, [&](std::optional<int>) { stop = true; }));
          if (stop) break;
        }
        receivers.done();
      });
    }
    senders.wait();
    // Everything sent has been handed over or sits in a buffer: wait for the
    // consumers to drain the buffers, then stop them.
    while (count.load() < 4 * per) yield();
    quit.close();
    receivers.wait();
    const std::int64_t total = 4 * per;
    EXPECT_EQ(count.load(), total);
    EXPECT_EQ(sum.load(), total * (total + 1) / 2);
  });
}

// More cases than selectgo keeps in its frame, with a channel repeated.
TEST_P(SelectTest, ManyCasesAndDuplicates) {
  run(opts(), [] {
    std::vector<Chan<int>> chs;
    for (int i = 0; i < 10; i++) chs.push_back(make_chan<int>(1));
    for (int round = 0; round < 50; round++) {
      const int k = round % 10;
      chs[k].send(round);
      int got = -1;
      auto f = [&](std::optional<int> v) { got = *v; };
      std::size_t i = select(case_recv(chs[0], f), case_recv(chs[1], f), case_recv(chs[2], f),
                             case_recv(chs[3], f), case_recv(chs[4], f), case_recv(chs[5], f),
                             case_recv(chs[6], f), case_recv(chs[7], f), case_recv(chs[8], f),
                             case_recv(chs[9], f), case_recv(chs[k], f), case_send(chs[k], -5));
      EXPECT_EQ(got, round);
      EXPECT_TRUE(i == static_cast<std::size_t>(k) || i == 10u) << i;
    }
    // Parked on eleven cases (one channel twice), woken by one send.
    auto unbuf = make_chan<int>();
    std::vector<Chan<int>> idle;
    for (int i = 0; i < 10; i++) idle.push_back(make_chan<int>());
    go([=] { unbuf.send(99); });
    int got = -1;
    auto f = [&](std::optional<int> v) { got = *v; };
    std::size_t i = select(case_recv(idle[0], f), case_recv(idle[1], f), case_recv(idle[2], f),
                           case_recv(idle[3], f), case_recv(idle[4], f), case_recv(unbuf, f),
                           case_recv(idle[5], f), case_recv(idle[6], f), case_recv(idle[7], f),
                           case_recv(idle[8], f), case_recv(idle[9], f), case_recv(unbuf, f));
    EXPECT_TRUE(i == 5u || i == 11u) << i;
    EXPECT_EQ(got, 99);
    for (auto& c : idle) EXPECT_FALSE(c.try_send(1));  // no stale waiter left behind
  });
}

TEST_P(SelectTest, MoveOnlyValues) {
  run(opts(), [] {
    auto ch = make_chan<std::unique_ptr<int>>();
    go([=] {
      for (int i = 0; i < 100; i++) select(case_send(ch, std::make_unique<int>(i)));
      ch.close();
    });
    int want = 0;
    for (;;) {
      std::unique_ptr<int> p;
      bool closed = false;
      select(case_recv(ch, [&](std::optional<std::unique_ptr<int>> v) {
        if (v)
          p = std::move(*v);
        else
          closed = true;
      }));
      if (closed) break;
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(*p, want++);
    }
    EXPECT_EQ(want, 100);
  });
}

// A case borrows a Chan lvalue for its select statement (no reference
// taken) and owns everything else: an rvalue, and any copy or move of a case,
// so a case kept beyond its statement (an AnyCase) keeps its channel alive.
TEST_P(SelectTest, CasesBorrowLvaluesAndOwnTheRest) {
  run(opts(), [] {
    auto a = make_chan<int>(4);
    const detail::HchanBase* h = detail::hchan_of(a);
    auto refs = [h] { return h->refs.load(std::memory_order_relaxed); };
    std::intptr_t during = 0;

    // The case functions run inside select, while its cases still exist.
    a.send(1);
    select(case_recv(a, [&] { during = refs(); }));
    EXPECT_EQ(during, 1);  // borrowed: a's own reference only
    a.send(2);
    select(case_send(a, 3, [&] { during = refs(); }), case_default());
    EXPECT_EQ(during, 1);
    EXPECT_EQ(a.recv(), 2);
    EXPECT_EQ(a.recv(), 3);

    a.send(4);
    select(case_recv(Chan<int>(a), [&] { during = refs(); }));
    EXPECT_EQ(during, 2);  // the temporary's reference, kept by the case
    EXPECT_EQ(refs(), 1);

    {
      auto c = case_recv(a);   // borrowed
      auto d = std::move(c);   // a moved case owns
      EXPECT_EQ(refs(), 2);
      a.send(5);
      EXPECT_EQ(select(std::move(d), case_default()), 0u);
      EXPECT_EQ(d.val, 5);
    }
    EXPECT_EQ(refs(), 1);

    // An AnyCase made from a local Chan that goes out of scope still
    // receives from it (ASan reports a borrowed channel that dangled).
    std::vector<AnyCase> cases;
    std::optional<int> got;
    {
      auto local = make_chan<int>(1);
      local.send(6);
      cases.push_back(case_recv(local, [&](std::optional<int> v) { got = v; }));
    }
    EXPECT_EQ(select(cases), 0u);
    EXPECT_EQ(got, 6);
  });
}

// select() with no cases, or only nil channels, blocks forever; the
// goroutine is abandoned when main returns.
TEST_P(SelectTest, EmptySelectBlocks) {
  run(opts(), [] {
    auto started = make_chan<int>(2);
    go([&started] {
      started.send(1);
      select();
      ADD_FAILURE() << "select() returned";
    });
    go([&started] {
      Chan<int> nil;
      started.send(2);
      select(case_recv(nil), case_send(nil, 1));
      ADD_FAILURE() << "select over nil channels returned";
    });
    started.recv();
    started.recv();
    for (int i = 0; i < 10; i++) yield();
  });
}

// ---------------------------------------------------------------------------
// select(std::span<AnyCase>): a run-time number of cases (reflect.Select).

// Fan-in over N channels: each producer sends its values and closes; one
// select over N receive cases, reused round after round, takes them all. A
// closed channel's case is replaced by one on a nil channel (never chosen).
TEST_P(SelectTest, SpanSelectFansInOverNChannels) {
  run(opts(), [] {
    constexpr int kChans = 12, kEach = 200;
    std::vector<Chan<int>> in;
    for (int c = 0; c < kChans; c++) in.push_back(make_chan<int>(c % 3));
    for (int c = 0; c < kChans; c++)
      go([ch = in[c], c] {
        for (int k = 0; k < kEach; k++) ch.send(c * kEach + k);
        ch.close();
      });
    std::vector<int> seen(kChans * kEach, 0);
    int open = kChans;
    int closed_at = -1;
    std::vector<AnyCase> cases;
    for (int c = 0; c < kChans; c++)
      cases.push_back(case_recv(in[c], [&seen, &closed_at, c](std::optional<int> v) {
        if (v) seen[*v]++;
        else closed_at = c;
      }));
    Deadline deadline(std::chrono::seconds(60));
    while (open > 0 && !deadline.passed()) {
      closed_at = -1;
      const std::size_t i = select(cases);
      ASSERT_LT(i, cases.size());
      if (closed_at >= 0) {
        ASSERT_EQ(static_cast<std::size_t>(closed_at), i);
        cases[i] = case_recv(Chan<int>{});  // nil: never again
        open--;
      }
    }
    EXPECT_EQ(open, 0);
    for (int v = 0; v < kChans * kEach; v++) ASSERT_EQ(seen[v], 1) << v;
  });
}

// A receive case starts every select with an empty value: a case that got a
// value, reused on the now closed channel, hands its function nullopt.
TEST_P(SelectTest, SpanSelectReceiveCaseIsReusable) {
  run(opts(), [] {
    auto ch = make_chan<std::string>(1);
    ch.send("v");
    std::vector<std::optional<std::string>> got;
    std::vector<AnyCase> cases;
    cases.push_back(case_recv(ch, [&](std::optional<std::string> v) { got.push_back(v); }));
    EXPECT_EQ(select(cases), 0u);
    ch.close();
    EXPECT_EQ(select(cases), 0u);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], std::optional<std::string>("v"));
    EXPECT_EQ(got[1], std::nullopt);
  });
}

// A send case that ran is spent; one not chosen keeps its value.
TEST_P(SelectTest, SpanSelectSendCaseIsSpent) {
  run(opts(), [] {
    auto a = make_chan<int>(1);
    Chan<int> nil;
    bool ran = false;
    std::vector<AnyCase> cases;
    cases.push_back(case_send(nil, 1));
    cases.push_back(case_send(a, 2, [&] { ran = true; }));
    EXPECT_EQ(select(cases), 1u);
    EXPECT_TRUE(ran);
    EXPECT_EQ(a.recv(), 2);
    EXPECT_THROW(select(cases), Error) << "the send case that ran is spent";
    // Replaced, the same slot works again; the unchosen case still holds 1.
    auto b = make_chan<int>(1);
    cases[0] = case_send(b, 3);
    cases[1] = case_default();
    EXPECT_EQ(select(cases), 0u);
    EXPECT_EQ(b.recv(), 3);
  });
}

// Default: taken when nothing is ready; at most one.
TEST_P(SelectTest, SpanSelectDefault) {
  run(opts(), [] {
    auto a = make_chan<int>();
    bool dflt = false;
    std::vector<AnyCase> cases;
    cases.push_back(case_recv(a));
    cases.push_back(case_default([&] { dflt = true; }));
    EXPECT_EQ(select(cases), 1u);
    EXPECT_TRUE(dflt);
    cases.push_back(case_default());
    try {
      select(cases);
      ADD_FAILURE() << "two default cases accepted";
    } catch (const Panic& p) {
      EXPECT_EQ(std::string(p.what()), "goro::select: multiple default cases");
    }
    std::vector<AnyCase> moved;
    moved.push_back(case_default());
    AnyCase taken = std::move(moved[0]);
    EXPECT_THROW(select(moved), Error);
    // An empty span with a default-free select would block for ever (select
    // {}); a span of just a default returns at once.
    std::vector<AnyCase> only;
    only.push_back(std::move(taken));
    EXPECT_EQ(select(std::span<AnyCase>(only)), 0u);
  });
}

// A parked span select wakes on whichever channel becomes ready.
TEST_P(SelectTest, SpanSelectParksOnAllCases) {
  run(opts(), [] {
    std::vector<Chan<int>> chans;
    for (int i = 0; i < 20; i++) chans.push_back(make_chan<int>());
    std::vector<AnyCase> cases;
    int got = -1;
    for (auto& ch : chans) cases.push_back(case_recv(ch, [&](std::optional<int> v) { got = *v; }));
    go([ch = chans[13]] { ch.send(13); });
    EXPECT_EQ(select(cases), 13u);
    EXPECT_EQ(got, 13);
    // And a send case parked until a receiver comes.
    auto out = make_chan<int>();
    std::vector<AnyCase> sends;
    sends.push_back(case_send(chans[0], 0));
    sends.push_back(case_send(out, 99));
    auto res = make_chan<int>(1);
    go([out, res] { res.send(*out.recv()); });
    EXPECT_EQ(select(sends), 1u);
    EXPECT_EQ(res.recv(), 99);
  });
}

// The value a parked send case holds is a GC root: an object reachable only
// from the case survives collections until it is received.
struct Payload {
  std::uint64_t magic = 0x5e1ec7;
};

[[gnu::noinline]] void push_send_case(std::vector<AnyCase>& cases, Chan<Payload*> ch) {
  cases.push_back(case_send(ch, gc::make<Payload>()));
}

TEST(SelectGc, SpanSelectSendValueIsARoot) {
  run(procs(2), [] {
    auto ch = make_chan<Payload*>();
    std::vector<AnyCase> cases;
    push_send_case(cases, ch);
    auto done = make_chan<int>(1);
    go([ch, done] {
      for (int i = 0; i < 5; i++) {
        for (int k = 0; k < 2000; k++) gc::make<Payload>()->magic = 0;  // reuse freed slots
        gc::collect();
      }
      Payload* p = *ch.recv();
      done.send(p->magic == 0x5e1ec7 ? 1 : 0);
    });
    EXPECT_EQ(select(cases), 0u);
    EXPECT_EQ(done.recv(), 1);
  });
}

}  // namespace
}  // namespace goro::test
