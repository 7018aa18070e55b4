// The operation page's chart view model: a view of the run (the whole of it, or a zoomed epoch range) as rows with
// numbers, the server's smoothed curves beside the raw ones, and live epochs added in place. Plain data, no DOM.

import { STANDARD_FIELDS } from "schemas/fields.js";
import { emaSmooth, UNSMOOTHED } from "trends/smoothing.js";
import { num } from "../../lib/format.js";

/** Fields of an epoch that are not custom metrics (a custom metric gets its own chart). */
export const NOT_METRICS = new Set(["epoch", "timestamp", ...STANDARD_FIELDS]);

/** Wire epoch → row with numbers (NaN and ±Infinity as numbers). */
export function decodeRow(e) {
  const r = { epoch: e.epoch };
  for (const [k, v] of Object.entries(e)) if (k !== "epoch" && k !== "timestamp") r[k] = num(v);
  return r;
}

/**
 * Where a row keeps metric k's smoothed value: "~k". Row keys are metrics to downsample, so a view thinned in the page
 * keeps the smoothed curves' extremes as the server does (src/store/charts.ts reduces them under the same names).
 */
export const smoothedKey = (k) => `~${k}`;
export const isMetric = (k) => k !== "epoch" && !k.startsWith("~");

/** Whether an epoch falls in a view's range (null: the whole run). */
export const inRange = (range, epoch) => range === null || (epoch >= range[0] && epoch <= range[1]);

/**
 * One view of the run: its epoch range (null: all of it), its rows ascending, the EMA weight they were smoothed with
 * (0: none) and where each metric's EMA stands after the last row, to smooth live epochs exactly as the server would.
 */
export function makeView(range, metrics, weight) {
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
export function addRow(view, r) {
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
