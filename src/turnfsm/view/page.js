/* turnfsm view: the session inspector. Reads the JSON in #data (see view/session.py). */
"use strict";
(function () {
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
const C = {user: "#1565c0", agent: "#6d4c41", vad: "#2e7d32", agentSpeech: "#6d4c41",
  interim: "#9e9e9e", final: "#1b5e20", held: "#ef6c00", dropped: "#c62828",
  wait: "#fbc02d", delay: "#8d6e63", eot: "#c62828", interruption: "#6a1b9a",
  cancelled: "#90a4ae", cursor: "#000000", grid: "#e0e0e0", resting: "#eeeeee"};
// region states: the project picture's colours, the others from a fixed palette
const STATE_COLORS = {speaking: "#2e7d32", holding: "#ef6c00", judging: "#ffb74d",
  pending: "#8d6e63", open: "#90caf9", predicting: "#ab47bc", waiting: "#fbc02d",
  delivering: "#c62828", stt_committed: "#5c6bc0", stt_awaiting_final: "#9fa8da",
  manual_committed: "#00897b"};
const PALETTE = ["#26a69a", "#7e57c2", "#ec407a", "#42a5f5", "#d4e157", "#ff7043",
  "#0097a7", "#78909c", "#afb42b", "#9ccc65"];
function stateColor(r, s) {
  const reg = D.regions[r], name = reg.states[s];
  if (name === undefined || name === reg.initial) return C.resting;
  if (STATE_COLORS[name]) return STATE_COLORS[name];
  let h = 0; for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

// -- steps: the full state of every kept step, rebuilt from the changes ------------------
const NR = D.regions.length, NS = D.steps.length;
const ST = new Int16Array(Math.max(1, NS) * NR);
const cur = new Int16Array(NR);
D.regions.forEach((r, k) => { cur[k] = r.states.indexOf(r.initial); });
const spans = D.regions.map(() => []);  // per region: [t, state] at each change
D.regions.forEach((r, k) => spans[k].push([0, cur[k]]));
const stepT = new Float64Array(NS);
D.steps.forEach((s, i) => {
  for (const [r, st] of s.ch) { cur[r] = st; spans[r].push([s.t, st]); }
  ST.set(cur, i * NR); stepT[i] = s.t;
});
function stepAt(t) {  // the last kept step at or before t (-1: none)
  let lo = 0, hi = NS - 1, ans = -1;
  while (lo <= hi) { const m = (lo + hi) >> 1; if (stepT[m] <= t + 1e-9) { ans = m; lo = m + 1; } else hi = m - 1; }
  return ans;
}
// decisions, in time order: ends of turn, interruptions, drops
const decisions = [];
D.turns.forEach((x) => decisions.push({kind: "eot", label: "end of turn", ...x}));
D.interruptions.forEach((x) => decisions.push({kind: "interruption", label: "interruption", ...x}));
D.drops.forEach((x) => decisions.push({kind: "drop", label: "dropped (" + x.reason + ")", ...x}));
decisions.sort((a, b) => a.step - b.step);
const decisionAtStep = new Map();
decisions.forEach((d, i) => { if (!decisionAtStep.has(d.step)) decisionAtStep.set(d.step, i); });

const dropByRef = new Map();
D.drops.forEach((d) => { if (d.ref !== null) dropByRef.set(d.ref, d); });

// -- envelopes ---------------------------------------------------------------------------
const env = D.env.map((b64) => { const s = atob(b64); const a = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i); return a; });

// -- state -------------------------------------------------------------------------------
const END = Math.max(D.duration, 0.5);
const view = {t0: 0, t1: END};
const cursor = {t: 0, step: stepAt(0)};
const canvas = $("canvas"), ctx = canvas.getContext("2d");
const LABEL_W = 118;
const rows = [];
(function layout() {
  let y = 4;
  const add = (id, h, label) => { rows.push({id, y, h, label}); y += h + 4; };
  D.channels.forEach((c, k) => add("env" + k, 34, c + " level"));
  add("speech", 30, "speech");
  add("text", 62, "transcripts");
  add("decisions", 56, "decisions");
  D.regions.forEach((r, k) => add("region" + k, 11, r.name));
  rows.height = y + 16;
})();

function x2t(x) { return view.t0 + (x - LABEL_W) / (canvas.clientWidth - LABEL_W) * (view.t1 - view.t0); }
function t2x(t) { return LABEL_W + (t - view.t0) / (view.t1 - view.t0) * (canvas.clientWidth - LABEL_W); }
function row(id) { return rows.find((r) => r.id === id); }

function resize() {
  const dpr = window.devicePixelRatio || 1;
  canvas.style.height = rows.height + "px";
  canvas.width = Math.round(canvas.clientWidth * dpr);
  canvas.height = Math.round(rows.height * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  draw();
}

function bar(t0, t1, y, h, color) {
  if (t1 < view.t0 || t0 > view.t1) return;
  const a = Math.max(LABEL_W, t2x(t0)), b = Math.min(canvas.clientWidth, t2x(t1));
  ctx.fillStyle = color; ctx.fillRect(a, y, Math.max(1, b - a), h);
}
function vline(t, y0, y1, color, width, dash) {
  if (t < view.t0 || t > view.t1) return;
  const x = Math.round(t2x(t)) + 0.5;
  ctx.strokeStyle = color; ctx.lineWidth = width; ctx.setLineDash(dash || []);
  ctx.beginPath(); ctx.moveTo(x, y0); ctx.lineTo(x, y1); ctx.stroke(); ctx.setLineDash([]);
}
function text(s, t, y, color, maxW) {
  if (t > view.t1) return;
  const str = fit(s, maxW || 200), w = ctx.measureText(str).width;
  let x = Math.max(LABEL_W + 2, t2x(t) + 2);
  if (x + w > canvas.clientWidth - 2) x = Math.max(LABEL_W + 2, t2x(t) - 2 - w);  // runs leftwards
  if (x < (laneEnd.get(y) || 0)) return;  // no room: zoom in to read it
  laneEnd.set(y, x + w + 6);
  ctx.fillStyle = color; ctx.fillText(str, x, y);
}
const laneEnd = new Map();  // a text lane's (its y) right end of the last label drawn
function fit(s, w) {
  if (ctx.measureText(s).width <= w) return s;
  let n = s.length; while (n > 1 && ctx.measureText(s.slice(0, n) + "\u2026").width > w) n--;
  return s.slice(0, n) + "\u2026";
}
function markX(t, y, color) {
  const x = t2x(t); ctx.strokeStyle = color; ctx.lineWidth = 2;
  ctx.beginPath(); ctx.moveTo(x - 4, y - 4); ctx.lineTo(x + 4, y + 4); ctx.moveTo(x + 4, y - 4); ctx.lineTo(x - 4, y + 4); ctx.stroke();
}

function draw() {
  const W = canvas.clientWidth, H = rows.height;
  ctx.clearRect(0, 0, W, H); laneEnd.clear();
  ctx.font = "11px Helvetica, Arial, sans-serif"; ctx.textBaseline = "middle";
  // grid: a tick every 1, 2, 5, 10 ... seconds, about every 90 px
  const span = view.t1 - view.t0, per = span / ((W - LABEL_W) / 90);
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800];
  const tick = steps.find((s) => s >= per) || 3600;
  for (let t = Math.ceil(view.t0 / tick) * tick; t <= view.t1; t += tick) {
    vline(t, 0, H - 14, C.grid, 1);
    ctx.fillStyle = "#757575"; ctx.fillText(fmtT(t, tick), t2x(t) + 2, H - 7);
  }
  for (const r of rows) { ctx.fillStyle = r.id.startsWith("region") ? "#455a64" : "#37474f"; ctx.fillText(fit(r.label, LABEL_W - 6), 4, r.y + r.h / 2); }
  // waveform envelopes at the zoom's resolution: the loudest 10 ms in each pixel
  D.channels.forEach((c, k) => {
    const r = row("env" + k), a = env[k], mid = r.y + r.h / 2;
    ctx.fillStyle = k === 0 ? C.user : C.agent;
    for (let x = LABEL_W; x < W; x++) {
      const i0 = Math.max(0, Math.floor(x2t(x) * D.envRate)), i1 = Math.min(a.length, Math.ceil(x2t(x + 1) * D.envRate));
      let m = 0; for (let i = i0; i < i1; i++) if (a[i] > m) m = a[i];
      if (i1 <= i0 && i0 < a.length) m = a[i0];
      const h = m / 255 * r.h / 2; if (h > 0.3) ctx.fillRect(x, mid - h, 1, 2 * h);
    }
  });
  // speech: the user's VAD and the agent's
  const sp = row("speech");
  for (const [a, b] of D.vad) bar(a, b, sp.y, 12, C.vad);
  for (const [a, b] of D.agent) bar(a, b, sp.y + 16, 12, C.agentSpeech);
  // transcripts
  const tr = row("text");
  let nFinal = 0;
  for (const x of D.transcripts) {
    if (x.type === "final") nFinal++;
    if (x.t < view.t0 - span || x.t > view.t1) continue;
    if (x.type !== "final") { bar(x.t, x.t + span / 2000, tr.y + 55, 5, C.interim); continue; }
    const dropped = dropByRef.get(x.line);
    const shown = x.shown !== undefined ? x.shown : (dropped ? dropped.t : x.t);
    if (x.held !== undefined && shown > x.t + 1e-6) bar(x.t, shown, tr.y + 38, 5, C.held);
    if (dropped) { markX(dropped.t, tr.y + 40, C.dropped); text(JSON.stringify(x.text) + " dropped (" + dropped.reason + ")", x.t, tr.y + 49, C.dropped, 260); }
    else { ctx.fillStyle = C.final; const px = t2x(shown); ctx.beginPath(); ctx.moveTo(px - 4, tr.y + 2); ctx.lineTo(px + 4, tr.y + 2); ctx.lineTo(px, tr.y + 9); ctx.fill(); text(x.text, shown, tr.y + 16 + (nFinal % 2) * 13, C.final, 240); }
  }
  for (const d of D.drops) if (!d.text) { markX(d.t, sp.y + 6, C.dropped); text("dropped (" + d.reason + ")", d.t + span / 300, sp.y + 6, C.dropped, 160); }
  // decisions: each wait from its trigger to the end of turn, the delay from the anchor
  const dr = row("decisions");
  D.turns.forEach((x, k) => {
    const y = dr.y + 4 + (k % 2) * 12;
    if (x.waitFrom !== null && x.t - x.waitFrom > 1e-3) bar(x.waitFrom, x.t, y, 8, C.wait);
    if (x.anchor !== null) { bar(x.anchor, x.anchor + x.delay, y + 9, 3, C.delay); vline(x.anchor, y + 6, y + 14, C.delay, 1.5); }
    vline(x.t, dr.y, dr.y + dr.h, C.eot, 1.5);
    text("END OF TURN " + (x.trigger || "") + " " + (x.delay !== null ? x.delay + " s" : ""), x.t, dr.y + 40 + (k % 2) * 10, C.eot, 220);
  });
  for (const x of D.cancels) { if (x.t < view.t0 || x.t > view.t1) continue; const px = t2x(x.t); ctx.strokeStyle = C.cancelled; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(px, dr.y + 2); ctx.lineTo(px, dr.y + 24); ctx.stroke(); }
  for (const x of D.interruptions) { vline(x.t, dr.y, dr.y + dr.h, C.interruption, 1.5, [4, 3]); text("INTERRUPTION", x.t, dr.y + 30, C.interruption, 120); }
  // region states
  D.regions.forEach((reg, k) => {
    const r = row("region" + k), s = spans[k];
    for (let i = 0; i < s.length; i++) {
      const a = s[i][0], b = i + 1 < s.length ? s[i + 1][0] : END;
      if (b < view.t0 || a > view.t1) continue;
      const col = stateColor(k, s[i][1]);
      bar(a, Math.max(b, a + (view.t1 - view.t0) / 4000), r.y, r.h, col);
      const w = t2x(Math.min(b, view.t1)) - t2x(Math.max(a, view.t0)), name = reg.states[s[i][1]];
      if (col !== C.resting && w > ctx.measureText(name).width + 6) { ctx.fillStyle = "#ffffff"; ctx.font = "9px Helvetica, Arial, sans-serif"; ctx.fillText(name, t2x(Math.max(a, view.t0)) + 3, r.y + r.h / 2 + 0.5); ctx.font = "11px Helvetica, Arial, sans-serif"; }
    }
  });
  // the cursor
  vline(cursor.t, 0, H - 14, C.cursor, 1.5);
}
function fmtT(t, tick) {
  if (t >= 60) { const m = Math.floor(t / 60), s = t - 60 * m; return m + ":" + (s < 10 ? "0" : "") + s.toFixed(tick < 1 ? 1 : 0); }
  return t.toFixed(tick < 1 ? 1 : 0) + " s";
}

// -- the legend (every colour the timeline uses) -------------------------------------------
(function legend() {
  const items = [];
  if (D.channels.length) D.channels.forEach((c, k) => items.push([k ? C.agent : C.user, c + " level (peak per 10 ms)"]));
  items.push([C.vad, "user speech (VAD)"], [C.agentSpeech, "agent speech"], [C.interim, "interim transcript"],
    [C.final, "final transcript (as reported)"], [C.held, "final held while the agent speaks"], [C.dropped, "dropped transcript / speech (why)"],
    [C.wait, "end-of-turn wait (trigger to end)"], [C.delay, "delay from the last speech"], [C.eot, "end of turn"],
    [C.interruption, "interruption (dashed)"], [C.cancelled, "wait cancelled (new speech, a clear)"], [C.cursor, "cursor"], [C.resting, "region at its initial state"]);
  const used = new Map();
  // the states this session visits
  spans.forEach((sp, k) => sp.forEach(([, j]) => { const c = stateColor(k, j); if (c !== C.resting) { if (!used.has(c)) used.set(c, new Set()); used.get(c).add(D.regions[k].states[j]); } }));
  for (const [c, names] of used) items.push([c, "state: " + [...names].join(" / ")]);
  $("legend").innerHTML = items.map(([c, l]) => '<span><span class="sw" style="background:' + c + '"></span>' + esc(l) + "</span>").join("");
})();
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }

// -- the events list (virtualised: only the rows in sight exist) ------------------------
const list = $("events"), ROW_H = 22, spacer = document.createElement("div");
spacer.style.height = decisions.length * ROW_H + "px"; list.appendChild(spacer);
function drawList() {
  const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - 5), last = Math.min(decisions.length, first + Math.ceil(list.clientHeight / ROW_H) + 10);
  const cd = currentDecision();
  let html = "";
  for (let i = first; i < last; i++) {
    const d = decisions[i];
    const what = d.kind === "eot" ? JSON.stringify(d.text) + ": " + d.why : d.kind === "drop" ? (d.text ? JSON.stringify(d.text) + ": " : "speech without words: ") + d.why : d.why;
    html += '<div class="row' + (i === cd ? " current" : "") + '" data-i="' + i + '" data-kind="' + d.kind + '" style="top:' + i * ROW_H + 'px"><span class="tm">' + d.t.toFixed(3) + ' s</span><span class="k k-' + d.kind + '">' + esc(d.label) + "</span>" + esc(what) + "</div>";
  }
  spacer.innerHTML = html;
}
list.addEventListener("scroll", drawList);
list.addEventListener("click", (e) => { const r = e.target.closest(".row"); if (r) goDecision(+r.dataset.i); });
function currentDecision() { return cursor.step >= 0 && decisionAtStep.has(cursor.step) ? decisionAtStep.get(cursor.step) : -1; }

// -- the side panel --------------------------------------------------------------------
const svgNodes = new Map();  // "region/state" -> the diagram's node
document.querySelectorAll("#diagram g.node").forEach((g) => { const t = g.querySelector("title"); if (t) svgNodes.set(t.textContent, g); });
(function statesTable() {
  $("states").innerHTML = D.regions.map((r, k) => '<tr data-r="' + k + '"><td class="r" title="' + esc(r.doc) + '">' + esc(r.name) + "</td><td>" +
    r.states.map((s, j) => '<span class="st" data-s="' + j + '" title="' + esc(r.docs[s] || s) + '">' + esc(s) + "</span>").join("") + "</td></tr>").join("");
})();
let lastActive = [];
function panel() {
  const i = cursor.step, s = i >= 0 ? D.steps[i] : null;
  $("cursor-time").textContent = cursor.t.toFixed(3) + " s" + (s ? "  \u00b7  step " + s.i + " at " + s.t.toFixed(3) + " s" : "  \u00b7  before the first step");
  if (s) {
    const li = (a) => a.length ? "<ul>" + a.map((x) => "<li>" + esc(x) + "</li>").join("") + "</ul>" : "\u2014";
    $("step").innerHTML = "<dl><dt>input</dt><dd>" + esc(s.in) + "</dd><dt>moved</dt><dd>" + li(s.mv.map((m) => m[0] + ": " + m[1] + " \u2192 " + m[2])) +
      "</dd><dt>armed</dt><dd>" + li(s.ar) + "</dd><dt>cancelled</dt><dd>" + li(s.ca) + "</dd><dt>outputs</dt><dd>" + li(s.out) + "</dd></dl>";
  } else $("step").textContent = "No step yet.";
  // the decision at this step, else the last one before the cursor
  let d = currentDecision(), exact = d >= 0;
  if (!exact) for (let k = decisions.length - 1; k >= 0; k--) if (decisions[k].step <= i) { d = k; break; }
  const box = $("decision");
  if (d >= 0) {
    const x = decisions[d];
    box.className = exact ? "" : "none";
    box.innerHTML = (exact ? "" : "<div>Last decision before the cursor:</div>") + '<div class="what k-' + x.kind + '">' + esc(x.label) + " at " + x.t.toFixed(3) + " s" +
      (x.text ? ": " + esc(JSON.stringify(x.text)) : "") + '</div><div class="why">' + esc(x.why) + "</div>" +
      (x.kind === "eot" && x.started !== null ? "<div>spoke " + x.started + "\u2013" + x.stopped + " s; trigger " + esc(x.trigger) + ", " + esc(x.reason) + " " + x.delay + " s from " + (x.anchor !== null ? x.anchor + " s" : "the trigger") + "</div>" : "");
  } else { box.className = "none"; box.textContent = "No decision yet."; }
  // the regions' states
  for (const g of lastActive) g.classList.remove("active");
  lastActive = [];
  const rowsEl = $("states").rows;
  const moved = new Set(s ? s.mv.map((m) => m[0]) : []);
  let firstMoved = null;
  for (let r = 0; r < NR; r++) {
    const st = i >= 0 ? ST[i * NR + r] : D.regions[r].states.indexOf(D.regions[r].initial);
    const tr = rowsEl[r]; tr.classList.toggle("moved", moved.has(D.regions[r].name));
    const el = tr.querySelector('.st[data-s="' + st + '"]'); if (el) { el.classList.add("active"); lastActive.push(el); }
    const g = svgNodes.get(D.regions[r].name + "/" + D.regions[r].states[st]); if (g) { g.classList.add("active"); lastActive.push(g); if (moved.has(D.regions[r].name) && !firstMoved) firstMoved = g; }
  }
  // at full size, the diagram scrolls to the first region that moved at this step
  const box2 = $("diagram");
  if (firstMoved && box2.classList.contains("full")) {
    const a = box2.getBoundingClientRect(), b = firstMoved.getBoundingClientRect();
    if (b.top < a.top || b.bottom > a.bottom || b.left < a.left || b.right > a.right) {
      box2.scrollTop += b.top - a.top - 40; box2.scrollLeft += b.left - a.left - 40;
    }
  }
  drawList();
}

// -- moving the cursor -------------------------------------------------------------------
function setCursor(t, step, follow) {
  cursor.t = Math.max(0, Math.min(END, t));
  cursor.step = step === undefined ? stepAt(cursor.t) : step;
  if (follow && (cursor.t < view.t0 || cursor.t > view.t1)) { const w = view.t1 - view.t0; view.t0 = Math.max(0, Math.min(END - w, cursor.t - w * 0.1)); view.t1 = view.t0 + w; }
  draw(); panel();
  $("pos").textContent = "view " + view.t0.toFixed(2) + "\u2013" + view.t1.toFixed(2) + " s of " + END.toFixed(2) + " s";
}
function goStep(i) { if (NS === 0) return; i = Math.max(0, Math.min(NS - 1, i)); setCursor(D.steps[i].t, i, true); }
function goDecision(k) {
  if (!decisions.length) return; k = Math.max(0, Math.min(decisions.length - 1, k));
  setCursor(decisions[k].t, decisions[k].step, true);
  const top = k * ROW_H; if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - ROW_H) list.scrollTop = top - list.clientHeight / 2;
}
function nextDecision(dir) {
  if (dir > 0) { const k = decisions.findIndex((d) => d.step > cursor.step); if (k >= 0) goDecision(k); }
  else { for (let k = decisions.length - 1; k >= 0; k--) if (decisions[k].step < cursor.step) { goDecision(k); return; } }
}
function zoom(f, at) {
  const t = at === undefined ? cursor.t : at, w = Math.min(END, Math.max(0.2, (view.t1 - view.t0) * f));
  let t0 = t - (t - view.t0) * w / (view.t1 - view.t0); t0 = Math.max(0, Math.min(END - w, t0));
  view.t0 = t0; view.t1 = t0 + w; setCursor(cursor.t, cursor.step, false);
}
let dragging = false;
canvas.addEventListener("mousedown", (e) => { dragging = true; canvas.focus(); setCursor(x2t(e.offsetX)); });
canvas.addEventListener("mousemove", (e) => { if (dragging) setCursor(x2t(e.offsetX)); tip(e); });
canvas.addEventListener("mouseleave", () => { $("tip").hidden = true; });
function near(t, px) { return Math.abs(t2x(t) - px) <= 5; }
function tip(e) {  // what is under the mouse, in words (labels hidden for room included)
  const x = e.offsetX, y = e.offsetY, r = rows.find((q) => y >= q.y - 2 && y <= q.y + q.h + 2), box = $("tip");
  let lines = [];
  if (r && x > LABEL_W) {
    const t = x2t(x);
    if (r.id === "text") lines = D.transcripts.filter((q) => near(q.shown !== undefined ? q.shown : q.t, x) || near(q.t, x)).map((q) => q.type + " at " + q.t.toFixed(3) + " s" + (q.held !== undefined ? " (held, shown at " + (q.shown !== undefined ? q.shown.toFixed(3) + " s" : "never") + ")" : "") + ": " + JSON.stringify(q.text) + (dropByRef.has(q.line) ? " dropped: " + dropByRef.get(q.line).why : ""));
    else if (r.id === "decisions") lines = decisions.filter((d) => d.kind !== "drop" && (near(d.t, x) || (d.waitFrom != null && t >= d.waitFrom && t <= d.t) || (d.anchor != null && t >= d.anchor && t <= d.anchor + d.delay))).map((d) => d.label + " at " + d.t.toFixed(3) + " s: " + d.why).concat(D.cancels.filter((c) => near(c.t, x)).map((c) => "wait cancelled at " + c.t.toFixed(3) + " s"));
    else if (r.id === "speech") lines = D.drops.filter((d) => !d.text && near(d.t, x)).map((d) => "dropped speech at " + d.t.toFixed(3) + " s: " + d.why).concat(D.vad.filter(([a, b]) => t >= a && t <= b).map(([a, b]) => "user speech (VAD) " + a + "–" + b + " s"), D.agent.filter(([a, b]) => t >= a && t <= b).map(([a, b]) => "agent speech " + a + "–" + b + " s"));
    else if (r.id.startsWith("region")) { const k = +r.id.slice(6), sp = spans[k]; let i = sp.length - 1; while (i > 0 && sp[i][0] > t) i--; lines = [D.regions[k].name + ": " + D.regions[k].states[sp[i][1]] + " from " + sp[i][0].toFixed(3) + " s" + (i + 1 < sp.length ? " to " + sp[i + 1][0].toFixed(3) + " s" : "")]; }
  }
  if (!lines.length) { box.hidden = true; return; }
  box.textContent = lines.slice(0, 6).join("\n") + (lines.length > 6 ? "\n…" : "");
  box.hidden = false; box.style.left = Math.min(e.offsetX + 12, canvas.clientWidth - 360) + "px"; box.style.top = (e.offsetY + 14) + "px";
}
window.addEventListener("mouseup", () => { dragging = false; });
canvas.addEventListener("wheel", (e) => { e.preventDefault(); if (e.shiftKey) { const w = view.t1 - view.t0, d = w * Math.sign(e.deltaY) * 0.1; view.t0 = Math.max(0, Math.min(END - w, view.t0 + d)); view.t1 = view.t0 + w; draw(); } else zoom(e.deltaY > 0 ? 1.25 : 0.8, x2t(e.offsetX)); }, {passive: false});
document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key; let done = true;
  if (k === "ArrowRight") goStep(cursor.step + 1);
  else if (k === "ArrowLeft") goStep(cursor.step - 1);
  else if (k === "ArrowDown" || k === "n") nextDecision(1);
  else if (k === "ArrowUp" || k === "p") nextDecision(-1);
  else if (k === "Home") goStep(0);
  else if (k === "End") goStep(NS - 1);
  else if (k === "+" || k === "=") zoom(0.5);
  else if (k === "-") zoom(2);
  else if (k === "0") { view.t0 = 0; view.t1 = END; setCursor(cursor.t, cursor.step); }
  else if (k === " ") playPause();
  else if (k === "?" || k === "h") $("help").hidden = !$("help").hidden;
  else if (k === "Escape") $("help").hidden = true;
  else done = false;
  if (done) e.preventDefault();
});
$("help-btn").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
$("help").addEventListener("click", () => { $("help").hidden = true; });
$("fit").addEventListener("click", () => { view.t0 = 0; view.t1 = END; setCursor(cursor.t, cursor.step); });
$("zoom-in").addEventListener("click", () => zoom(0.5));
$("zoom-out").addEventListener("click", () => zoom(2));
$("diagram-size").addEventListener("click", () => $("diagram").classList.toggle("full"));

// -- audio: plays from the cursor, the cursor follows --------------------------------------
const audio = $("audio");
function playPause() {
  if (!D.audio) return;
  if (audio.paused) { audio.currentTime = cursor.t; audio.play(); } else audio.pause();
}
if (D.audio) {
  audio.src = D.audio;
  const tickPlay = () => { if (audio.paused) return; setCursor(audio.currentTime, undefined, true); requestAnimationFrame(tickPlay); };
  audio.addEventListener("play", () => { $("play").textContent = "pause"; requestAnimationFrame(tickPlay); });
  audio.addEventListener("pause", () => { $("play").textContent = "play"; });
  $("play").addEventListener("click", playPause);
} else { $("play").disabled = true; $("play").title = "no audio in this page"; }

window.addEventListener("resize", resize);
window.turnfsmView = {cursor, view, decisions, stepAt, goStep, goDecision, setCursor, ready: true};
resize(); setCursor(0);
})();
