// sudog.hpp — a goroutine waiting in a queue: Go's sudog (runtime2.go).
//
// A goroutine can wait on many things at once (select waits on every case's
// channel), so the wait-queue entry is not the G itself but a sudog, one per
// thing waited on. goro's sudogs live on the waiting goroutine's own stack:
// they exist exactly as long as the wait, need no allocation, and the GC,
// which scans that stack, sees the value pointer `elem` for free.
//
// Invariants: a sudog is in at most one queue (next/prev); `g` is parked
// while its sudog is queued, and whoever dequeues it readies g once.
#pragma once

#include <cstdint>

namespace goro::detail {

struct G;
struct HchanBase;

struct Sudog {
  G* g = nullptr;
  Sudog* next = nullptr;
  Sudog* prev = nullptr;
  void* elem = nullptr;         // data element (a value's address), or the semaphore's address
  std::uint32_t ticket = 0;     // sema: handed the semaphore directly (handoff)
  bool is_select = false;       // g is in a select: check g.selectdone before waking it
  bool success = false;         // chan: woken by a value, not by close
  HchanBase* c = nullptr;       // chan: the channel waited on
  Sudog* waitlink = nullptr;    // select: the G's list of sudogs
  std::int64_t acquiretime = 0;
};

// WaitQ is a FIFO of sudogs (Go's waitq).
struct WaitQ {
  Sudog* first = nullptr;
  Sudog* last = nullptr;

  bool empty() const { return first == nullptr; }
  void enqueue(Sudog* s) {
    s->next = nullptr;
    s->prev = last;
    if (last != nullptr)
      last->next = s;
    else
      first = s;
    last = s;
  }
  void remove(Sudog* s) {
    if (s->prev != nullptr)
      s->prev->next = s->next;
    else
      first = s->next;
    if (s->next != nullptr)
      s->next->prev = s->prev;
    else
      last = s->prev;
    s->next = s->prev = nullptr;
  }
};

}  // namespace goro::detail
