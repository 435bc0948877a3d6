// trace_reader.hpp — a small streaming reader for Chrome trace-event JSON, as
// GORO_TRACE writes it: goro-trace and the tests use it. It hands each element
// of "traceEvents" to a callback as a flat TraceEv (the fields goro uses, and
// the args as key/text pairs), so a million-event trace never becomes a DOM.
//
// Tolerant on purpose: a file cut short (a program killed by SIGKILL, which
// no runtime can catch) yields every complete event before the cut, and
// read_trace reports where it stopped.
#pragma once

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace goro::tracefile {

struct TraceEv {
  std::string ph, name, cat;
  std::int64_t pid = -1, tid = -1, id = 0;
  double ts = 0, dur = 0;  // microseconds
  std::vector<std::pair<std::string, std::string>> args;  // values: unescaped strings or number text
  std::size_t nargs = 0;   // args[0, nargs) are this event's (the vector is reused)

  const std::string* arg(std::string_view key) const {
    for (std::size_t i = 0; i < nargs; i++)
      if (args[i].first == key) return &args[i].second;
    return nullptr;
  }
  std::int64_t argi(std::string_view key, std::int64_t dflt = -1) const {
    const std::string* v = arg(key);
    return v != nullptr && !v->empty() ? std::strtoll(v->c_str(), nullptr, 10) : dflt;
  }
  std::string args_str(std::string_view key) const {
    const std::string* v = arg(key);
    return v != nullptr ? *v : std::string();
  }
};

struct ReadResult {
  bool ok = false;            // the whole file parsed
  std::size_t events = 0;
  std::string error;          // why not, with the byte offset
};

namespace detail_reader {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}
  std::string error;

  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) i_++;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      i_++;
      return true;
    }
    return false;
  }
  bool expect(char c) {
    if (eat(c)) return true;
    fail(std::string("expected '") + c + "'");
    return false;
  }
  void fail(const std::string& why) {
    if (error.empty()) error = why + " at byte " + std::to_string(i_);
  }
  bool at_end() {
    ws();
    return i_ >= s_.size();
  }
  char peek() {
    ws();
    return i_ < s_.size() ? s_[i_] : '\0';
  }

  bool str(std::string* out) {
    out->clear();
    if (!expect('"')) return false;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      switch (e) {
        case 'n': out->push_back('\n'); break;
        case 't': out->push_back('\t'); break;
        case 'r': out->push_back('\r'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'u': {
          if (i_ + 4 > s_.size()) {
            fail("bad \\u escape");
            return false;
          }
          unsigned v = static_cast<unsigned>(std::strtoul(std::string(s_.substr(i_, 4)).c_str(), nullptr, 16));
          i_ += 4;
          if (v < 0x80) {
            out->push_back(static_cast<char>(v));
          } else if (v < 0x800) {
            out->push_back(static_cast<char>(0xc0 | (v >> 6)));
            out->push_back(static_cast<char>(0x80 | (v & 0x3f)));
          } else {
            out->push_back(static_cast<char>(0xe0 | (v >> 12)));
            out->push_back(static_cast<char>(0x80 | ((v >> 6) & 0x3f)));
            out->push_back(static_cast<char>(0x80 | (v & 0x3f)));
          }
          break;
        }
        default: out->push_back(e);
      }
    }
    fail("unterminated string");
    return false;
  }

  // scalar reads a number, true, false or null as its text.
  bool scalar(std::string* out) {
    ws();
    const std::size_t b = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                              s_[i_] == '+' || s_[i_] == '.'))
      i_++;
    if (i_ == b) {
      fail("expected a value");
      return false;
    }
    out->assign(s_.substr(b, i_ - b));
    return true;
  }

  // skip passes over any value, keeping its raw text in out (if given).
  bool skip(std::string* out = nullptr) {
    ws();
    const std::size_t b = i_;
    const char c = peek();
    bool ok = true;
    std::string tmp;
    if (c == '"') {
      ok = str(out != nullptr ? out : &tmp);
      return ok;
    } else if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      i_++;
      if (!eat(close)) {
        do {
          if (c == '{') {
            ok = str(&tmp) && expect(':');
            if (!ok) return false;
          }
          if (!skip()) return false;
        } while (eat(','));
        if (!expect(close)) return false;
      }
    } else {
      ok = scalar(out != nullptr ? out : &tmp);
      return ok;
    }
    if (out != nullptr) out->assign(s_.substr(b, i_ - b));
    return ok;
  }

  bool num(double* d) {
    std::string t;
    ws();
    if (peek() == '"') {
      if (!str(&t)) return false;
    } else if (!scalar(&t)) {
      return false;
    }
    *d = std::strtod(t.c_str(), nullptr);
    return true;
  }

  bool event(TraceEv* e) {
    e->ph.clear();
    e->name.clear();
    e->cat.clear();
    e->pid = e->tid = -1;
    e->id = 0;
    e->ts = e->dur = 0;
    e->nargs = 0;
    if (!expect('{')) return false;
    if (eat('}')) return true;
    std::string key;
    do {
      if (!str(&key) || !expect(':')) return false;
      double d = 0;
      if (key == "ph") {
        if (!str(&e->ph)) return false;
      } else if (key == "name") {
        if (!str(&e->name)) return false;
      } else if (key == "cat") {
        if (!str(&e->cat)) return false;
      } else if (key == "pid" || key == "tid" || key == "ts" || key == "dur" || key == "id") {
        if (!num(&d)) return false;
        if (key == "pid") e->pid = static_cast<std::int64_t>(d);
        if (key == "tid") e->tid = static_cast<std::int64_t>(d);
        if (key == "id") e->id = static_cast<std::int64_t>(d);
        if (key == "ts") e->ts = d;
        if (key == "dur") e->dur = d;
      } else if (key == "args" && peek() == '{') {
        expect('{');
        if (!eat('}')) {
          do {
            if (e->nargs == e->args.size()) e->args.emplace_back();
            auto& kv = e->args[e->nargs];
            if (!str(&kv.first) || !expect(':') || !skip(&kv.second)) return false;
            e->nargs++;
          } while (eat(','));
          if (!expect('}')) return false;
        }
      } else if (!skip()) {
        return false;
      }
    } while (eat(','));
    return expect('}');
  }

  bool events(const std::function<void(const TraceEv&)>& fn, std::size_t* count) {
    if (!expect('[')) return false;
    if (eat(']')) return true;
    TraceEv e;
    do {
      if (!event(&e)) return false;
      (*count)++;
      fn(e);
    } while (eat(','));
    return expect(']');
  }

  bool document(const std::function<void(const TraceEv&)>& fn, std::size_t* count) {
    if (peek() == '[') return events(fn, count) && end();
    if (!expect('{')) return false;
    std::string key;
    do {
      if (!str(&key) || !expect(':')) return false;
      if (key == "traceEvents") {
        if (!events(fn, count)) return false;
      } else if (!skip()) {
        return false;
      }
    } while (eat(','));
    return expect('}') && end();
  }

  bool end() {
    if (!at_end()) {
      fail("trailing characters");
      return false;
    }
    return true;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace detail_reader

// read_trace parses text, calling fn for each event in file order.
inline ReadResult read_trace(std::string_view text, const std::function<void(const TraceEv&)>& fn) {
  ReadResult r;
  detail_reader::Parser p(text);
  r.ok = p.document(fn, &r.events);
  r.error = p.error;
  return r;
}

}  // namespace goro::tracefile
