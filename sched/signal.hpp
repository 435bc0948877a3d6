// signal.hpp — the runtime's signal handling (Go's signal_unix.go, small):
//   SIGSEGV/SIGBUS in a goroutine's guard page: "fatal error: stack overflow"
//     naming the goroutine, exit 2 (any other fault goes to the previous
//     handler, so ASan and the default crash still report it);
//   SIGQUIT: the goroutine dump, exit 2, as Go does.
// Handlers run on an alternate signal stack per M (SignalStack), since an
// overflowing goroutine has no stack left to run them on.
#pragma once

namespace goro::detail {

struct Runtime;

void signals_install(Runtime* r);
void signals_uninstall();

// SignalStack gives the calling thread an alternate signal stack for its
// lifetime (RAII, one per M thread).
class SignalStack {
 public:
  SignalStack();
  ~SignalStack();
  SignalStack(const SignalStack&) = delete;
  SignalStack& operator=(const SignalStack&) = delete;

 private:
  void* mem_ = nullptr;
};

}  // namespace goro::detail
