// chameneos — the benchmarks game's chameneos-redux: a meeting place.
//
// Creatures of three colours go, again and again, to one meeting place.
// The place pairs them up two at a time; each of a pair learns the other's
// colour and changes its own to the complement of the two. After N meetings
// the place fades: every creature is told so and reports how many meetings
// it had, and how many of those were with itself (always zero if the place
// is right). Each meeting involves two creatures, so the counts add up to
// exactly 2N — the program checks that and exits 1 if not.
//
// Here the meeting place is a broker goroutine and everything is channels.
// A creature sends a request (its id, colour and reply channel) on `place`
// and blocks on its reply channel; the broker receives two requests and
// answers each with the other's colour and id. That is Go's "share memory
// by communicating": the broker owns the meeting count, nobody locks. Two
// runs, as in the benchmarks game: 3 creatures, then 10.
//
//   demos/run chameneos            # N = 6000
//   demos/run chameneos 600000
#include <cstdio>
#include <cstdlib>
#include <goro/goro.hpp>
#include <string>
#include <vector>

namespace {

enum Colour { blue, red, yellow };
const char* const kName[] = {"blue", "red", "yellow"};

// complement is the colour a creature of colour a takes after meeting b.
Colour complement(Colour a, Colour b) {
  if (a == b) return a;
  return static_cast<Colour>(3 - a - b);  // the third colour
}

// spell writes n digit by digit: 1200 -> " one two zero zero".
std::string spell(long n) {
  static const char* const kDigit[] = {"zero", "one", "two",   "three", "four",
                                       "five", "six", "seven", "eight", "nine"};
  std::string s;
  for (char c : std::to_string(n)) s += std::string(" ") + kDigit[c - '0'];
  return s;
}

// What a creature is told when it arrives: the mate's colour and id, or
// faded (the place has done its N meetings).
struct Reply {
  bool faded;
  Colour colour;
  int id;
};

struct Request {
  int id;
  Colour colour;
  goro::Chan<Reply> reply;
};

// broker is the meeting place: n meetings of two, then it tells each of the
// k creatures, on its next arrival, that the place has faded.
void broker(goro::Chan<Request> place, long n, int k) {
  for (long i = 0; i < n; i++) {
    Request a = *place.recv();
    Request b = *place.recv();
    a.reply.send({false, b.colour, b.id});
    b.reply.send({false, a.colour, a.id});
  }
  // Every creature comes back exactly once more (a creature only stops when
  // told), so exactly k requests remain.
  for (int i = 0; i < k; i++) place.recv()->reply.send({true, blue, 0});
}

// run_place runs one meeting place with the given creatures and prints the
// benchmarks game's block for it; returns the total of the meeting counts.
long run_place(const std::vector<Colour>& colours, long n, bool* ok) {
  const int k = static_cast<int>(colours.size());
  std::vector<long> meetings(colours.size()), self(colours.size());
  auto place = goro::make_chan<Request>();
  goro::WaitGroup wg;
  wg.add(k);
  goro::go([place, n, k] { broker(place, n, k); });
  for (int id = 0; id < k; id++) {
    goro::go([&, id, colour = colours[static_cast<std::size_t>(id)]]() mutable {
      auto reply = goro::make_chan<Reply>();
      for (;;) {
        place.send({id, colour, reply});
        const Reply r = *reply.recv();
        if (r.faded) break;
        meetings[static_cast<std::size_t>(id)]++;
        if (r.id == id) self[static_cast<std::size_t>(id)]++;
        colour = complement(colour, r.colour);
      }
      wg.done();
    });
  }
  wg.wait();

  for (Colour c : colours) std::printf(" %s", kName[c]);
  std::printf("\n");
  long total = 0;
  for (int id = 0; id < k; id++) {
    const auto i = static_cast<std::size_t>(id);
    std::printf("%ld%s\n", meetings[i], spell(self[i]).c_str());
    total += meetings[i];
    if (self[i] != 0) *ok = false;
  }
  std::printf("%s\n\n", spell(total).c_str());
  if (total != 2 * n) *ok = false;
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 6000;
  if (n < 0) {
    std::fprintf(stderr, "usage: chameneos [N >= 0]\n");
    return 2;
  }
  bool ok = true;
  goro::run([&] {
    for (Colour a : {blue, red, yellow})
      for (Colour b : {blue, red, yellow})
        std::printf("%s + %s -> %s\n", kName[a], kName[b], kName[complement(a, b)]);
    std::printf("\n");
    run_place({blue, red, yellow}, n, &ok);
    run_place({blue, red, yellow, red, yellow, blue, red, yellow, red, blue}, n, &ok);
  });
  if (!ok) {
    std::printf("FAIL: the meeting counts must add up to %ld, with no self-meetings\n", 2 * n);
    return 1;
  }
  return 0;
}
