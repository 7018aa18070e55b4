// The operation page's charts of an epoch run: loss, accuracy, learning rate, and one per custom metric as it first
// appears. Given a view of the run (rows.js) it draws it; a drag across any chart zooms, a double-click resets (the
// caller decides how). What both chart sets share (the custom metric cards, the point budget, the range, the raw curves
// shown while smoothing) is chartCards, which step_charts.js uses too.

import { EpochChart, PALETTE, pointsFor } from "../../lib/charts.js";
import { html, render } from "../../lib/html.js";
import { NOT_METRICS, isMetric, smoothedKey } from "./rows.js";

/** A metric's two series: its raw curve (faint, shown while smoothing) and its smoothed one. */
export const pair = (label, color) => [
  { label, color, faint: true },
  { label, color },
];

/** A view's columns: `x` its keys, `col(k)` a metric's values, `both(k)` its raw and shown (smoothed when smoothed) curves. */
export function columnsOf(view, key) {
  const rows = view?.rows ?? [];
  const w = view?.weight ?? 0;
  const col = (k) => rows.map((r) => r[k] ?? null);
  return { rows, w, x: rows.map((r) => r[key]), col, both: (k) => [col(k), w > 0 ? col(smoothedKey(k)) : col(k)] };
}

/**
 * The cards of a chart set in `grid`: `charts` by name (those made so far); `chartIn(el, options)` makes one with the
 * set's x axis (`xLabel`), its epoch-end lines (`getLines`, EpochChart) and the zoom callbacks; `addCustom(name, range)` a card at the end for a custom metric, its
 * series from `customSeries(name, color)`; `budget()` (rows per view: twice the widest plot, pointsFor), `setRange`,
 * `showRaw(w, skip)` (a faint raw curve shows while smoothing, except on the charts named in `skip`) and `destroy`.
 */
export function chartCards(grid, { xLabel, getLines, onZoom, onReset, customSeries }) {
  const charts = {};
  const custom = [];
  // A chart may mark lines of its own (`options.getLines`: a step chart's spikes or slow-downs beside the epoch ends).
  const chartIn = (el, options) =>
    new EpochChart(el, { ...options, xLabel, getLines: options.getLines ?? getLines, onZoom, onReset });
  return {
    charts,
    custom,
    chartIn,
    addCustom(name, range) {
      const card = document.createElement("div");
      card.className = "card chart-card";
      render(card, html`<h2>${name}</h2><div class="chart"></div>`);
      grid.append(card);
      const chart = chartIn(card.querySelector(".chart"), {
        series: customSeries(name, PALETTE[custom.length % PALETTE.length]),
        height: 200,
      });
      chart.setRange(range);
      charts[`custom:${name}`] = chart;
      custom.push(name);
    },
    budget: () => pointsFor(Math.max(...Object.values(charts).map((c) => c.plotWidth()))),
    setRange(range) {
      for (const c of Object.values(charts)) c.setRange(range);
    },
    showRaw(w, skip) {
      for (const [key, chart] of Object.entries(charts)) {
        if (skip.has(key)) continue;
        chart.series.forEach((s, i) => s.faint && chart.show(i, w > 0));
      }
    },
    destroy() {
      for (const c of Object.values(charts)) c.destroy();
    },
  };
}

/**
 * Renders the chart cards into `grid` and returns the set: `charts` by name ("loss", "accuracy", "lr",
 * "custom:<metric>"), `addRows(rows, range)` (a chart for each custom metric the rows bring), `budget()` (epochs per
 * view), `setRange(range)`, `draw(view, full)` and `destroy()`. `best()` is the epoch the loss and accuracy charts mark;
 * `onZoom(from, to)` and `onReset()` answer a drag and a double-click.
 */
export function chartSet(grid, { best, onZoom, onReset }) {
  render(
    grid,
    html`
      <div class="card chart-card"><h2>Loss</h2><div class="chart" id="chart-loss"></div></div>
      <div class="card chart-card"><h2>Accuracy</h2><div class="chart" id="chart-accuracy"></div><p class="muted small empty" id="no-accuracy" hidden>No accuracy reported.</p></div>
      <div class="card chart-card" id="card-lr" hidden><h2>Learning rate</h2><div class="chart" id="chart-lr"></div></div>`,
  );
  const cards = chartCards(grid, { xLabel: "epoch", onZoom, onReset, customSeries: pair });
  const { charts, chartIn } = cards;
  charts.loss = chartIn(grid.querySelector("#chart-loss"), {
    series: [...pair("train_loss", PALETTE[0]), ...pair("val_loss", PALETTE[1])],
    getBest: best,
    yLabel: "loss",
  });
  charts.accuracy = chartIn(grid.querySelector("#chart-accuracy"), {
    series: [...pair("train_accuracy", PALETTE[0]), ...pair("val_accuracy", PALETTE[1])],
    getBest: best,
    yLabel: "accuracy",
  });
  charts.lr = chartIn(grid.querySelector("#chart-lr"), {
    series: [{ label: "learning_rate", color: PALETTE[4] }],
    height: 180,
  });

  return {
    charts,
    /** A chart, showing `range`, for each custom metric of the rows that has none yet. */
    addRows(rows, range) {
      for (const r of rows)
        for (const k of Object.keys(r))
          if (isMetric(k) && !NOT_METRICS.has(k) && !cards.custom.includes(k)) cards.addCustom(k, range);
    },
    budget: cards.budget,
    setRange: cards.setRange,
    /**
     * Draws `view` (null: nothing yet) with its smoothed curves when it was smoothed, the raw ones faint beside them;
     * the learning-rate card shows once the whole run (`full`) has a learning rate.
     */
    draw(view, full) {
      const { rows, w, x, col, both } = columnsOf(view, "epoch");
      charts.loss.setData([x, ...both("train_loss"), ...both("val_loss")]);
      const hasAcc = rows.some((r) => r.train_accuracy != null || r.val_accuracy != null);
      grid.querySelector("#no-accuracy").hidden = hasAcc || rows.length === 0;
      charts.accuracy.setData([x, ...both("train_accuracy"), ...both("val_accuracy")]);
      grid.querySelector("#card-lr").hidden = !full?.rows.some((r) => r.learning_rate != null);
      charts.lr.setData([x, col("learning_rate")]);
      for (const name of cards.custom) charts[`custom:${name}`].setData([x, ...both(name)]);
      cards.showRaw(w, new Set(["lr"]));
    },
    destroy: cards.destroy,
  };
}
