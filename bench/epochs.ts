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
