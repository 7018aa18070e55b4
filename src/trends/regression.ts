// Least-squares line fitting: every trend rule judges a fitted line, so one noisy epoch cannot flip a verdict.

/** Ordinary least-squares line through (xs[i], ys[i]). With fewer than two distinct xs the slope is 0 and the intercept is the mean of ys (0 when empty). */
export function linearFit(xs: readonly number[], ys: readonly number[]): { slope: number; intercept: number } {
  if (xs.length !== ys.length) throw new RangeError(`linearFit: ${xs.length} xs but ${ys.length} ys`);
  const n = xs.length;
  if (n === 0) return { slope: 0, intercept: 0 };
  let meanX = 0;
  let meanY = 0;
  for (let i = 0; i < n; i++) {
    meanX += xs[i]!;
    meanY += ys[i]!;
  }
  meanX /= n;
  meanY /= n;
  // Centred sums keep precision for runs resumed at large epoch numbers.
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - meanX;
    sxx += dx * dx;
    sxy += dx * (ys[i]! - meanY);
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { slope, intercept: meanY - slope * meanX };
}

/**
 * Relative change of the fitted line from the first x to the last: (fit(x_last) − fit(x_first)) / |fit(x_first)|.
 * null with fewer than 2 points, when fit(x_first) is 0, or when the fit is not finite.
 */
export function fittedRelativeChange(xs: readonly number[], ys: readonly number[]): number | null {
  if (xs.length < 2 || ys.length < 2) return null;
  const { slope, intercept } = linearFit(xs, ys);
  const start = slope * xs[0]! + intercept;
  const end = slope * xs[xs.length - 1]! + intercept;
  if (start === 0 || !Number.isFinite(start) || !Number.isFinite(end)) return null;
  return (end - start) / Math.abs(start);
}

/**
 * A least-squares line kept one point at a time (Welford's updates: running means and centred co-moments), so a fit
 * over a span that only grows costs O(1) a point and keeps its precision at large epoch numbers. Also carries what the
 * generalization gap reads beside the fit: the sum of |v| over the span and its first and last x. Plain data (JSON).
 */
export interface OnlineFit {
  n: number;
  mean_x: number;
  mean_y: number;
  /** Σ (x − mean_x)². */
  cxx: number;
  /** Σ (x − mean_x)(y − mean_y). */
  cxy: number;
  /** Σ |v| of the points' third values (the validation loss, for the gap's tolerance). */
  sum_abs: number;
  first_x: number | null;
  last_x: number | null;
}

export const EMPTY_FIT: OnlineFit = Object.freeze({
  n: 0,
  mean_x: 0,
  mean_y: 0,
  cxx: 0,
  cxy: 0,
  sum_abs: 0,
  first_x: null,
  last_x: null,
});

/** The fit with (x, y) added (and |v| summed); `fit` is left as it is. Points must come in the order a fold over them would take. */
export function addToFit(fit: OnlineFit, x: number, y: number, v = 0): OnlineFit {
  const n = fit.n + 1;
  const dx = x - fit.mean_x;
  const mean_x = fit.mean_x + dx / n;
  const mean_y = fit.mean_y + (y - fit.mean_y) / n;
  return {
    n,
    mean_x,
    mean_y,
    cxx: fit.cxx + dx * (x - mean_x),
    cxy: fit.cxy + dx * (y - mean_y),
    sum_abs: fit.sum_abs + Math.abs(v),
    first_x: fit.first_x ?? x,
    last_x: x,
  };
}

/** The slope of an OnlineFit: 0 with fewer than two distinct xs, as linearFit. */
export function fitSlope(fit: OnlineFit): number {
  return fit.cxx === 0 ? 0 : fit.cxy / fit.cxx;
}
