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
