// The judgement benchmark's ground truth: the engine's held-out rows, the split by seed, and the corpus labels, recomputed
// from the committed held-out curves by the rules the corpus states. (tests/judgement_corpus.test.ts pins what the
// judgement reaches on them.)

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PLANS } from "../bench/judgement_corpus.ts";
import {
  blowUpEpoch,
  halfOf,
  heldOutBest,
  KINDS,
  kindOf,
  loadCorpus,
  type Cell,
} from "../bench/judgement_corpus_format.ts";
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

  test("every label is what the committed held-out curve shows", () => {
    for (const run of corpus.runs) {
      const best = heldOutBest(run.curves.test_loss);
      expect({ id: run.id, best: best.epoch, blowUp: blowUpEpoch(run.curves.test_loss) }).toEqual({
        id: run.id,
        best: run.labels.held_out_best_epoch,
        blowUp: run.labels.blow_up_epoch,
      });
      // Only the held-out curve goes in: the curves the judgement reads cannot move a label.
      const kind = kindOf({ test_loss: run.curves.test_loss }, run.planned_kind);
      expect({ id: run.id, kind: kind.kind, relabelled: run.relabel_reason !== null }).toEqual({
        id: run.id,
        kind: run.kind,
        relabelled: run.kind !== run.planned_kind,
      });
    }
  });

  test("each run's half is the one its seed gives, and each half holds every kind and the same plans", () => {
    for (const run of corpus.runs) expect({ id: run.id, half: run.half }).toEqual({ id: run.id, half: halfOf(run) });
    const tune = corpus.runs.filter((r) => r.half === "tune");
    const report = corpus.runs.filter((r) => r.half === "report");
    expect(report.map((r) => r.id.replace(/-s\d+$/, "")).sort()).toEqual(tune.map((r) => r.id).sort());
    for (const kind of KINDS) {
      expect({ kind, tune: tune.some((r) => r.kind === kind) }).toEqual({ kind, tune: true });
      expect({ kind, report: report.some((r) => r.kind === kind) }).toEqual({ kind, report: true });
    }
  });

  test("it holds one run per plan and curves of one length per run", () => {
    expect(corpus.runs.map((r) => r.id).sort()).toEqual(PLANS.map((p) => p.id).sort());
    for (const run of corpus.runs) {
      const n = run.curves.train_loss.length;
      for (const c of Object.values(run.curves)) expect(c.length).toBe(n);
    }
  });
});

describe("labels from the held-out loss", () => {
  test("NaN from the first epoch blows up at 0", () => expect(blowUpEpoch(["NaN", "NaN"])).toBe(0));
  test("a held-out loss that leaves 5× its best for good blows up where it left", () => {
    expect(blowUpEpoch([1, 0.5, 0.4, 3, 1e6, "NaN"])).toBe(3);
  });
  test("a spike that training comes back from is no blow-up", () =>
    expect(blowUpEpoch([1, 0.5, 50, 0.4, 0.3])).toBeNull());
  test("a jump near zero that stays below the first value is no blow-up", () =>
    expect(blowUpEpoch([1, 0.01, 0.2, 0.3])).toBeNull());

  const kind = (test: Cell[], planned: (typeof KINDS)[number] = "healthy") => kindOf({ test_loss: test }, planned).kind;
  const falling = (n: number, from: number, to: number) =>
    Array.from({ length: n }, (_, e) => from + ((to - from) * e) / (n - 1));
  test("a held-out loss that never gets 5 % below its first value is stalled", () => {
    expect(kind(falling(30, 1, 0.96))).toBe("stalled");
    expect(kind(falling(30, 1, 0.94))).toBe("healthy");
  });
  test("a held-out loss whose 5-epoch mean ends 1.2× its low, 5 or more epochs later, is overfit", () => {
    expect(kind([...falling(10, 1, 0.5), ...falling(10, 0.5, 0.8)])).toBe("overfit");
    expect(kind([...falling(10, 1, 0.5), ...falling(10, 0.5, 0.55)])).toBe("healthy");
  });
  test("a learning run planned noisy stays noisy", () => expect(kind(falling(20, 1, 0.3), "noisy")).toBe("noisy"));
});
