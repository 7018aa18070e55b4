// The step corpus's ground truth: every stored label is what its held-out curve (and injected events) give by the stated
// definitions, each run sits in the half its seed gives, and both halves hold every kind.

import { describe, expect, test } from "bun:test";
import {
  divergedOnset,
  halfOfSeed,
  kindOf,
  labelRun,
  loadStepCorpus,
  STEP_KINDS,
  type Cell,
  type StepRun,
  type StepThresholds,
} from "../bench/step_corpus_format.ts";

const corpus = loadStepCorpus();
const t = corpus.thresholds;

describe("the step corpus", () => {
  test("every stored label is the one the held-out curve gives", () => {
    for (const run of corpus.runs) {
      expect({ id: run.id, labels: labelRun(run, t) }).toEqual({ id: run.id, labels: run.labels });
      expect({ id: run.id, kind: kindOf(run.labels, run.events, run.planned_kind) }).toEqual({
        id: run.id,
        kind: run.kind,
      });
      expect({ id: run.id, relabelled: run.relabel_reason !== null }).toEqual({
        id: run.id,
        relabelled: run.kind !== run.planned_kind,
      });
    }
  });

  test("only the held-out curve moves a judgement label: other curves changed, the labels stay", () => {
    for (const run of corpus.runs) {
      const finiteTrain = run.curves.train_loss.map((c) => (typeof c === "number" ? c * 3 : c));
      const shuffled: StepRun = {
        ...run,
        curves: { ...run.curves, train_loss: finiteTrain, grad_norm: run.curves.grad_norm.map(() => 1) },
        evals: { ...run.evals, val_loss: run.evals.val_loss.map(() => 9) },
      };
      expect({ id: run.id, labels: labelRun(shuffled, t) }).toEqual({ id: run.id, labels: run.labels });
    }
  });

  test("each run's half is its seed's, every plan has at least two seeds in each half, every kind is in both halves", () => {
    for (const run of corpus.runs) {
      expect({ id: run.id, half: run.half }).toEqual({ id: run.id, half: halfOfSeed(run.seed, t.report_seeds_from) });
    }
    for (const plan of corpus.plans) {
      for (const half of ["tune", "report"] as const) {
        const seeds = corpus.runs.filter((r) => r.plan === plan.id && r.half === half).map((r) => r.seed);
        expect({ plan: plan.id, half, enough: seeds.length >= 2 }).toEqual({ plan: plan.id, half, enough: true });
      }
    }
    for (const kind of STEP_KINDS) {
      for (const half of ["tune", "report"] as const) {
        const planned = corpus.runs.some((r) => r.half === half && r.planned_kind === kind);
        const labelled = corpus.runs.some((r) => r.half === half && r.kind === kind);
        expect({ kind, half, planned, labelled }).toEqual({ kind, half, planned: true, labelled: true });
      }
    }
  });

  test("every step is logged and the evaluations fall every eval_every steps and at the last step", () => {
    for (const run of corpus.runs) {
      for (const curve of Object.values(run.curves)) expect(curve.length).toBe(run.steps);
      const expected = Array.from({ length: run.steps }, (_, s) => s).filter(
        (s) => s % run.eval_every === 0 || s === run.steps - 1,
      );
      expect({ id: run.id, steps: run.evals.step }).toEqual({ id: run.id, steps: expected });
      expect(run.evals.val_loss.length).toBe(expected.length);
      expect(run.evals.test_loss.length).toBe(expected.length);
    }
  });
});

describe("labels from the held-out loss", () => {
  const th: StepThresholds = { ...t, diverge_factor: 2, diverge_stays: 1.5 };
  const steps = (n: number) => Array.from({ length: n }, (_, i) => 50 * i);
  const run = (test: Cell[], spikes: [number, number][] = [], train?: Cell[]): Parameters<typeof labelRun>[0] => ({
    evals: { step: steps(test.length), val_loss: test, test_loss: test },
    curves: { train_loss: train ?? [1], learning_rate: [1], grad_norm: [1], step_time: [1] },
    events: { spikes, slowdowns: [], lr_change_step: null, inf_step: null },
  });

  test("a held-out loss that leaves for 2× its best and never comes back under 1.5× diverges where it left", () => {
    expect(divergedOnset(steps(6), [5, 2, 1.9, 4, 3, 100], th)).toBe(150);
    expect(divergedOnset(steps(6), [5, 2, 1.9, 4, 3, "NaN"].map(Number), th)).toBe(150);
  });
  test("a spike it comes back from is no divergence", () => {
    expect(divergedOnset(steps(6), [5, 2, 1.9, 4, 2.5, 2.0], th)).toBeNull();
  });
  test("a run non-finite from the first evaluation diverges at it", () => {
    expect(divergedOnset(steps(3), [Number.NaN, Number.NaN, Number.NaN], th)).toBe(0);
  });
  test("a spike recovers when the held-out loss is back within 5 % of its pre-spike value in the next evaluations", () => {
    const back = labelRun(run([5, 2, 1.9, 3, 2.2, 1.95], [[120, 125]]), th);
    expect(back.spikes).toEqual([{ from: 120, to: 125, recovered: true }]);
    const stuck = labelRun(run([5, 2, 1.9, 3, 2.5, 2.4], [[120, 125]]), th);
    expect(stuck.spikes).toEqual([{ from: 120, to: 125, recovered: false }]);
  });
  test("overfit: ends 1.1× or more above a held-out best reached before the end", () => {
    expect(labelRun(run([5, 2, 1.9, 2.0, 2.1]), th).overfit).toBe(true);
    expect(labelRun(run([5, 2, 1.9, 2.0, 2.05]), th).overfit).toBe(false);
  });
  test("stalled: never 5 % below the first held-out value", () => {
    expect(labelRun(run([5, 4.9, 4.8]), th).stalled).toBe(true);
    expect(labelRun(run([5, 4.9, 4.7]), th).stalled).toBe(false);
  });
  test("nan_step is the first non-finite train_loss, and a NaN run that diverges is of kind nan", () => {
    const labels = labelRun(run([5, 2, "NaN", "NaN"], [], [3, 2, "Infinity", "NaN"]), th);
    expect(labels.nan_step).toBe(2);
    expect(kindOf(labels, { spikes: [], slowdowns: [] }, "diverged")).toBe("nan");
  });
});
