// chat — a chat room: clients join over TCP, every line one sends is
// broadcast to all the others; clients join and leave at any time.
//
// The shape is Go's classic: one goroutine per client reads its lines and
// sends them to the room on a channel; one "room" goroutine owns the set of
// members (no lock: only it touches the set) and fans each message out to
// every member's outgoing channel; one writer goroutine per member drains
// that channel to its socket, so a slow client delays only itself.
//
//   demos/run chat                  prints the port; join with `nc 127.0.0.1 PORT`
//   demos/run chat --smoke N        N clients of its own join, each says
//                                   hello, each must hear every other
//                                   hello, then they leave; exit 0 if so
#include <goro/goro.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace {

namespace gn = goro::net;

struct Member {
  int id;
  goro::Chan<std::string> out;  // lines to write to this member
};

struct Room {
  goro::Chan<Member> join = goro::make_chan<Member>();
  goro::Chan<int> leave = goro::make_chan<int>();
  goro::Chan<std::string> say = goro::make_chan<std::string>(64);
};

// room owns the members; it is the only goroutine that touches the map.
// It holds its own copies of the room's channels (a Chan is a reference,
// like Go's), so it never touches main's Room object.
void room(Room rm) {
  Room* r = &rm;
  std::map<int, goro::Chan<std::string>> members;
  for (;;) {
    goro::select(
        goro::case_recv(r->join, [&](std::optional<Member> m) {
          if (m) members[m->id] = m->out;
        }),
        goro::case_recv(r->leave, [&](std::optional<int> id) {
          if (!id) return;
          auto it = members.find(*id);
          if (it != members.end()) {
            it->second.close();  // its writer goroutine ends
            members.erase(it);
          }
        }),
        goro::case_recv(r->say, [&](std::optional<std::string> line) {
          if (!line) return;
          for (auto& [id, out] : members) out.try_send(*line);  // a full queue drops: slow client
        }));
  }
}

// serve runs one client: a writer goroutine and, here, the reader.
void serve(Room* r, gn::Conn* c, int id) {
  Member m{id, goro::make_chan<std::string>(64)};
  goro::WaitGroup writer;
  writer.add(1);
  goro::go([c, out = m.out, &writer]() mutable {
    for (const std::string& line : out) {
      try {
        c->write(line);
      } catch (const gn::Error&) {
        break;
      }
    }
    writer.done();
  });
  r->join.send(m);
  // The room has the member now: every line said from here on reaches it.
  m.out.send("welcome, you are client " + std::to_string(id) + "\n");
  r->say.send("* client " + std::to_string(id) + " joined\n");
  std::string pending;
  char buf[512];
  try {
    for (;;) {
      const std::size_t n = c->read(buf, sizeof buf);
      if (n == 0) break;
      pending.append(buf, n);
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        r->say.send("client " + std::to_string(id) + ": " + pending.substr(0, nl + 1));
        pending.erase(0, nl + 1);
      }
    }
  } catch (const gn::Error&) {
  }
  r->leave.send(id);
  writer.wait();
  r->say.send("* client " + std::to_string(id) + " left\n");
}

// smoke_client joins, says hello, and waits to hear every other hello.
bool smoke_client(const std::string& addr, int me, int n, goro::WaitGroup* all_in, goro::WaitGroup* said) {
  gn::Conn c = gn::dial("tcp", addr);
  c.set_read_deadline(std::chrono::steady_clock::now() + std::chrono::seconds(20));
  std::string heard;
  char buf[1024];
  while (heard.find("welcome") == std::string::npos) {  // in the room
    const std::size_t k = c.read(buf, sizeof buf);
    if (k == 0) return false;
    heard.append(buf, k);
  }
  heard.clear();
  all_in->done();
  all_in->wait();  // everyone has joined before anyone speaks
  c.write("hello from " + std::to_string(me) + "\n");
  said->done();
  int hellos = 0;
  while (hellos < n) {
    const std::size_t k = c.read(buf, sizeof buf);
    if (k == 0) return false;
    heard.append(buf, k);
    hellos = 0;
    for (std::size_t p = heard.find("hello from "); p != std::string::npos; p = heard.find("hello from ", p + 1))
      hellos++;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const bool smoke = argc >= 2 && std::strcmp(argv[1], "--smoke") == 0;
  const int n = smoke && argc >= 3 ? std::atoi(argv[2]) : 5;
  int status = 0;
  goro::run([&] {
    Room r;
    goro::go([r] { room(r); });
    goro::WaitGroup sessions;  // serve goroutines still running
    gn::Listener ln = gn::listen("tcp", "127.0.0.1:0");
    std::printf("chat room on %s\n", ln.addr().c_str());
    std::fflush(stdout);
    goro::go([&] {
      for (int id = 1;; id++) {
        gn::Conn c;
        try {
          c = ln.accept();
        } catch (const gn::Error& e) {
          if (e.closed()) return;
          continue;
        }
        sessions.add(1);
        goro::go([&r, &sessions, c = std::move(c), id]() mutable {
          serve(&r, &c, id);
          sessions.done();
        });
      }
    });
    if (!smoke) {
      for (;;) goro::sleep_for(std::chrono::hours(1));
    }
    // Smoke: n clients join, each hears all n hellos (its own included),
    // then they leave (their Conns close at the end of smoke_client).
    goro::WaitGroup all_in, said, done;
    all_in.add(n);
    said.add(n);
    done.add(n);
    std::atomic<int> ok{0};
    for (int i = 0; i < n; i++) {
      goro::go([&, i] {
        try {
          if (smoke_client(ln.addr(), i, n, &all_in, &said)) ok.fetch_add(1);
        } catch (const gn::Error& e) {
          std::fprintf(stderr, "client %d: %s\n", i, e.what());
        }
        done.done();
      });
    }
    done.wait();
    sessions.wait();  // every member has left: nobody uses `r` any more
    ln.close();
    std::printf("%d of %d clients heard every hello\n", ok.load(), n);
    status = ok.load() == n ? 0 : 1;
  });
  return status;
}
