// #/op/<id> — one operation: curves live from its metrics stream, smoothing, drag-to-zoom, badges, recommendation,
// checkpoint downloads, cancel, CSV/JSON download, its config, stop policy (set/clear) and the stop decision recorded on it.
// The server reduces and smooths: every view (the whole run, or a zoomed epoch range) is GET /metrics with max_points
// from the chart's width, from_epoch/to_epoch for a zoom and smoothing=w, so the EMA runs over every stored epoch and a
// zoom into fewer epochs than points is at full resolution. Live epochs are appended, smoothed from the EMA state the
// server returned, with the server's own trend code (emaSmooth, downsample).

import { emaSmooth, UNSMOOTHED } from "trends/smoothing.js";
import { downsample } from "trends/downsample.js";
import { api, download, openStream } from "../lib/api.js";
import { EpochChart, PALETTE, drawing, pointsFor } from "../lib/charts.js";
import { AGE_REFRESH_MS, ago, fmt, live, num, where } from "../lib/format.js";
import { append, html, render } from "../lib/html.js";
import { logsPanel } from "../lib/logs.js";
import {
  alertError,
  errorBox,
  flagBadges,
  progressBar,
  setConn,
  smoothingControl,
  statusPill,
  throttle,
  zoomControl,
} from "../lib/widgets.js";
const STANDARD = ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate", "duration"];
/** Fields of an epoch that are not custom metrics (a custom metric gets its own chart). */
export const NOT_METRICS = new Set(["epoch", "timestamp", ...STANDARD]);

/** The checkpoints the server lists for a run: its result's once it ended, else those written so far (as checkpointsOf). */
function checkpointsOf(op) {
  const list = Array.isArray(op.result?.checkpoints) ? op.result.checkpoints : op.metadata?.checkpoints;
  return Array.isArray(list) ? list : [];
}

/** One download button per kept checkpoint (a tar of the TF.js model and preprocessing.json); best and last may share an epoch. */
function checkpointLinks(op) {
  const byEpoch = new Map();
  for (const c of checkpointsOf(op)) byEpoch.set(c.epoch, [...(byEpoch.get(c.epoch) ?? []), c.kind]);
  if (byEpoch.size === 0) return null;
  const buttons = [...byEpoch].map(
    ([epoch, kinds]) =>
      html` <button type="button" data-checkpoint="${epoch}" title="TF.js layers model + preprocessing.json, as a tar">Checkpoint: ${kinds.join(" + ")}, epoch ${epoch}</button>`,
  );
  return html`<div class="row wrap meta"><span class="muted small">checkpoints</span>${buttons}</div>`;
}

/** The stop policy's flags, as the server names them (schemas/control.ts STOP_FLAGS). */
const STOP_FLAGS = ["diverging", "overfitting", "stalled", "plateau"];

/** The hyper-parameters the trainer registered, one `key value` pair each. */
function configBlock(op) {
  const entries = Object.entries(op.config ?? {});
  if (entries.length === 0) return null;
  const pairs = entries.map(
    ([k, v], i) => html`${i ? " · " : ""}${k} <b>${typeof v === "string" ? v : JSON.stringify(v)}</b>`,
  );
  return html`<div class="meta small" id="config"><span class="muted">config</span> ${pairs}</div>`;
}

/** The stop decision, the policy, and (while the run is live) a form to set or clear the policy. */
function controlBlock(op) {
  const c = op.control;
  const decision =
    c &&
    html`<div class="error-box small" data-control="${c.decided_by}">stop requested by ${c.decided_by}: ${c.reason}${c.checkpoint_epoch !== null ? ` (checkpoint epoch ${c.checkpoint_epoch})` : ""}</div>`;
  const p = op.stop_policy;
  const now = p
    ? html`stop on <b>${p.on.join(", ")}</b>${p.min_epochs ? html` from epoch <b>${p.min_epochs}</b>` : null}`
    : html`<span class="muted">no stop policy</span>`;
  const form =
    live(op) &&
    html`<form id="policy" class="row wrap small">
      ${STOP_FLAGS.map((f) => html`<label><input type="checkbox" name="on" value="${f}" ${p?.on.includes(f) ? "checked" : ""}> ${f}</label>`)}
      <label>min epochs <input type="number" name="min_epochs" min="0" step="1" value="${p?.min_epochs ?? 0}" style="width: 5em"></label>
      <button type="submit">Set policy</button>
      ${p && html`<button type="button" id="policy-clear">Clear</button>`}
    </form>`;
  return html`<div class="meta small" id="stop-policy">${now}</div>${form}${decision}`;
}

/** Wire epoch → row with numbers (NaN and ±Infinity as numbers). */
function decodeRow(e) {
  const r = { epoch: e.epoch };
  for (const [k, v] of Object.entries(e)) if (k !== "epoch" && k !== "timestamp") r[k] = num(v);
  return r;
}

/**
 * Where a row keeps metric k's smoothed value: "~k". Row keys are metrics to downsample, so a view thinned in the page
 * keeps the smoothed curves' extremes as the server does (src/store/charts.ts reduces them under the same names).
 */
const smoothedKey = (k) => `~${k}`;
const isMetric = (k) => k !== "epoch" && !k.startsWith("~");

/**
 * One view of the run: its epoch range (null: all of it), its rows ascending, the EMA weight they were smoothed with
 * (0: none) and where each metric's EMA stands after the last row, to smooth live epochs exactly as the server would.
 */
function makeView(range, metrics, weight) {
  const sm = metrics.smoothed;
  const rows = metrics.epochs.map((e, i) => {
    const r = decodeRow(e);
    if (sm) for (const [k, col] of Object.entries(sm.series)) if (col[i] !== null) r[smoothedKey(k)] = num(col[i]);
    return r;
  });
  return { range, rows, weight, ema: structuredClone(sm?.state ?? {}) };
}

/**
 * Adds a live row to a view. An epoch past the last is appended and smoothed from the view's EMA state; an earlier or
 * re-posted one replaces or joins the rows raw, and returns true when the smoothed curve after it is now stale.
 */
function addRow(view, r) {
  const rows = view.rows;
  if (!rows.length || r.epoch > rows[rows.length - 1].epoch) {
    if (view.weight > 0)
      for (const k of Object.keys(r)) {
        if (!isMetric(k) || UNSMOOTHED.has(k)) continue;
        view.ema[k] ??= { last: 0, n: 0 };
        r[smoothedKey(k)] = emaSmooth([r[k]], view.weight, view.ema[k])[0];
      }
    rows.push(r);
    return false;
  }
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid].epoch < r.epoch) lo = mid + 1;
    else hi = mid;
  }
  if (rows[lo]?.epoch === r.epoch) {
    for (const k of Object.keys(rows[lo])) if (k.startsWith("~")) r[k] ??= rows[lo][k];
    rows[lo] = r;
  } else rows.splice(lo, 0, r);
  return view.weight > 0;
}

export function operationView(root, id) {
  const state = {
    op: null,
    trends: null,
    custom: [],
    analysis: null,
    /** The whole run (reduced), and the zoomed range when there is one; the charts show zoom ?? full. */
    full: null,
    zoom: null,
    /** View changes under way, from the request to the draw (a test hook waits for none). */
    loading: 0,
    get rows() {
      return (state.zoom ?? state.full)?.rows ?? [];
    },
  };
  const charts = {};
  const path = `/operations/${encodeURIComponent(id)}`;
  let stream = null;
  let logs = null;
  let destroyed = false;

  render(
    root,
    html`
    <section class="card" id="head"><p class="muted">Loading ${id}…</p></section>
    <section class="card" id="control"></section>
    <section class="card">
      <div class="row wrap">
        <div id="badges" class="badges"></div>
        <span class="spacer"></span>
        <span id="zoom-slot"></span>
        <span id="smoothing-slot"></span>
      </div>
      <div id="recommendation" class="recommendation muted">Analysing…</div>
    </section>
    <section class="grid" id="charts">
      <div class="card chart-card"><h2>Loss</h2><div class="chart" id="chart-loss"></div></div>
      <div class="card chart-card"><h2>Accuracy</h2><div class="chart" id="chart-accuracy"></div><p class="muted small empty" id="no-accuracy" hidden>No accuracy reported.</p></div>
      <div class="card chart-card" id="card-lr" hidden><h2>Learning rate</h2><div class="chart" id="chart-lr"></div></div>
    </section>`,
  );

  // A new weight is a new fetch (the EMA runs on the server over every epoch); a slider drag asks once it rests.
  const smoothing = smoothingControl(() => void refetch());
  root.querySelector("#smoothing-slot").append(smoothing.el);
  const zoomUi = zoomControl(() => void resetZoom());
  root.querySelector("#zoom-slot").append(zoomUi.el);
  const best = () => state.trends?.best_epoch ?? null;
  /** The zoomed range asked for (shown at once, its full-resolution rows once fetched), or null. */
  let zoomRange = null;
  /** A chart of this page: a drag across it zooms every chart, a double-click resets them. */
  const chartIn = (el, options) =>
    new EpochChart(el, { ...options, onZoom: (from, to) => void zoomTo(from, to), onReset: () => void resetZoom() });

  const pair = (label, color) => [
    { label, color, faint: true },
    { label, color },
  ];
  charts.loss = chartIn(root.querySelector("#chart-loss"), {
    series: [...pair("train_loss", PALETTE[0]), ...pair("val_loss", PALETTE[1])],
    getBest: best,
    yLabel: "loss",
  });
  charts.accuracy = chartIn(root.querySelector("#chart-accuracy"), {
    series: [...pair("train_accuracy", PALETTE[0]), ...pair("val_accuracy", PALETTE[1])],
    getBest: best,
    yLabel: "accuracy",
  });
  charts.lr = chartIn(root.querySelector("#chart-lr"), {
    series: [{ label: "learning_rate", color: PALETTE[4] }],
    height: 180,
  });

  function addCustomChart(name) {
    const card = document.createElement("div");
    card.className = "card chart-card";
    render(card, html`<h2>${name}</h2><div class="chart"></div>`);
    root.querySelector("#charts").append(card);
    const chart = chartIn(card.querySelector(".chart"), {
      series: pair(name, PALETTE[state.custom.length % PALETTE.length]),
      height: 200,
    });
    chart.setRange(state.zoom?.range ?? null);
    charts[`custom:${name}`] = chart;
    state.custom.push(name);
  }

  const addCustomCharts = (rows) => {
    for (const r of rows)
      for (const k of Object.keys(r))
        if (isMetric(k) && !NOT_METRICS.has(k) && !state.custom.includes(k)) addCustomChart(k);
  };

  /** Epochs per view: twice the widest chart's plot width (pointsFor). */
  const budget = () => pointsFor(Math.max(...Object.values(charts).map((c) => c.plotWidth())));

  /**
   * GET /metrics for a view: `range` null for the whole run. Live epochs that arrive meanwhile are kept and added after,
   * when the reply does not hold them yet. Resolves to the view, or null when a later fetch of the same kind overtook it.
   */
  const seq = { full: 0, zoom: 0 };
  const arrived = new Set();
  async function fetchView(kind, range) {
    const mine = ++seq[kind];
    const weight = smoothing.value();
    const q = new URLSearchParams({ max_points: String(budget()) });
    if (range) q.set("from_epoch", String(range[0])), q.set("to_epoch", String(range[1]));
    if (weight > 0) q.set("smoothing", String(weight));
    const live = [];
    arrived.add(live);
    try {
      const { metrics } = await api("GET", `${path}/metrics?${q}`);
      if (destroyed || mine !== seq[kind]) return null;
      const view = makeView(range, metrics, weight);
      const last = view.rows[view.rows.length - 1]?.epoch ?? -1;
      for (const e of live) if (e.epoch > last && inRange(range, e.epoch)) addRow(view, decodeRow(e));
      addCustomCharts(view.rows);
      return view;
    } finally {
      arrived.delete(live);
    }
  }

  const inRange = (range, epoch) => range === null || (epoch >= range[0] && epoch <= range[1]);

  /** Shows epochs from … to: at once from the rows held, then at full resolution once the server answers. */
  function zoomTo(from, to) {
    zoomRange = [from, to];
    for (const c of Object.values(charts)) c.setRange(zoomRange);
    zoomUi.set(zoomRange);
    return drawing(state, async () => {
      const view = await fetchView("zoom", zoomRange);
      if (!view) return;
      state.zoom = view;
      await nextDraw();
    });
  }

  /** Back to the whole run (a double-click, or the Reset zoom button). */
  async function resetZoom() {
    seq.zoom++;
    zoomRange = null;
    state.zoom = null;
    zoomUi.set(null);
    for (const c of Object.values(charts)) c.setRange(null);
    await nextDraw();
  }

  /** Fetches every view shown again: a new smoothing weight, or a re-post that changed the smoothed curve after it. */
  function refetch() {
    return drawing(state, async () => {
      const [full, zoomed] = await Promise.all([fetchView("full", null), zoomRange && fetchView("zoom", zoomRange)]);
      if (full) state.full = full;
      if (zoomed) state.zoom = zoomed;
      await nextDraw();
    });
  }
  const refetchSoon = throttle(() => void refetch(), 1000);

  /** A live epoch from the stream, into every view whose range holds it. */
  function liveEpoch(e) {
    for (const live of arrived) live.push(e);
    addCustomCharts([e]);
    let stale = false;
    if (state.full) stale = addRow(state.full, decodeRow(e)) || stale;
    if (state.zoom && inRange(state.zoom.range, e.epoch)) stale = addRow(state.zoom, decodeRow(e)) || stale;
    if (stale) refetchSoon();
    scheduleDraw();
  }

  let drawQueued = false;
  const drawn = [];
  function scheduleDraw() {
    if (drawQueued || destroyed) return;
    drawQueued = true;
    requestAnimationFrame(draw);
  }
  /** Resolves once the next draw has happened (a test and bench hook). */
  const nextDraw = () => new Promise((resolve) => (drawn.push(resolve), scheduleDraw()));

  function draw() {
    drawQueued = false;
    if (destroyed) return;
    const full = state.full;
    // Live epochs grow the whole-run view; past twice the budget it is thinned again, smoothed curves' extremes kept.
    if (full && full.rows.length > 2 * budget()) full.rows = downsample(full.rows, budget(), best());
    const view = state.zoom ?? full;
    const rows = view?.rows ?? [];
    const w = view?.weight ?? 0;
    const x = rows.map((r) => r.epoch);
    const col = (k) => rows.map((r) => r[k] ?? null);
    const both = (k) => [col(k), w > 0 ? col(smoothedKey(k)) : col(k)];
    charts.loss.setData([x, ...both("train_loss"), ...both("val_loss")]);
    const hasAcc = rows.some((r) => r.train_accuracy != null || r.val_accuracy != null);
    root.querySelector("#no-accuracy").hidden = hasAcc || rows.length === 0;
    charts.accuracy.setData([x, ...both("train_accuracy"), ...both("val_accuracy")]);
    root.querySelector("#card-lr").hidden = !full?.rows.some((r) => r.learning_rate != null);
    charts.lr.setData([x, col("learning_rate")]);
    for (const name of state.custom) charts[`custom:${name}`].setData([x, ...both(name)]);
    for (const [key, chart] of Object.entries(charts)) {
      if (key === "lr") continue;
      chart.series.forEach((s, i) => s.faint && chart.show(i, w > 0));
    }
    // uPlot renders on a microtask after setData.
    for (const resolve of drawn.splice(0)) queueMicrotask(resolve);
  }

  function renderHead() {
    const op = state.op;
    if (!op) return;
    const meta = op.metadata ?? {};
    const bits = [
      html`location <b>${where(op)}</b>`,
      meta.host && html`host <b>${meta.host}</b>`,
      meta.backend && html`backend <b>${meta.backend}</b>`,
      meta.recipe && html`recipe <b>${meta.recipe}</b>`,
      meta.gpu && html`GPU <b>${meta.gpu}</b>`,
      html`started <b>${ago(op.started_at)}</b>`,
      op.last_seen_at && live(op) && html`last heard <b data-last-seen>${ago(op.last_seen_at)}</b>`,
      op.completed_at && html`finished <b>${ago(op.completed_at)}</b>`,
    ]
      .filter(Boolean)
      .map((b, i) => (i ? html` · ${b}` : b));
    // Late heartbeats: the progress shown may be frozen; the server is asking the host.
    const stale = op.stale
      ? html`<span class="badge bad" data-badge="stale" title="No epoch or heartbeat from the host for 1.5 heartbeat intervals: the progress may be frozen; the server is asking the host">no heartbeat since ${ago(op.last_seen_at)}</span>`
      : null;
    render(
      root.querySelector("#head"),
      html`
      <div class="row wrap">
        <div>
          <h1>${op.name ?? op.operation_type} ${statusPill(op.status)} ${stale}</h1>
          <div class="id">${op.operation_id}</div>
        </div>
        <span class="spacer"></span>
        <button id="dl-csv" type="button">Download CSV</button>
        <button id="dl-json" type="button">Download JSON</button>
        <a class="button" href="#/compare/${encodeURIComponent(op.operation_id)}">Compare…</a>
        ${live(op) && html`<button id="cancel" type="button" class="danger">Cancel</button>`}
      </div>
      <div class="row wrap meta"><span id="head-progress">${progressBar(op)}</span> <span class="muted small">${bits}</span></div>
      ${checkpointLinks(op)}
      ${configBlock(op)}
      ${op.error_message && html`<div class="error-box small">${op.error_message}</div>`}`,
    );
    renderControl();
    root.querySelector("#dl-csv").onclick = () =>
      download(`/operations/${encodeURIComponent(id)}/metrics.csv`, `${id}-metrics.csv`).catch(alertError);
    root.querySelector("#dl-json").onclick = () =>
      download(`/operations/${encodeURIComponent(id)}/metrics.json`, `${id}-metrics.json`).catch(alertError);
    for (const b of root.querySelectorAll("[data-checkpoint]")) {
      const epoch = b.dataset.checkpoint;
      b.onclick = () =>
        download(`/operations/${encodeURIComponent(id)}/checkpoints/${epoch}`, `${id}-epoch-${epoch}.tar`).catch(
          alertError,
        );
    }
    const cancel = root.querySelector("#cancel");
    if (cancel) {
      cancel.onclick = async () => {
        if (!confirm(`Cancel ${op.name ?? id}?`)) return;
        cancel.disabled = true;
        try {
          state.op = await api("DELETE", `/operations/${encodeURIComponent(id)}`, { by: "dashboard" });
          renderHead();
        } catch (err) {
          cancel.disabled = false;
          alertError(err);
        }
      };
    }
  }

  // Re-rendered only when what it shows changes, so a status event does not wipe a half-filled form.
  let controlKey = null;
  function renderControl() {
    const op = state.op;
    const key = JSON.stringify([op.stop_policy, op.control, live(op)]);
    if (key === controlKey) return;
    controlKey = key;
    const slot = root.querySelector("#control");
    render(slot, controlBlock(op));
    const form = slot.querySelector("#policy");
    if (!form) return;
    const send = async (method, body) => {
      for (const b of form.querySelectorAll("button")) b.disabled = true;
      try {
        state.op = await api(method, `/operations/${encodeURIComponent(id)}/stop_policy`, body);
        renderHead();
      } catch (err) {
        for (const b of form.querySelectorAll("button")) b.disabled = false;
        alertError(err);
      }
    };
    form.onsubmit = (e) => {
      e.preventDefault();
      const on = [...form.querySelectorAll("input[name=on]:checked")].map((i) => i.value);
      if (on.length === 0) return alertError(new Error("tick at least one flag to stop on, or clear the policy"));
      void send("PUT", { on, min_epochs: Number(form.elements.min_epochs.value || 0) });
    };
    const clear = form.querySelector("#policy-clear");
    if (clear) clear.onclick = () => void send("DELETE");
  }

  /** Progress follows the epochs between status events: the stream's trends carry the counts. */
  function renderProgress() {
    const op = state.op;
    const t = state.trends;
    if (!op || !t) return;
    const p = op.progress;
    p.epochs_completed = t.total_epochs_completed;
    p.current_epoch = t.latest_epoch;
    if (op.status !== "completed" && p.total_epochs)
      p.percentage = Math.min(100, (100 * t.total_epochs_completed) / p.total_epochs);
    const slot = root.querySelector("#head-progress");
    if (slot) render(slot, progressBar(op));
  }

  function renderTrends() {
    const t = state.trends;
    if (!t) return;
    const bestText =
      t.best_epoch === null
        ? html`<span class="muted">no finite loss yet</span>`
        : html`best ${t.monitor} <b>${fmt(t.best_val_loss)}</b> at epoch <b>${t.best_epoch}</b>${t.epochs_since_improvement ? html` <span class="muted">(${t.epochs_since_improvement} epochs ago)</span>` : null}`;
    render(
      root.querySelector("#badges"),
      html`${flagBadges(t, { none: t.total_epochs_completed >= 3 })} <span class="best">${bestText}</span>`,
    );
  }

  function renderAnalysis() {
    const a = state.analysis;
    if (!a) return;
    const r = a.recommendation;
    const label =
      { continue: "continue", stop: "stop", use_checkpoint: "use checkpoint", insufficient_data: "not enough data" }[
        r.action
      ] ?? r.action;
    root.querySelector("#recommendation").className = "recommendation";
    render(
      root.querySelector("#recommendation"),
      html`
      <span class="action ${r.action}" data-action="${r.action}">${label}</span>
      <span class="reason">${r.reason}</span>
      ${r.checkpoint_epoch !== null && html`<span class="muted small">checkpoint epoch ${r.checkpoint_epoch}</span>`}`,
    );
  }

  /** The trends the last analysis was asked for (as JSON). */
  let analysedTrends = null;
  const analyse = throttle(async () => {
    if (destroyed) return;
    analysedTrends = JSON.stringify(state.trends);
    try {
      state.analysis = await api("GET", `/operations/${encodeURIComponent(id)}/analysis`);
      if (!destroyed) renderAnalysis();
    } catch (err) {
      render(root.querySelector("#recommendation"), errorBox(err));
    }
  }, 1500);

  (async () => {
    try {
      const [op, full] = await drawing(state, async () => {
        const got = await Promise.all([api("GET", path), fetchView("full", null)]);
        if (destroyed || !got[1]) return got;
        state.op = got[0];
        state.trends = got[0].trends;
        state.full = got[1];
        renderHead();
        renderTrends();
        await nextDraw();
        return got;
      });
      if (destroyed || !full) return;
      analyse();
      // A script training's output, live under the charts.
      if (op.metadata?.kind === "script") logs = logsPanel(root, id);
      // Everything after the last fetched epoch comes from the stream, then every new one as it is stored.
      const since = full.rows.length ? full.rows[full.rows.length - 1].epoch : -1;
      stream = openStream(`${path}/metrics/stream?since_epoch=${since}`, {
        onState: setConn,
        onEvent(type, data) {
          if (destroyed) return;
          if (type === "epoch") {
            // A stored epoch is the trainer heard from, as the server records it.
            if (state.op && live(state.op))
              state.op = { ...state.op, last_seen_at: new Date().toISOString(), stale: false };
            liveEpoch(data);
          } else if (type === "trends") {
            state.trends = data;
            renderTrends();
            renderProgress();
            charts.loss.redraw();
            // The replay's trends repeat what the page loaded: only new ones make the analysis worth asking again.
            if (JSON.stringify(data) !== analysedTrends) analyse();
          } else if (type === "status") {
            state.op = data;
            state.trends = data.trends;
            renderHead();
            renderTrends();
          } else if (type === "end") {
            analyse();
          } else if (type === "error") {
            append(root.querySelector("#head"), errorBox(data));
          }
        },
      });
    } catch (err) {
      render(root.querySelector("#head"), errorBox(err));
    }
  })();

  // Liveness arrives on the stream (heartbeats and batch progress as `status` events, at most one a second; the API's
  // watchdog sends one when a host training turns stale): only the "last heard … ago" text moves with time alone.
  const ages = setInterval(() => {
    const cell = root.querySelector("[data-last-seen]");
    if (cell && state.op?.last_seen_at) cell.textContent = ago(state.op.last_seen_at);
  }, AGE_REFRESH_MS);

  return {
    name: "operation",
    charts,
    state,
    zoomTo,
    resetZoom,
    nextDraw,
    destroy() {
      destroyed = true;
      analyse.cancel();
      refetchSoon.cancel();
      smoothing.cancel();
      clearInterval(ages);
      stream?.close();
      logs?.destroy();
      for (const c of Object.values(charts)) c.destroy();
    },
  };
}
