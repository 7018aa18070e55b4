// The operation page's charts of a step run, x in optimisation steps: loss (the training loss per step, the
// evaluations' val_loss as points of their own), accuracy (evaluations), learning rate, gradient norm, the step time,
// and one per custom metric as it first appears (`eval/*` ones as points). Every chart marks where each epoch ended.
// The loss chart spans the grid's width: it is the one a long run is read on, and its width (the point budget) stays
// the same whichever other charts the run turns out to have.
// An evaluation is sparse (one step in fifty, say), so it is never drawn as a line: a line would join two evaluations
// across the steps between them, or show nothing where the steps between hold no value.
// The judgement's marks (setJudgement, from GET …/analysis): the loss chart marks each loss spike at its step, the step
// time chart each slow-down, as labelled lines beside the epoch ends.

import { PALETTE } from "../../lib/charts.js";
import { html, render } from "../../lib/html.js";
import { chartCards, columnsOf, pair } from "./charts.js";
import { NOT_STEP_METRICS, isMetric } from "./rows.js";

/** An evaluation metric: taken at some steps only, drawn as points. */
const isEvaluation = (name) => name.startsWith("eval/");

/** A step metric's series: points for an evaluation, else raw and smoothed. */
const sparse = (label, color) => [{ label, color, sparse: true }];
const customSeries = (name, color) => (isEvaluation(name) ? sparse(name, color) : pair(name, color));

/** The standard step charts that show only once the run reports them: card id, metric, title, y label, series. */
const OPTIONAL = [
  ["accuracy", "val_accuracy", "Accuracy (evaluations)", "accuracy", sparse("val_accuracy", PALETTE[1])],
  ["lr", "learning_rate", "Learning rate", "", [{ label: "learning_rate", color: PALETTE[4] }]],
  ["grad_norm", "grad_norm", "Gradient norm", "norm", pair("grad_norm", PALETTE[3])],
  ["duration", "duration", "Step time", "seconds", [{ label: "duration", color: PALETTE[5] }]],
];

/**
 * Where each epoch of the run ended (its last stored step), kept from the server's `epoch_ends` and from the rows the
 * page sees. `lines()` marks the ends of every epoch but the latest (whose end is the run's newest step, or its last).
 */
function epochEnds() {
  const ends = new Map();
  const note = (epoch, step) => {
    if (!(ends.get(epoch) >= step)) ends.set(epoch, step);
  };
  return {
    set(list) {
      for (const { epoch, step } of list) note(epoch, step);
    },
    rows(rows) {
      for (const r of rows) if (r.epoch !== undefined && r.epoch !== null) note(r.epoch, r.step);
    },
    lines() {
      const sorted = [...ends].sort((a, b) => a[0] - b[0]);
      return sorted.slice(0, -1).map(([epoch, step]) => ({ x: step, label: `epoch ${epoch}` }));
    },
  };
}

/** A ratio as `4.2` or `170`. */
const ratio = (r) => (r >= 10 ? String(Math.round(r)) : r.toPrecision(2));
/** A spike's mark: `spike ×4.2` and how it ended (recovered, or not: divergence; still watched). */
const spikeMark = (s) => ({
  x: s.step,
  label: `spike ×${ratio(s.size)}${s.recovered === true ? " recovered" : s.recovered === false ? " diverged" : " watched"}`,
});
/** A slow-down's mark: `slow-down ×2.9` at its first slow step. */
const slowdownMark = (s) => ({ x: s.step, label: `slow-down ×${ratio(s.ratio)}` });
/** The epoch ends and a chart's marks, ascending (the line layer skips a line too close to the one before). */
const byX = (...lists) => lists.flat().sort((a, b) => a.x - b.x);

/**
 * Renders the step chart cards into `grid` and returns the set, as chartSet does (charts.js): `charts` by name ("loss",
 * "accuracy", "lr", "grad_norm", "duration", "custom:<metric>"), `addRows(rows, range)` (a chart for each custom metric
 * the rows bring; their epochs move the epoch ends), `setEpochEnds(list)` (the server's `epoch_ends`),
 * `setJudgement(analysis)` (marks its spikes on the loss chart and its slow-downs on the step time chart), `budget()`
 * (steps per view), `setRange(range)`, `draw(view, full)` and `destroy()`.
 */
export function stepChartSet(grid, { onZoom, onReset }) {
  render(
    grid,
    html`
      <div class="card chart-card wide"><h2>Loss</h2><div class="chart" id="chart-loss"></div></div>
      ${OPTIONAL.map(([id, , title]) => html`<div class="card chart-card" id="card-${id}" hidden><h2>${title}</h2><div class="chart" id="chart-${id}"></div></div>`)}`,
  );
  const ends = epochEnds();
  let marks = { spikes: [], slowdowns: [] };
  const cards = chartCards(grid, { xLabel: "step", getLines: () => ends.lines(), onZoom, onReset, customSeries });
  const { charts, chartIn } = cards;
  const chartAt = (id, options) => chartIn(grid.querySelector(`#chart-${id}`), options);
  charts.loss = chartAt("loss", {
    series: [...pair("train_loss", PALETTE[0]), ...sparse("val_loss", PALETTE[1])],
    yLabel: "loss",
    getLines: () => byX(ends.lines(), marks.spikes),
  });
  for (const [id, , , yLabel, series] of OPTIONAL)
    charts[id] = chartAt(id, {
      series,
      yLabel,
      height: 200,
      ...(id === "duration" && { getLines: () => byX(ends.lines(), marks.slowdowns) }),
    });

  return {
    charts,
    addRows(rows, range) {
      ends.rows(rows);
      for (const r of rows)
        for (const k of Object.keys(r))
          if (isMetric(k, "step") && !NOT_STEP_METRICS.has(k) && !cards.custom.includes(k)) cards.addCustom(k, range);
    },
    setEpochEnds: (list) => ends.set(list),
    setJudgement(a) {
      marks = { spikes: (a.spikes ?? []).map(spikeMark), slowdowns: (a.slowdowns ?? []).map(slowdownMark) };
      charts.loss.redraw();
      charts.duration.redraw();
    },
    budget: cards.budget,
    setRange: cards.setRange,
    /**
     * Draws `view` (null: nothing yet), smoothed curves over the raw ones as chartSet does; evaluations, the learning
     * rate and the step time raw. An optional card shows once the whole run (`full`) reports its metric.
     */
    draw(view, full) {
      const { x, col, both, w } = columnsOf(view, "step");
      charts.loss.setData([x, ...both("train_loss"), col("val_loss")]);
      for (const [id, metric, , , series] of OPTIONAL) {
        grid.querySelector(`#card-${id}`).hidden = !full?.rows.some((r) => r[metric] != null);
        charts[id].setData([x, ...(series.length === 2 ? both(metric) : [col(metric)])]);
      }
      for (const name of cards.custom)
        charts[`custom:${name}`].setData([x, ...(isEvaluation(name) ? [col(name)] : both(name))]);
      cards.showRaw(w, new Set(["lr", "duration", "accuracy"]));
    },
    destroy: cards.destroy,
  };
}
