// The baselines the step judgement is scored against (bench/step_baselines.ts), on hand-worked runs: Keras EarlyStopping
// with patience in evaluations + TerminateOnNaN, the W&B-style z-score alert, and the figures that score a watcher.

import { describe, expect, test } from "bun:test";
import {
  gainAfter,
  kerasBaseline,
  scoreRun,
  summarise,
  zScoreAlerts,
  type WatcherVerdict,
} from "../bench/step_baselines.ts";
import { labelRun, loadStepCorpus, type Cell, type StepKind, type StepRun } from "../bench/step_corpus_format.ts";

const thresholds = loadStepCorpus().thresholds;

/** A run with evaluations every 50 steps: `val` and `test` per evaluation, train_loss per step (default: 1s). */
function run(
  val: Cell[],
  test: Cell[],
  opts: { train?: Cell[]; kind?: StepKind; spikes?: [number, number][] } = {},
): StepRun {
  const steps = 50 * (val.length - 1) + 1;
  const train = opts.train ?? Array.from({ length: steps }, () => 1 as Cell);
  const r: StepRun = {
    id: "r",
    plan: "p",
    planned_kind: opts.kind ?? "healthy",
    plan_note: "",
    seed: 1,
    half: "tune",
    batch_size: 16,
    train_bytes: 0,
    steps,
    eval_every: 50,
    events: { spikes: opts.spikes ?? [], slowdowns: [], lr_change_step: null, inf_step: null },
    curves: { train_loss: train, learning_rate: train, grad_norm: train, step_time: train },
    evals: { step: val.map((_, i) => 50 * i), val_loss: val, test_loss: test },
    build_seconds: 0,
    labels: null as never,
    kind: opts.kind ?? "healthy",
    relabel_reason: null,
  };
  r.labels = labelRun(r, thresholds);
  return r;
}

describe("Keras EarlyStopping(patience=5 evaluations, restore_best_weights) + TerminateOnNaN", () => {
  test("stops on the fifth evaluation without a new best and restores the best evaluation's step", () => {
    const val = [5, 3, 2, 2.1, 2.2, 1.9, 2.05, 2.1, 2.2, 2.3, 2.4, 2.5];
    // Best 1.9 at eval 5 (step 250); evals 6-10 don't beat it → stop at eval 10 (step 500).
    expect(kerasBaseline(run(val, val))).toEqual({ name: "keras", alarms: [500], stopped_at: 500, advised_step: 250 });
  });

  test("a run that keeps improving is never stopped and keeps its last weights", () => {
    const val = [5, 4, 3, 2.5, 2.2, 2.0, 1.9, 1.8];
    expect(kerasBaseline(run(val, val))).toEqual({ name: "keras", alarms: [], stopped_at: null, advised_step: 350 });
  });

  test("TerminateOnNaN stops at the first non-finite train_loss; the user keeps the weights last evaluated", () => {
    const train: Cell[] = Array.from({ length: 201 }, (_, s) => (s >= 123 ? "NaN" : 1));
    const val: Cell[] = [5, 3, 2, "NaN", "NaN"];
    expect(kerasBaseline(run(val, val, { train }))).toEqual({
      name: "keras",
      alarms: [123],
      stopped_at: 123,
      advised_step: 100,
    });
  });

  test("a NaN validation loss never improves, so without a NaN train loss the patience runs out", () => {
    const val: Cell[] = [5, 3, "NaN", "NaN", "NaN", "NaN", "NaN", "NaN"];
    expect(kerasBaseline(run(val, val)).stopped_at).toBe(300);
  });
});

describe("W&B-style z-score alert on train_loss", () => {
  const noisy = (n: number) => Array.from({ length: n }, (_, s) => 2 + 0.1 * Math.sin(s * 1.7));

  test("a jump far outside the trailing window's spread alerts at its step", () => {
    const xs = noisy(100);
    xs[60] = 5;
    expect(zScoreAlerts(xs)).toEqual([60]);
  });

  test("no alert before the window is full, on a non-finite value, or on a flat window", () => {
    const early = noisy(40);
    early[10] = 50;
    expect(zScoreAlerts(early)).toEqual([]);
    const nan = noisy(100);
    nan[60] = Number.NaN;
    expect(zScoreAlerts(nan)).toEqual([]);
    expect(zScoreAlerts(Array.from({ length: 50 }, () => 1))).toEqual([]);
  });

  test("direction any alerts on a drop too; increase does not", () => {
    const xs = noisy(100);
    xs[60] = 0.5;
    expect(zScoreAlerts(xs)).toEqual([60]);
    expect(zScoreAlerts(xs, { window: 30, threshold: 3, direction: "increase" })).toEqual([]);
  });
});

describe("scoring a watcher against the held-out labels", () => {
  const verdict = (
    alarms: number[],
    stopped_at: number | null = null,
    advised_step: number | null = null,
  ): WatcherVerdict => ({
    name: "w",
    alarms,
    stopped_at,
    advised_step,
  });

  test("an alarm after which the held-out loss still gains more than 2 % is unjustified", () => {
    const r = run([5, 3, 2.5, 2.4, 2.0], [5, 3, 2.5, 2.4, 2.0]);
    expect(gainAfter(r, 100)).toBeCloseTo(0.2);
    expect(scoreRun(r, verdict([100]), thresholds).unjustified).toEqual({ step: 100, gain: gainAfter(r, 100) });
    expect(scoreRun(r, verdict([200]), thresholds).unjustified).toBeNull();
  });

  test("divergence counts as caught within one evaluation interval of its onset, not later", () => {
    const test: Cell[] = [5, 2, 1.9, 6, 8, 9, 10];
    const r = run(test, test, { kind: "diverged" });
    expect(r.labels.diverged_onset_step).toBe(150);
    expect(scoreRun(r, verdict([110]), thresholds).divergence_caught).toBe(true);
    expect(scoreRun(r, verdict([200]), thresholds).divergence_caught).toBe(true);
    expect(scoreRun(r, verdict([201]), thresholds).divergence_caught).toBe(false);
  });

  test("a recovered spike is reported by an alarm in it and stopped by a stop in its recovery window", () => {
    const test: Cell[] = [5, 2, 1.9, 3, 1.95, 1.8, 1.7];
    const r = run(test, test, { kind: "spike", spikes: [[120, 122]] });
    expect(r.labels.spikes[0]!.recovered).toBe(true);
    expect(scoreRun(r, verdict([121]), thresholds).spikes).toEqual([{ from: 120, reported: true, stopped: false }]);
    expect(scoreRun(r, verdict([150], 150), thresholds).spikes).toEqual([{ from: 120, reported: true, stopped: true }]);
  });

  test("overfitting is caught by the first alarm at or after the held-out best, with its delay in evaluations", () => {
    const test: Cell[] = [5, 2, 1.9, 2.0, 2.1, 2.2, 2.3];
    const r = run(test, test, { kind: "overfit" });
    const s = scoreRun(r, verdict([180], 180, 100), thresholds);
    expect([s.overfit_caught, s.overfit_delay, s.regret]).toEqual([true, 2, 1]);
    expect(summarise([s]).overfit).toEqual({ runs: 1, caught: 1, median_delay: 2 });
  });

  test("checkpoint regret is the held-out loss at the advice over the best, and a NaN checkpoint is infinitely bad", () => {
    const test: Cell[] = [5, 2, 1.9, "NaN"];
    const r = run([5, 2, 2.1, "NaN"], test);
    expect(scoreRun(r, verdict([], null, 50), thresholds).regret).toBeCloseTo(2 / 1.9);
    expect(scoreRun(r, verdict([], null, 150), thresholds).regret).toBe(Number.POSITIVE_INFINITY);
    expect(scoreRun(r, verdict([]), thresholds).lowest_val_regret).toBeCloseTo(2 / 1.9);
  });
});
