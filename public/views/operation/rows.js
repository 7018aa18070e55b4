// The operation page's chart view model: a view of the run (the whole of it, or a zoomed range) as rows with numbers,
// keyed by epoch or by step (a step row's `epoch` labels it), the server's smoothed curves beside the raw ones, and live
// rows added in place. Plain data, no DOM.

import { STANDARD_FIELDS, STEP_FIELDS } from "schemas/fields.js";
import { emaSmooth, isSmoothed } from "trends/smoothing.js";
import { num } from "../../lib/format.js";

/** Fields of an epoch that are not custom metrics (a custom metric gets its own chart). */
export const NOT_METRICS = new Set(["epoch", "timestamp", ...STANDARD_FIELDS]);
/** Fields of a step that are not custom metrics (samples and tokens count what was seen: not charted). */
export const NOT_STEP_METRICS = new Set(["step", "epoch", "timestamp", ...STEP_FIELDS]);

/** Wire row → row with numbers (NaN and ±Infinity as numbers); a step row keeps its epoch label. */
export function decodeRow(e, key = "epoch") {
  const r = { [key]: e[key] };
  if (key === "step" && e.epoch !== undefined) r.epoch = e.epoch;
  for (const [k, v] of Object.entries(e)) if (k !== key && k !== "epoch" && k !== "timestamp") r[k] = num(v);
  return r;
}

/**
 * Where a row keeps metric k's smoothed value: "~k". Row keys are metrics to downsample, so a view thinned in the page
 * keeps the smoothed curves' extremes as the server does (src/store/charts.ts reduces them under the same names).
 */
export const smoothedKey = (k) => `~${k}`;
/** Whether a row key is a metric (not the key, not a step's epoch label, not a smoothed value). */
export const isMetric = (k, key = "epoch") => k !== key && k !== "epoch" && !k.startsWith("~");

/** Whether an epoch (or step) falls in a view's range (null: the whole run). */
export const inRange = (range, at) => range === null || (at >= range[0] && at <= range[1]);

/**
 * One view of the run: what it is keyed by (`key`: "epoch" or "step"), its range (null: all of it), its rows ascending
 * (from the wire `rows` and the server's `smoothed` curves), the EMA weight they were smoothed with (0: none) and where
 * each metric's EMA stands after the last row, to smooth live rows exactly as the server would.
 */
export function makeView(range, { rows: wire, smoothed: sm }, weight, key = "epoch") {
  const rows = wire.map((e, i) => {
    const r = decodeRow(e, key);
    if (sm) for (const [k, col] of Object.entries(sm.series)) if (col[i] !== null) r[smoothedKey(k)] = num(col[i]);
    return r;
  });
  return { key, range, rows, weight, ema: structuredClone(sm?.state ?? {}) };
}

/**
 * Adds a live row to a view. A row past the last is appended and smoothed from the view's EMA state; an earlier or
 * re-posted one replaces or joins the rows raw, and returns true when the smoothed curve after it is now stale.
 */
export function addRow(view, r) {
  const rows = view.rows;
  const key = view.key;
  if (!rows.length || r[key] > rows[rows.length - 1][key]) {
    if (view.weight > 0)
      for (const k of Object.keys(r)) {
        if (!isMetric(k, key) || !isSmoothed(key, k)) continue;
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
    if (rows[mid][key] < r[key]) lo = mid + 1;
    else hi = mid;
  }
  if (rows[lo]?.[key] === r[key]) {
    for (const k of Object.keys(rows[lo])) if (k.startsWith("~")) r[k] ??= rows[lo][k];
    rows[lo] = r;
  } else rows.splice(lo, 0, r);
  return view.weight > 0;
}
