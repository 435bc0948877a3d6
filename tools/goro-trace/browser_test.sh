#!/usr/bin/env bash
# browser_test.sh — render goro-trace pages in headless Chromium and check
# what was drawn (meson test goro_trace_browser).
#
#   browser_test.sh GORO_TRACE_EXE SPREAD_DEMO THREAD_RING_DEMO WORKDIR
#
# 1. The spread demo's trace (GOMAXPROCS=4): the page must load with no
#    JavaScript error (the page's own error hook and Chromium's console log),
#    name a lane for every P in the trace, count as many goroutine slices
#    on the P lanes as the trace holds (python3's json module counts them),
#    and a click on a slice (#clicktest) must show its goroutine.
# 2. A trace of about a million events (thread_ring): the page opens, and
#    zooms and pans (#pantest) without an error.
# Exit 77 (skipped) only when no Chromium is installed.
set -euo pipefail
viewer=$1 spread=$2 ring=$3 work=$4
browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [[ -z $browser ]]; then
  echo "SKIP: no chromium found (tests/install-deps installs Debian's chromium)"
  exit 77
fi
mkdir -p "$work"
dir=$(mktemp -d "$work/browser.XXXXXX")
trap 'rm -rf "$dir"' EXIT

# render PAGE_URL OUT_DOM LOG: headless Chromium, as root needs --no-sandbox.
render() {
  timeout 240 "$browser" --headless --disable-gpu --no-sandbox --no-first-run --disable-extensions \
    --user-data-dir="$dir/profile" --enable-logging=stderr --v=0 --window-size=1400,900 \
    --virtual-time-budget=20000 --dump-dom "$1" >"$2" 2>"$3" || {
    echo "FAIL: chromium exited $? on $1"; tail -20 "$3"; exit 1; }
}

# check DOM LOG: the page's result marker says ok and the console has no error.
check_page() {
  if ! grep -q 'data-status="ok"' "$1"; then
    echo "FAIL: the page did not finish cleanly:"; grep -o '<div id="errors">[^<]*' "$1" || true
    grep -o '<div id="result"[^>]*>' "$1" || echo "(no result marker)"; exit 1
  fi
  if grep -E 'Uncaught|CONSOLE\([0-9]+\).*(Error|error)' "$2"; then
    echo "FAIL: JavaScript error in the console"; exit 1
  fi
}

# --- 1. a demo's trace
GOMAXPROCS=4 GORO_TRACE="$dir/spread.json" "$spread" >/dev/null
"$viewer" "$dir/spread.json" -o "$dir/spread.html"
render "file://$dir/spread.html#clicktest" "$dir/spread.dom" "$dir/spread.log"
check_page "$dir/spread.dom" "$dir/spread.log"
python3 - "$dir/spread.json" "$dir/spread.dom" <<'PY'
import json, re, sys
trace = json.load(open(sys.argv[1]))["traceEvents"]
dom = open(sys.argv[2]).read()
ps = sorted({e["tid"] for e in trace if e.get("ph") == "X" and e.get("pid") == 2})
nslices = sum(1 for e in trace if e.get("ph") == "X" and e.get("pid") == 2)
labels = re.findall(r'<div class="lane-label (\w+)"[^>]*>([^<]*)</div>', dom)
plabels = [t for k, t in labels if k == "P"]
m = re.search(r'<div id="result"[^>]*data-pslices="(\d+)"', dom)
assert m, "no result marker"
for p in ps:
    assert f"P{p}" in plabels, f"no lane label for P{p}: {plabels}"
assert int(m.group(1)) == nslices, f"page drew {m.group(1)} P slices, trace has {nslices}"
assert any(k == "M" for k, _ in labels), "no M lanes"
assert "Goroutine analysis" in dom and "<table" in dom, "no goroutine analysis table"
click = re.search(r'data-click="([^"]*)"', dom)
assert click, "clicking a slice showed nothing"
assert re.search(r"goroutine G\d+, created (by G\d+ )?at (\S*spread/main\.cpp:\d+|goro::run)", click.group(1)), click.group(1)
assert "stopped: " in click.group(1), click.group(1)
print(f"ok: lanes {plabels} + {sum(1 for k,_ in labels if k=='M')} M lanes, {nslices} P slices")
PY

# --- 2. a million events
# 3 to 4 events a hop, depending on how often the token crosses Ps.
GOMAXPROCS=2 GORO_TRACE="$dir/big.json" "$ring" 340000 >/dev/null
n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['traceEvents']))" "$dir/big.json")
echo "big trace: $n events"
if (( n < 1000000 )); then echo "FAIL: wanted a million events, got $n"; exit 1; fi
"$viewer" "$dir/big.json" -o "$dir/big.html"
render "file://$dir/big.html#pantest" "$dir/big.dom" "$dir/big.log"
check_page "$dir/big.dom" "$dir/big.log"
grep -o 'data-panms="[0-9]*"' "$dir/big.dom" || { echo "FAIL: no pan result"; exit 1; }
echo "PASS"
