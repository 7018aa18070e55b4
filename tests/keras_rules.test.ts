// Keras 3 EarlyStopping and ReduceLROnPlateau replayed on hand-worked series, so a Keras user's callback config means the same here.
import { describe, expect, test } from "bun:test";
import {
  earlyStoppingInit,
  earlyStoppingStep,
  earlyStoppingStopEpoch,
  reduceOnPlateauInit,
  reduceOnPlateauStep,
  type EarlyStoppingConfig,
  type ReduceOnPlateauConfig,
} from "../src/trends/index.ts";

const es = (over: Partial<EarlyStoppingConfig> = {}): EarlyStoppingConfig => ({
  monitor: "val_loss",
  patience: 0,
  min_delta: 0,
  mode: "auto",
  baseline: null,
  restore_best_weights: false,
  start_from_epoch: 0,
  ...over,
});

describe("EarlyStopping", () => {
  test("stops once patience epochs pass without improvement", () => {
    // best 1.0 → 0.9 at epoch 1; epochs 2 and 3 don't beat it: wait 1, 2 → stop at 3.
    expect(earlyStoppingStopEpoch(es({ patience: 2 }), [1.0, 0.9, 0.95, 0.92, 0.91])).toBe(3);
    expect(earlyStoppingStopEpoch(es({ patience: 2 }), [1.0, 0.9, 0.95, 0.85, 0.86])).toBeNull();
  });

  test("step by step, the state matches Keras's counters", () => {
    const cfg = es({ patience: 2 });
    let state = earlyStoppingInit();
    expect(state).toEqual({ wait: 0, best: null, best_epoch: 0, stopped_epoch: 0 });
    const seen: unknown[] = [];
    [1.0, 0.9, 0.95, 0.92].forEach((v, epoch) => {
      const step = earlyStoppingStep(cfg, state, epoch, v);
      state = step.state;
      seen.push([step.improved, step.stop, state.wait, state.best, state.best_epoch]);
    });
    expect(seen).toEqual([
      [true, false, 0, 1.0, 0],
      [true, false, 0, 0.9, 1],
      [false, false, 1, 0.9, 1],
      [false, true, 2, 0.9, 1],
    ]);
    expect(state.stopped_epoch).toBe(3);
  });

  test("min_delta: an improvement must beat best by more than |min_delta| (min mode: current + |min_delta| < best)", () => {
    // 0.96 + 0.05 ≮ 1.0 → wait 1; 0.94 + 0.05 < 1.0 → best 0.94; 0.93, 0.92 fall short → wait 1, 2 → stop at 4.
    expect(earlyStoppingStopEpoch(es({ patience: 2, min_delta: 0.05 }), [1.0, 0.96, 0.94, 0.93, 0.92])).toBe(4);
    expect(earlyStoppingStopEpoch(es({ patience: 2, min_delta: -0.05 }), [1.0, 0.96, 0.94, 0.93, 0.92])).toBe(4);
    expect(earlyStoppingStopEpoch(es({ patience: 2 }), [1.0, 0.96, 0.94, 0.93, 0.92])).toBeNull();
  });

  test("baseline: improvements that don't beat the baseline keep the wait counting", () => {
    // Never stops on an improving epoch, even with wait ≥ patience.
    expect(earlyStoppingStopEpoch(es({ patience: 2, baseline: 0.5 }), [0.8, 0.7, 0.6, 0.55])).toBeNull();
    // wait 1, 2 (improving, so no stop), then 3 without improvement → stop at 2.
    expect(earlyStoppingStopEpoch(es({ patience: 2, baseline: 0.5 }), [0.8, 0.7, 0.75])).toBe(2);
    // 0.45 beats the baseline → wait reset at epoch 1; epochs 2, 3 → stop at 3.
    expect(earlyStoppingStopEpoch(es({ patience: 2, baseline: 0.5 }), [0.8, 0.45, 0.5, 0.5])).toBe(3);
  });

  test("start_from_epoch: warm-up epochs are ignored entirely", () => {
    expect(earlyStoppingStopEpoch(es({ start_from_epoch: 3 }), [5, 6, 7, 1.0, 1.1])).toBe(4);
    expect(earlyStoppingStopEpoch(es(), [5, 6, 7, 1.0, 1.1])).toBe(1);
  });

  test("max mode, explicit or inferred from an accuracy/AUC monitor name", () => {
    const series = [0.5, 0.6, 0.6, 0.59];
    for (const cfg of [
      es({ monitor: "val_accuracy", patience: 2 }),
      es({ monitor: "val_auc", patience: 2 }),
      es({ monitor: "score", mode: "max", patience: 2 }),
    ]) {
      expect(earlyStoppingStopEpoch(cfg, series)).toBe(3);
    }
    // In min mode the same series stops at once: 0.6 is no improvement on 0.5.
    expect(earlyStoppingStopEpoch(es({ monitor: "val_accuracy", mode: "min" }), series)).toBe(1);
    // max mode with min_delta: 0.52 − 0.05 ≯ 0.5.
    expect(earlyStoppingStopEpoch(es({ mode: "max", patience: 1, min_delta: 0.05 }), [0.5, 0.52])).toBe(1);
  });

  test("patience 0 stops at the first non-improving epoch after epoch 0", () => {
    expect(earlyStoppingStopEpoch(es(), [1, 2])).toBe(1);
    expect(earlyStoppingStopEpoch(es(), [1, 0.9, 0.8])).toBeNull();
  });

  test("NaN never improves; missing values are skipped", () => {
    // Epoch 0 NaN: wait 1, but never stop at epoch 0. Epoch 1 improves on ±inf. Epoch 2 → stop.
    expect(earlyStoppingStopEpoch(es(), [NaN, 1, 2])).toBe(2);
    expect(earlyStoppingStopEpoch(es({ patience: 1 }), [1, NaN])).toBe(1);
    expect(earlyStoppingStopEpoch(es({ patience: 1 }), [1, null, null, 2])).toBe(3);
    const { state } = earlyStoppingStep(es(), earlyStoppingInit(), 0, NaN);
    expect(state.best).toBeNull();
  });

  test("restore_best_weights pins best_epoch to the first monitored epoch, as Keras's weight snapshot does", () => {
    const cfg = es({ restore_best_weights: true, patience: 5 });
    let state = earlyStoppingInit();
    state = earlyStoppingStep(cfg, state, 3, NaN).state;
    state = earlyStoppingStep(cfg, state, 4, NaN).state;
    expect(state.best_epoch).toBe(3);
    state = earlyStoppingStep(cfg, state, 5, 0.7).state;
    expect(state).toMatchObject({ best: 0.7, best_epoch: 5, wait: 0 });
  });
});

const rop = (over: Partial<ReduceOnPlateauConfig> = {}): ReduceOnPlateauConfig => ({
  monitor: "val_loss",
  factor: 0.5,
  patience: 2,
  min_delta: 0,
  cooldown: 0,
  min_lr: 0,
  ...over,
});

/** Replays the rule; returns the lr after each epoch and the epochs where it was reduced. */
function replay(cfg: ReduceOnPlateauConfig, series: (number | null)[], lr = 1) {
  let state = reduceOnPlateauInit(cfg);
  const lrs: number[] = [];
  const reducedAt: number[] = [];
  series.forEach((v, epoch) => {
    const step = reduceOnPlateauStep(cfg, state, lr, v);
    state = step.state;
    lr = step.lr;
    lrs.push(lr);
    if (step.reduced) reducedAt.push(epoch);
  });
  return { lrs, reducedAt, state };
}

describe("ReduceLROnPlateau", () => {
  test("halves the lr after patience flat epochs, with cooldown, and never below min_lr", () => {
    const { lrs, reducedAt, state } = replay(rop({ cooldown: 1, min_lr: 0.1 }), Array(12).fill(1.0));
    // e0 best; e1 wait 1; e2 wait 2 → 0.5, cooldown 1; e3 cooldown ends, wait 1; e4 → 0.25; … e8 → max(0.0625, 0.1).
    expect(lrs).toEqual([1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.1, 0.1, 0.1, 0.1]);
    expect(reducedAt).toEqual([2, 4, 6, 8]);
    // At min_lr nothing resets: wait keeps counting (Keras only resets it on a reduction).
    expect(state).toEqual({ best: 1, wait: 3, cooldown_counter: 0 });
  });

  test("cooldown blocks counting until it has run out", () => {
    // patience 1, cooldown 2: e1 reduce; e2 cooldown 2→1 (blocked); e3 1→0 then counts → reduce; every 2 epochs.
    const { reducedAt } = replay(rop({ patience: 1, cooldown: 2 }), Array(7).fill(1.0));
    expect(reducedAt).toEqual([1, 3, 5]);
  });

  test("an improvement resets the wait", () => {
    expect(replay(rop(), [1, 0.9, 0.95, 0.8, 0.85]).reducedAt).toEqual([]);
  });

  test("min_delta: a gain smaller than min_delta counts as no improvement", () => {
    // 0.95 ≮ 1 − 0.1 → wait 1; 0.95 → wait 2 → reduce at 2.
    expect(replay(rop({ min_delta: 0.1 }), [1, 0.95, 0.95]).reducedAt).toEqual([2]);
    expect(replay(rop({ min_delta: 0.01 }), [1, 0.95, 0.9]).reducedAt).toEqual([]);
  });

  test("an lr already at min_lr is not reduced again (compared in float32, as the optimizer stores it)", () => {
    const cfg = rop({ patience: 1, min_lr: 1e-4, cooldown: 3 });
    for (const atMin of [1e-4, Math.fround(1e-4)]) {
      let state = reduceOnPlateauInit(cfg);
      state = reduceOnPlateauStep(cfg, state, atMin, 1).state;
      expect(reduceOnPlateauStep(cfg, state, atMin, 1)).toEqual({
        lr: atMin,
        reduced: false,
        state: { best: 1, wait: 1, cooldown_counter: 0 },
      });
    }
    // Just above min_lr in float32 it is still clamped down to min_lr.
    const step = reduceOnPlateauStep(cfg, { best: 1, wait: 0, cooldown_counter: 0 }, 1.001e-4, 1);
    expect(step).toEqual({ lr: 1e-4, reduced: true, state: { best: 1, wait: 0, cooldown_counter: 3 } });
  });

  test("accuracy monitors count upwards; like Keras, only 'acc' switches auto mode", () => {
    expect(reduceOnPlateauInit(rop({ monitor: "val_accuracy" })).best).toBe(-Infinity);
    expect(reduceOnPlateauInit(rop({ monitor: "val_auc" })).best).toBe(Infinity);
    expect(reduceOnPlateauInit(rop({ monitor: "val_auc", mode: "max" })).best).toBe(-Infinity);
    expect(replay(rop({ monitor: "val_accuracy" }), [0.5, 0.6, 0.7, 0.7, 0.69]).reducedAt).toEqual([4]);
  });

  test("a missing metric leaves everything unchanged; factor ≥ 1 is rejected", () => {
    const cfg = rop();
    const state = { best: 0.5, wait: 1, cooldown_counter: 2 };
    expect(reduceOnPlateauStep(cfg, state, 0.01, undefined)).toEqual({ state, lr: 0.01, reduced: false });
    expect(() => reduceOnPlateauInit(rop({ factor: 1 }))).toThrow(RangeError);
  });
});
