// Thins long epoch series for charts and agent replies while keeping the points people look for: the ends and the best epoch.

/**
 * Input ascending by epoch. If length ≤ maxPoints it is returned as is. Otherwise keeps the first, the last and the point whose
 * epoch === keepEpoch (the best), and fills the rest with points spaced evenly between them. The result is ascending, without
 * duplicates, and has at most max(maxPoints, 3) points.
 */
export function downsample<T extends { epoch: number }>(epochs: T[], maxPoints: number, keepEpoch: number | null = null): T[] {
  const n = epochs.length;
  if (n <= maxPoints) return epochs;
  const budget = Math.max(Math.floor(maxPoints), 3);
  if (n <= budget) return epochs;
  // `budget` evenly spaced indices including 0 and n − 1; the step exceeds 1, so they are distinct.
  const picked: number[] = [];
  for (let i = 0; i < budget; i++) picked.push(Math.round((i * (n - 1)) / (budget - 1)));
  const keepIndex = keepEpoch === null ? -1 : epochs.findIndex((p) => p.epoch === keepEpoch);
  if (keepIndex > 0 && keepIndex < n - 1 && !picked.includes(keepIndex)) {
    // Swap the nearest interior pick for the kept point, so the budget still holds.
    let nearest = 1;
    for (let i = 2; i < budget - 1; i++) {
      if (Math.abs(picked[i]! - keepIndex) < Math.abs(picked[nearest]! - keepIndex)) nearest = i;
    }
    picked[nearest] = keepIndex;
    picked.sort((a, b) => a - b);
  }
  return picked.map((i) => epochs[i]!);
}
