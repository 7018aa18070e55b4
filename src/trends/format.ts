// Number formatting for the sentences the judgement writes: one style for every reason text.

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Four decimals in the usual loss range, four significant digits outside it; NaN and ±Infinity as words. */
export function fmtLoss(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a === 0 || (a >= 1e-3 && a < 1e5) ? v.toFixed(4) : v.toPrecision(4);
}

/** |fraction| as a percentage with one decimal: 0.052 → "5.2%". */
export function pct(fraction: number): string {
  const p = Math.abs(fraction) * 100;
  return `${p >= 10 || p === 0 ? p.toFixed(1) : p.toPrecision(2)}%`;
}

/** Signed percentage: −0.052 → "-5.2%". */
export function signedPct(fraction: number): string {
  return `${fraction < 0 ? "-" : "+"}${pct(fraction)}`;
}

/** A ratio as "41×" (two significant digits below 10). */
export function times(ratio: number): string {
  return `${ratio >= 10 ? Math.round(ratio) : ratio.toPrecision(2)}×`;
}
