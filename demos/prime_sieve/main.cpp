// prime_sieve — Go's concurrent prime sieve: a pipeline of goroutines.
//
// generate sends 2, 3, 4, ... on a channel. main takes the first number
// (a prime, 2), prints it, and splices a filter goroutine into the pipeline
// that drops the multiples of 2; the next number out of the new end is the
// next prime, which gets its own filter, and so on. After N primes there are
// N filters in a chain of unbuffered channels: every number crosses each
// filter by a direct hand-off from one goroutine's stack to the next
// (runtime/chan.cpp, send/recv). When main returns, the pipeline's
// goroutines are simply abandoned, as in Go.
//
//   demos/run prime_sieve          # the first 100 primes
//   demos/run prime_sieve 1000
//
// It checks what it printed against trial division and exits 1 if wrong.
#include <cstdio>
#include <cstdlib>
#include <goro/goro.hpp>
#include <vector>

namespace {

// generate sends the sequence 2, 3, 4, ... to ch.
void generate(goro::Chan<long> ch) {
  for (long i = 2;; i++) ch.send(i);
}

// filter copies the values from in to out, dropping those divisible by prime.
void filter(goro::Chan<long> in, goro::Chan<long> out, long prime) {
  for (;;) {
    const long i = *in.recv();
    if (i % prime != 0) out.send(i);
  }
}

bool is_prime(long n) {
  if (n < 2) return false;
  for (long d = 2; d * d <= n; d++)
    if (n % d == 0) return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100;
  if (n <= 0) {
    std::fprintf(stderr, "usage: prime_sieve [N > 0]\n");
    return 2;
  }
  std::vector<long> primes;
  goro::run([&] {
    auto ch = goro::make_chan<long>();
    goro::go([ch] { generate(ch); });
    for (int i = 0; i < n; i++) {
      const long prime = *ch.recv();
      primes.push_back(prime);
      auto ch1 = goro::make_chan<long>();
      goro::go([ch, ch1, prime] { filter(ch, ch1, prime); });
      ch = ch1;  // the pipeline's new end
    }
  });

  // Ten to a line.
  for (int i = 0; i < n; i++)
    std::printf("%6ld%s", primes[static_cast<std::size_t>(i)],
                i % 10 == 9 || i == n - 1 ? "\n" : "");
  std::printf("%d primes; the pipeline ended with %d filter goroutines\n", n, n);

  // The primes in order, and none skipped: exactly the primes up to the last.
  long expect = 1;
  for (long p : primes) {
    do expect++;
    while (!is_prime(expect));
    if (p != expect) {
      std::printf("FAIL: got %ld, expected %ld\n", p, expect);
      return 1;
    }
  }
  return 0;
}
