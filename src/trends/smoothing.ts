// Curve smoothing for charts, matching TensorBoard's smoothing slider so people see the same curve in both tools.

/** Metrics that are schedules or timings, not noisy measurements: never smoothed (the server's charts and the page alike). */
export const UNSMOOTHED: ReadonlySet<string> = new Set(["learning_rate", "duration"]);

/** Where a debiased EMA stands after some values: the running mean `last` and how many finite values it has seen. */
export interface EmaState {
  last: number;
  n: number;
}

/**
 * TensorBoard's debiased EMA: for each finite y, last = last·w + (1 − w)·y and the output is last / (1 − wⁿ), with n the
 * number of finite values seen so far (w = 1 reports `last` undivided, as TensorBoard does). NaN and ±Infinity pass through
 * unsmoothed and null/undefined become null; neither advances n or `last`. Default weight 0.6. `state` (changed in place)
 * resumes an EMA where an earlier call left it, so a curve can be smoothed in pieces: over a stored history, then live.
 */
export function emaSmooth(
  values: readonly (number | null | undefined)[],
  weight = 0.6,
  state: EmaState = { last: 0, n: 0 },
): (number | null)[] {
  return values.map((y) => {
    if (y === null || y === undefined) return null;
    if (!Number.isFinite(y)) return y;
    state.last = state.last * weight + (1 - weight) * y;
    state.n += 1;
    const debias = weight === 1 ? 1 : 1 - weight ** state.n;
    return state.last / debias;
  });
}

/**
 * How many finite values before a point an EMA of `weight` needs to be within `tolerance` of the EMA over the whole
 * history (relative to the values' size): a start from nothing weighs wᵏ after k values, and so does the debias term.
 * 1 for weight 0; 2,750 for 0.99 at 1e-12.
 */
export function emaWarmup(weight: number, tolerance = 1e-12): number {
  if (weight <= 0) return 1;
  if (weight >= 1) return Number.POSITIVE_INFINITY;
  return Math.ceil(Math.log(tolerance) / Math.log(weight));
}
