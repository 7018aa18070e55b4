/**
 * Event-loop lag, measured inside the process whose loop it is: a timer every `intervalMs`
 * and, per tick, how much later than asked it fired. Benches import it (bench/training.ts),
 * or preload it into a server they spawn, so the API needs no route for it:
 *   BUN_OPTIONS="--preload=./bench/lag.ts" BENCH_LAG_FILE=/tmp/lag.json bun run src/server.ts
 * Preloaded, it samples the main thread only (not training workers) and writes its samples
 * to BENCH_LAG_FILE when the process exits normally (SIGTERM included: the server exits).
 */
import { writeFileSync } from "node:fs";

/** One sample: [Date.now() when the tick fired, lag in ms]. */
export type LagSample = [number, number];

export interface LagSampler {
  samples(): LagSample[];
  /** Drops the samples so far (for example the start-up burst). */
  reset(): void;
  stop(): void;
}

/** Starts the sampler; an unref'd timer, so it never keeps a process alive. */
export function startLagSampler(intervalMs = 10): LagSampler {
  let samples: LagSample[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    samples.push([Date.now(), Math.max(0, now - last - intervalMs)]);
    last = now;
  }, intervalMs);
  timer.unref();
  return {
    samples: () => samples,
    reset: () => void (samples = []),
    stop: () => clearInterval(timer),
  };
}

/** The q-quantile of ascending numbers (nearest rank). */
export const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;

/** The median of numbers in any order: the lower middle one of an even count (nearest rank). */
export const median = (xs: number[]) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

/** p50 / p99 / max of the lags in samples taken within [from, to] (Date.now() ms). */
export function lagStats(samples: LagSample[], from = -Infinity, to = Infinity) {
  const lags = samples
    .filter(([at]) => at >= from && at <= to)
    .map(([, lag]) => lag)
    .sort((a, b) => a - b);
  return { n: lags.length, p50: quantile(lags, 0.5), p99: quantile(lags, 0.99), max: lags[lags.length - 1] ?? 0 };
}

const file = process.env.BENCH_LAG_FILE;
if (file && Bun.isMainThread && !import.meta.main) {
  const sampler = startLagSampler(Number(process.env.BENCH_LAG_INTERVAL_MS ?? 10));
  process.on("exit", () => writeFileSync(file, JSON.stringify({ pid: process.pid, samples: sampler.samples() })));
}
