#!/usr/bin/env python3
"""Print the goro-vs-Go benchmark table (see bench/README.md and BENCH.md).

Usage: python3 bench/compare.py [--build-dir BUILD] [--only name,name] [--procs N]
                                [--env NAME=VALUE]... [--gcstoptheworld 0|1|both]

Builds the Go peers (bench/peers/go) into BUILD/bench/peers, runs each row's
goro Google Benchmark program from BUILD/bench/ and its Go peer, each in its
own process with GOMAXPROCS=N (default 2) and, row by row, side by side, and
prints a Markdown table of the medians with the ratio goro/Go and the target
from BENCH.md. --gcstoptheworld 1 runs both runtimes in their
stop-the-world GC mode (GORO_DEBUG / GODEBUG gcstoptheworld=1); "both" runs
every row in both modes and prints them side by side; --env sets further
variables. It is a report: the exit status is 0 even when targets are
missed, non-zero only if nothing at all could be run. Standard library only.
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEERS_SRC = os.path.join(HERE, "peers", "go")

# One row of the table.
#   name        row name (also what --only selects)
#   goro_bin    the goro program in BUILD/bench/ expected to hold the benchmark
#               (if it is not there, the other goro programs are searched)
#   goro_bench  Google Benchmark name, without "/..." suffixes (real_time,
#               iterations:1, arguments...)
#   goro_metric "real_time": the median per-iteration real_time, converted to
#               `unit`; anything else: the name of a user counter whose median
#               is already in `unit`
#   go_name     the "name" of the Go peer's JSON result line
#   unit        "ns/op", "us", "ms", "s", "B", "news", "cpus" (CPU time / wall
#               time), "x" (a ratio of two times) or "cycles"
#   target      the goro/Go ratio to meet (BENCH.md), or None
#   absolute    True when target is an absolute bound on the goro value
Row = collections.namedtuple(
    "Row", "name goro_bin goro_bench goro_metric go_name unit target absolute",
    defaults=(False,))

S, C, G, P = "goro_bench_sched", "goro_bench_chan", "goro_bench_gc", "goro_bench_pool"
N = "goro_bench_net"

ROWS = [
    Row("spawn",              S, "spawn",              "real_time",    "spawn",              "ns/op", 0.8),
    Row("yield",              S, "yield",              "real_time",    "yield",              "ns/op", 0.5),
    Row("sleep_wakeup",       S, "sleep_wakeup",       "us",           "sleep_wakeup",       "us",    None),
    Row("pingpong",           C, "pingpong",           "real_time",    "pingpong",           "ns/op", 0.6),
    Row("prodcons",           C, "prodcons",           "real_time",    "prodcons",           "ns/op", 0.8),
    Row("select",             C, "select",             "real_time",    "select",             "ns/op", 0.8),
    Row("threadring",         C, "threadring",         "real_time",    "threadring",         "ns/op", 0.5),
    Row("skynet",             C, "skynet",             "ms",           "skynet",             "ms",    0.8),
    Row("chanmake",           C, "chanmake",           "real_time",    "chanmake",           "ns/op", None),
    Row("chanmake_int",       C, "chanmake_int",       "real_time",    "chanmake_int",       "ns/op", None),
    Row("skynet_wg",          S, "skynet_wg",          "ms",           "skynet_wg",          "ms",    None),
    Row("mutex",              S, "mutex",              "real_time",    "mutex",              "ns/op", 1.0),
    Row("timers",             S, "timers",             "ms",           "timers",             "ms",    1.0),
    Row("parked",             S, "parked",             "bytes_per_g",  "parked",             "B",     1.6),
    Row("blocking",           S, "blocking",           "real_time",    "blocking",           "ns/op", 1.0),
    Row("blocking_syscall",   S, "blocking",           "real_time",    "blocking_syscall",   "ns/op", None),
    Row("blocking_raw",       S, "blocking_raw",       "real_time",    "blocking",           "ns/op", None),
    Row("handoff",            S, "handoff",            "us",           "handoff",            "us",    None),
    Row("idle",               S, "idle",               "cpu_s",        "idle",               "s",     0.01, True),
    Row("alloc",              G, "alloc",              "real_time",    "alloc",              "ns/op", 1.0),
    Row("binarytrees",        G, "binarytrees",        "ms",           "binarytrees",        "ms",    1.0),
    Row("binarytrees_pause",  G, "binarytrees",        "max_pause_ms", "binarytrees_pause",  "ms",    2.0),
    Row("binarytrees_p99",    G, "binarytrees",        "p99_pause_ms", "binarytrees_p99",    "ms",    None),
    Row("gcpause100m",        G, "gcpause100m",        "ms",           "gcpause100m",        "ms",    1.0),
    Row("gcpause100m_pause",  G, "gcpause100m",        "pause_ms",     "gcpause100m_pause",  "ms",    2.0, True),
    Row("gcpause100m_cpu",    G, "gcpause100m",        "cpus",         "gcpause100m_cpu",    "cpus",  None),
    Row("gcpause1g",          G, "gcpause1g",          "ms",           "gcpause1g",          "ms",    1.0),
    Row("gcpause1g_pause",    G, "gcpause1g",          "pause_ms",     "gcpause1g_pause",    "ms",    None),
    Row("gcpause1g_cpu",      G, "gcpause1g",          "cpus",         "gcpause1g_cpu",      "cpus",  None),
    Row("gcparked",           G, "gcparked",           "ms",           "gcparked",           "ms",    None),
    Row("gcparked_pause",     G, "gcparked",           "pause_ms",     "gcparked_pause",     "ms",    None),
    Row("gcparked_cpu",       G, "gcparked",           "cpus",         "gcparked_cpu",       "cpus",  None),
    Row("gcmutator",          G, "gcmutator",          "ratio",        "gcmutator",          "x",     None),
    Row("gcmutator_cycles",   G, "gcmutator",          "cycles",       "gcmutator_cycles",   "cycles", None),
    Row("pool",               P, "pool",               "real_time",    "pool",               "ns/op", 0.8),
    Row("pool_parallel",      P, "pool_parallel",      "real_time",    "pool_parallel",      "ns/op", 0.8),
    Row("pool_overflow",      P, "pool_overflow",      "real_time",    "pool_overflow",      "ns/op", None),
    Row("pool_steal",         P, "pool_steal",         "real_time",    "pool_steal",         "ns/op", None),
    Row("pool_expensive_new", P, "pool_expensive_new", "news",         "pool_expensive_new", "news",  None),
    Row("net_pingpong",       N, "net_pingpong",       "real_time",    "net_pingpong",       "ns/op", 0.9),
    Row("net_echo",           N, "net_echo",           "real_time",    "net_echo",           "ns/op", 0.9),
    Row("net_accept",         N, "net_accept",         "real_time",    "net_accept",         "ns/op", 1.0),
    Row("net_idle",           N, "net_idle",           "bytes_per_conn", "net_idle",         "B",     1.5),
]

GORO_BINS = [S, C, G, P, N]

# Go result lines printed by another peer benchmark than their own name.
PEER_ARG = {"binarytrees_pause": "binarytrees", "binarytrees_p99": "binarytrees",
            "blocking_syscall": "blocking", "parked_sys": "parked",
            "gcpause100m_pause": "gcpause100m", "gcpause100m_cpu": "gcpause100m",
            "gcpause1g_pause": "gcpause1g", "gcpause1g_cpu": "gcpause1g",
            "gcparked_pause": "gcparked", "gcparked_cpu": "gcparked",
            "gcmutator_cycles": "gcmutator"}

# Variables holding comma-separated name=value settings: --env and
# --gcstoptheworld add to what the environment already holds there (a later
# setting wins in both parsers) instead of replacing it.
DEBUG_VARS = ("GORO_DEBUG", "GODEBUG")



# --gcstoptheworld: the modes to run, each (title, settings). With
# gcstoptheworld=1 neither runtime lets a goroutine run during the mark:
# goro marks inside its pause; Go 1.19 starts the world but keeps user
# goroutines descheduled until mark termination, so its PauseNs still counts
# only the two short stop-the-world phases (see README.md).
def gc_settings(v):
    return [("GORO_DEBUG", "gcstoptheworld=%d" % v), ("GODEBUG", "gcstoptheworld=%d" % v)]


GC_MODES = {
    None: [("", [])],
    "0": [("concurrent GC", gc_settings(0))],
    "1": [("stop-the-world GC", gc_settings(1))],
    "both": [("concurrent GC", gc_settings(0)), ("stop-the-world GC", gc_settings(1))],
}

# Nanoseconds per Google Benchmark time_unit, and per table unit.
NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
UNIT_NS = {"ns/op": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

notes = []


def note(msg):
    notes.append(msg)
    print("compare: " + msg, file=sys.stderr)


def progress(msg):
    print("compare: " + msg, file=sys.stderr, flush=True)


def run(cmd, env, timeout, cwd=None):
    """Run cmd; return (returncode, stdout, stderr), returncode None on timeout."""
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, text=True)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or "", e.stderr or ""
    except OSError as e:
        return -1, "", str(e)


def tail(text, n=5):
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return " / ".join(text.strip().splitlines()[-n:])


# ---------------------------------------------------------------- Go side --

def build_peers(build_dir, env):
    """go build the peers; return the executable's path or None."""
    go = os.environ.get("GO") or shutil.which("go") or "/usr/bin/go"
    if not os.path.exists(go) and not shutil.which(go):
        note("go not found: Go side skipped")
        return None
    out_dir = os.path.join(build_dir, "bench")
    os.makedirs(out_dir, exist_ok=True)
    exe = os.path.join(out_dir, "peers")
    benv = dict(env, GO111MODULE="on",
                GOCACHE=os.path.join(out_dir, "go-cache"),
                GOPATH=os.path.join(out_dir, "go-path"))
    benv.pop("GOFLAGS", None)
    progress("building Go peers -> " + exe)
    rc, _, err = run([go, "build", "-o", exe, "."], benv, 600, cwd=PEERS_SRC)
    if rc != 0:
        note("go build failed (%s): %s" % (rc, tail(err)))
        return None
    rc, out, _ = run([go, "version"], benv, 60)
    if rc == 0:
        notes.append("Go: " + out.strip())
    return exe


def run_peer(exe, arg, env, timeout):
    """Run one Go peer benchmark; return {result name: value}."""
    progress("go   " + arg)
    rc, out, err = run([exe, arg], env, timeout)
    res = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                r = json.loads(line)
                res[r["name"]] = float(r["value"])
            except (ValueError, KeyError):
                pass
    if rc != 0:
        note("Go peer %s: %s: %s" % (arg, "timed out" if rc is None else "exit %s" % rc, tail(err)))
    return res


# -------------------------------------------------------------- goro side --

def list_goro(bench_dir, env):
    """{program path: set of benchmark base names} for the goro programs present."""
    progs = {}
    for b in GORO_BINS:
        path = os.path.join(bench_dir, b)
        if not os.access(path, os.X_OK):
            note("%s not found in %s: skipped" % (b, bench_dir))
            continue
        rc, out, err = run([path, "--benchmark_list_tests=true"], env, 120)
        if rc != 0:
            note("%s --benchmark_list_tests failed (%s): %s" % (b, rc, tail(err)))
            continue
        progs[path] = {l.strip().split("/")[0] for l in out.splitlines() if l.strip()}
    return progs


def find_goro(progs, bench_dir, row):
    """The goro program holding row.goro_bench: the row's own one first."""
    own = os.path.join(bench_dir, row.goro_bin)
    if row.goro_bench in progs.get(own, ()):
        return own
    for path, names in progs.items():
        if row.goro_bench in names:
            return path
    return None


def run_goro(path, bench, env, timeout):
    """Run one goro benchmark (5 repetitions); return its median aggregate entry."""
    progress("goro %s %s" % (os.path.basename(path), bench))
    fd, out_file = tempfile.mkstemp(prefix="goro-bench-", suffix=".json")
    os.close(fd)
    try:
        rc, out, err = run([path, "--benchmark_filter=^%s(/|$)" % bench,
                            "--benchmark_format=json",
                            "--benchmark_repetitions=5",
                            "--benchmark_report_aggregates_only=true",
                            "--benchmark_out=" + out_file,
                            "--benchmark_out_format=json"], env, timeout)
        try:
            with open(out_file) as f:
                data = json.load(f)
        except (OSError, ValueError):
            try:
                data = json.loads(out[out.index("{"):])
            except ValueError:
                data = {}
    finally:
        os.unlink(out_file)
    if rc != 0:
        note("goro %s: %s: %s" % (bench, "timed out" if rc is None else "exit %s" % rc, tail(err)))
    median = None
    for e in data.get("benchmarks", []):
        base = e.get("run_name", e.get("name", "")).split("/")[0]
        if base != bench:
            continue
        if e.get("error_occurred"):
            note("goro %s: error: %s" % (bench, e.get("error_message", "?")))
        if e.get("run_type") == "aggregate" and e.get("aggregate_name") == "median":
            median = e
    if median is None and rc == 0:
        note("goro %s: no median aggregate in the output" % bench)
    return median


def goro_value(entry, row):
    if entry is None:
        return None
    if row.goro_metric == "real_time":
        try:
            ns = float(entry["real_time"]) * NS[entry.get("time_unit", "ns")]
            return ns / UNIT_NS[row.unit]
        except (KeyError, ValueError):
            return None
    if row.goro_metric not in entry:
        note("goro %s: counter %r missing" % (row.goro_bench, row.goro_metric))
        return None
    return float(entry[row.goro_metric])


# ------------------------------------------------------------------ table --

def with_settings(env, settings):
    """env with each (name, value) set; appended to a DEBUG_VARS variable."""
    env = dict(env)
    for name, value in settings:
        if name in DEBUG_VARS and env.get(name):
            env[name] = env[name] + "," + value
        else:
            env[name] = value
    return env


def parse_env(items, ap):
    out = []
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            ap.error("--env %r: expected NAME=VALUE" % item)
        out.append((name, value))
    return out


def target_of(row, g, ratio):
    """The target column and whether it is met, for goro value g."""
    if row.target is None:
        return "—", "—"
    if row.absolute:
        return ("≤ %g %s abs" % (row.target, row.unit),
                "—" if g is None else ("yes" if g <= row.target else "**no**"))
    return ("≤ %g" % row.target,
            "—" if ratio is None else ("yes" if ratio <= row.target else "**no**"))


def ratio_of(g, o):
    return g / o if g is not None and o else None


def fmt_ratio(r):
    return "—" if r is None else "%.2f" % r


def print_table(table, titles):
    """table: [(row, [(goro, go) per mode])]. One mode: the classic table;
    two: each side's value and ratio per mode, side by side, the target
    judged on the first mode."""
    if len(titles) == 1:
        print("| benchmark | goro | Go | unit | ratio goro/Go | target | met? |")
        print("|---|--:|--:|---|--:|---|---|")
        for row, vals in table:
            g, o = vals[0]
            ratio = ratio_of(g, o)
            target, met = target_of(row, g, ratio)
            print("| %s | %s | %s | %s | %s | %s | %s |" % (
                row.name, fmt(g), fmt(o), row.unit, fmt_ratio(ratio), target, met))
        return
    head = ["benchmark", "unit"]
    for t in titles:
        head += ["goro (%s)" % t, "Go (%s)" % t, "ratio (%s)" % t]
    head += ["target (%s)" % titles[0], "met?"]
    print("| " + " | ".join(head) + " |")
    print("|---|---|" + "--:|--:|--:|" * len(titles) + "---|---|")
    for row, vals in table:
        cells = [row.name, row.unit]
        for g, o in vals:
            cells += [fmt(g), fmt(o), fmt_ratio(ratio_of(g, o))]
        g, o = vals[0]
        cells += list(target_of(row, g, ratio_of(g, o)))
        print("| " + " | ".join(cells) + " |")


def fmt(v):
    if v is None:
        return "—"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.2g" % v


def main():
    ap = argparse.ArgumentParser(description="goro vs Go benchmark table")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                    help="Meson build directory (default: <repo>/build)")
    ap.add_argument("--only", default="", help="comma-separated row names")
    ap.add_argument("--procs", type=int, default=2, help="GOMAXPROCS for both sides (default 2)")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds allowed per benchmark process (default 1800)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="set NAME=VALUE for both sides' benchmark processes (repeatable); "
                         "GORO_DEBUG and GODEBUG settings are added to those already set")
    ap.add_argument("--gcstoptheworld", choices=["0", "1", "both"], default=None,
                    help="1: both runtimes in their stop-the-world GC mode, no goroutine "
                         "runs during the mark (GORO_DEBUG=gcstoptheworld=1, "
                         "GODEBUG=gcstoptheworld=1); "
                         "0: concurrent marking (the default, set explicitly); both: every row "
                         "in both modes, printed side by side")
    args = ap.parse_args()
    extra = parse_env(args.env, ap)

    rows = ROWS
    if args.only:
        want = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in want if w not in {r.name for r in ROWS}]
        if unknown:
            ap.error("unknown row(s): %s (rows: %s)" % (", ".join(unknown),
                                                     ", ".join(r.name for r in ROWS)))
        rows = [r for r in ROWS if r.name in want]

    build_dir = os.path.abspath(args.build_dir)
    bench_dir = os.path.join(build_dir, "bench")
    env = dict(os.environ, GOMAXPROCS=str(args.procs))
    modes = GC_MODES[args.gcstoptheworld]
    mode_envs = [with_settings(env, extra + settings) for _, settings in modes]

    peers = build_peers(build_dir, env)
    progs = list_goro(bench_dir, env)

    go_cache, goro_cache = {}, {}
    table = []
    for row in rows:
        path = find_goro(progs, bench_dir, row)
        if path is None and os.path.join(bench_dir, row.goro_bin) in progs:
            note("goro %s: no such benchmark in %s" % (row.goro_bench, ", ".join(
                os.path.basename(p) for p in progs)))
        vals = []
        for m, ((title, _), menv) in enumerate(zip(modes, mode_envs)):
            if title:
                progress("mode: " + title)
            g = None
            if path is not None:
                key = (m, path, row.goro_bench)
                if key not in goro_cache:
                    goro_cache[key] = run_goro(path, row.goro_bench, menv, args.timeout)
                g = goro_value(goro_cache[key], row)
            o = None
            if peers is not None:
                arg = PEER_ARG.get(row.go_name, row.go_name)
                if (m, arg) not in go_cache:
                    go_cache[(m, arg)] = run_peer(peers, arg, menv, args.timeout)
                o = go_cache[(m, arg)].get(row.go_name)
            vals.append((g, o))
        table.append((row, vals))

    ran = any(g is not None or o is not None for _, vals in table for g, o in vals)

    settings = " ".join("%s=%s" % kv for kv in extra)
    print("GOMAXPROCS=%d, medians of 5 runs (lower is better)%s%s\n" % (
        args.procs, "; " + settings if settings else "",
        "".join("; %s: %s" % (t, " ".join("%s=%s" % kv for kv in st)) for t, st in modes if t)))
    print_table(table, [t for t, _ in modes])
    if notes:
        print()
        for n in notes:
            print("- " + n)
    return 0 if ran else 1


if __name__ == "__main__":
    sys.exit(main())
