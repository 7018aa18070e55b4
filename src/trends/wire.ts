// The wire form of one metric value, shared by the server and the dashboard (served to the page as /assets/trends/wire.js):
// JSON has no literal for NaN or ±Infinity, so a diverged value travels as the string "NaN", "Infinity" or "-Infinity".

/** A metric as JSON carries it: a finite number, null, or a non-finite value spelled out. */
export type WireMetric = number | null | "NaN" | "Infinity" | "-Infinity";

/** Wire value → number (NaN and ±Infinity as numbers); null and undefined pass through. */
export function decodeMetric(v: WireMetric | undefined): number | null | undefined {
  if (v === "NaN") return Number.NaN;
  if (v === "Infinity") return Number.POSITIVE_INFINITY;
  if (v === "-Infinity") return Number.NEGATIVE_INFINITY;
  return v;
}

/** Number → wire value: finite numbers, null and undefined as they are, NaN and ±Infinity as their names. */
export function encodeMetric(v: number | null | undefined): WireMetric | undefined {
  if (v === null || v === undefined || Number.isFinite(v)) return v;
  if (Number.isNaN(v)) return "NaN";
  return v > 0 ? "Infinity" : "-Infinity";
}
