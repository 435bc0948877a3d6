// signal.cpp — see signal.hpp.
#include "sched/signal.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "sched/proc.hpp"

namespace goro::detail {

namespace {

constexpr std::size_t kAltStackSize = 64 * 1024;

struct sigaction old_segv, old_bus, old_quit;
bool installed = false;

void write_str(const char* s) {
  ssize_t r = write(2, s, std::strlen(s));
  (void)r;
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
  Runtime* r = rt();
  if (r != nullptr && r->stacks.in_guard(info->si_addr)) {
    G* g = getg();
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "runtime: goroutine stack exceeds %zu-byte limit\n"
                  "runtime: sp=%p stack=[%p, %p]\n",
                  r->stacks.stack_size(), info->si_addr,
                  g != nullptr ? static_cast<void*>(g->fiber.stack_lo) : nullptr,
                  g != nullptr ? static_cast<void*>(g->fiber.stack_hi) : nullptr);
    write_str(buf);
    fatal("stack overflow");
  }
  // Not ours: restore the previous handler and let it (or the default
  // action) deal with the fault when the instruction re-executes.
  struct sigaction* old = sig == SIGSEGV ? &old_segv : &old_bus;
  if ((old->sa_flags & SA_SIGINFO) != 0 && old->sa_sigaction != nullptr) {
    old->sa_sigaction(sig, info, uctx);
    return;
  }
  sigaction(sig, old, nullptr);
}

void on_quit(int, siginfo_t*, void*) {
  flush_stdio();
  write_str("SIGQUIT: quit\n\n");
  dump_goroutines(2, getg(), true);
  trace_crash("SIGQUIT");
  exit_dying(2);
}

}  // namespace

void signals_install(Runtime*) {
  if (installed) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sa.sa_sigaction = on_fault;
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  sa.sa_sigaction = on_quit;
  sigaction(SIGQUIT, &sa, &old_quit);
  preempt_install();
  installed = true;
}

void signals_uninstall() {
  if (!installed) return;
  sigaction(SIGSEGV, &old_segv, nullptr);
  sigaction(SIGBUS, &old_bus, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  signal(SIGURG, SIG_DFL);
  signal(SIGPWR, SIG_DFL);
  installed = false;
}

SignalStack::SignalStack() {
  // Keep an alternate stack someone already installed (the sanitizers'
  // runtimes give every thread one and free it themselves at thread exit).
  stack_t cur;
  if (sigaltstack(nullptr, &cur) == 0 && (cur.ss_flags & SS_DISABLE) == 0 &&
      cur.ss_size >= 16 * 1024)
    return;
  void* p = mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  stack_t ss;
  ss.ss_sp = p;
  ss.ss_size = kAltStackSize;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) == 0) mem_ = p;
  else munmap(p, kAltStackSize);
}

SignalStack::~SignalStack() {
  if (mem_ == nullptr) return;
  stack_t ss;
  std::memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(mem_, kAltStackSize);
}

}  // namespace goro::detail
