// The judgement benchmark's ground truth: the engine's held-out rows, and the corpus labels, recomputed from the committed
// curves by the rules the generator states. (tests/judgement_corpus.test.ts pins what the judgement reaches on them.)

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kindOf, PLANS } from "../bench/judgement_corpus.ts";
import { blowUpEpoch, heldOutBest, loadCorpus, type Cell } from "../bench/judgement_corpus_format.ts";
import type { EpochRecord } from "../src/schemas/epoch.ts";
import { validateSpec } from "../src/schemas/spec_rules.ts";
import { selectBackend } from "../src/trainer/backend.ts";
import { runTraining } from "../src/trainer/engine.ts";
import type { StartReport } from "../src/schemas/host.ts";

describe("held-out rows in the engine", () => {
  let modelsDir = "";
  beforeAll(async () => {
    modelsDir = mkdtempSync(join(tmpdir(), "trainwatch-heldout-"));
    await selectBackend();
  });
  afterAll(() => rmSync(modelsDir, { recursive: true, force: true }));

  test("held-out rows leave the split, get a finite loss after every epoch, and stay out of the records", async () => {
    const v = validateSpec({
      dataset: { kind: "synthetic", generator: "spirals", samples: 300, seed: 1 },
      training: { epochs: 3, seed: 42, validation_split: 0.2 },
    });
    if (!v.ok) throw new Error(v.message);
    const held: [number, number][] = [];
    const records: EpochRecord[] = [];
    let start: StartReport | null = null;
    await runTraining(
      v.spec,
      { modelsDir, operationId: "held-out", heldOut: { rows: 100, onEpoch: (e, loss) => void held.push([e, loss]) } },
      { onStart: (i) => (start = i), onEpoch: (e) => void records.push(e), onProgress: () => {} },
    );
    expect(start!.samples_train + start!.samples_val).toBe(200);
    expect(start!.samples_val).toBe(40);
    expect(held.map(([e]) => e)).toEqual([0, 1, 2]);
    for (const [, loss] of held) expect(Number.isFinite(loss) && loss > 0).toBe(true);
    for (const r of records) expect(Object.keys(r).some((k) => k.includes("test") || k.includes("held"))).toBe(false);
  });
});

describe("the corpus", () => {
  const corpus = loadCorpus();

  test("every label is what the committed curves show", () => {
    for (const run of corpus.runs) {
      const best = heldOutBest(run.curves.test_loss);
      expect({ id: run.id, best: best.epoch, blowUp: blowUpEpoch(run.curves) }).toEqual({
        id: run.id,
        best: run.labels.held_out_best_epoch,
        blowUp: run.labels.blow_up_epoch,
      });
      expect({ id: run.id, kind: kindOf(run.curves, run.planned_kind).kind }).toEqual({ id: run.id, kind: run.kind });
    }
  });

  test("it holds one run per plan, every kind, and curves of one length per run", () => {
    expect(corpus.runs.map((r) => r.id).sort()).toEqual(PLANS.map((p) => p.id).sort());
    for (const kind of ["healthy", "noisy", "overfit", "exploding", "stalled"])
      expect(corpus.runs.some((r) => r.kind === kind)).toBe(true);
    for (const run of corpus.runs) {
      const n = run.curves.train_loss.length;
      for (const c of Object.values(run.curves)) expect(c.length).toBe(n);
    }
  });
});

describe("blow-up epoch", () => {
  const curves = (train: Cell[]) => ({ train_loss: train, val_loss: train.map(() => null) });
  test("NaN from the first epoch blows up at 0", () => expect(blowUpEpoch(curves(["NaN", "NaN"]))).toBe(0));
  test("a loss that leaves 10× its best for good blows up where it left", () => {
    expect(blowUpEpoch(curves([1, 0.5, 0.4, 8, 1e6, "NaN"]))).toBe(3);
  });
  test("a spike that training comes back from is no blow-up", () =>
    expect(blowUpEpoch(curves([1, 0.5, 50, 0.4, 0.3]))).toBeNull());
  test("a jump near zero that stays below the first value is no blow-up", () =>
    expect(blowUpEpoch(curves([1, 0.01, 0.2, 0.3]))).toBeNull());
});
