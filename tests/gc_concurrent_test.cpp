// gc_concurrent_test.cpp — the collector's correctness invariant under
// mutation: every object reachable at the end of a mark is marked, so no
// object is ever freed while the program can still reach it.
//
// A stop-the-world mark gets this for free; a mostly-concurrent mark (goroutines
// run while the heap is marked, the written pages and every stack are
// rescanned at mark termination) gets it only if every way a program can move
// a pointer is covered. So each test keeps mutator goroutines moving the ONLY
// pointer to objects between places — heap slot to heap slot, heap to stack
// and back across a park, through channels and select, through sync.Pool,
// through a kernel write (read(2) into the heap), and inside a deep list and
// tree — while one goroutine runs gc::collect() in a loop and a small GOGC
// lets allocation start cycles of its own. Everything is written against the
// public API only, so the same suite checks today's collector and the
// concurrent one.
//
// Every object carries a magic number and a checksum of its payload (a small
// chain of GC objects only it points to), checked whenever a mutator reaches
// it and once more at the end, when the objects are also counted by id: none
// lost, none duplicated. A freed object is caught either way: under ASan the
// sweep poisons it (a use-after-poison report), in the other builds its slot
// is reused by the garbage every mutator allocates, which breaks the magic or
// the checksum.
//
// Each test runs for GOMAXPROCS 1, 2, 4, 8 and three collector modes: the
// default, GORO_DEBUG=gcstoptheworld=1 (the whole mark in the pause) and
// GORO_DEBUG=gcuffd=0 (as if userfaultfd were unavailable: the fallback).
// Every loop is bounded in count and in time; nothing sleeps to synchronise.
#include "gc_concurrent.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "goro/goro.hpp"
#include "test_util.hpp"

namespace gcmark {

// ---- 1. heap -> heap ---------------------------------------------------------

// The only pointer to an object jumps between two GC arrays, from a slot the
// mark may have scanned already to one it may not have, and back; now and
// then an object is dropped and a new one (allocated during the mark) takes
// its place.
TEST_P(GcConcurrent, HeapToHeap) {
  verdict.verified = 0;
  verdict.bad = 0;
  run_mode([] {
    constexpr std::size_t kObjects = 128;
    Slot* a = new_slots(kSlots, kObjects, 0);
    Slot* b = goro::gc::make_array<Slot>(kSlots);
    std::atomic<std::uint64_t> next_id{kObjects};
    std::atomic<long> dropped{0}, moves{0};
    Cycles cycles;
    goro::WaitGroup wg;
    for (int w = 0; w < kMutators; w++) {
      wg.add(1);
      goro::go([&, w] {
        Rng rng(static_cast<std::uint64_t>(w) + 1);
        for (long op = 0; op < 50'000'000 && cycles.running(); op++) {
          const bool ab = rng.next() & 1;
          Slot* from = ab ? a : b;
          Slot* to = ab ? b : a;
          Obj* p = from[rng.below(kSlots)].exchange(nullptr, std::memory_order_acq_rel);
          if (p != nullptr) {
            check(p, "heap->heap take");
            if (rng.below(64) == 0) {
              dropped.fetch_add(1);
              p = new_obj(next_id.fetch_add(1));
            } else {
              touch(p);
            }
            // Always room: 512 slots, at most kObjects objects.
            if (!place(to, kSlots, rng.below(kSlots), p) && !place(from, kSlots, 0, p))
              report("heap->heap", p, "found no free slot");
            moves.fetch_add(1, std::memory_order_relaxed);
          }
          if (op % 32 == 0) churn(4);
          if (op % 64 == 0) goro::yield();
        }
        wg.done();
      });
    }
    start_collector(cycles, wg);
    wg.wait();
    finish(cycles);
    IdSet ids(next_id.load());
    for (std::size_t i = 0; i < kSlots; i++) {
      if (Obj* p = a[i].load()) ids.add(p);
      if (Obj* p = b[i].load()) ids.add(p);
    }
    EXPECT_EQ(ids.count, static_cast<long>(next_id.load()) - dropped.load()) << "objects lost";
    EXPECT_EQ(ids.dup, 0);
    EXPECT_EQ(ids.out_of_range, 0);
    EXPECT_GT(moves.load(), 0);
  });
  EXPECT_EQ(verdict.bad.load(), 0) << "of " << verdict.verified.load() << " checks";
}

// ---- 2. heap -> stack -> heap ------------------------------------------------

// A goroutine takes the only pointers to a few objects out of heap slots into
// locals, parks (yield, a channel round trip, a timer, allocating enough to
// start a cycle, or handing them to a new goroutine's closure) and puts them
// back into other slots.
TEST_P(GcConcurrent, StackToHeapAndBack) {
  verdict.verified = 0;
  verdict.bad = 0;
  run_mode([] {
    constexpr std::size_t kObjects = 96;
    Slot* slots = new_slots(kSlots, kObjects, 0);
    std::atomic<long> parks{0};
    Cycles cycles;
    goro::WaitGroup wg;
    for (int w = 0; w < kMutators; w++) {
      wg.add(1);
      goro::go([&, w] {
        Rng rng(static_cast<std::uint64_t>(w) + 100);
        auto ping = goro::make_chan<int>();
        auto pong = goro::make_chan<int>();
        goro::WaitGroup echo;
        echo.add(1);
        goro::go([ping, pong, &echo] {
          for (int v : ping) pong.send(v);
          echo.done();
        });
        for (long op = 0; op < 10'000'000 && cycles.running(); op++) {
          Obj* held[3] = {};
          for (Obj*& h : held) {
            h = slots[rng.below(kSlots)].exchange(nullptr, std::memory_order_acq_rel);
            if (h != nullptr) check(h, "heap->stack take");
          }
          switch (rng.below(5)) {
            case 0: goro::yield(); break;
            case 1:
              ping.send(1);
              pong.recv();
              break;
            case 2: goro::sleep_for(20us); break;
            case 3: churn(64); break;
            case 4: {
              // The new goroutine's closure is the only holder until it runs.
              auto back = goro::make_chan<int>();
              goro::go([h0 = held[0], h1 = held[1], h2 = held[2], back, &rng, &slots] {
                for (Obj* h : {h0, h1, h2}) {
                  if (h == nullptr) continue;
                  check(h, "closure");
                  touch(h);
                  if (!place(slots, kSlots, rng.below(kSlots), h))
                    report("closure", h, "found no free slot");
                }
                back.send(1);
              });
              held[0] = held[1] = held[2] = nullptr;
              back.recv();
              break;
            }
          }
          parks.fetch_add(1, std::memory_order_relaxed);
          for (Obj* h : held) {
            if (h == nullptr) continue;
            check(h, "stack->heap put");
            touch(h);
            if (!place(slots, kSlots, rng.below(kSlots), h))
              report("stack->heap", h, "found no free slot");
          }
          if (op % 16 == 0) churn(4);
        }
        ping.close();
        echo.wait();
        wg.done();
      });
    }
    start_collector(cycles, wg);
    wg.wait();
    finish(cycles);
    IdSet ids(kObjects);
    for (std::size_t i = 0; i < kSlots; i++)
      if (Obj* p = slots[i].load()) ids.add(p);
    EXPECT_EQ(ids.count, static_cast<long>(kObjects)) << "objects lost";
    EXPECT_EQ(ids.dup, 0);
    EXPECT_EQ(ids.out_of_range, 0);
    EXPECT_GT(parks.load(), 0);
  });
  EXPECT_EQ(verdict.bad.load(), 0) << "of " << verdict.verified.load() << " checks";
}

// ---- 3. channels -------------------------------------------------------------

// ring runs one ring of stages that pass the only pointer to each object
// along: a buffered channel (the ring itself), an unbuffered hop, a buffered
// hop, a select that sends on an unbuffered or a buffered channel, and a
// select that receives from both. Each stage checks and touches what it
// receives. Once the collector stops, the head keeps what comes back in
// `home` instead of sending it round again; then the stages are closed down.
[[gnu::noinline]] void fill_ring(const goro::Chan<Obj*>& ring, std::uint64_t first, std::size_t n) {
  for (std::size_t i = 0; i < n; i++) ring.send(new_obj(first + i));
}

void run_ring(int r, std::size_t n, Obj** home, Cycles& cycles, std::atomic<long>& hops) {
  auto ring = goro::make_chan<Obj*>(n);
  auto c1 = goro::make_chan<Obj*>();
  auto c2 = goro::make_chan<Obj*>(4);
  auto c3a = goro::make_chan<Obj*>();
  auto c3b = goro::make_chan<Obj*>(2);
  fill_ring(ring, static_cast<std::uint64_t>(r) * n, n);
  goro::WaitGroup stages;
  stages.add(3);
  goro::go([c1, c2, &stages] {
    for (Obj* p : c1) {
      check(p, "unbuffered hop");
      touch(p);
      c2.send(p);
    }
    c2.close();
    stages.done();
  });
  goro::go([c2, c3a, c3b, &stages] {
    for (Obj* p : c2) {
      check(p, "buffered hop");
      touch(p);
      goro::select(goro::case_send(c3a, p), goro::case_send(c3b, p));
    }
    c3a.close();
    c3b.close();
    stages.done();
  });
  goro::go([c3a, c3b, ring, r, &stages, &hops] {
    Rng rng(static_cast<std::uint64_t>(r) + 200);
    goro::Chan<Obj*> a = c3a, b = c3b;  // nil once closed: select skips them
    for (long i = 0; i < 100'000'000 && (a || b); i++) {
      std::optional<Obj*> got;
      bool a_closed = false, b_closed = false;
      goro::select(
          goro::case_recv(
              a, [&](std::optional<Obj*> v) { v ? void(got = v) : void(a_closed = true); }),
          goro::case_recv(
              b, [&](std::optional<Obj*> v) { v ? void(got = v) : void(b_closed = true); }));
      if (a_closed) a = {};
      if (b_closed) b = {};
      if (!got) continue;
      check(*got, "select receive");
      if (rng.below(8) == 0) goro::yield();  // parked with the only pointer
      touch(*got);
      hops.fetch_add(1, std::memory_order_relaxed);
      ring.send(*got);
    }
    stages.done();
  });
  std::size_t kept = 0;
  std::optional<goro::Timer> give_up;
  for (long i = 0; i < 100'000'000 && kept < n; i++) {
    if (cycles.running()) {
      Obj* p = *ring.recv();
      check(p, "ring head");
      touch(p);
      c1.send(p);
      if (i % 16 == 0) churn(4);
      continue;
    }
    // Draining: every object comes back to the head exactly once.
    if (!give_up) give_up.emplace(30s);
    std::optional<Obj*> p;
    bool timed_out = false;
    goro::select(goro::case_recv(ring, [&](std::optional<Obj*> v) { p = v; }),
                 goro::case_recv(give_up->c(), [&] { timed_out = true; }));
    if (timed_out) {
      ADD_FAILURE() << "ring " << r << ": " << n - kept << " objects did not come back";
      break;
    }
    if (p && check(*p, "ring drain")) home[kept++] = *p;
  }
  if (give_up) give_up->stop();
  c1.close();
  stages.wait();
}

TEST_P(GcConcurrent, ChannelsCarryTheOnlyPointer) {
  verdict.verified = 0;
  verdict.bad = 0;
  run_mode([] {
    constexpr std::size_t kObjects = 64;
    constexpr int kRings = 3;
    Obj** home[kRings];
    for (auto& h : home) h = goro::gc::make_array<Obj*>(kObjects);
    std::atomic<long> hops{0};
    Cycles cycles;
    goro::WaitGroup wg;
    for (int r = 0; r < kRings; r++) {
      wg.add(1);
      goro::go([&, r] {
        run_ring(r, kObjects, home[r], cycles, hops);
        wg.done();
      });
    }
    start_collector(cycles, wg);
    wg.wait();
    finish(cycles);
    IdSet ids(kObjects * kRings);
    for (Obj** h : home)
      for (std::size_t i = 0; i < kObjects; i++)
        if (h[i] != nullptr) ids.add(h[i]);
    EXPECT_EQ(ids.count, static_cast<long>(kObjects * kRings)) << "objects lost";
    EXPECT_EQ(ids.dup, 0);
    EXPECT_EQ(ids.out_of_range, 0);
    EXPECT_GT(hops.load(), 0);
  });
  EXPECT_EQ(verdict.bad.load(), 0) << "of " << verdict.verified.load() << " checks";
}

// ---- 4. sync.Pool --------------------------------------------------------------

// claim and release keep Obj::owner: an object checked out of the Pool has
// exactly one owner; getting one that has an owner means it was handed out
// twice (or freed and made again).
void claim(Obj* p, std::uint64_t me) {
  std::uint64_t none = 0;
  if (!p->owner.compare_exchange_strong(none, me)) report("pool get", p, "is already checked out");
}
void release(Obj* p, std::uint64_t me) {
  if (!p->owner.compare_exchange_strong(me, 0))
    report("pool put", p, "changed owner while checked out");
}

// Mutators get objects from a Pool, hold up to four at a time across parks,
// and put them back; one goroutine holds eight across three whole cycles, in
// which the Pool's caches move to the victim cache and are dropped: nothing
// checked out may be freed with them.
TEST_P(GcConcurrent, PoolGetPut) {
  verdict.verified = 0;
  verdict.bad = 0;
  run_mode([] {
    std::atomic<std::uint64_t> next_id{0};
    goro::Pool<Obj> pool([&next_id] { return new_obj(next_id.fetch_add(1)); });
    std::atomic<long> gets{0}, puts{0}, long_holds{0};
    Cycles cycles;
    goro::WaitGroup wg;
    for (int w = 0; w < kMutators; w++) {
      wg.add(1);
      goro::go([&, w] {
        const std::uint64_t me = static_cast<std::uint64_t>(w) + 1;
        Rng rng(me + 300);
        Obj* held[4] = {};
        for (long op = 0; op < 50'000'000 && cycles.running(); op++) {
          Obj*& h = held[rng.below(4)];
          if (h != nullptr) {
            check(h, "pool put");
            release(h, me);
            touch(h);
            pool.put(h);
            h = nullptr;
            puts.fetch_add(1, std::memory_order_relaxed);
          } else {
            h = pool.get();
            gets.fetch_add(1, std::memory_order_relaxed);
            if (check(h, "pool get")) claim(h, me);
          }
          if (op % 16 == 0) goro::yield();
          if (op % 32 == 0) churn(4);
        }
        for (Obj*& h : held) {
          if (h == nullptr) continue;
          if (check(h, "pool final put")) release(h, me);
          pool.put(h);
          puts.fetch_add(1, std::memory_order_relaxed);
        }
        wg.done();
      });
    }
    wg.add(1);
    goro::go([&] {
      constexpr std::uint64_t me = 1000;
      for (long round = 0; round < 1000 && cycles.running(); round++) {
        Obj* held[8];
        for (Obj*& h : held) {
          h = pool.get();
          gets.fetch_add(1, std::memory_order_relaxed);
          if (check(h, "long hold get")) claim(h, me);
        }
        const long start = cycles.done.load();
        for (long i = 0; i < 10'000'000 && cycles.done.load() < start + 3 && cycles.running(); i++)
          goro::yield();
        long_holds.fetch_add(1, std::memory_order_relaxed);
        for (Obj* h : held) {
          if (check(h, "long hold put")) release(h, me);
          pool.put(h);
          puts.fetch_add(1, std::memory_order_relaxed);
        }
      }
      wg.done();
    });
    start_collector(cycles, wg);
    wg.wait();
    finish(cycles);
    EXPECT_GT(gets.load(), 0);
    EXPECT_EQ(gets.load(), puts.load());
    EXPECT_GT(long_holds.load(), 0);
    // What the Pool still has (nothing, or whatever survived the last
    // cycles) is intact too.
    for (int i = 0; i < 64; i++) {
      Obj* p = pool.get();
      if (check(p, "pool after the cycles")) {
        EXPECT_EQ(p->owner.load(), 0u);
      }
    }
  });
  EXPECT_EQ(verdict.bad.load(), 0) << "of " << verdict.verified.load() << " checks";
}

// ---- 5. the kernel writes into the heap -----------------------------------------

// kernel_writes is the body of the two tests below.
// Streams: a known byte stream goes through a pipe; the reader reads it,
// inside blocking(), into GC objects — a scanned Msg and a large buffer both
// allocated before the cycles, and fresh buffers — and checks the bytes at
// once and again after a yield. loopback: the reader writes each chunk
// itself just before reading it (it fits the pipe, so neither call waits);
// else a writer goroutine streams and the reader blocks in read(2).
// Pointers: the only pointer to an object is taken out of a Msg onto the
// stack, written through a pipe and read(2) back into another Msg, an old
// object the mark may have scanned already; then the stack forgets it.
void GcConcurrent::kernel_writes(bool loopback) {
  verdict.verified = 0;
  verdict.bad = 0;
  run_mode([loopback] {
    constexpr int kStreams = 2, kMovers = 2;
    constexpr std::size_t kMsgs = 64, kObjects = 24;  // kMsgs / kMovers per mover
    const std::uint64_t kStreamBytes = static_cast<std::uint64_t>(scaled(256l << 20));
    std::atomic<std::uint64_t> written{0}, read_back{0};
    std::atomic<long> bad_bytes{0}, moves{0};
    Cycles cycles;
    goro::WaitGroup wg;
    for (int s = 0; s < kStreams; s++) {
      int fds[2];
      ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
      const auto stream = static_cast<std::uint64_t>(s);
      // put writes the stream's bytes [off, off + n) into the pipe.
      auto put = [stream, wfd = fds[1]](std::uint64_t off, std::size_t n) {
        std::uint8_t chunk[16384];
        for (std::size_t i = 0; i < n; i++) chunk[i] = pattern(stream, off + i);
        return write_all(wfd, chunk, n);
      };
      if (!loopback) {
        wg.add(1);
        goro::go([&, put, s, wfd = fds[1]] {
          Rng rng(static_cast<std::uint64_t>(s) + 400);
          std::uint64_t off = 0;
          for (long op = 0; op < 10'000'000 && cycles.running() && off < kStreamBytes; op++) {
            const std::size_t n = 1 + rng.below(16384);
            if (!put(off, n)) {
              ADD_FAILURE() << "write: " << std::strerror(errno);
              break;
            }
            off += n;
          }
          written.fetch_add(off);
          ::close(wfd);
          wg.done();
        });
      }
      wg.add(1);
      goro::go([&, put, s, rfd = fds[0], wfd = fds[1]] {
        Rng rng(static_cast<std::uint64_t>(s) + 500);
        Msg* msg = goro::gc::make<Msg>();
        constexpr std::size_t kBig = 3 * 4096 + 40;  // a large object, over several pages
        std::uint8_t* big = goro::gc::make_array<std::uint8_t>(kBig);
        std::uint64_t off = 0;
        for (long op = 0; op < 100'000'000; op++) {
          std::uint8_t* dst;
          std::size_t want;
          switch (op % 3) {
            case 0: dst = msg->bytes, want = sizeof msg->bytes; break;
            case 1: dst = big, want = kBig; break;
            default:
              want = 1 + rng.below(9000), dst = goro::gc::make_array<std::uint8_t>(want);
              break;
          }
          // A conservative collector sees the pointers a program keeps, not
          // the ones it meant: comparing dst[i] with pattern(off + i), the
          // optimiser keeps only dst - off across the yield, an address far
          // outside the buffer, and the fresh buffer is freed (this test
          // found it on the stop-the-world collector). keep holds the real
          // pointer in the frame.
          std::uint8_t* volatile keep = dst;
          if (loopback) {
            if (!cycles.running() || off >= kStreamBytes) break;
            if (!put(off, want)) {
              ADD_FAILURE() << "write: " << std::strerror(errno);
              break;
            }
            written.fetch_add(want);
          }
          const std::size_t got = read_full(rfd, dst, want);
          for (int pass = 0; pass < 2; pass++) {
            const std::uint8_t* buf = keep;
            long wrong = 0;
            for (std::size_t i = 0; i < got; i++)
              if (buf[i] != pattern(static_cast<std::uint64_t>(s), off + i)) wrong++;
            if (wrong != 0 && bad_bytes.fetch_add(wrong) == 0)
              ADD_FAILURE() << "stream " << s << ": " << wrong << " wrong bytes at " << off
                            << " (pass " << pass << ")";
            if (pass == 0) goro::yield();  // the buffer must keep them
          }
          off += got;
          if (got < want) break;  // end of file
          if (op % 8 == 0) churn(4);
        }
        read_back.fetch_add(off);
        ::close(rfd);
        if (loopback) ::close(wfd);
        wg.done();
      });
    }
    Msg** msgs = goro::gc::make_array<Msg*>(kMsgs);
    for (std::size_t i = 0; i < kMsgs; i++) msgs[i] = goro::gc::make<Msg>();
    for (std::size_t i = 0; i < kObjects; i++)
      msgs[i * kMsgs / kObjects]->link = new_obj(i);  // both movers get some
    for (int m = 0; m < kMovers; m++) {
      int fds[2];
      ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
      wg.add(1);
      goro::go([&, m, rfd = fds[0], wfd = fds[1]] {
        // Mover m owns msgs[i] for i % kMovers == m.
        Rng rng(static_cast<std::uint64_t>(m) + 600);
        const std::size_t mine = kMsgs / kMovers;
        auto own = [&](std::size_t k) {
          return msgs[(k % mine) * kMovers + static_cast<std::size_t>(m)];
        };
        for (long op = 0; op < 10'000'000 && cycles.running(); op++) {
          const std::size_t from = rng.below(mine);
          Msg* src = own(from);
          if (src->link == nullptr) continue;
          Obj* volatile p = src->link;
          src->link = nullptr;
          check(p, "before the kernel write");
          touch(p);
          std::size_t to = from + 1 + rng.below(mine - 1);
          while (own(to)->link != nullptr) to++;  // bounded: fewer objects than Msgs
          Msg* dst = own(to);
          if (!write_all(wfd, const_cast<Obj**>(&p), sizeof(Obj*)) ||
              read_full(rfd, &dst->link, sizeof(Obj*)) != sizeof(Obj*)) {
            ADD_FAILURE() << "pipe: " << std::strerror(errno);
            dst->link = p;
            break;
          }
          p = nullptr;  // from here on only the kernel's write holds it
          if (rng.below(2) == 0) goro::yield();
          if (dst->link != nullptr) check(dst->link, "after the kernel write");
          moves.fetch_add(1, std::memory_order_relaxed);
          if (op % 16 == 0) churn(4);
        }
        ::close(rfd);
        ::close(wfd);
        wg.done();
      });
    }
    start_collector(cycles, wg);
    wg.wait();
    finish(cycles);
    EXPECT_EQ(bad_bytes.load(), 0);
    EXPECT_EQ(read_back.load(), written.load());
    EXPECT_GT(written.load(), 0u);
    IdSet ids(kObjects);
    for (std::size_t i = 0; i < kMsgs; i++)
      if (msgs[i]->link != nullptr) ids.add(msgs[i]->link);
    EXPECT_EQ(ids.count, static_cast<long>(kObjects)) << "objects lost";
    EXPECT_EQ(ids.dup, 0);
    EXPECT_EQ(ids.out_of_range, 0);
    EXPECT_GT(moves.load(), 0);
  });
  EXPECT_EQ(verdict.bad.load(), 0) << "of " << verdict.verified.load() << " checks";
}

TEST_P(GcConcurrent, KernelWritesIntoTheHeap) {
  kernel_writes(true);
}

// The readers block in read(2) until a writer fills the pipe. This found
// that entering blocking() did not wake a sysmon asleep since a stop the
// world: nobody retook the Ps of the blocked threads (fixed in entersyscall,
// as Go's entersyscall_sysmon).
TEST_P(GcConcurrent, KernelWritesWhileReadBlocks) {
  kernel_writes(false);
}

// ---- 6. a deep structure rewired while it is marked -------------------------------

// Lists and trees built before the cycles; mutators move segments of a list
// to another list and subtrees to another tree, each time holding the only
// pointer to what moves on the stack across a park, while the mark walks
// them.
TEST_P(GcConcurrent, DeepStructureRewired) {
  verdict.verified = 0;
  verdict.bad = 0;
  run_mode([] {
    const long kListNodes = scaled(40000), kTreeNodes = scaled(4000);  // the latter per tree
    Forest* f = build_forest(kListNodes, kTreeNodes);
    goro::Mutex list_mu[kLists], tree_mu[kTrees];
    long len[kLists], size[kTrees];
    for (long& l : len) l = kListNodes / kLists;
    for (long& t : size) t = kTreeNodes;
    std::atomic<long> list_moves{0}, tree_moves{0};
    Cycles cycles;
    goro::WaitGroup wg;
    for (int w = 0; w < kMutators; w++) {
      wg.add(1);
      goro::go([&, w] {
        Rng rng(static_cast<std::uint64_t>(w) + 700);
        for (long op = 0; op < 10'000'000 && cycles.running(); op++) {
          const bool lists = op % 2 == 0;
          const int n = lists ? kLists : kTrees;
          const int a = static_cast<int>(rng.below(static_cast<std::size_t>(n)));
          int b = static_cast<int>(rng.below(static_cast<std::size_t>(n - 1)));
          if (b >= a) b++;
          goro::Mutex* mu = lists ? list_mu : tree_mu;
          std::scoped_lock lock(mu[std::min(a, b)], mu[std::max(a, b)]);
          if (lists) {
            if (len[a] == 0) continue;
            // Cut k nodes at pos out of list a.
            const long pos = static_cast<long>(rng.below(static_cast<std::size_t>(len[a])));
            const long k = std::min<long>(1 + static_cast<long>(rng.below(16)), len[a] - pos);
            LNode** link = &f->list[a];
            for (long i = 0; i < pos; i++) link = &(*link)->next;
            LNode* seg = *link;
            LNode* last = seg;
            for (long i = 1; i < k; i++) last = last->next;
            *link = last->next;
            last->next = nullptr;
            len[a] -= k;
            park(rng);  // seg is held only here
            long got = 0;
            for (LNode* x = seg; x != nullptr && got <= k; x = x->next, got++)
              good(x, "list segment");
            if (got != k) report("list segment", seg, "changed length");
            // Splice it into list b.
            const long pos2 = static_cast<long>(rng.below(static_cast<std::size_t>(len[b] + 1)));
            link = &f->list[b];
            for (long i = 0; i < pos2; i++) link = &(*link)->next;
            last->next = *link;
            *link = seg;
            len[b] += k;
            if (op % 8 == 0) {
              long count = 0;
              for (LNode* x = f->list[b]; x != nullptr && count <= len[b]; x = x->next, count++)
                good(x, "list walk");
              if (count != len[b]) report("list walk", f->list[b], "has the wrong length");
            }
            list_moves.fetch_add(1, std::memory_order_relaxed);
          } else {
            // Detach the subtree at a random path of 1..6 steps from tree a's root.
            TNode** link = nullptr;
            TNode* cur = f->tree[a];
            const int depth = 1 + static_cast<int>(rng.below(6));
            for (int d = 0; d < depth; d++) {
              TNode** next = &cur->kid[rng.next() & 1];
              if (*next == nullptr) break;
              link = next;
              cur = *next;
            }
            if (link == nullptr) continue;
            TNode* sub = *link;
            *link = nullptr;
            const long s = walk_tree(sub, "subtree cut");
            size[a] -= s;
            park(rng);  // sub is held only here
            if (walk_tree(sub, "subtree moved") != s) report("subtree moved", sub, "changed size");
            // Hang it at the first empty child on a random path in tree b.
            cur = f->tree[b];
            for (long d = 0; d < 100'000'000; d++) {
              TNode*& k = cur->kid[rng.next() & 1];
              if (k == nullptr) {
                k = sub;
                break;
              }
              cur = k;
            }
            size[b] += s;
            tree_moves.fetch_add(1, std::memory_order_relaxed);
          }
        }
        wg.done();
      });
    }
    start_collector(cycles, wg);
    wg.wait();
    finish(cycles);
    std::vector<char> lids(static_cast<std::size_t>(kListNodes), 0);
    long lcount = 0;
    for (int l = 0; l < kLists; l++) {
      long n = 0;
      for (LNode* x = f->list[l]; x != nullptr && n <= kListNodes; x = x->next, n++)
        if (good(x, "final list walk") && x->id < lids.size()) lids[x->id]++;
      EXPECT_EQ(n, len[l]) << "list " << l;
      lcount += n;
    }
    EXPECT_EQ(lcount, kListNodes) << "list nodes lost";
    EXPECT_EQ(std::count(lids.begin(), lids.end(), 1), kListNodes)
        << "list nodes lost or duplicated";
    std::vector<char> tids(static_cast<std::size_t>(kTreeNodes * kTrees), 0);
    long tcount = 0;
    for (int t = 0; t < kTrees; t++) {
      const long n = walk_tree(f->tree[t], "final tree walk", &tids);
      EXPECT_EQ(n, size[t]) << "tree " << t;
      tcount += n;
    }
    EXPECT_EQ(tcount, kTreeNodes * kTrees) << "tree nodes lost";
    EXPECT_EQ(std::count(tids.begin(), tids.end(), 1), kTreeNodes * kTrees)
        << "tree nodes lost or duplicated";
    EXPECT_GT(list_moves.load(), 0);
    EXPECT_GT(tree_moves.load(), 0);
  });
  EXPECT_EQ(verdict.bad.load(), 0) << "of " << verdict.verified.load() << " checks";
}

INSTANTIATE_TEST_SUITE_P(Modes, GcConcurrent,
                         ::testing::Combine(::testing::Values(1, 2, 4, 8),
                                            ::testing::Values(Mode::concurrent, Mode::stoptheworld,
                                                              Mode::nouffd)),
                         ParamName);

}  // namespace gcmark
