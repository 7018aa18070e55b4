// #/compare/<a,b,…> — runs overlaid on one chart (x: whole epochs), with a table of their summaries and the best starred.

import { emaSmooth } from "trends/smoothing.js";
import { api, listOperations } from "../lib/api.js";
import { EpochChart, PALETTE, joinRuns, plottable } from "../lib/charts.js";
import { fmt, live, num } from "../lib/format.js";
import { html, render } from "../lib/html.js";
import { errorBox, flagBadges, smoothingControl, statusPill } from "../lib/widgets.js";
import { MAX_POINTS, NOT_METRICS } from "./operation.js";

const COMPARE_METRICS = ["val_loss", "train_loss", "val_accuracy", "train_accuracy", "learning_rate"];

export function compareView(root, ids) {
  let chart = null;
  let chartShape = "";
  let data = null;
  let destroyed = false;
  let metric = "val_loss";
  render(
    root,
    html`
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
    <section class="card" id="compare-table"></section>`,
  );
  const smoothing = smoothingControl(() => draw());
  root.querySelector("#smoothing-slot").append(smoothing.el);
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
    const columns = joinRuns(tables);
    if (chart && chartShape === shape) return chart.setData(columns);
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
    });
    // Runs sample different epochs; uPlot.join puts them on one x axis (gaps spanned).
    chart.setData(columns);
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
    try {
      // A chart is ~1,000 pixels wide: the more runs, the fewer points each needs (10 runs → 1,000 each).
      const points = Math.max(500, Math.min(MAX_POINTS, Math.floor(10_000 / ids.length)));
      data = await api("GET", `/operations/compare?ids=${ids.map(encodeURIComponent).join(",")}&max_points=${points}`);
      if (destroyed) return;
      const custom = new Set();
      for (const r of data.runs)
        for (const e of r.curves.slice(-1)) for (const k of Object.keys(e)) if (!NOT_METRICS.has(k)) custom.add(k);
      const metrics = [...COMPARE_METRICS, ...custom];
      if (!metrics.includes(metric)) metric = "val_loss";
      render(select, html`${metrics.map((m) => html`<option ${m === metric ? "selected" : ""}>${m}</option>`)}`);
      renderTable();
      draw();
    } catch (err) {
      render(root.querySelector("#compare-table"), errorBox(err));
    }
  }
  void load();
  // Running runs keep moving; refresh the overlay while any is live.
  const poll = setInterval(() => !document.hidden && data?.runs.some((r) => live(r)) && load(), 5000);

  return {
    name: "compare",
    charts: {
      get compare() {
        return chart;
      },
    },
    destroy() {
      destroyed = true;
      clearInterval(poll);
      chart?.destroy();
    },
  };
}
