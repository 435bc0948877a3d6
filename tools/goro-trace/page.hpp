// page.hpp — the HTML page goro-trace writes: markup, style and a small
// hand-written script (no library, no network). goro-trace replaces the
// /*GORO_TRACE_DATA*/ marker with the trace's columns (see main.cpp).
//
// The timeline is drawn on a canvas, only what is visible: each lane's
// slices are sorted by start, found by binary search, and slices thinner
// than a pixel are merged, so a frame costs about one rectangle per pixel
// column per lane whatever the trace's size. Lane labels are DOM text, for
// people with screen readers and for the browser test.
#pragma once

inline const char* goro_trace_page = R"GOROPAGE(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>goro trace</title>
<style>
body{font:13px system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:6px 10px;background:#263238;color:#eee}
header h1{font-size:15px;margin:0 0 3px 0;display:inline-block;margin-right:14px}
#legend span{display:inline-block;margin-right:10px}
#legend i{display:inline-block;width:11px;height:11px;margin-right:3px;vertical-align:-1px;border-radius:2px}
#tools{padding:4px 10px;background:#eceff1}
#tools button{margin-right:4px}
#view{display:flex;border-top:1px solid #ccc;border-bottom:1px solid #ccc;background:#fff;position:relative}
#labels{width:150px;flex:none;position:relative;border-right:1px solid #ccc;overflow:hidden}
.lane-label{position:absolute;left:0;right:0;padding-left:6px;font-size:12px;line-height:1;white-space:nowrap;box-sizing:border-box;border-bottom:1px solid #eee;display:flex;align-items:center}
.lane-label.P{font-weight:bold;background:#e8f5e9}.lane-label.M{background:#e3f2fd}
.lane-label.GC,.lane-label.STW{background:#fff3e0}.lane-label.C{background:#f3e5f5}
#tlwrap{flex:1;position:relative;overflow:hidden}
canvas{display:block;cursor:grab}
#detail{padding:6px 10px;min-height:40px;background:#fffde7;border-bottom:1px solid #ccc;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px}
#analysis{padding:6px 10px}
table{border-collapse:collapse;font-size:12px}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#eceff1;cursor:pointer}td.l,th.l{text-align:left}
#errors{color:#b00;white-space:pre-wrap}
</style></head><body>
<header><h1>goro trace</h1><span id="summary"></span><div id="legend"></div></header>
<div id="tools"><button id="zin" title="zoom in (w)">zoom in</button><button id="zout" title="zoom out (s)">zoom out</button><button id="left" title="pan left (a)">&larr;</button><button id="right" title="pan right (d)">&rarr;</button><button id="reset">whole trace</button>
<label><input type="checkbox" id="flows" checked> wakeup arrows</label> <span id="range"></span></div>
<div id="view"><div id="labels" role="list" aria-label="lanes"></div><div id="tlwrap"><canvas id="tl"></canvas></div></div>
<div id="detail">Click a slice or a marker. Wheel: zoom; drag: pan; keys w/s/a/d.</div>
<div id="analysis"><h2 style="font-size:14px">Goroutine analysis</h2><div id="gtable"></div></div>
<div id="errors"></div><div id="result" hidden></div>
<script>
"use strict";
const D = /*GORO_TRACE_DATA*/null;
const errs = [];
window.addEventListener("error", ev => { errs.push(String(ev.message)); document.getElementById("errors").textContent += ev.message + "\n"; });
const COLORS = {"other":"#9e9e9e","preempted":"#e53935","yield":"#fb8c00","chan send":"#1e88e5","chan recv":"#43a047",
  "select":"#8e24aa","sync":"#6d4c41","sleep":"#00acc1","network":"#3949ab","GC":"#f4511e","syscall":"#fdd835",
  "exit":"#546e7a","gc":"#ff7043","stw":"#d81b60","region":"#7cb342"};
const MARK = {"Steal":"#d50000","Handoffp":"#ff6d00","SysmonRetake":"#ff6d00","SysmonPreempt":"#c51162","GoCreate":"#00c853",
  "GoUnblock":"#90a4ae","GlobalRunqGet":"#6200ea","ProcStart":"#cfd8dc","ProcStop":"#cfd8dc","Startm":"#795548","Wakep":"#795548","Log":"#2962ff","PoolGet":"#00bfa5","PoolCleanup":"#00bfa5","NetpollReady":"#304ffe"};
const LANE_H = 20, CNT_H = 36, RULER = 18;
const trim = s => s.indexOf(".") >= 0 ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
const fmt = ns => ns >= 1e9 ? trim((ns / 1e9).toFixed(3)) + " s" : ns >= 1e6 ? trim((ns / 1e6).toFixed(3)) + " ms" : ns >= 1e3 ? trim((ns / 1e3).toFixed(2)) + " µs" : Math.round(ns) + " ns";
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"})[c]);

// Lanes: the trace's, then one per counter.
const lanes = D.lanes.map(l => ({kind: l.kind, id: l.id, label: l.label}));
D.counters.forEach((c, i) => lanes.push({kind: "C", id: i, label: c.name}));
let y = RULER;
for (const l of lanes) { l.y = y; l.h = l.kind === "C" ? CNT_H : LANE_H; y += l.h; }
const totalH = y + 4;

// Per-lane index ranges into the sorted columns, and the longest slice of
// each lane (the binary search starts that far back).
function ranges(laneCol) {
  const lo = new Int32Array(lanes.length).fill(0), hi = new Int32Array(lanes.length).fill(0);
  for (let i = 0; i < laneCol.length;) {
    const ln = laneCol[i]; let j = i;
    while (j < laneCol.length && laneCol[j] === ln) j++;
    lo[ln] = i; hi[ln] = j; i = j;
  }
  return [lo, hi];
}
const [slLo, slHi] = ranges(D.sl_lane), [mkLo, mkHi] = ranges(D.mk_lane);
const maxDur = new Float64Array(lanes.length);
for (let i = 0; i < D.sl_ts.length; i++) maxDur[D.sl_lane[i]] = Math.max(maxDur[D.sl_lane[i]], D.sl_dur[i]);
function lowerBound(arr, lo, hi, v) { while (lo < hi) { const m = (lo + hi) >> 1; if (arr[m] < v) lo = m + 1; else hi = m; } return lo; }

const canvas = document.getElementById("tl"), ctx = canvas.getContext("2d"), wrap = document.getElementById("tlwrap");
let W = 800, v0 = 0, v1 = Math.max(1, D.tmax);

function layoutLabels() {
  const box = document.getElementById("labels"); box.style.height = totalH + "px";
  const frag = document.createDocumentFragment();
  lanes.forEach((l, i) => {
    const d = document.createElement("div");
    d.className = "lane-label " + l.kind; d.setAttribute("role", "listitem");
    d.dataset.lane = i; d.dataset.kind = l.kind; d.textContent = l.label;
    d.style.top = l.y + "px"; d.style.height = l.h + "px"; frag.appendChild(d);
  });
  box.appendChild(frag);
}

function resize() {
  W = Math.max(200, wrap.clientWidth || 800);
  const dpr = window.devicePixelRatio || 1;
  canvas.width = W * dpr; canvas.height = totalH * dpr;
  canvas.style.width = W + "px"; canvas.style.height = totalH + "px";
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}

let drawn = 0;
function draw() {
  const sc = W / (v1 - v0);
  ctx.clearRect(0, 0, W, totalH);
  ctx.font = "11px system-ui,sans-serif"; ctx.textBaseline = "middle";
  // Ruler.
  ctx.fillStyle = "#f5f5f5"; ctx.fillRect(0, 0, W, RULER); ctx.fillStyle = "#555";
  // A tick about every 110 px, on a 1-2-5 step.
  const raw = (v1 - v0) * 110 / W, p10 = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = raw / p10 < 2 ? 2 * p10 : raw / p10 < 5 ? 5 * p10 : 10 * p10;
  for (let t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
    const x = (t - v0) * sc; ctx.fillRect(x, RULER - 5, 1, 5); ctx.fillText(fmt(t - v0 < 0 ? t : t), x + 2, 7);
  }
  drawn = 0;
  // Lanes.
  lanes.forEach((l, i) => {
    ctx.fillStyle = i % 2 ? "#fbfbfb" : "#fff"; ctx.fillRect(0, l.y, W, l.h);
    if (l.kind === "C") return drawCounter(D.counters[l.id], l, sc);
    const lo0 = slLo[i], hi = slHi[i];
    let k = lowerBound(D.sl_ts, lo0, hi, v0 - maxDur[i]);
    let lastPix = -1;
    for (; k < hi && D.sl_ts[k] <= v1; k++) {
      const t = D.sl_ts[k], e = t + D.sl_dur[k];
      if (e < v0) continue;
      const x0 = Math.max(0, (t - v0) * sc), x1 = Math.min(W, (e - v0) * sc);
      if (x1 - x0 < 1 && Math.floor(x0) === lastPix) continue;
      lastPix = Math.floor(x0);
      const cat = D.cats[D.sl_cat[k]];
      const sys = l.kind === "M" && cat === "syscall" && D.sl_g[k] !== 0 && D.strs[D.sl_name[k]].startsWith("syscall");
      ctx.fillStyle = COLORS[cat] || "#999";
      const top = sys ? l.y + l.h - 6 : l.y + 2, h = sys ? 5 : l.h - 4;
      ctx.fillRect(x0, top, Math.max(1, x1 - x0), h); drawn++;
      if (!sys && x1 - x0 > 34) {
        ctx.fillStyle = "#fff";
        const label = l.kind === "P" || l.kind === "M" ? "G" + D.sl_g[k] : D.strs[D.sl_name[k]];
        ctx.fillText(label, x0 + 3, l.y + l.h / 2, x1 - x0 - 5);
      }
    }
    // Markers: a small triangle at the lane's top.
    let mk = lowerBound(D.mk_ts, mkLo[i], mkHi[i], v0), lastM = -1;
    for (; mk < mkHi[i] && D.mk_ts[mk] <= v1; mk++) {
      const x = Math.floor((D.mk_ts[mk] - v0) * sc);
      if (x === lastM) continue; lastM = x;
      const kind = D.mkinds[D.mk_kind[mk]];
      ctx.fillStyle = MARK[kind] || "#37474f";
      ctx.beginPath(); ctx.moveTo(x - 3, l.y); ctx.lineTo(x + 3, l.y); ctx.lineTo(x, l.y + 6); ctx.fill();
    }
  });
  // Stop-the-world bands across every lane.
  lanes.forEach((l, i) => {
    if (l.kind !== "STW") return;
    ctx.fillStyle = "rgba(216,27,96,0.12)";
    for (let k = slLo[i]; k < slHi[i]; k++) {
      const x0 = (D.sl_ts[k] - v0) * sc, x1 = (D.sl_ts[k] + D.sl_dur[k] - v0) * sc;
      if (x1 < 0 || x0 > W) continue;
      ctx.fillRect(x0, RULER, Math.max(1, x1 - x0), totalH - RULER);
    }
  });
  // Wakeup arrows, when few enough are in view to read.
  if (document.getElementById("flows").checked) {
    const vis = [];
    for (let i = 0; i < D.fl_ts0.length && vis.length <= 3000; i++)
      if (D.fl_ts1[i] >= v0 && D.fl_ts0[i] <= v1) vis.push(i);
    if (vis.length <= 3000) {
      ctx.strokeStyle = "rgba(33,33,33,0.55)"; ctx.fillStyle = "rgba(33,33,33,0.7)"; ctx.lineWidth = 1;
      for (const i of vis) {
        const a = lanes[D.fl_lane0[i]], b = lanes[D.fl_lane1[i]];
        const x0 = (D.fl_ts0[i] - v0) * sc, y0 = a.y + a.h / 2, x1 = (D.fl_ts1[i] - v0) * sc, y1 = b.y + b.h / 2;
        ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
        const ang = Math.atan2(y1 - y0, x1 - x0);
        ctx.beginPath(); ctx.moveTo(x1, y1);
        ctx.lineTo(x1 - 6 * Math.cos(ang - 0.4), y1 - 6 * Math.sin(ang - 0.4));
        ctx.lineTo(x1 - 6 * Math.cos(ang + 0.4), y1 - 6 * Math.sin(ang + 0.4)); ctx.fill();
      }
    }
  }
  document.getElementById("range").textContent = "view " + fmt(v0) + " – " + fmt(v1) + " (" + fmt(v1 - v0) + ")";
}

function drawCounter(c, l, sc) {
  let max = 1; for (const v of c.v) max = Math.max(max, v);
  ctx.strokeStyle = "#7b1fa2"; ctx.fillStyle = "rgba(123,31,162,0.15)"; ctx.beginPath();
  let started = false, lastY = l.y + l.h;
  for (let i = 0; i < c.ts.length; i++) {
    const x = (c.ts[i] - v0) * sc, yy = l.y + l.h - 2 - (c.v[i] / max) * (l.h - 6);
    if (!started) { ctx.moveTo(Math.max(0, x), yy); started = true; } else { ctx.lineTo(x, lastY); ctx.lineTo(x, yy); }
    lastY = yy;
  }
  if (started) { ctx.lineTo(W, lastY); ctx.stroke(); }
  ctx.fillStyle = "#4a148c"; ctx.fillText("max " + (l.label.startsWith("heap") ? (max / 1048576).toFixed(1) + " MiB" : max), 4, l.y + 8);
}

function zoom(f, cx) {
  const t = v0 + (cx / W) * (v1 - v0), span = Math.max(50, (v1 - v0) * f);
  v0 = t - (cx / W) * span; v1 = v0 + span; clamp(); draw();
}
function pan(dx) { const d = dx * (v1 - v0) / W; v0 -= d; v1 -= d; clamp(); draw(); }
function clamp() {
  const span = v1 - v0, lim = Math.max(1, D.tmax);
  if (span > lim * 1.05) { v0 = 0; v1 = lim; return; }
  if (v0 < 0) { v1 -= v0; v0 = 0; }
  if (v1 > lim) { v0 -= v1 - lim; v1 = lim; }
}

const gById = new Map(D.goroutines.map(g => [g.g, g]));
function showAt(x, yy) {
  const i = lanes.findIndex(l => yy >= l.y && yy < l.y + l.h);
  if (i < 0) return;
  const l = lanes[i], t = v0 + x * (v1 - v0) / W, tol = 4 * (v1 - v0) / W;
  // A marker near the pointer first.
  let best = -1, bd = tol;
  for (let k = lowerBound(D.mk_ts, mkLo[i], mkHi[i], t - tol); k < mkHi[i] && D.mk_ts[k] <= t + tol; k++)
    if (Math.abs(D.mk_ts[k] - t) <= bd) { bd = Math.abs(D.mk_ts[k] - t); best = k; }
  const det = document.getElementById("detail");
  if (best >= 0 && yy < l.y + 8) { det.textContent = l.label + " @ " + fmt(D.mk_ts[best]) + ": " + D.strs[D.mk_text[best]]; return; }
  let hit = -1;
  for (let k = lowerBound(D.sl_ts, slLo[i], slHi[i], t - maxDur[i] - tol); k < slHi[i] && D.sl_ts[k] <= t + tol; k++)
    if (D.sl_ts[k] - tol <= t && t <= D.sl_ts[k] + D.sl_dur[k] + tol) hit = k;
  if (hit < 0) { if (best >= 0) det.textContent = l.label + " @ " + fmt(D.mk_ts[best]) + ": " + D.strs[D.mk_text[best]]; return; }
  const g = D.sl_g[hit], info = gById.get(g), cat = D.cats[D.sl_cat[hit]];
  let s = l.label + "  " + fmt(D.sl_ts[hit]) + " + " + fmt(D.sl_dur[hit]) + "\n";
  if ((l.kind === "P" || l.kind === "M") && g) {
    s += "goroutine G" + g + (info && info.at ? ", created " + (info.parent > 0 ? "by G" + info.parent + " " : "") + "at " + info.at : "") + "\n";
    s += "stopped: " + D.strs[D.sl_name[hit]] + " (" + cat + ")";
    s += D.sl_woke[hit] ? ", woken by G" + D.sl_woke[hit] : "";
    if (info) s += "\ntotal " + fmt(info.total) + ", running " + fmt(info.running) + ", runnable " + fmt(info.runnable) + ", syscall " + fmt(info.syscall);
  } else {
    s += D.strs[D.sl_name[hit]] + (g ? " (G" + g + ")" : "");
  }
  det.textContent = s;
}

function table() {
  const rows = D.goroutines.slice().sort((a, b) => b.total - a.total);
  const shown = rows.slice(0, 2000);
  let h = "<p>" + rows.length + " goroutines" + (rows.length > shown.length ? " (the " + shown.length + " longest shown)" : "") +
    ". Times: total from creation (or first event) to the last; running excludes system calls.</p><table id=\"gt\"><thead><tr>" +
    "<th class=l>Goroutine</th><th class=l>Created at</th><th>Total</th><th>Running</th><th>Runnable (waiting)</th><th class=l>Blocked, by reason</th><th>In syscall</th></tr></thead><tbody>";
  for (const g of shown) {
    const b = Object.entries(g.blocked).map(([k, v]) => k + " " + fmt(v)).join(", ");
    h += "<tr><td class=l>G" + g.g + "</td><td class=l>" + esc(g.at || "") + "</td><td>" + fmt(g.total) + "</td><td>" + fmt(g.running) +
      "</td><td>" + fmt(g.runnable) + "</td><td class=l>" + esc(b) + "</td><td>" + fmt(g.syscall) + "</td></tr>";
  }
  document.getElementById("gtable").innerHTML = h + "</tbody></table>";
}

function legend() {
  document.getElementById("legend").innerHTML = Object.entries(COLORS).map(([k, c]) => "<span><i style=\"background:" + c + "\"></i>" + esc(k) + "</span>").join("") +
    " &nbsp; markers: " + Object.entries(MARK).map(([k, c]) => "<span><i style=\"background:" + c + "\"></i>" + esc(k) + "</span>").join("");
  document.getElementById("summary").textContent = D.events + " events, " + D.lanes.filter(l => l.kind === "P").length + " Ps, " +
    D.lanes.filter(l => l.kind === "M").length + " threads, " + fmt(D.tmax) + (D.complete ? "" : " — ended early: " + (D.why || "cut short"));
}

// Input.
let dragX = null, moved = false;
canvas.addEventListener("wheel", e => { e.preventDefault(); zoom(e.deltaY > 0 ? 1.25 : 0.8, e.offsetX); }, {passive: false});
canvas.addEventListener("mousedown", e => { dragX = e.clientX; moved = false; canvas.style.cursor = "grabbing"; });
window.addEventListener("mousemove", e => { if (dragX === null) return; if (Math.abs(e.clientX - dragX) > 0) moved = true; pan(e.clientX - dragX); dragX = e.clientX; });
window.addEventListener("mouseup", e => { if (dragX !== null && !moved) { const r = canvas.getBoundingClientRect(); showAt(e.clientX - r.left, e.clientY - r.top); } dragX = null; canvas.style.cursor = "grab"; });
window.addEventListener("keydown", e => { const k = e.key; if (k === "w") zoom(0.8, W / 2); if (k === "s") zoom(1.25, W / 2); if (k === "a") pan(W / 10); if (k === "d") pan(-W / 10); });
document.getElementById("zin").onclick = () => zoom(0.5, W / 2);
document.getElementById("zout").onclick = () => zoom(2, W / 2);
document.getElementById("left").onclick = () => pan(W / 5);
document.getElementById("right").onclick = () => pan(-W / 5);
document.getElementById("reset").onclick = () => { v0 = 0; v1 = Math.max(1, D.tmax); draw(); };
document.getElementById("flows").onchange = draw;
window.addEventListener("resize", () => { resize(); draw(); });

// Start, then leave a result for programs that check the page (the browser
// test): lanes, slice counts, and with #pantest the time to zoom and pan.
// #view=FROM,TO (nanoseconds) opens on that window (links, screenshots).
const hv = /view=(\d+),(\d+)/.exec(location.hash);
if (hv) { v0 = +hv[1]; v1 = Math.max(v0 + 50, +hv[2]); }
legend(); layoutLabels(); resize(); draw(); table();
const res = document.getElementById("result");
let pSlices = 0; for (let i = 0; i < D.sl_lane.length; i++) if (lanes[D.sl_lane[i]].kind === "P") pSlices++;
res.dataset.lanes = lanes.map(l => l.label).join(",");
res.dataset.pslices = pSlices; res.dataset.slicesp = D.slicesP; res.dataset.events = D.events; res.dataset.drawn = drawn;
if (location.hash.indexOf("pantest") >= 0) {
  const t0 = performance.now();
  zoom(0.01, W / 2);
  for (let i = 0; i < 40; i++) pan(i % 2 ? 300 : -200);
  zoom(100, W / 2);
  for (let i = 0; i < 10; i++) pan(-100);
  res.dataset.panms = Math.round(performance.now() - t0);
}
if (location.hash.indexOf("clicktest") >= 0) {
  // Click the middle of the longest goroutine slice on a P lane (not a
  // syscall), zoomed to it first: on a long trace every slice may be
  // narrower than a pixel at the full view.
  let best = -1;
  for (let k = 0; k < D.sl_ts.length; k++) {
    const l = lanes[D.sl_lane[k]];
    if (l.kind !== "P" || !D.sl_g[k]) continue;
    if (best < 0 || D.sl_dur[k] > D.sl_dur[best]) best = k;
  }
  if (best >= 0) {
    const l = lanes[D.sl_lane[best]];
    const pad = Math.max(1, D.sl_dur[best]) * 0.25;
    v0 = D.sl_ts[best] - pad; v1 = D.sl_ts[best] + D.sl_dur[best] + pad; draw();
    const x = ((D.sl_ts[best] + D.sl_dur[best] / 2) - v0) * W / (v1 - v0);
    showAt(x, l.y + l.h - 3);
    res.dataset.click = document.getElementById("detail").textContent;
  }
}
res.dataset.errors = errs.length;
res.dataset.status = errs.length ? "error" : "ok";
res.textContent = "rendered";
</script></body></html>
)GOROPAGE";
