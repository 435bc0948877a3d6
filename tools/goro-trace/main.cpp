// goro-trace — turns a GORO_TRACE file into one self-contained HTML page
// (go tool trace's views, offline): a lane per P and per M over time,
// goroutine slices coloured by why they stopped, GC and stop-the-world
// bands, steal and hand-off markers, wakeup flow arrows, counter tracks, and
// the goroutine analysis table.
//
//   goro-trace FILE [-o OUT.html]      (default OUT: FILE with .html)
//
// The work is split so that a million-event trace stays light in the
// browser: this program reads the trace once (trace_reader.hpp, streaming),
// turns it into flat numeric columns and the per-goroutine analysis, and
// writes them as one JSON object into the page template (page.hpp), whose
// small hand-written script only draws. Nothing is fetched: no CDN, no
// network.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "tools/goro-trace/page.hpp"
#include "tools/goro-trace/trace_reader.hpp"

namespace {

using goro::tracefile::TraceEv;

// The stop categories, in the order the page colours them.
const std::vector<std::string> kCats = {"other", "preempted", "yield", "chan send", "chan recv", "select",
                                        "sync",  "sleep",     "network", "GC",      "syscall",   "exit",
                                        "gc",    "stw",       "region"};

int cat_index(const std::string& c) {
  for (std::size_t i = 0; i < kCats.size(); i++)
    if (kCats[i] == c) return static_cast<int>(i);
  return 0;
}

struct Lane {
  std::string kind;  // "P", "M", "GC", "STW", "R" (a goroutine's regions)
  std::int64_t id;
  std::string label;
};

// Strings (slice details, marker texts) are interned: a trace repeats a few.
struct Strings {
  std::vector<std::string> v;
  std::unordered_map<std::string, int> idx;
  int get(const std::string& s) {
    auto it = idx.find(s);
    if (it != idx.end()) return it->second;
    idx.emplace(s, static_cast<int>(v.size()));
    v.push_back(s);
    return static_cast<int>(v.size()) - 1;
  }
};

struct GInfo {
  std::int64_t created = -1, parent = -1;
  std::string at;
  // (ts, kind, cat): kind 0 create, 1 start, 2 stop, 3 unblock
  std::vector<std::tuple<std::int64_t, int, int>> ev;
  std::int64_t syscall = 0;
};

std::int64_t ns(double us) { return static_cast<std::int64_t>(us * 1000.0 + 0.5); }

void json_str(std::string& o, const std::string& s) {
  o.push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o.push_back('\\');
      o.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char u[8];
      std::snprintf(u, sizeof u, "\\u%04x", c);
      o += u;
    } else if (c == '<') {
      o += "\\u003c";  // never close the page's <script> from inside data
    } else {
      o.push_back(static_cast<char>(c));
    }
  }
  o.push_back('"');
}

template <class T>
void json_arr(std::string& o, const char* name, const std::vector<T>& v) {
  o += '"';
  o += name;
  o += "\":[";
  for (std::size_t i = 0; i < v.size(); i++) {
    if (i) o.push_back(',');
    o += std::to_string(v[i]);
  }
  o += "],";
}

class Model {
 public:
  std::vector<Lane> lanes;
  std::map<std::pair<std::int64_t, std::int64_t>, int> lane_of;  // (pid, tid) -> lane
  std::map<std::int64_t, std::string> mnames;
  std::vector<std::int64_t> sl_ts, sl_dur, sl_lane, sl_g, sl_cat, sl_woke, sl_name;
  std::vector<std::int64_t> mk_ts, mk_lane, mk_kind, mk_text;
  std::vector<std::int64_t> fl_ts0, fl_lane0, fl_ts1, fl_lane1;
  std::map<std::string, std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>> counters;
  std::map<std::int64_t, GInfo> gs;
  Strings strs;
  std::vector<std::string> mkinds;
  std::int64_t tmax = 0, nslicesP = 0;
  std::size_t events = 0;
  bool complete = false;
  std::string end_why;

  void add(const TraceEv& e) {
    events++;
    if (e.ph == "M") {
      if (e.name == "thread_name" && e.pid == 1) mnames[e.tid] = e.args_str("name");
      if (e.name == "thread_name" && e.pid == 2) lane({2, e.tid}, "P", e.tid, "P" + std::to_string(e.tid));
      if (e.name == "trace_end") {
        complete = e.args_str("complete") == "true";
        end_why = e.args_str("why");
      }
      return;
    }
    const std::int64_t ts = ns(e.ts);
    tmax = std::max(tmax, ts + ns(e.dur));
    if (e.ph == "X") return slice(e, ts);
    if (e.ph == "s") {
      flow_start[e.id] = {ts, e.pid == 2 ? plane(e.tid) : mlane(e.tid)};
      return;
    }
    if (e.ph == "f") {
      auto it = flow_start.find(e.id);
      if (it == flow_start.end()) return;
      fl_ts0.push_back(it->second.first);
      fl_lane0.push_back(it->second.second);
      fl_ts1.push_back(ts);
      fl_lane1.push_back(e.pid == 2 ? plane(e.tid) : mlane(e.tid));
      flow_start.erase(it);
      return;
    }
    if (e.ph == "C") {
      for (std::size_t i = 0; i < e.nargs; i++) {
        auto& c = counters[e.name];
        c.first.push_back(ts);
        c.second.push_back(std::strtoll(e.args[i].second.c_str(), nullptr, 10));
      }
      return;
    }
    if (e.ph == "i") return instant(e, ts);
  }

  // finish sorts what the page binary-searches and computes the analysis.
  void finish() {
    // Lanes: Ps, then Ms (sysmon and other threads last), GC, STW, regions.
    auto rank = [](const Lane& l) {
      static const char* order[] = {"P", "M", "GC", "STW", "R"};
      for (int i = 0; i < 5; i++)
        if (l.kind == order[i]) return i;
      return 5;
    };
    std::vector<int> perm(lanes.size());
    for (std::size_t i = 0; i < perm.size(); i++) perm[i] = static_cast<int>(i);
    std::stable_sort(perm.begin(), perm.end(), [&](int a, int b) {
      if (rank(lanes[a]) != rank(lanes[b])) return rank(lanes[a]) < rank(lanes[b]);
      return lanes[a].id < lanes[b].id;
    });
    std::vector<std::int64_t> newpos(lanes.size());
    std::vector<Lane> sorted;
    for (std::size_t i = 0; i < perm.size(); i++) {
      newpos[perm[i]] = static_cast<std::int64_t>(i);
      sorted.push_back(lanes[perm[i]]);
    }
    for (Lane& l : sorted)
      if (l.kind == "M") {
        auto it = mnames.find(l.id);
        l.label = it != mnames.end() ? it->second : "M" + std::to_string(l.id);
      }
    lanes = sorted;
    for (auto* v : {&sl_lane, &mk_lane, &fl_lane0, &fl_lane1})
      for (auto& x : *v) x = newpos[x];
    // Slices and markers sorted by (lane, ts).
    sort_cols({&sl_ts, &sl_dur, &sl_lane, &sl_g, &sl_cat, &sl_woke, &sl_name}, sl_lane, sl_ts);
    sort_cols({&mk_ts, &mk_lane, &mk_kind, &mk_text}, mk_lane, mk_ts);
    // Counters come from several Ms' buffers, flushed at different times.
    for (auto& [name, c] : counters) {
      std::vector<std::int64_t> zero(c.first.size(), 0);
      sort_cols({&c.first, &c.second}, zero, c.first);
    }
  }

  std::string data_json() {
    std::string o = "{";
    o += "\"lanes\":[";
    for (std::size_t i = 0; i < lanes.size(); i++) {
      if (i) o += ',';
      o += "{\"kind\":";
      json_str(o, lanes[i].kind);
      o += ",\"id\":" + std::to_string(lanes[i].id) + ",\"label\":";
      json_str(o, lanes[i].label);
      o += '}';
    }
    o += "],";
    o += "\"cats\":[";
    for (std::size_t i = 0; i < kCats.size(); i++) {
      if (i) o += ',';
      json_str(o, kCats[i]);
    }
    o += "],\"mkinds\":[";
    for (std::size_t i = 0; i < mkinds.size(); i++) {
      if (i) o += ',';
      json_str(o, mkinds[i]);
    }
    o += "],\"strs\":[";
    for (std::size_t i = 0; i < strs.v.size(); i++) {
      if (i) o += ',';
      json_str(o, strs.v[i]);
    }
    o += "],";
    json_arr(o, "sl_ts", sl_ts);
    json_arr(o, "sl_dur", sl_dur);
    json_arr(o, "sl_lane", sl_lane);
    json_arr(o, "sl_g", sl_g);
    json_arr(o, "sl_cat", sl_cat);
    json_arr(o, "sl_woke", sl_woke);
    json_arr(o, "sl_name", sl_name);
    json_arr(o, "mk_ts", mk_ts);
    json_arr(o, "mk_lane", mk_lane);
    json_arr(o, "mk_kind", mk_kind);
    json_arr(o, "mk_text", mk_text);
    json_arr(o, "fl_ts0", fl_ts0);
    json_arr(o, "fl_lane0", fl_lane0);
    json_arr(o, "fl_ts1", fl_ts1);
    json_arr(o, "fl_lane1", fl_lane1);
    o += "\"counters\":[";
    bool first = true;
    for (auto& [name, c] : counters) {
      if (!first) o += ',';
      first = false;
      o += "{\"name\":";
      json_str(o, name);
      o += ',';
      json_arr(o, "ts", c.first);
      json_arr(o, "v", c.second);
      o.back() = '}';
    }
    o += "],\"goroutines\":[";
    analysis(o);
    o += "],\"tmax\":" + std::to_string(tmax) + ",\"events\":" + std::to_string(events) +
         ",\"slicesP\":" + std::to_string(nslicesP) + ",\"complete\":" + (complete ? "true" : "false") +
         ",\"why\":";
    json_str(o, end_why);
    o += '}';
    return o;
  }

 private:
  std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> flow_start;
  std::unordered_map<std::string, int> mkind_idx;

  int lane(std::pair<std::int64_t, std::int64_t> key, const std::string& kind, std::int64_t id,
           const std::string& label) {
    auto it = lane_of.find(key);
    if (it != lane_of.end()) return it->second;
    const int n = static_cast<int>(lanes.size());
    lanes.push_back({kind, id, label});
    lane_of.emplace(key, n);
    return n;
  }
  int mlane(std::int64_t tid) { return lane({1, tid}, "M", tid, "M" + std::to_string(tid)); }
  int plane(std::int64_t p) { return lane({2, p}, "P", p, "P" + std::to_string(p)); }

  int mkind(const std::string& k) {
    auto it = mkind_idx.find(k);
    if (it != mkind_idx.end()) return it->second;
    mkind_idx.emplace(k, static_cast<int>(mkinds.size()));
    mkinds.push_back(k);
    return static_cast<int>(mkinds.size()) - 1;
  }

  void slice(const TraceEv& e, std::int64_t ts) {
    const std::int64_t dur = ns(e.dur);
    int ln;
    int cat;
    std::int64_t g = e.argi("g", 0);
    std::string name = e.name;
    if (e.pid == 1) {
      ln = mlane(e.tid);
      cat = e.cat == "syscall" ? cat_index("syscall") : cat_index(e.cat);
      if (e.cat == "syscall") {
        gs[g].syscall += dur;
        name = e.args_str("handoff") == "1" ? "syscall (P handed off)" : "syscall";
      } else {
        name = e.args_str("stopped");
      }
    } else if (e.pid == 2) {
      ln = plane(e.tid);
      cat = cat_index(e.cat);
      name = e.args_str("stopped");
      nslicesP++;
      GInfo& gi = gs[g];
      gi.ev.emplace_back(ts, 1, cat);
      gi.ev.emplace_back(ts + dur, 2, cat);
      // The same run on its M's lane.
      if (const std::int64_t m = e.argi("m", -1); m >= 0) push_slice(ts, dur, mlane(m), g, cat, e, name);
    } else if (e.pid == 3) {
      ln = e.tid == 1 ? lane({3, 1}, "GC", 0, "GC") : lane({3, 2}, "STW", 0, "STW");
      cat = e.tid == 1 ? cat_index("gc") : cat_index("stw");
    } else {
      ln = lane({4, e.tid}, "R", e.tid, "G" + std::to_string(e.tid) + " regions");
      cat = cat_index("region");
    }
    push_slice(ts, dur, ln, g, cat, e, name);
  }

  void push_slice(std::int64_t ts, std::int64_t dur, int ln, std::int64_t g, int cat, const TraceEv& e,
                  const std::string& name) {
    sl_ts.push_back(ts);
    sl_dur.push_back(dur);
    sl_lane.push_back(ln);
    sl_g.push_back(g);
    sl_cat.push_back(cat);
    sl_woke.push_back(e.argi("wokenBy", 0));
    sl_name.push_back(strs.get(name));
  }

  void instant(const TraceEv& e, std::int64_t ts) {
    const std::int64_t g = e.argi("g", 0);
    if (e.name == "GoCreate") {
      GInfo& gi = gs[g];
      gi.created = ts;
      gi.parent = e.argi("parent", 0);
      gi.at = e.args_str("at");
      gi.ev.emplace_back(ts, 0, 0);
    } else if (e.name == "GoUnblock") {
      gs[g].ev.emplace_back(ts, 3, 0);
    }
    // Markers: on the P lane for what happens to a P, else on the M's.
    const bool on_p = (e.name == "Steal" || e.name == "Handoffp" || e.name == "SysmonRetake" ||
                       e.name == "GlobalRunqGet" || e.name == "ProcStart" || e.name == "ProcStop") &&
                      e.argi("p") >= 0;
    const int ln = on_p ? plane(e.argi("p")) : mlane(e.tid);
    std::string text = e.name;
    if (e.name != "GoUnblock" && e.name != "GoCreate") {  // frequent: their story is the flows and the table
      for (std::size_t i = 0; i < e.nargs; i++) text += " " + e.args[i].first + "=" + e.args[i].second;
    } else {
      text += " G" + std::to_string(g);
    }
    mk_ts.push_back(ts);
    mk_lane.push_back(ln);
    mk_kind.push_back(mkind(e.name));
    mk_text.push_back(strs.get(text));
  }

  static void sort_cols(std::vector<std::vector<std::int64_t>*> cols, const std::vector<std::int64_t>& lane,
                        const std::vector<std::int64_t>& ts) {
    std::vector<std::size_t> idx(lane.size());
    for (std::size_t i = 0; i < idx.size(); i++) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      return lane[a] != lane[b] ? lane[a] < lane[b] : ts[a] < ts[b];
    });
    for (auto* c : cols) {
      std::vector<std::int64_t> n(c->size());
      for (std::size_t i = 0; i < idx.size(); i++) n[i] = (*c)[idx[i]];
      *c = std::move(n);
    }
  }

  // analysis writes go tool trace's goroutine analysis: per goroutine the
  // time running, waiting runnable, blocked (by reason) and in system calls.
  void analysis(std::string& o) {
    bool first = true;
    for (auto& [g, gi] : gs) {
      if (g == 0) continue;
      std::sort(gi.ev.begin(), gi.ev.end());
      std::int64_t running = 0, runnable = 0;
      std::vector<std::int64_t> blocked(kCats.size(), 0);
      // state: 0 unknown, 1 runnable since t, 2 running since t, 3 blocked (cat) since t
      int state = 0, bcat = 0;
      std::int64_t since = 0, t0 = -1, t1 = 0;
      for (auto& [ts, kind, cat] : gi.ev) {
        if (t0 < 0) t0 = ts;
        t1 = std::max(t1, ts);
        switch (kind) {
          case 0: state = 1, since = ts; break;
          case 3:
            if (state == 3) blocked[bcat] += ts - since;
            if (state != 2) state = 1, since = ts;
            break;
          case 1:
            if (state == 1) runnable += ts - since;
            if (state == 3) blocked[bcat] += ts - since;  // woken without an unblock event
            state = 2, since = ts;
            break;
          case 2: {
            running += ts - since;
            const std::string& c = kCats[cat];
            if (c == "preempted" || c == "yield" || c == "syscall") state = 1, since = ts;
            else if (c == "exit") state = 0;
            else state = 3, bcat = cat, since = ts;
            break;
          }
        }
      }
      if (!first) o += ',';
      first = false;
      o += "{\"g\":" + std::to_string(g) + ",\"parent\":" + std::to_string(gi.parent) + ",\"at\":";
      json_str(o, gi.at);
      const std::int64_t sys = std::min(gi.syscall, running);
      o += ",\"created\":" + std::to_string(gi.created) + ",\"total\":" + std::to_string(t0 < 0 ? 0 : t1 - t0) +
           ",\"running\":" + std::to_string(running - sys) + ",\"runnable\":" + std::to_string(runnable) +
           ",\"syscall\":" + std::to_string(sys) + ",\"blocked\":{";
      bool bf = true;
      for (std::size_t i = 0; i < blocked.size(); i++) {
        if (blocked[i] == 0) continue;
        if (!bf) o += ',';
        bf = false;
        json_str(o, kCats[i]);
        o += ':' + std::to_string(blocked[i]);
      }
      o += "}}";
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string in, out;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
      out = argv[++i];
    } else if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      std::printf("usage: goro-trace FILE [-o OUT.html]\n");
      return 0;
    } else if (in.empty()) {
      in = argv[i];
    } else {
      std::fprintf(stderr, "goro-trace: unexpected argument %s\nusage: goro-trace FILE [-o OUT.html]\n", argv[i]);
      return 2;
    }
  }
  if (in.empty()) {
    std::fprintf(stderr, "usage: goro-trace FILE [-o OUT.html]\n");
    return 2;
  }
  if (out.empty()) {
    out = in;
    const std::size_t dot = out.rfind('.');
    if (dot != std::string::npos && out.find('/', dot) == std::string::npos) out.resize(dot);
    out += ".html";
  }
  std::ifstream f(in, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "goro-trace: cannot read %s: %s\n", in.c_str(), std::strerror(errno));
    return 1;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  Model m;
  auto res = goro::tracefile::read_trace(text, [&](const TraceEv& e) { m.add(e); });
  if (!res.ok) {
    if (res.events == 0) {
      std::fprintf(stderr, "goro-trace: %s is not a trace: %s\n", in.c_str(), res.error.c_str());
      return 1;
    }
    std::fprintf(stderr, "goro-trace: %s is cut short (%s); showing the %zu events before the cut\n",
                 in.c_str(), res.error.c_str(), res.events);
  }
  m.finish();
  std::string page = goro_trace_page;
  const std::string data = m.data_json();
  const std::string marker = "/*GORO_TRACE_DATA*/null";
  const std::size_t at = page.find(marker);
  page.replace(at, marker.size(), data);
  std::ofstream o(out, std::ios::binary);
  o << page;
  if (!o.good()) {
    std::fprintf(stderr, "goro-trace: cannot write %s\n", out.c_str());
    return 1;
  }
  std::fprintf(stderr, "goro-trace: %zu events, %zu lanes -> %s\n", m.events, m.lanes.size(), out.c_str());
  return 0;
}
