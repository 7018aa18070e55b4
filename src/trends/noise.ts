// How much a loss curve jitters from epoch to epoch, measured so that a trend does not count as noise: the rules compare a
// rise against this before they call it real.

import { isFiniteLoss } from "./history.ts";

/** 1 / (Φ⁻¹(3/4) · √6): turns the median |second difference| of i.i.d. noise into its standard deviation. */
const SECOND_DIFF_TO_SIGMA = 1 / (0.6744897501960817 * Math.sqrt(6));

/**
 * Robust per-epoch noise σ of a series: the median absolute second difference, scaled to a standard deviation.
 * Second differences cancel any locally linear trend, so a steadily rising validation loss is not mistaken for noise, and the
 * median ignores a single spike. Non-finite and missing values are skipped; null with fewer than 4 finite values.
 */
export function noiseSigma(values: readonly (number | null | undefined)[]): number | null {
  const ys = values.filter(isFiniteLoss);
  if (ys.length < 4) return null;
  const d2: number[] = [];
  for (let i = 2; i < ys.length; i++) d2.push(Math.abs(ys[i]! - 2 * ys[i - 1]! + ys[i - 2]!));
  return median(d2) * SECOND_DIFF_TO_SIGMA;
}

/** Median of a non-empty list (mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Mean of a non-empty list. */
export function mean(xs: readonly number[]): number {
  let sum = 0;
  for (const x of xs) sum += x;
  return sum / xs.length;
}
