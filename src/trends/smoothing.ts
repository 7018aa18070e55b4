// Curve smoothing for charts, matching TensorBoard's smoothing slider so people see the same curve in both tools.

/** Metrics that are schedules or timings, not noisy measurements: never smoothed (the server's charts and the page alike). */
export const UNSMOOTHED: ReadonlySet<string> = new Set(["learning_rate", "duration"]);

/**
 * Whether a chart of a series smooths the metric `name`: never the UNSMOOTHED ones; on steps, neither the evaluations
 * (val_loss, val_accuracy, `eval/*`: taken every few hundred steps, an EMA over them would need a window of thousands
 * of steps per point, and a chart draws them as points) nor the cumulative counters (samples, tokens).
 */
export function isSmoothed(key: "epoch" | "step", name: string): boolean {
  if (UNSMOOTHED.has(name)) return false;
  if (key === "epoch") return true;
  return !STEP_UNSMOOTHED.has(name) && !name.startsWith("eval/");
}

const STEP_UNSMOOTHED: ReadonlySet<string> = new Set(["val_loss", "val_accuracy", "samples", "tokens"]);

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
  const out: (number | null)[] = new Array(values.length);
  const keep = 1 - weight;
  // Past FADED finite values wⁿ < 2⁻⁶⁰, so 1 − wⁿ is exactly 1 (below half an ulp of 1, 2⁻⁵⁴): the debias divides by
  // 1 and the power need not be computed, the same bits for ~40 % of the time over a 10,000-epoch curve at w = 0.6.
  const faded = weight === 1 ? 0 : weight <= 0 ? 1 : Math.ceil(-60 / Math.log2(weight));
  let { last, n } = state;
  for (let i = 0; i < values.length; i++) {
    const y = values[i];
    if (y === null || y === undefined) out[i] = null;
    else if (!Number.isFinite(y)) out[i] = y;
    else {
      last = last * weight + keep * y;
      n += 1;
      out[i] = n > faded ? last : last / (1 - weight ** n);
    }
  }
  state.last = last;
  state.n = n;
  return out;
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
