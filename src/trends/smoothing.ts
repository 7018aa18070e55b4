// Curve smoothing for charts, matching TensorBoard's smoothing slider so people see the same curve in both tools.

/**
 * TensorBoard's debiased EMA: for each finite y, last = last·w + (1 − w)·y and the output is last / (1 − wⁿ), with n the
 * number of finite values seen so far (w = 1 reports `last` undivided, as TensorBoard does). NaN and ±Infinity pass through
 * unsmoothed and null/undefined become null; neither advances n or `last`. Default weight 0.6.
 */
export function emaSmooth(values: readonly (number | null | undefined)[], weight = 0.6): (number | null)[] {
  let last = 0;
  let n = 0;
  return values.map((y) => {
    if (y === null || y === undefined) return null;
    if (!Number.isFinite(y)) return y;
    last = last * weight + (1 - weight) * y;
    n += 1;
    const debias = weight === 1 ? 1 : 1 - weight ** n;
    return last / debias;
  });
}
