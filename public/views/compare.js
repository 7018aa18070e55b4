// #/compare/<a,b,…> — runs overlaid on one chart (x: whole epochs), with a table of their summaries and the best starred.
// The server reduces and smooths: GET /operations/compare brings the table and every run's whole curve (max_points per
// run, smoothing=w over every stored epoch). Dragging across the chart zooms: each run's GET /metrics for that epoch
// range (from_epoch/to_epoch, max_points from the chart's width), so the zoom is at full resolution when the range holds
// fewer epochs than points, and the runs are not judged again for it. A double-click or Reset zoom returns.

import { UNSMOOTHED } from "trends/smoothing.js";
import { api, listOperations } from "../lib/api.js";
import { EpochChart, PALETTE, joinRuns, pointsFor } from "../lib/charts.js";
import { fmt, live, num } from "../lib/format.js";
import { html, render } from "../lib/html.js";
import { errorBox, flagBadges, smoothingControl, statusPill, zoomControl } from "../lib/widgets.js";
import { NOT_METRICS } from "./operation.js";

const COMPARE_METRICS = ["val_loss", "train_loss", "val_accuracy", "train_accuracy", "learning_rate"];

export function compareView(root, ids) {
  let chart = null;
  let chartShape = "";
  /** The comparison reply (table and whole-run curves), and per run the zoomed range's curves ({ epochs, smoothed }). */
  let data = null;
  let zoomed = null;
  let zoomRange = null;
  let destroyed = false;
  let metric = "val_loss";
  const state = { loading: 0 };
  const seq = { full: 0, zoom: 0 };
  const drawn = [];
  render(
    root,
    html`
    <section class="card">
      <div class="row wrap">
        <h1>Compare runs</h1>
        <span class="spacer"></span>
        <label>Metric <select id="metric"></select></label>
        <span id="zoom-slot"></span>
        <span id="smoothing-slot"></span>
      </div>
      <div id="picker" class="picker"></div>
    </section>
    <section class="card chart-card" id="compare-chart-card" hidden><div class="chart" id="compare-chart"></div></section>
    <section class="card" id="compare-table"></section>`,
  );
  // A new weight is fetched again (the server smooths over every epoch); a slider drag asks once it rests.
  let smoothingTimer = null;
  const smoothing = smoothingControl(() => {
    clearTimeout(smoothingTimer);
    smoothingTimer = setTimeout(() => void load(), 120);
  });
  root.querySelector("#smoothing-slot").append(smoothing.el);
  const zoomUi = zoomControl(() => void resetZoom());
  root.querySelector("#zoom-slot").append(zoomUi.el);
  const select = root.querySelector("#metric");
  select.onchange = () => ((metric = select.value), draw());

  // The picker: recent runs as toggles; choosing changes the hash, which re-renders this view.
  listOperations(50)
    .then(({ operations }) => {
      if (destroyed) return;
      const chosen = new Set(ids);
      render(
        root.querySelector("#picker"),
        html`<span class="muted small">Runs:</span> ${operations.map(
          (op) =>
            html`<label class="chip ${chosen.has(op.operation_id) ? "on" : ""}" title="${op.operation_id}"><input type="checkbox" value="${op.operation_id}" ${chosen.has(op.operation_id) ? "checked" : ""}> ${op.name ?? op.operation_type} <span class="muted small">${op.operation_id.slice(-8)}</span></label>`,
        )}`,
      );
      root.querySelector("#picker").onchange = (e) => {
        const id = e.target.value;
        e.target.checked ? chosen.add(id) : chosen.delete(id);
        const order = [...ids.filter((i) => chosen.has(i)), ...[...chosen].filter((i) => !ids.includes(i))];
        location.hash = `#/compare/${order.join(",")}`;
      };
    })
    .catch((err) => render(root.querySelector("#picker"), errorBox(err)));

  const width = () => chart?.plotWidth() || root.clientWidth;
  /** Points per run: the chart's (pointsFor), shared out over the runs, at least 500; a zoom may hold ten times more in all. */
  const perRun = (total) => Math.max(500, Math.min(pointsFor(width()), Math.floor(total / ids.length)));

  /** One run's curve of the chosen metric: the server's smoothed one when it sent one, else the raw values. */
  function curve(epochs, smoothed) {
    const x = epochs.map((e) => e.epoch);
    const series = smoothed && !UNSMOOTHED.has(metric) ? smoothed.series[metric] : null;
    return [x, series ? series.map(num) : epochs.map((e) => num(e[metric]))];
  }

  function draw() {
    if (!data || destroyed) return;
    const runs = data.runs;
    const view = zoomed ?? runs.map((r) => ({ epochs: r.curves, smoothed: r.smoothed }));
    const tables = view.map((v) => curve(v.epochs, v.smoothed));
    // Same runs and metric (a refresh): new data in place, so the zoom and hover survive. Otherwise a new chart.
    const shape = `${metric}|${runs.map((r) => r.operation_id).join(",")}`;
    const columns = joinRuns(tables);
    if (!chart || chartShape !== shape) {
      chartShape = shape;
      chart?.destroy();
      root.querySelector("#compare-chart-card").hidden = false;
      chart = new EpochChart(root.querySelector("#compare-chart"), {
        series: runs.map((r, i) => ({
          label: `${r.name ?? r.operation_type} (${r.operation_id.slice(-8)})`,
          color: PALETTE[i % PALETTE.length],
          spanGaps: true,
        })),
        height: 380,
        yLabel: metric,
        onZoom: (from, to) => void zoomTo(from, to),
        onReset: () => void resetZoom(),
      });
      chart.setRange(zoomRange);
    }
    // Runs sample different epochs; uPlot.join puts them on one x axis (gaps spanned).
    chart.setData(columns);
    for (const resolve of drawn.splice(0)) queueMicrotask(resolve);
  }
  const drawNow = () => new Promise((resolve) => (drawn.push(resolve), draw()));

  const smoothingQuery = () => {
    const w = smoothing.value();
    return w > 0 ? `&smoothing=${w}` : "";
  };

  /** Each run's curves over `range`, from its GET /metrics; null when a later zoom or a reset overtook the request. */
  async function fetchZoom(range) {
    const mine = ++seq.zoom;
    const q = `max_points=${perRun(100_000)}&from_epoch=${range[0]}&to_epoch=${range[1]}${smoothingQuery()}`;
    state.loading++;
    try {
      const replies = await Promise.all(
        ids.map((id) => api("GET", `/operations/${encodeURIComponent(id)}/metrics?${q}`)),
      );
      if (destroyed || mine !== seq.zoom) return null;
      return replies.map(({ metrics }) => ({ epochs: metrics.epochs, smoothed: metrics.smoothed }));
    } finally {
      state.loading--;
    }
  }

  /** Shows epochs from … to: at once from the curves held, then at full resolution once every run's range is in. */
  async function zoomTo(from, to) {
    zoomRange = [from, to];
    chart?.setRange(zoomRange);
    zoomUi.set(zoomRange);
    const curves = await fetchZoom(zoomRange);
    if (!curves) return;
    zoomed = curves;
    await drawNow();
  }

  async function resetZoom() {
    seq.zoom++;
    zoomRange = null;
    zoomed = null;
    zoomUi.set(null);
    chart?.setRange(null);
    await drawNow();
  }

  function renderTable() {
    const rows = data.runs.map((r, i) => {
      const s = r.summary;
      const f = s.final ?? {};
      const star = data.best_run === r.operation_id && html`<span class="star" title="best run">★</span> `;
      return html`<tr data-run="${r.operation_id}">
          <td><span class="swatch" style="background:${PALETTE[i % PALETTE.length]}"></span>${star}<a href="#/op/${encodeURIComponent(r.operation_id)}">${r.name ?? r.operation_type}</a><div class="id">${r.operation_id}</div></td>
          <td>${statusPill(r.status)}</td>
          <td>${s.best_epoch ?? "—"}</td>
          <td>${fmt(s.best_loss)} <span class="muted small">${s.monitor ?? ""}</span></td>
          <td>${s.epochs_to_best ?? "—"}</td>
          <td>${fmt(f.train_loss)} / ${fmt(f.val_loss)}</td>
          <td>${fmt(f.train_accuracy)} / ${fmt(f.val_accuracy)}</td>
          <td>${s.epochs_completed}</td>
          <td>${flagBadges(s.flags)}</td>
          <td class="small">${s.recommendation.action}</td>
        </tr>`;
    });
    render(
      root.querySelector("#compare-table"),
      html`
      <p class="basis">${data.basis}</p>
      <div class="table-wrap"><table class="ops runs">
        <thead><tr><th>Run</th><th>Status</th><th>Best epoch</th><th>Best loss</th><th>Epochs to best</th><th>Final loss (train / val)</th><th>Final acc. (train / val)</th><th>Epochs</th><th>Flags</th><th>Advice</th></tr></thead>
        <tbody>${rows}</tbody>
      </table></div>`,
    );
  }

  async function load() {
    if (!ids.length) {
      render(
        root.querySelector("#compare-table"),
        html`<p class="muted">Pick two or more runs above (or tick them in the <a href="#/">operations list</a>).</p>`,
      );
      return;
    }
    const mine = ++seq.full;
    state.loading++;
    try {
      // A chart is ~1,300 pixels wide: the more runs, the fewer points each needs (10 runs → 1,000 each).
      const [reply, curves] = await Promise.all([
        api(
          "GET",
          `/operations/compare?ids=${ids.map(encodeURIComponent).join(",")}&max_points=${perRun(10_000)}${smoothingQuery()}`,
        ),
        zoomRange && fetchZoom(zoomRange),
      ]);
      if (destroyed || mine !== seq.full) return;
      data = reply;
      if (curves) zoomed = curves;
      const custom = new Set();
      for (const r of data.runs)
        for (const e of r.curves.slice(-1)) for (const k of Object.keys(e)) if (!NOT_METRICS.has(k)) custom.add(k);
      const metrics = [...COMPARE_METRICS, ...custom];
      if (!metrics.includes(metric)) metric = "val_loss";
      render(select, html`${metrics.map((m) => html`<option ${m === metric ? "selected" : ""}>${m}</option>`)}`);
      renderTable();
      await drawNow();
    } catch (err) {
      render(root.querySelector("#compare-table"), errorBox(err));
    } finally {
      state.loading--;
    }
  }
  void load();
  // Running runs keep moving; refresh the overlay (and the zoomed range) while any is live. The zoom stays where it is.
  const poll = setInterval(() => !document.hidden && data?.runs.some((r) => live(r)) && load(), 5000);

  return {
    name: "compare",
    state,
    zoomTo,
    resetZoom,
    charts: {
      get compare() {
        return chart;
      },
    },
    destroy() {
      destroyed = true;
      clearInterval(poll);
      clearTimeout(smoothingTimer);
      chart?.destroy();
    },
  };
}
