// hello — goroutines and a WaitGroup: the README's example.
//
//   demos/run hello
//   GOMAXPROCS=1 demos/run hello      # same program, one P
#include <goro/goro.hpp>

#include <cstdio>

int main() {
  goro::run([] {
    goro::WaitGroup wg;
    for (int i = 1; i <= 5; i++) {
      wg.add(1);
      goro::go([&wg, i] {
        goro::sleep_for(std::chrono::milliseconds(10 * (6 - i)));  // the last wakes first
        std::printf("hello from goroutine %llu (worker %d)\n",
                    static_cast<unsigned long long>(goro::goid()), i);
        wg.done();
      });
    }
    wg.wait();
    std::printf("all %d workers done on %d Ps\n", 5, goro::gomaxprocs());
  });
}
