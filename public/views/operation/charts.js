// The operation page's charts: loss, accuracy, learning rate, and one per custom metric as it first appears. Given a
// view of the run (rows.js) it draws it; a drag across any chart zooms, a double-click resets (the caller decides how).

import { EpochChart, PALETTE, pointsFor } from "../../lib/charts.js";
import { html, render } from "../../lib/html.js";
import { NOT_METRICS, isMetric, smoothedKey } from "./rows.js";

/** A metric's two series: its raw curve (faint, shown while smoothing) and its smoothed one. */
const pair = (label, color) => [
  { label, color, faint: true },
  { label, color },
];

/**
 * Renders the chart cards into `grid` and returns the set: `charts` by name ("loss", "accuracy", "lr",
 * "custom:<metric>"), `addCustom(rows, range)`, `budget()` (epochs per view), `setRange(range)`, `draw(view, full)` and
 * `destroy()`. `best()` is the epoch the loss and accuracy charts mark; `onZoom(from, to)` and `onReset()` answer a drag
 * and a double-click.
 */
export function chartSet(grid, { best, onZoom, onReset }) {
  render(
    grid,
    html`
      <div class="card chart-card"><h2>Loss</h2><div class="chart" id="chart-loss"></div></div>
      <div class="card chart-card"><h2>Accuracy</h2><div class="chart" id="chart-accuracy"></div><p class="muted small empty" id="no-accuracy" hidden>No accuracy reported.</p></div>
      <div class="card chart-card" id="card-lr" hidden><h2>Learning rate</h2><div class="chart" id="chart-lr"></div></div>`,
  );
  const chartIn = (el, options) => new EpochChart(el, { ...options, onZoom, onReset });
  const charts = {
    loss: chartIn(grid.querySelector("#chart-loss"), {
      series: [...pair("train_loss", PALETTE[0]), ...pair("val_loss", PALETTE[1])],
      getBest: best,
      yLabel: "loss",
    }),
    accuracy: chartIn(grid.querySelector("#chart-accuracy"), {
      series: [...pair("train_accuracy", PALETTE[0]), ...pair("val_accuracy", PALETTE[1])],
      getBest: best,
      yLabel: "accuracy",
    }),
    lr: chartIn(grid.querySelector("#chart-lr"), {
      series: [{ label: "learning_rate", color: PALETTE[4] }],
      height: 180,
    }),
  };
  /** The custom metrics charted, in the order they appeared. */
  const custom = [];

  function addCustomChart(name, range) {
    const card = document.createElement("div");
    card.className = "card chart-card";
    render(card, html`<h2>${name}</h2><div class="chart"></div>`);
    grid.append(card);
    const chart = chartIn(card.querySelector(".chart"), {
      series: pair(name, PALETTE[custom.length % PALETTE.length]),
      height: 200,
    });
    chart.setRange(range);
    charts[`custom:${name}`] = chart;
    custom.push(name);
  }

  return {
    charts,
    /** A chart, showing `range`, for each custom metric of the rows that has none yet. */
    addCustom(rows, range) {
      for (const r of rows)
        for (const k of Object.keys(r))
          if (isMetric(k) && !NOT_METRICS.has(k) && !custom.includes(k)) addCustomChart(k, range);
    },
    /** Epochs per view: twice the widest chart's plot width (pointsFor). */
    budget: () => pointsFor(Math.max(...Object.values(charts).map((c) => c.plotWidth()))),
    setRange(range) {
      for (const c of Object.values(charts)) c.setRange(range);
    },
    /**
     * Draws `view` (null: nothing yet) with its smoothed curves when it was smoothed, the raw ones faint beside them;
     * the learning-rate card shows once the whole run (`full`) has a learning rate.
     */
    draw(view, full) {
      const rows = view?.rows ?? [];
      const w = view?.weight ?? 0;
      const x = rows.map((r) => r.epoch);
      const col = (k) => rows.map((r) => r[k] ?? null);
      const both = (k) => [col(k), w > 0 ? col(smoothedKey(k)) : col(k)];
      charts.loss.setData([x, ...both("train_loss"), ...both("val_loss")]);
      const hasAcc = rows.some((r) => r.train_accuracy != null || r.val_accuracy != null);
      grid.querySelector("#no-accuracy").hidden = hasAcc || rows.length === 0;
      charts.accuracy.setData([x, ...both("train_accuracy"), ...both("val_accuracy")]);
      grid.querySelector("#card-lr").hidden = !full?.rows.some((r) => r.learning_rate != null);
      charts.lr.setData([x, col("learning_rate")]);
      for (const name of custom) charts[`custom:${name}`].setData([x, ...both(name)]);
      for (const [key, chart] of Object.entries(charts)) {
        if (key === "lr") continue;
        chart.series.forEach((s, i) => s.faint && chart.show(i, w > 0));
      }
    },
    destroy() {
      for (const c of Object.values(charts)) c.destroy();
    },
  };
}
