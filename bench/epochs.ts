/** The epochs the storage benches write: bench/storage.ts and bench/store.ts measure the same rows. */

const BASE_TS = Date.parse("2026-11-26T00:00:00Z");

/** One epoch with the 8 standard fields: epoch, 6 metrics and a timestamp, with realistic noisy doubles. */
export function wireEpoch(e: number) {
  const noise = Math.sin(e * 12.9898) * 0.01;
  return {
    epoch: e,
    train_loss: 2.3 * Math.exp(-e / 200) + 0.05 + noise,
    val_loss: 2.4 * Math.exp(-e / 220) + 0.08 + noise * 1.3,
    train_accuracy: 1 - Math.exp(-e / 150) * 0.9 + noise,
    val_accuracy: 1 - Math.exp(-e / 170) * 0.92 + noise,
    learning_rate: 0.001 * 0.5 ** Math.floor(e / 300),
    duration: 12.5 + noise * 100,
    timestamp: new Date(BASE_TS + e * 12_500).toISOString(),
  };
}

/** Epochs `from` … `from + n - 1`. */
export const batchOf = (from: number, n: number) => Array.from({ length: n }, (_, i) => wireEpoch(from + i));

/**
 * One step as a fine-tuning run reports it (bench/storage.ts, bench/steps.ts): its epoch, train_loss, learning_rate,
 * grad_norm, samples and tokens seen, a timestamp; an evaluation (val_loss, val_accuracy) every 50 steps.
 */
export function wireStep(s: number, stepsPerEpoch = 10_000) {
  const noise = Math.sin(s * 12.9898) * 0.01;
  return {
    step: s,
    epoch: Math.floor(s / stepsPerEpoch),
    train_loss: 2.3 * Math.exp(-s / 20_000) + 0.05 + noise,
    learning_rate: 5e-5 * (1 - s / 2_000_000),
    grad_norm: 1.5 + noise * 40,
    samples: (s + 1) * 32,
    tokens: (s + 1) * 32 * 512,
    ...(s % 50 === 49 ? { val_loss: 2.4 * Math.exp(-s / 22_000) + 0.08, val_accuracy: 0.5 + noise } : {}),
    timestamp: new Date(BASE_TS + s * 100).toISOString(),
  };
}

/** Steps `from` … `from + n - 1`. */
export const stepBatchOf = (from: number, n: number) => Array.from({ length: n }, (_, i) => wireStep(from + i));
