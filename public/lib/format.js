// How the page words numbers, times and flags. Loss formatting and the wire codec are the trend core's own
// (src/trends/format.ts, src/trends/wire.ts, built for the browser), so the page prints what the server's reasons print.

import { fmtLoss } from "trends/format.js";
import { decodeMetric } from "trends/wire.js";

/** Wire value ("NaN", "Infinity", number, null, missing) → number or null. */
export const num = (v) => decodeMetric(v) ?? null;

/** A metric for a table or sentence: the server's loss format, "—" when absent. */
export function fmt(v) {
  const n = num(v);
  return n === null ? "—" : fmtLoss(n);
}

/** Axis numbers that stay short from 1e-6 to 1e6. */
export function tick(v) {
  if (v === null) return "";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** "12 s ago", "3 min ago", "2 h ago", then the local date. */
/** How often a page re-renders its relative ages ("12 s ago") from what it holds (no request). */
export const AGE_REFRESH_MS = 10_000;

export function ago(iso) {
  if (!iso) return "—";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

/** Where an operation runs: its metadata's location (local, host, external). */
export const where = (op) => (typeof op.metadata?.location === "string" ? op.metadata.location : "—");

/** Pending and running operations still move. */
export const live = (op) => op.status === "pending" || op.status === "running";
