// The judgement kept on write against the judgement of the whole history: every run of the epoch judgement corpus
// (bench/corpus/judgement.json) and of the step corpus (bench/corpus/steps.json, each evaluation closing an epoch), and
// long synthetic runs that reach past the 64 epochs a read looks at, are written through the real store in seeded random
// batches; after every batch, and once finished, the judgement read from the
// stored state (src/operations/reads.ts judgeStored) must deep-equal judgeRun over the full history, on SQLite and on
// PostgreSQL. The read is checked to come from the kept state: the store it reads through refuses a full history read.
import { describe, expect, test } from "bun:test";
import { cellValue, loadCorpus } from "../bench/judgement_corpus_format.ts";
import type { EpochRecord } from "../src/schemas/epoch.ts";
import type { StepRecord } from "../src/schemas/step.ts";
import { Rng } from "../src/trainer/datasets/prng.ts";
import { judgeOperation } from "../src/operations/judgement.ts";
import { analyzeOperation, judgeStored, withLiveness, type JudgementStore } from "../src/operations/reads.ts";
import { withStepJudgement } from "../src/operations/step_judgement.ts";
import { stepPoint } from "../src/store/write_steps.ts";
import { advanceStepJudgement, emptyStepJudgement } from "../src/trends/step_judgement.ts";
import { loadStepCorpus, type StepRun } from "../bench/step_corpus_format.ts";
import { stepPoints } from "../bench/step_judgement.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { Store } from "../src/store/store.ts";
import { DEFAULT_TREND_CONFIG } from "../src/trends/types.ts";
import { dropSchema, schemaName, withPostgres } from "./fixtures/postgres.ts";

const cfg = DEFAULT_TREND_CONFIG;
const TS = "2024-01-01T00:00:00.000Z";

/** The trainer's seeded PRNG (mulberry32), so a failure replays. */
function prng(seed: number): () => number {
  const g = new Rng(seed);
  return () => g.next();
}

interface Run {
  id: string;
  epochs: EpochRecord[];
  /** Checkpoint epochs a Trainwatch holding lists after the epochs up to `upTo`; null: an external trainer. */
  checkpoints: ((upTo: number) => number[]) | null;
}

const corpusRuns = (): Run[] =>
  loadCorpus().runs.map((run, i) => ({
    id: run.id,
    epochs: run.curves.train_loss.map((_, e) => {
      const r: EpochRecord = { epoch: e, timestamp: TS };
      const t = cellValue(run.curves.train_loss[e]);
      const v = cellValue(run.curves.val_loss[e]);
      if (t !== null) r.train_loss = t;
      if (v !== null) r.val_loss = v;
      return r;
    }),
    // Every other run as a local training holding a best (an early epoch) and a last checkpoint.
    checkpoints: i % 2 ? (upTo) => [Math.floor(upTo / 3), upTo] : null,
  }));

/**
 * Long runs past the read's 64 epochs: noisy descents with lucky dips, sparse validation, a NaN, a plateau, an overfit
 * and a blow-up, so the kept windows, the gap's span from an old best and the kept lowest epochs all decide.
 */
function syntheticRuns(): Run[] {
  const rnd = prng(7);
  const noise = (s: number) => (rnd() - 0.5) * s;
  const make = (id: string, n: number, f: (e: number) => Partial<EpochRecord>, checkpoints: Run["checkpoints"]) => ({
    id,
    epochs: Array.from({ length: n }, (_, e) => ({ epoch: e, timestamp: TS, ...f(e) }) as EpochRecord),
    checkpoints,
  });
  const dips = (e: number) => ({
    train_loss: 1 / (1 + e / 20) + noise(0.01),
    val_loss: (e % 37 === 5 ? 0.6 : 1) * (1.1 / (1 + e / 25)) + noise(0.02),
  });
  return [
    make("lucky-dips", 400, dips, null),
    // A local training whose older checkpoint (epoch 79) is a lucky dip, long out of the read's 64 epochs: only its
    // neighbours, read with it, tell that epoch 90 is the one to restore.
    make("lucky-dips-local", 300, dips, (upTo) => (upTo < 90 ? [upTo] : [79, 90])),
    make(
      "sparse-val-overfit",
      300,
      (e) => ({
        train_loss: 1 / (1 + e / 10) + noise(0.005),
        ...(e % 7 === 0 ? { val_loss: 0.5 + ((e - 120) / 300) ** 2 + noise(0.01) } : {}),
      }),
      (upTo) => [60, 120, Math.max(0, upTo - 1)],
    ),
    make(
      "plateau-then-nan",
      250,
      (e) => ({
        train_loss: e === 240 ? Number.NaN : 0.5 + noise(0.05),
        val_loss: 0.6 + noise(0.05),
      }),
      (upTo) => [10, upTo],
    ),
    make(
      "blow-up",
      200,
      (e) => ({
        train_loss: e < 150 ? 1 / (1 + e / 10) + noise(0.01) : 0.1 * 1.2 ** (e - 150),
        val_loss: e < 150 ? 1.1 / (1 + e / 10) + noise(0.01) : 0.12 * 1.2 ** (e - 150),
      }),
      null,
    ),
  ];
}

/** The store as judgeStored reads it, refusing a full history read: the kept state must answer. */
function keptOnly(store: Store): JudgementStore {
  return {
    readJudgement: (id) => store.readJudgement(id),
    keepJudgement: () => {
      throw new Error("the kept state was not used (keepJudgement)");
    },
    readEpochs: () => {
      throw new Error("the kept state was not used (readEpochs)");
    },
    readEpochsBefore: (id, epoch, limit, fields) => store.readEpochsBefore(id, epoch, limit, fields),
    readEpochPage: (id, after, limit) => store.readEpochPage(id, after, limit),
  };
}

/** Writes `run` in random batches; after each, and once finished, the kept judgement equals the full one. Returns the reads compared. */
async function replay(store: Store, run: Run, rnd: () => number): Promise<number> {
  const local = run.checkpoints !== null;
  const op = await store.createOperation({
    operation_type: "training",
    name: run.id,
    metadata: local ? { location: "local" } : {},
  });
  const id = op.operation_id;
  let compared = 0;
  const check = async (what: string) => {
    const now = (await store.getOperation(id))!;
    const kept = await judgeStored(keptOnly(store), now, cfg);
    const full = judgeOperation(now, await store.readEpochs(id), cfg);
    expect({ what, judgement: kept.judgement }).toEqual({ what, judgement: full });
    compared++;
  };
  for (let i = 0; i < run.epochs.length; ) {
    // Mostly small batches, now and then a long one (past the summary's tail), as trainers and spools send them.
    const size = rnd() < 0.1 ? 1 + Math.floor(rnd() * 40) : 1 + Math.floor(rnd() * 6);
    const batch = run.epochs.slice(i, i + size);
    i += batch.length;
    await store.writeEpochs(id, batch);
    if (run.checkpoints) {
      const cps = run
        .checkpoints(i - 1)
        .map((epoch, k) => ({ epoch, kind: k ? "last" : "best", path: `/cp/${epoch}` }));
      await store.mergeMetadata(id, { checkpoints: cps });
    }
    await check(`${run.id} after epoch ${i - 1}`);
  }
  await store.finish(id, "completed");
  await check(`${run.id} completed`);
  return compared;
}

/**
 * A step run written in seeded random batches of steps: after each batch, and once closed and completed, the analysis
 * read from what the writes kept (the epoch judgement of its derived epochs and the step judgement) deep-equals the one
 * judged from scratch: judgeRun over every derived epoch, and the step rules advanced once over every step posted.
 */
async function replaySteps(store: Store, name: string, steps: readonly StepRecord[], rnd: () => number): Promise<void> {
  const id = (await store.createOperation({ operation_type: "training", name })).operation_id;
  let sent = 0;
  const check = async (what: string) => {
    const now = (await store.getOperation(id))!;
    const kept = (
      await analyzeOperation(
        {
          ...keptOnly(store),
          readStepJudgement: (i) => store.readStepJudgement(i),
          latestSystemSample: (i) => store.latestSystemSample(i),
        },
        now,
        cfg,
      )
    ).analysis;
    const epochs = await store.readEpochs(id);
    const judged = steps.slice(0, sent).map(stepPoint);
    const full = withLiveness(
      withStepJudgement(
        {
          operation_id: id,
          operation_type: now.operation_type,
          status: now.status,
          epochs_completed: now.trends.total_epochs_completed,
          total_epochs_planned: now.progress.total_epochs,
          ...judgeOperation(now, epochs, cfg),
          final: epochs[epochs.length - 1] ?? null,
        },
        now.progress.steps_completed ? advanceStepJudgement(emptyStepJudgement(), judged) : null,
      ),
      now,
    );
    expect({ what, analysis: kept }).toEqual({ what, analysis: full });
  };
  while (sent < steps.length) {
    const batch = steps.slice(sent, sent + 1 + Math.floor(rnd() * 80));
    sent += batch.length;
    await store.writeSteps(id, batch);
    await check(`${name} after step ${sent - 1}`);
  }
  await store.closeSteps(id);
  await store.finish(id, "completed");
  await check(`${name} completed`);
}

/** A synthetic step run: 40 epochs of 25 steps, evaluated every 50 steps, with one spike. */
function syntheticSteps(rnd: () => number): StepRecord[] {
  return Array.from({ length: 1000 }, (_, step) => ({
    step,
    epoch: Math.floor(step / 25),
    timestamp: TS,
    train_loss: 2 / (1 + step / 100) + (rnd() - 0.5) * 0.2 + (step === 400 ? 3 : 0),
    ...(step % 50 === 49 ? { val_loss: 2.1 / (1 + step / 150) + ((step - 600) / 800) ** 2 } : {}),
  }));
}

/** A step-corpus run as a trainer posts it (bench/step_judgement.ts stepPoints), each evaluation closing an epoch. */
function corpusSteps(run: StepRun): StepRecord[] {
  return stepPoints(run).map((p) => ({ ...p, epoch: Math.floor(p.step / run.eval_every), timestamp: TS }));
}

function equivalence(name: string, open: () => Promise<{ store: Store; close: () => Promise<void> }>) {
  /** Runs `f` on a fresh store, closed afterwards. */
  const on = async (f: (store: Store) => Promise<void>) => {
    const { store, close } = await open();
    try {
      await f(store);
    } finally {
      await close();
    }
  };
  describe(`the judgement kept on write (${name})`, () => {
    test(
      "a step run, its steps written in seeded random batches, reads the judgement of its derived epochs' whole history",
      () => on((store) => replaySteps(store, "synthetic", syntheticSteps(prng(21)), prng(22))),
      60_000,
    );

    test(
      "every step-corpus run, its steps written in seeded random batches, reads the analysis judged from scratch (derived epochs and steps) after every batch and once completed",
      () =>
        on(async (store) => {
          const rnd = prng(24);
          for (const run of loadStepCorpus().runs) await replaySteps(store, run.id, corpusSteps(run), rnd);
        }),
      300_000,
    );

    test(
      "every epoch-corpus run, written in seeded random batches, reads the judgement of its whole history after every batch and once completed",
      () =>
        on(async (store) => {
          const rnd = prng(23);
          let compared = 0;
          for (const run of corpusRuns()) compared += await replay(store, run, rnd);
          expect(compared).toBeGreaterThan(128 * 2);
        }),
      120_000,
    );

    test(
      "long runs past the 64 epochs a read looks at (lucky dips, sparse validation, NaN, plateau, blow-up, old checkpoints) read it too",
      () =>
        on(async (store) => {
          const rnd = prng(2023);
          for (const run of syntheticRuns()) await replay(store, run, rnd);
        }),
      120_000,
    );
  });
}

equivalence("SQLite", async () => {
  const store = new SqliteStore(":memory:", cfg);
  return { store, close: () => store.close() };
});

await withPostgres("the judgement kept on write on PostgreSQL", (url) => {
  equivalence("PostgreSQL", async () => {
    const schema = schemaName();
    const store = await PostgresStore.open(url, { schema, trends: cfg });
    return {
      store,
      close: async () => {
        await store.close();
        await dropSchema(url, schema);
      },
    };
  });
});

describe("a row from before the kept judgement", () => {
  test("its first analysis read judges the history once and keeps the state; the next read uses it", async () => {
    const store = new SqliteStore(":memory:", cfg);
    try {
      const id = (await store.createOperation({ operation_type: "training" })).operation_id;
      await store.writeEpochs(id, corpusRuns()[0]!.epochs);
      store.db.run("UPDATE operations SET judgement = NULL, best_json = NULL WHERE operation_id = ?", [id]);
      const op = (await store.getOperation(id))!;
      const full = judgeOperation(op, await store.readEpochs(id), cfg);
      await expect(judgeStored(keptOnly(store), op, cfg)).rejects.toThrow("the kept state was not used");
      expect((await judgeStored(store, op, cfg)).judgement).toEqual(full);
      expect((await store.readJudgement(id))!.judgement).not.toBeNull();
      expect((await judgeStored(keptOnly(store), op, cfg)).judgement).toEqual(full);
    } finally {
      store.close();
    }
  });
});
