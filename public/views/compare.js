// #/compare/<a,b,…> — runs overlaid on one chart (x: whole epochs), with a table of their summaries and the best starred.
// The chart and the table come apart, so the chart does not wait for every run to be judged: the chart is
// GET /operations/curves (every run's curves in one request, of the one metric shown: fields=<metric>, max_points per
// run, smoothing=w over every stored epoch), the table GET /operations/compare. Dragging across the chart zooms: the
// curves of that epoch range (from_epoch/to_epoch, max_points from the chart's width), at full resolution when the
// range holds fewer epochs than points. A new metric or weight asks for the curves again, and so does the live refresh
// (with the table), the zoom kept. A double-click or Reset zoom returns.
// The runs are overlaid by epoch (a step run by its derived epoch records) or by step (`#/compare/a,b?x=step`: each
// run's steps, x=step on the curves, from_step/to_step for a zoom); the table's summaries stay per epoch.

import { api, listOperations } from "../lib/api.js";
import { EpochChart, PALETTE, drawing, joinRuns, pointsFor } from "../lib/charts.js";
import { fmt, live, num } from "../lib/format.js";
import { html, render } from "../lib/html.js";
import { errorBox, flagBadges, smoothingControl, statusPill, zoomControl } from "../lib/widgets.js";
import { NOT_METRICS } from "./operation/rows.js";

/** The standard metrics offered per x axis, the first shown first; a run's custom metrics follow. */
const COMPARE_METRICS = {
  epoch: ["val_loss", "train_loss", "val_accuracy", "train_accuracy", "learning_rate"],
  step: ["train_loss", "val_loss", "val_accuracy", "learning_rate", "grad_norm", "duration"],
};

/** The comparison's hash: the runs, and `?x=step` when overlaid by step. */
export const compareHash = (ids, x) => `#/compare/${ids.join(",")}${x === "step" ? "?x=step" : ""}`;

/** Compares runs `hashIds` overlaid on axis `x` ("epoch" or "step"). */
export function compareView(root, hashIds, x = "epoch") {
  // As the server reads them: a repeated id once.
  const ids = [...new Set(hashIds)];
  let chart = null;
  let chartShape = "";
  /** The comparison reply: the table (and, for the live refresh, whether any run still moves). */
  let data = null;
  /**
   * Curves per run ({ curves, smoothed }) of one metric: the whole runs', and the zoomed range's. Each view knows the
   * metric it holds, so a metric picked while its curves are on their way does not draw the old ones under its name.
   */
  let full = null;
  let zoomed = null;
  let zoomRange = null;
  let destroyed = false;
  let metric = COMPARE_METRICS[x][0];
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
        <label>By <select id="x">${["epoch", "step"].map((a) => html`<option ${a === x ? "selected" : ""}>${a}</option>`)}</select></label>
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
  const smoothing = smoothingControl(() => void refresh());
  root.querySelector("#smoothing-slot").append(smoothing.el);
  const zoomUi = zoomControl(() => void resetZoom(), `${x}s`);
  root.querySelector("#zoom-slot").append(zoomUi.el);
  const select = root.querySelector("#metric");
  // The table's final epochs add the custom metrics once it is in.
  const offer = (metrics) =>
    render(select, html`${metrics.map((m) => html`<option ${m === metric ? "selected" : ""}>${m}</option>`)}`);
  offer(COMPARE_METRICS[x]);
  // Another axis is another comparison: its own hash, so a link to it shows the same.
  root.querySelector("#x").onchange = (e) => {
    location.hash = compareHash(ids, e.target.value);
  };
  select.onchange = () => {
    metric = select.value;
    void refresh();
  };

  // The picker: recent runs as toggles; choosing changes the hash, which re-renders this view.
  listOperations({ limit: 50 })
    .then(({ operations }) => {
      if (destroyed) return;
      const chosen = new Set(ids);
      render(
        root.querySelector("#picker"),
        // A TensorBoard import's own operation holds no epochs (its runs are operations of their own): not a run to pick.
        html`<span class="muted small">Runs:</span> ${operations
          .filter((op) => op.operation_type !== "import")
          .map(
            (op) =>
              html`<label class="chip ${chosen.has(op.operation_id) ? "on" : ""}" title="${op.operation_id}"><input type="checkbox" value="${op.operation_id}" ${chosen.has(op.operation_id) ? "checked" : ""}> ${op.name ?? op.operation_type} <span class="muted small">${op.operation_id.slice(-8)}</span></label>`,
          )}`,
      );
      root.querySelector("#picker").onchange = (e) => {
        const id = e.target.value;
        e.target.checked ? chosen.add(id) : chosen.delete(id);
        const order = [...ids.filter((i) => chosen.has(i)), ...[...chosen].filter((i) => !ids.includes(i))];
        location.hash = compareHash(order, x);
      };
    })
    .catch((err) => render(root.querySelector("#picker"), errorBox(err)));

  const width = () => chart?.plotWidth() || root.clientWidth;
  /**
   * Points per run: the chart's (pointsFor), shared out over the runs, at least 300 (100 runs × 10,000 epochs then
   * reduce from their block summaries, ≥ 32 epochs a point); a zoom may hold ten times more in all.
   */
  const perRun = (total) => Math.max(300, Math.min(pointsFor(width()), Math.floor(total / ids.length)));

  /** The curves' query: the metric shown, its budget, the axis, the weight when smoothing, the range when zoomed. */
  function curvesQuery(range) {
    const q = new URLSearchParams({ max_points: String(perRun(range ? 100_000 : 10_000)), fields: metric });
    if (x === "step") q.set("x", x);
    const w = smoothing.value();
    if (w > 0) q.set("smoothing", String(w));
    if (range) q.set(`from_${x}`, String(range[0])), q.set(`to_${x}`, String(range[1]));
    return q;
  }

  /**
   * Every run's curves in one GET /operations/curves (the runs are not judged): `range` null for the whole runs. Null
   * when a later request of the same kind (a zoom, a reset, a new metric or weight) overtook it.
   */
  async function fetchCurves(kind, range) {
    const mine = ++seq[kind];
    const m = metric;
    const q = curvesQuery(range);
    const reply = await api("GET", `/operations/curves?ids=${ids.map(encodeURIComponent).join(",")}&${q}`);
    // A view of one metric: per run, in `ids` order, its name and { curves, smoothed }.
    return destroyed || mine !== seq[kind] ? null : { metric: m, runs: reply.runs };
  }

  /** One run's curve: the server's smoothed one when it sent one (learning_rate never is), else the raw values. */
  function curve(m, { curves, smoothed }) {
    const series = smoothed?.series[m];
    return [curves.map((e) => e[x]), series ? series.map(num) : curves.map((e) => num(e[m]))];
  }

  function draw() {
    const view = (zoomRange && zoomed) || full;
    if (!view || destroyed) return;
    const runs = view.runs;
    // Same runs and metric (a refresh, a zoom): new data in place, so the hover survives. Otherwise a new chart.
    const shape = `${view.metric}|${runs.map((r) => r.operation_id).join(",")}`;
    // Runs sample different epochs; uPlot.join puts them on one x axis (gaps spanned).
    const columns = joinRuns(view.runs.map((r) => curve(view.metric, r)));
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
        xLabel: x,
        yLabel: view.metric,
        onZoom: (from, to) => void zoomTo(from, to),
        onReset: () => void resetZoom(),
      });
      chart.setRange(zoomRange);
    }
    chart.setData(columns);
    for (const resolve of drawn.splice(0)) queueMicrotask(resolve);
  }
  /** Draws, and resolves once uPlot has rendered (a test and bench hook). */
  const drawNow = () => new Promise((resolve) => (drawn.push(resolve), draw()));

  /** Shows epochs from … to: at once from the curves held, then at full resolution once every run's range is in. */
  function zoomTo(from, to) {
    zoomRange = [from, to];
    chart?.setRange(zoomRange);
    zoomUi.set(zoomRange);
    return drawing(state, async () => {
      const view = await fetchCurves("zoom", zoomRange);
      if (!view) return;
      zoomed = view;
      await drawNow();
    });
  }

  async function resetZoom() {
    seq.zoom++;
    zoomRange = null;
    zoomed = null;
    zoomUi.set(null);
    chart?.setRange(null);
    await drawNow();
  }

  /** A new metric or weight: the curves shown, fetched again (the whole runs', and the zoom's when zoomed). */
  function refresh() {
    return drawing(state, async () => {
      const [f, z] = await Promise.all([fetchCurves("full", null), zoomRange && fetchCurves("zoom", zoomRange)]);
      if (f) full = f;
      if (z) zoomed = z;
      if (f || z) await drawNow();
    });
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

  /** The chart's curves (the whole runs', and the zoom's when zoomed), then the table: first, and live. */
  async function load() {
    if (!ids.length) {
      render(
        root.querySelector("#compare-table"),
        html`<p class="muted">Pick two or more runs above (or tick them in the <a href="#/">operations list</a>).</p>`,
      );
      return;
    }
    try {
      await refresh();
      // The table after the chart: judging every run reads its whole history (about a second for 100 × 10,000 epochs).
      data = await api("GET", `/operations/compare?ids=${ids.map(encodeURIComponent).join(",")}&max_points=3`);
      if (destroyed) return;
      // Each run's final epoch has every field: the metrics it can show (a step run's derived epochs note their last
      // step, which is no metric).
      const custom = new Set();
      for (const r of data.runs)
        for (const k of Object.keys(r.summary.final ?? {})) if (!NOT_METRICS.has(k) && k !== "step") custom.add(k);
      offer([...new Set([...COMPARE_METRICS[x], ...custom])]);
      renderTable();
    } catch (err) {
      render(root.querySelector("#compare-table"), errorBox(err));
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
      smoothing.cancel();
      chart?.destroy();
    },
  };
}
