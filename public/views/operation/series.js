// What the operation page charts a run by: its epochs (GET …/metrics, the chart set of charts.js) or, for a run that
// reports optimisation steps, its steps (GET …/steps, step_charts.js). curves.js reads, zooms and follows either the
// same way; this table holds what differs.

import { chartSet } from "./charts.js";
import { stepChartSet } from "./step_charts.js";

/**
 * A series the page charts: the row key, its plural for people, the read under the operation's path and its range
 * parameters, the chart set, and `unpack(reply)` → { rows, smoothed, ends, pruned } (ends: the epoch ends a step read
 * carries; pruned: when retention removed a step run's rows).
 */
export const EPOCHS = {
  key: "epoch",
  unit: "epochs",
  read: "metrics",
  charts: chartSet,
  unpack: ({ metrics }) => ({ rows: metrics.epochs, smoothed: metrics.smoothed, ends: null }),
};

export const STEPS = {
  key: "step",
  unit: "steps",
  read: "steps",
  charts: stepChartSet,
  // pruned: when retention removed the run's step rows (the reply's points are then its blocks' extremes).
  unpack: (reply) => ({
    rows: reply.steps,
    smoothed: reply.smoothed,
    ends: reply.epoch_ends,
    pruned: reply.steps_pruned_at ?? null,
  }),
};

/** A step run: the server counts its steps (progress.steps_completed) once it has some or plans them. */
export const seriesOf = (op) => (op.progress.steps_completed === undefined ? EPOCHS : STEPS);
