// The Trainwatch dashboard: hash-routed views over the REST API and its event streams.
//   #/            operations list, live from /api/v1/stream
//   #/op/<id>     one operation: curves live from its metrics stream, smoothing, badges, recommendation, cancel, downloads
//   #/compare/<a,b,…>  runs overlaid on one chart, with their summaries
//   #/new         start a training from a spec
// Curves are smoothed and thinned with the server's own trend code (src/trends), built for the browser at startup.

import { emaSmooth } from "/assets/lib/smoothing.js";
import { downsample } from "/assets/lib/downsample.js";
import { api, askToken, download, getToken, listOperations, openStream, setToken } from "/assets/api.js";
import { EpochChart, PALETTE, plottable } from "/assets/charts.js";

/** Points fetched per run; live epochs are appended, and a series is thinned back to this once it doubles. */
const MAX_POINTS = 2000;
const STANDARD = ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate", "duration"];
const NOT_METRICS = new Set(["epoch", "timestamp", ...STANDARD]);
const SMOOTHING_KEY = "trainwatch.smoothing";

const $view = document.getElementById("view");
const $conn = document.getElementById("conn");

// ── small helpers ──

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

/** Wire value ("NaN", "Infinity", number, null) → number or null. */
const num = (v) => (v === null || v === undefined ? null : typeof v === "string" ? Number(v) : v);

function fmt(v, digits = 4) {
  v = num(v);
  if (v === null) return "—";
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toPrecision(digits) : v.toFixed(digits);
}

function ago(iso) {
  if (!iso) return "—";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

const where = (op) => (typeof op.metadata?.location === "string" ? op.metadata.location : "—");
const live = (op) => op.status === "pending" || op.status === "running";

/** The four trend flags as badges; `none` adds a quiet "no issues" badge when nothing is flagged. */
function flagBadges(t, { none = false } = {}) {
  const out = [];
  if (t.is_overfitting ?? t.overfitting) out.push(`<span class="badge warn" data-badge="overfitting" title="Validation loss above its best by more than noise while training loss falls">overfitting</span>`);
  if (t.is_plateaued ?? t.plateau) out.push(`<span class="badge info" data-badge="plateau" title="No improvement for the plateau patience">plateau</span>`);
  if (t.is_diverging ?? t.diverging) out.push(`<span class="badge bad" data-badge="diverging" title="Loss not finite, exploded, or training and validation both rising">diverging</span>`);
  if (t.is_stalled ?? t.stalled) out.push(`<span class="badge warn" data-badge="stalled" title="Barely improving and never learned much: check the learning rate and the data">stalled</span>`);
  if (!out.length && none) out.push(`<span class="badge ok" data-badge="none">no issues</span>`);
  return out.join(" ");
}

const statusPill = (status) => `<span class="status ${esc(status)}" data-status="${esc(status)}">${esc(status)}</span>`;

function progressBar(op) {
  const p = op.progress;
  const pct = Math.max(0, Math.min(100, p.percentage ?? 0));
  const label = p.total_epochs ? `${p.epochs_completed} / ${p.total_epochs} epochs` : `${p.epochs_completed} epochs`;
  return `<div class="progress" title="${pct.toFixed(1)} %"><div style="width:${pct}%"></div></div><span class="muted small">${label}</span>`;
}

function errorBox(err) {
  return `<div class="card error-box"><strong>${esc(err.code ?? "Error")}</strong> ${esc(err.message ?? err)}</div>`;
}

function setConn(state) {
  $conn.className = `conn ${state}`;
  $conn.textContent = state;
}

/** Runs `fn` at most once per `ms`, trailing. */
function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
}

function smoothingControl(onChange) {
  const initial = Number(localStorage.getItem(SMOOTHING_KEY) ?? 0.6);
  const wrap = document.createElement("label");
  wrap.className = "smoothing";
  wrap.innerHTML = `Smoothing <input type="range" min="0" max="0.99" step="0.01" value="${initial}" data-testid="smoothing"> <output>${initial.toFixed(2)}</output>`;
  const input = wrap.querySelector("input");
  input.addEventListener("input", () => {
    wrap.querySelector("output").textContent = Number(input.value).toFixed(2);
    localStorage.setItem(SMOOTHING_KEY, input.value);
    onChange(Number(input.value));
  });
  return { el: wrap, value: () => Number(input.value) };
}

// ── operations list ──

function listView(root) {
  const rows = new Map();
  const selected = new Set();
  root.innerHTML = `
    <section class="card">
      <div class="row">
        <h1>Operations</h1>
        <span class="spacer"></span>
        <button id="compare-selected" class="primary" disabled>Compare selected</button>
        <a class="button" href="#/new">New training</a>
      </div>
      <div class="table-wrap"><table class="ops">
        <thead><tr><th></th><th>Name</th><th>Status</th><th>Progress</th><th>Best loss</th><th>Flags</th><th>Location</th><th>Started</th></tr></thead>
        <tbody><tr><td colspan="8" class="muted">Loading…</td></tr></tbody>
      </table></div>
      <p class="muted small" id="total"></p>
    </section>`;
  const tbody = root.querySelector("tbody");
  const compareBtn = root.querySelector("#compare-selected");
  compareBtn.onclick = () => (location.hash = `#/compare/${[...selected].join(",")}`);

  const row = (op) => {
    const t = op.trends;
    const name = op.name ?? op.operation_type;
    return `<tr data-op="${esc(op.operation_id)}">
      <td><input type="checkbox" data-select="${esc(op.operation_id)}" ${selected.has(op.operation_id) ? "checked" : ""} aria-label="select for comparison"></td>
      <td><a href="#/op/${encodeURIComponent(op.operation_id)}">${esc(name)}</a><div class="id">${esc(op.operation_id)}</div></td>
      <td>${statusPill(op.status)}</td>
      <td class="prog">${progressBar(op)}</td>
      <td>${t.best_val_loss === null ? "—" : `${fmt(t.best_val_loss)} <span class="muted small">${esc(t.monitor ?? "")} @ ${t.best_epoch}</span>`}</td>
      <td>${flagBadges(t)}</td>
      <td>${esc(where(op))}</td>
      <td class="muted small">${esc(ago(op.started_at ?? op.created_at))}</td>
    </tr>`;
  };

  const render = () => {
    const ops = [...rows.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
    tbody.innerHTML = ops.length ? ops.map(row).join("") : `<tr><td colspan="8" class="muted">No operations yet. <a href="#/new">Start a training</a> or POST /api/v1/operations.</td></tr>`;
  };
  const scheduleRender = (() => {
    let queued = false;
    return () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => ((queued = false), render()));
    };
  })();

  tbody.addEventListener("change", (e) => {
    const id = e.target.dataset?.select;
    if (!id) return;
    e.target.checked ? selected.add(id) : selected.delete(id);
    compareBtn.disabled = selected.size < 1;
    compareBtn.textContent = selected.size ? `Compare selected (${selected.size})` : "Compare selected";
  });

  const refresh = async () => {
    try {
      const { operations, total } = await listOperations(100);
      rows.clear();
      for (const op of operations) rows.set(op.operation_id, op);
      root.querySelector("#total").textContent = `${total} operation${total === 1 ? "" : "s"}${total > operations.length ? `, newest ${operations.length} shown` : ""}`;
      render();
    } catch (err) {
      tbody.innerHTML = `<tr><td colspan="8">${errorBox(err)}</td></tr>`;
    }
  };
  const refreshSoon = throttle(refresh, 1000);

  // Stream first, then the list, so no change falls between the two.
  const stream = openStream("/stream", {
    onState: setConn,
    onEvent: (type, op) => {
      if (type !== "operation") return;
      if (!rows.has(op.operation_id)) return refreshSoon();
      rows.set(op.operation_id, op);
      scheduleRender();
    },
  });
  void refresh();
  // Operations registered or queued make no event until they start; a slow poll catches them, and ages stay fresh.
  const poll = setInterval(refresh, 10_000);
  return {
    name: "list",
    destroy() {
      stream.close();
      clearInterval(poll);
    },
  };
}

// ── one operation ──

/** The checkpoints the server lists for a run: its result's once it ended, else those written so far (as checkpointsOf). */
function checkpointsOf(op) {
  const list = Array.isArray(op.result?.checkpoints) ? op.result.checkpoints : op.metadata?.checkpoints;
  return Array.isArray(list) ? list : [];
}

/** One download button per kept checkpoint (a tar of the TF.js model and preprocessing.json); best and last may share an epoch. */
function checkpointLinks(op) {
  const byEpoch = new Map();
  for (const c of checkpointsOf(op)) byEpoch.set(c.epoch, [...(byEpoch.get(c.epoch) ?? []), c.kind]);
  if (byEpoch.size === 0) return "";
  const buttons = [...byEpoch].map(
    ([epoch, kinds]) => `<button type="button" data-checkpoint="${esc(epoch)}" title="TF.js layers model + preprocessing.json, as a tar">Checkpoint: ${esc(kinds.join(" + "))}, epoch ${esc(epoch)}</button>`,
  );
  return `<div class="row wrap meta"><span class="muted small">checkpoints</span> ${buttons.join(" ")}</div>`;
}

/** Wire epoch → row with numbers (NaN and ±Infinity as numbers). */
function decodeRow(e) {
  const r = { epoch: e.epoch };
  for (const [k, v] of Object.entries(e)) if (k !== "epoch" && k !== "timestamp") r[k] = num(v);
  return r;
}

function operationView(root, id) {
  const state = { op: null, trends: null, rows: [], custom: [], analysis: null };
  const charts = {};
  let stream = null;
  let destroyed = false;

  root.innerHTML = `
    <section class="card" id="head"><p class="muted">Loading ${esc(id)}…</p></section>
    <section class="card">
      <div class="row wrap">
        <div id="badges" class="badges"></div>
        <span class="spacer"></span>
        <span id="smoothing-slot"></span>
      </div>
      <div id="recommendation" class="recommendation muted">Analysing…</div>
    </section>
    <section class="grid" id="charts">
      <div class="card chart-card"><h2>Loss</h2><div class="chart" id="chart-loss"></div></div>
      <div class="card chart-card"><h2>Accuracy</h2><div class="chart" id="chart-accuracy"></div><p class="muted small empty" id="no-accuracy" hidden>No accuracy reported.</p></div>
      <div class="card chart-card" id="card-lr" hidden><h2>Learning rate</h2><div class="chart" id="chart-lr"></div></div>
    </section>`;

  const smoothing = smoothingControl(() => scheduleDraw());
  root.querySelector("#smoothing-slot").append(smoothing.el);
  const best = () => state.trends?.best_epoch ?? null;

  const pair = (label, color) => [
    { label, color, faint: true },
    { label, color },
  ];
  charts.loss = new EpochChart(root.querySelector("#chart-loss"), { series: [...pair("train_loss", PALETTE[0]), ...pair("val_loss", PALETTE[1])], getBest: best, yLabel: "loss" });
  charts.accuracy = new EpochChart(root.querySelector("#chart-accuracy"), {
    series: [...pair("train_accuracy", PALETTE[0]), ...pair("val_accuracy", PALETTE[1])],
    getBest: best,
    yLabel: "accuracy",
  });
  charts.lr = new EpochChart(root.querySelector("#chart-lr"), { series: [{ label: "learning_rate", color: PALETTE[4] }], height: 180 });

  function addCustomChart(name) {
    const card = document.createElement("div");
    card.className = "card chart-card";
    card.innerHTML = `<h2>${esc(name)}</h2><div class="chart"></div>`;
    root.querySelector("#charts").append(card);
    charts[`custom:${name}`] = new EpochChart(card.querySelector(".chart"), { series: pair(name, PALETTE[state.custom.length % PALETTE.length]), height: 200 });
    state.custom.push(name);
  }

  // Rows stay sorted by epoch; a re-posted epoch replaces its row.
  function upsert(e) {
    const r = decodeRow(e);
    const rows = state.rows;
    for (const k of Object.keys(r)) if (!NOT_METRICS.has(k) && !state.custom.includes(k)) addCustomChart(k);
    if (!rows.length || r.epoch > rows[rows.length - 1].epoch) return void rows.push(r);
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rows[mid].epoch < r.epoch) lo = mid + 1;
      else hi = mid;
    }
    if (rows[lo]?.epoch === r.epoch) rows[lo] = r;
    else rows.splice(lo, 0, r);
  }

  let drawQueued = false;
  function scheduleDraw() {
    if (drawQueued || destroyed) return;
    drawQueued = true;
    requestAnimationFrame(draw);
  }

  function draw() {
    drawQueued = false;
    if (destroyed) return;
    if (state.rows.length > 2 * MAX_POINTS) state.rows = downsample(state.rows, MAX_POINTS, best());
    const rows = state.rows;
    const w = smoothing.value();
    const x = rows.map((r) => r.epoch);
    const col = (k) => rows.map((r) => r[k] ?? null);
    const both = (k) => {
      const raw = col(k);
      return [plottable(raw), plottable(emaSmooth(raw, w))];
    };
    charts.loss.setData([x, ...both("train_loss"), ...both("val_loss")]);
    const hasAcc = rows.some((r) => r.train_accuracy != null || r.val_accuracy != null);
    root.querySelector("#no-accuracy").hidden = hasAcc || rows.length === 0;
    charts.accuracy.setData([x, ...both("train_accuracy"), ...both("val_accuracy")]);
    const hasLr = rows.some((r) => r.learning_rate != null);
    root.querySelector("#card-lr").hidden = !hasLr;
    if (hasLr) charts.lr.setData([x, plottable(col("learning_rate"))]);
    for (const name of state.custom) charts[`custom:${name}`].setData([x, ...both(name)]);
    for (const [key, chart] of Object.entries(charts)) {
      if (key === "lr") continue;
      chart.series.forEach((s, i) => s.faint && chart.show(i, w > 0));
    }
  }

  function renderHead() {
    const op = state.op;
    if (!op) return;
    const meta = op.metadata ?? {};
    const bits = [
      `location <b>${esc(where(op))}</b>`,
      meta.host ? `host <b>${esc(meta.host)}</b>` : "",
      meta.backend ? `backend <b>${esc(meta.backend)}</b>` : "",
      `started <b>${esc(ago(op.started_at))}</b>`,
      op.last_seen_at && live(op) ? `last heard <b data-last-seen>${esc(ago(op.last_seen_at))}</b>` : "",
      op.completed_at ? `finished <b>${esc(ago(op.completed_at))}</b>` : "",
    ].filter(Boolean);
    // Late heartbeats: the progress shown may be frozen; the server is asking the host.
    const stale = op.stale
      ? `<span class="badge bad" data-badge="stale" title="No epoch or heartbeat from the host for 1.5 heartbeat intervals: the progress may be frozen; the server is asking the host">no heartbeat since ${esc(ago(op.last_seen_at))}</span>`
      : "";
    root.querySelector("#head").innerHTML = `
      <div class="row wrap">
        <div>
          <h1>${esc(op.name ?? op.operation_type)} ${statusPill(op.status)} ${stale}</h1>
          <div class="id">${esc(op.operation_id)}</div>
        </div>
        <span class="spacer"></span>
        <button id="dl-csv" type="button">Download CSV</button>
        <button id="dl-json" type="button">Download JSON</button>
        <a class="button" href="#/compare/${encodeURIComponent(op.operation_id)}">Compare…</a>
        ${live(op) ? `<button id="cancel" type="button" class="danger">Cancel</button>` : ""}
      </div>
      <div class="row wrap meta"><span id="head-progress">${progressBar(op)}</span> <span class="muted small">${bits.join(" · ")}</span></div>
      ${checkpointLinks(op)}
      ${op.error_message ? `<div class="error-box small">${esc(op.error_message)}</div>` : ""}`;
    root.querySelector("#dl-csv").onclick = () => download(`/operations/${encodeURIComponent(id)}/metrics.csv`, `${id}-metrics.csv`).catch(alertError);
    root.querySelector("#dl-json").onclick = () => download(`/operations/${encodeURIComponent(id)}/metrics.json`, `${id}-metrics.json`).catch(alertError);
    for (const b of root.querySelectorAll("[data-checkpoint]")) {
      const epoch = b.dataset.checkpoint;
      b.onclick = () => download(`/operations/${encodeURIComponent(id)}/checkpoints/${epoch}`, `${id}-epoch-${epoch}.tar`).catch(alertError);
    }
    const cancel = root.querySelector("#cancel");
    if (cancel) {
      cancel.onclick = async () => {
        if (!confirm(`Cancel ${op.name ?? id}?`)) return;
        cancel.disabled = true;
        try {
          state.op = await api("DELETE", `/operations/${encodeURIComponent(id)}`);
          renderHead();
        } catch (err) {
          cancel.disabled = false;
          alertError(err);
        }
      };
    }
  }

  /** Progress follows the epochs between status events: the stream's trends carry the counts. */
  function renderProgress() {
    const op = state.op;
    const t = state.trends;
    if (!op || !t) return;
    const p = op.progress;
    p.epochs_completed = t.total_epochs_completed;
    p.current_epoch = t.latest_epoch;
    if (op.status !== "completed" && p.total_epochs) p.percentage = Math.min(100, (100 * t.total_epochs_completed) / p.total_epochs);
    const slot = root.querySelector("#head-progress");
    if (slot) slot.innerHTML = progressBar(op);
  }

  function renderTrends() {
    const t = state.trends;
    if (!t) return;
    const bestText =
      t.best_epoch === null
        ? `<span class="muted">no finite loss yet</span>`
        : `best ${esc(t.monitor)} <b>${fmt(t.best_val_loss)}</b> at epoch <b>${t.best_epoch}</b>${t.epochs_since_improvement ? ` <span class="muted">(${t.epochs_since_improvement} epochs ago)</span>` : ""}`;
    root.querySelector("#badges").innerHTML = `${flagBadges(t, { none: t.total_epochs_completed >= 3 })} <span class="best">${bestText}</span>`;
  }

  function renderAnalysis() {
    const a = state.analysis;
    if (!a) return;
    const r = a.recommendation;
    const label = { continue: "continue", stop: "stop", use_checkpoint: "use checkpoint", insufficient_data: "not enough data" }[r.action] ?? r.action;
    root.querySelector("#recommendation").className = "recommendation";
    root.querySelector("#recommendation").innerHTML = `
      <span class="action ${esc(r.action)}" data-action="${esc(r.action)}">${esc(label)}</span>
      <span class="reason">${esc(r.reason)}</span>
      ${r.checkpoint_epoch !== null ? `<span class="muted small">checkpoint epoch ${r.checkpoint_epoch}</span>` : ""}`;
  }

  const analyse = throttle(async () => {
    try {
      state.analysis = await api("GET", `/operations/${encodeURIComponent(id)}/analysis`);
      if (!destroyed) renderAnalysis();
    } catch (err) {
      root.querySelector("#recommendation").innerHTML = errorBox(err);
    }
  }, 1500);

  (async () => {
    try {
      const [op, metrics] = await Promise.all([
        api("GET", `/operations/${encodeURIComponent(id)}`),
        api("GET", `/operations/${encodeURIComponent(id)}/metrics?max_points=${MAX_POINTS}`),
      ]);
      if (destroyed) return;
      state.op = op;
      state.trends = op.trends;
      for (const e of metrics.metrics.epochs) upsert(e);
      renderHead();
      renderTrends();
      scheduleDraw();
      analyse();
      // Everything after the last fetched epoch comes from the stream, then every new one as it is stored.
      const since = state.rows.length ? state.rows[state.rows.length - 1].epoch : -1;
      stream = openStream(`/operations/${encodeURIComponent(id)}/metrics/stream?since_epoch=${since}`, {
        onState: setConn,
        onEvent(type, data) {
          if (destroyed) return;
          if (type === "epoch") {
            upsert(data);
            scheduleDraw();
          } else if (type === "trends") {
            state.trends = data;
            renderTrends();
            renderProgress();
            charts.loss.redraw();
            analyse();
          } else if (type === "status") {
            state.op = data;
            state.trends = data.trends;
            renderHead();
            renderTrends();
          } else if (type === "end") {
            analyse();
          } else if (type === "error") {
            root.querySelector("#head").insertAdjacentHTML("beforeend", errorBox(data));
          }
        },
      });
    } catch (err) {
      root.querySelector("#head").innerHTML = errorBox(err);
    }
  })();

  // Staleness changes with no event when heartbeats come back: a running host training's head is refetched every 5 s.
  const poll = setInterval(async () => {
    const op = state.op;
    if (destroyed || document.hidden || !op || !live(op) || where(op) !== "host") return;
    try {
      state.op = await api("GET", `/operations/${encodeURIComponent(id)}`);
      renderHead();
    } catch (err) {
      console.warn(`refreshing ${id} failed:`, err);
    }
  }, 5000);

  return {
    name: "operation",
    charts,
    state,
    destroy() {
      destroyed = true;
      clearInterval(poll);
      stream?.close();
      for (const c of Object.values(charts)) c.destroy();
    },
  };
}

// ── comparison ──

const COMPARE_METRICS = ["val_loss", "train_loss", "val_accuracy", "train_accuracy", "learning_rate"];

function compareView(root, ids) {
  let chart = null;
  let chartShape = "";
  let data = null;
  let destroyed = false;
  let metric = "val_loss";
  root.innerHTML = `
    <section class="card">
      <div class="row wrap">
        <h1>Compare runs</h1>
        <span class="spacer"></span>
        <label>Metric <select id="metric"></select></label>
        <span id="smoothing-slot"></span>
      </div>
      <div id="picker" class="picker"></div>
    </section>
    <section class="card chart-card" id="compare-chart-card" hidden><div class="chart" id="compare-chart"></div></section>
    <section class="card" id="compare-table"></section>`;
  const smoothing = smoothingControl(() => draw());
  root.querySelector("#smoothing-slot").append(smoothing.el);
  const select = root.querySelector("#metric");
  select.onchange = () => ((metric = select.value), draw());

  // The picker: recent runs as toggles; choosing changes the hash, which re-renders this view.
  listOperations(50)
    .then(({ operations }) => {
      if (destroyed) return;
      const chosen = new Set(ids);
      root.querySelector("#picker").innerHTML =
        `<span class="muted small">Runs:</span> ` +
        operations
          .map(
            (op) =>
              `<label class="chip ${chosen.has(op.operation_id) ? "on" : ""}" title="${esc(op.operation_id)}"><input type="checkbox" value="${esc(op.operation_id)}" ${chosen.has(op.operation_id) ? "checked" : ""}> ${esc(op.name ?? op.operation_type)} <span class="muted small">${esc(op.operation_id.slice(-8))}</span></label>`,
          )
          .join("");
      root.querySelector("#picker").onchange = (e) => {
        const id = e.target.value;
        e.target.checked ? chosen.add(id) : chosen.delete(id);
        const order = [...ids.filter((i) => chosen.has(i)), ...[...chosen].filter((i) => !ids.includes(i))];
        location.hash = `#/compare/${order.join(",")}`;
      };
    })
    .catch((err) => (root.querySelector("#picker").innerHTML = errorBox(err)));

  function draw() {
    if (!data || destroyed) return;
    const w = smoothing.value();
    const runs = data.runs;
    const tables = runs.map((r) => {
      const x = r.curves.map((e) => e.epoch);
      const raw = r.curves.map((e) => num(e[metric]));
      return [x, plottable(metric === "learning_rate" ? raw : emaSmooth(raw, w))];
    });
    // Same runs and metric (a refresh): new data in place, so zoom and hover survive. Otherwise a new chart.
    const shape = `${metric}|${runs.map((r) => r.operation_id).join(",")}`;
    const columns = tables.length === 1 ? tables[0] : uPlot.join(tables);
    if (chart && chartShape === shape) return chart.setData(columns);
    chartShape = shape;
    chart?.destroy();
    root.querySelector("#compare-chart-card").hidden = false;
    chart = new EpochChart(root.querySelector("#compare-chart"), {
      series: runs.map((r, i) => ({ label: `${r.name ?? r.operation_type} (${r.operation_id.slice(-8)})`, color: PALETTE[i % PALETTE.length], spanGaps: true })),
      height: 380,
      yLabel: metric,
    });
    // Runs sample different epochs; uPlot.join puts them on one x axis (gaps spanned).
    chart.setData(columns);
  }

  function renderTable() {
    const rows = data.runs
      .map((r, i) => {
        const s = r.summary;
        const f = s.final ?? {};
        const star = data.best_run === r.operation_id ? `<span class="star" title="best run">★</span> ` : "";
        return `<tr data-run="${esc(r.operation_id)}">
          <td><span class="swatch" style="background:${PALETTE[i % PALETTE.length]}"></span>${star}<a href="#/op/${encodeURIComponent(r.operation_id)}">${esc(r.name ?? r.operation_type)}</a><div class="id">${esc(r.operation_id)}</div></td>
          <td>${statusPill(r.status)}</td>
          <td>${s.best_epoch ?? "—"}</td>
          <td>${fmt(s.best_loss)} <span class="muted small">${esc(s.monitor ?? "")}</span></td>
          <td>${s.epochs_to_best ?? "—"}</td>
          <td>${fmt(f.train_loss)} / ${fmt(f.val_loss)}</td>
          <td>${fmt(f.train_accuracy)} / ${fmt(f.val_accuracy)}</td>
          <td>${s.epochs_completed}</td>
          <td>${flagBadges(s.flags)}</td>
          <td class="small">${esc(s.recommendation.action)}</td>
        </tr>`;
      })
      .join("");
    root.querySelector("#compare-table").innerHTML = `
      <p class="basis">${esc(data.basis)}</p>
      <div class="table-wrap"><table class="ops runs">
        <thead><tr><th>Run</th><th>Status</th><th>Best epoch</th><th>Best loss</th><th>Epochs to best</th><th>Final loss (train / val)</th><th>Final acc. (train / val)</th><th>Epochs</th><th>Flags</th><th>Advice</th></tr></thead>
        <tbody>${rows}</tbody>
      </table></div>`;
  }

  async function load() {
    if (!ids.length) {
      root.querySelector("#compare-table").innerHTML = `<p class="muted">Pick two or more runs above (or tick them in the <a href="#/">operations list</a>).</p>`;
      return;
    }
    try {
      // A chart is ~1,000 pixels wide: the more runs, the fewer points each needs (10 runs → 1,000 each).
      const points = Math.max(500, Math.min(MAX_POINTS, Math.floor(10_000 / ids.length)));
      data = await api("GET", `/operations/compare?ids=${ids.map(encodeURIComponent).join(",")}&max_points=${points}`);
      if (destroyed) return;
      const custom = new Set();
      for (const r of data.runs) for (const e of r.curves.slice(-1)) for (const k of Object.keys(e)) if (!NOT_METRICS.has(k)) custom.add(k);
      const metrics = [...COMPARE_METRICS, ...custom];
      if (!metrics.includes(metric)) metric = "val_loss";
      select.innerHTML = metrics.map((m) => `<option ${m === metric ? "selected" : ""}>${esc(m)}</option>`).join("");
      renderTable();
      draw();
    } catch (err) {
      root.querySelector("#compare-table").innerHTML = errorBox(err);
    }
  }
  void load();
  // Running runs keep moving; refresh the overlay while any is live.
  const poll = setInterval(() => !document.hidden && data?.runs.some((r) => live(r)) && load(), 5000);

  return {
    name: "compare",
    charts: { get compare() { return chart; } },
    destroy() {
      destroyed = true;
      clearInterval(poll);
      chart?.destroy();
    },
  };
}

// ── start a training ──

function newTrainingView(root) {
  root.innerHTML = `
    <section class="card narrow">
      <h1>New training</h1>
      <p class="muted">A small multilayer perceptron on a generated dataset, trained in a worker on this server (or a GPU host). Empty fields take the spec's defaults.</p>
      <form id="spec-form" class="form">
        <label>Name <input name="name" placeholder="e.g. spirals-baseline"></label>
        <label>Dataset
          <select name="generator">
            <option value="spirals" selected>spirals — interleaved spiral arms (learns well)</option>
            <option value="overfit">overfit — few noisy samples (overfits within ~30 epochs)</option>
            <option value="random_walk">random_walk — up/down of a random-walk price</option>
          </select>
        </label>
        <div class="cols">
          <label>Samples <input name="samples" type="number" min="10" placeholder="default"></label>
          <label>Classes (spirals) <input name="classes" type="number" min="2" max="8" placeholder="3"></label>
        </div>
        <div class="cols">
          <label>Hidden layers <input name="hidden" value="64,32" pattern="\\s*\\d+(\\s*,\\s*\\d+)*\\s*|" title="comma-separated units, e.g. 64,32"></label>
          <label>Activation <select name="activation"><option>relu</option><option>tanh</option><option>sigmoid</option><option>elu</option><option>linear</option></select></label>
          <label>Dropout <input name="dropout" type="number" min="0" max="0.95" step="0.05" value="0.2"></label>
        </div>
        <div class="cols">
          <label>Epochs <input name="epochs" type="number" min="1" max="10000" value="30"></label>
          <label>Batch size <input name="batch_size" type="number" min="1" value="32"></label>
          <label>Learning rate <input name="learning_rate" type="number" min="0" step="any" value="0.01"></label>
        </div>
        <div class="cols">
          <label>Optimizer <select name="optimizer"><option>adam</option><option>adamw</option><option>sgd</option><option>rmsprop</option></select></label>
          <label>Validation split <input name="validation_split" type="number" min="0" max="0.9" step="0.05" value="0.2"></label>
          <label>Seed <input name="seed" type="number" min="0" value="42"></label>
        </div>
        <div class="cols">
          <label class="check"><input type="checkbox" name="early_stopping"> Early stopping on val_loss, patience <input name="patience" type="number" min="0" value="5" class="tiny"></label>
          <label>Run on <select name="target"><option value="">server default</option><option value="local">local worker</option><option value="host">GPU host</option></select></label>
        </div>
        <details><summary>Spec (JSON sent to POST /api/v1/trainings)</summary><pre id="spec-preview"></pre></details>
        <div class="row"><span class="spacer"></span><button class="primary" type="submit">Start training</button></div>
        <div id="form-error"></div>
      </form>
    </section>`;
  const form = root.querySelector("#spec-form");
  const spec = () => {
    const f = Object.fromEntries(new FormData(form));
    const n = (k) => (f[k] === "" || f[k] === undefined ? undefined : Number(f[k]));
    const hidden = String(f.hidden ?? "").trim();
    const body = {
      name: f.name.trim() || undefined,
      dataset: { kind: "synthetic", generator: f.generator, samples: n("samples"), classes: f.generator === "spirals" ? n("classes") : undefined },
      model: { hidden_layers: hidden ? hidden.split(",").map((s) => Number(s.trim())) : [], activation: f.activation, dropout: n("dropout") },
      training: {
        epochs: n("epochs"),
        batch_size: n("batch_size"),
        learning_rate: n("learning_rate"),
        optimizer: f.optimizer,
        validation_split: n("validation_split"),
        seed: n("seed"),
        early_stopping: f.early_stopping ? { monitor: "val_loss", patience: n("patience") } : undefined,
      },
      target: f.target || undefined,
    };
    return JSON.parse(JSON.stringify(body)); // drops the undefined fields
  };
  const preview = () => (root.querySelector("#spec-preview").textContent = JSON.stringify(spec(), null, 2));
  form.addEventListener("input", preview);
  preview();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    root.querySelector("#form-error").innerHTML = "";
    try {
      const op = await api("POST", "/trainings", spec());
      location.hash = `#/op/${encodeURIComponent(op.operation_id)}`;
    } catch (err) {
      root.querySelector("#form-error").innerHTML = errorBox(err);
      button.disabled = false;
    }
  });
  return { name: "new", destroy() {} };
}

// ── routing ──

let current = null;

function route() {
  current?.destroy();
  setConn("idle");
  const hash = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  const [, view, arg = ""] = hash.split("/");
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === (view || "list") || (view === "op" && a.dataset.nav === "list"));
  $view.innerHTML = "";
  if (view === "op" && arg) current = operationView($view, arg);
  else if (view === "compare") current = compareView($view, arg.split(",").filter(Boolean));
  else if (view === "new") current = newTrainingView($view);
  else current = listView($view);
  document.title = `Trainwatch — ${current.name === "operation" ? arg : current.name}`;
}

function alertError(err) {
  alert(`${err.code ?? "Error"}: ${err.message ?? err}`);
}

document.getElementById("token-btn").onclick = async () => {
  if (await askToken(getToken() ? "" : "No token saved.")) route();
  else if (!getToken()) setToken(null);
};

/** Test and debugging hooks: points drawn per chart, badges shown, the current view. */
window.__trainwatch = {
  view: () => current?.name ?? null,
  chartPoints: (name = "loss") => current?.charts?.[name]?.points() ?? 0,
  badges: () => [...document.querySelectorAll("[data-badge]")].map((b) => b.dataset.badge),
  rows: () => current?.state?.rows.length ?? 0,
};

window.addEventListener("hashchange", route);
route();
