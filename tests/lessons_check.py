#!/usr/bin/env python3
"""lessons_check.py — run every lesson's command and compare its output with
the lesson's own "Expected output" blocks, so the course cannot drift from
the code.

A lesson (docs/lessons/NN-*.md, docs/zh/lessons/NN-*.md) marks what to run
and what to expect with fenced blocks whose info string says so:

    ```sh run                  a command, run by bash from the source root;
                               `demos/run NAME` runs BUILD/demos/NAME
    ```text expect             lines that must appear in the output, whole,
                               in this order (other lines may come between)
    ```text expect unordered   lines that must all appear, in any order
    ```regex expect            Python regexes, each matching a whole line,
                               in this order
    ... expect exit=2          the command's exit status (default 0)
    ... expect cmd=2           the block belongs to the page's 2nd `sh run`
    ```sh run notsan           not run in a ThreadSanitizer build (goro has
                               no signal preemption there: docs/scheduler.md)

Expected blocks belong to the `sh run` block before them, or to the one that
cmd=N names (1 = the page's first), so that a page can show its commands
first and their outputs later. stdout and stderr
are read together. The Chinese lessons must hold exactly the same commands
and expected blocks as the English ones (checked with --lang zh): the two
courses run the same commands.

Usage: lessons_check.py --build BUILD_DIR [--lang en|zh] [--only NN]
       lessons_check.py --sync-zh    copy the English lessons' `sh run` and
                                     expect blocks into the Chinese lessons
                                     (in order), after changing the English
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\S*)(.*)$")


def parse(path):
    """Returns [(command, [(kind, flags, lines)], notsan)] for one lesson file."""
    runs = []
    pending = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(1):
            i += 1
            continue
        lang, info = m.group(1), m.group(2).split()
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if lang == "sh" and "run" in info:
            cmd = " ".join(l.strip() for l in body if l.strip())
            runs.append((cmd, [], "notsan" in info))
        elif "expect" in info:
            flags = {}
            for word in info:
                if "=" in word:
                    k, v = word.split("=", 1)
                    flags[k] = v
                else:
                    flags[word] = True
            pending.append((len(runs), lang, flags, [l for l in body if l.strip()]))
    for nruns, lang, flags, expected in pending:
        n = int(flags.get("cmd", nruns))  # default: the last `sh run` above
        if not 1 <= n <= len(runs):
            raise SystemExit(f"{path}: an expect block for command {n}, which does not exist")
        runs[n - 1][1].append((lang, flags, expected))
    return runs


def sanitizers(build):
    """The build's b_sanitize option ("none", "address,undefined", "thread")."""
    try:
        import json
        opts = json.loads((pathlib.Path(build) / "meson-info/intro-buildoptions.json").read_text())
        return next((o["value"] for o in opts if o["name"] == "b_sanitize"), "none")
    except (OSError, ValueError):
        return "none"


def checked_blocks(lines):
    """Yields (start, end) line ranges of the fenced `run`/`expect` blocks."""
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m and m.group(1):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            info = m.group(2).split()
            if (m.group(1) == "sh" and "run" in info) or "expect" in info:
                yield i, j
            i = j + 1
        else:
            i += 1


def sync_zh():
    for en in lessons("en"):
        zh = SRC / "docs/zh/lessons" / en.name
        if not zh.exists():
            print(f"missing {zh}")
            continue
        en_lines = en.read_text(encoding="utf-8").splitlines()
        zh_lines = zh.read_text(encoding="utf-8").splitlines()
        en_blocks = [en_lines[a:b + 1] for a, b in checked_blocks(en_lines)]
        zh_ranges = list(checked_blocks(zh_lines))
        if len(en_blocks) != len(zh_ranges):
            print(f"{zh.name}: {len(zh_ranges)} blocks, English has {len(en_blocks)}; not synced")
            continue
        for (a, b), blk in reversed(list(zip(zh_ranges, en_blocks))):
            zh_lines[a:b + 1] = blk
        zh.write_text("\n".join(zh_lines) + "\n", encoding="utf-8")
    return 0


def lessons(lang):
    d = SRC / "docs" / ("lessons" if lang == "en" else "zh/lessons")
    return sorted(d.glob("[0-9][0-9]-*.md"))


def check_output(out, kind, flags, expected):
    """Returns a list of failure messages (empty if the block matches)."""
    got = [l.rstrip() for l in out.splitlines()]
    if kind == "text" and "unordered" in flags:
        return [f"missing line: {e!r}" for e in expected if e.rstrip() not in got]
    pos = 0
    for e in expected:
        if kind == "regex":
            rx = re.compile(e)
            match = lambda l: rx.fullmatch(l) is not None
        else:
            want = e.rstrip()
            match = lambda l: l == want
        while pos < len(got) and not match(got[pos]):
            pos += 1
        if pos == len(got):
            return [f"no line (in order) matching {e!r}"]
        pos += 1
    return []


def run(cmd, build, timeout):
    shell_cmd = re.sub(r"\bdemos/run\s+(\w+)", lambda m: f"{build}/demos/{m.group(1)}", cmd)
    env = dict(os.environ)
    env.pop("GORO_DEBUG", None)
    env.pop("GOMAXPROCS", None)
    env.pop("GORO_TRACE", None)
    p = subprocess.run(["bash", "-c", shell_cmd], cwd=SRC, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build")
    ap.add_argument("--sync-zh", action="store_true")
    ap.add_argument("--lang", default="en", choices=["en", "zh"])
    ap.add_argument("--only", help="lesson number, e.g. 02")
    ap.add_argument("--timeout", type=int, default=120)
    args = ap.parse_args()
    if args.sync_zh:
        return sync_zh()
    if not args.build:
        ap.error("--build is required")
    build = str(pathlib.Path(args.build).resolve())

    files = lessons(args.lang)
    if not files:
        print(f"no lessons for {args.lang}")
        return 1
    failures = 0
    tsan = "thread" in sanitizers(build)
    if args.lang == "zh":
        en = {p.name[:2]: parse(p) for p in lessons("en")}
        zh = {p.name[:2]: parse(p) for p in files}
        if sorted(en) != sorted(zh):
            print(f"FAIL: lesson numbers differ: en {sorted(en)} zh {sorted(zh)}")
            failures += 1
        for n in sorted(set(en) & set(zh)):
            if en[n] != zh[n]:
                print(f"FAIL: lesson {n}: the Chinese commands or expected blocks differ from the English")
                failures += 1
    for path in files:
        if args.only and not path.name.startswith(args.only):
            continue
        for cmd, blocks, notsan in parse(path):
            if notsan and tsan:
                print(f"skip {path.name}: `{cmd}` (not in a TSan build)")
                continue
            if not blocks:
                print(f"FAIL {path.name}: `{cmd}` has no expected output")
                failures += 1
                continue
            want_exit = int(next((b[1]["exit"] for b in blocks if "exit" in b[1]), 0))
            try:
                status, out = run(cmd, build, args.timeout)
            except subprocess.TimeoutExpired:
                print(f"FAIL {path.name}: `{cmd}` timed out")
                failures += 1
                continue
            msgs = []
            if status != want_exit:
                msgs.append(f"exit status {status}, expected {want_exit}")
            for kind, flags, expected in blocks:
                msgs += check_output(out, kind, flags, expected)
            if msgs:
                failures += 1
                print(f"FAIL {path.name}: `{cmd}`")
                for m in msgs:
                    print(f"  {m}")
                print("  --- output ---")
                print("  " + out.replace("\n", "\n  "))
            else:
                print(f"ok   {path.name}: `{cmd}`")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
