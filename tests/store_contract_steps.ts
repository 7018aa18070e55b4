// The store contract's steps part (issue 22), run by tests/store_contract.ts over every Store: what the step write and
// the step reads promise whatever holds the data — round-trips, replace on re-post, atomic batches, the shared name
// bound, finished → refused, the epoch records derived from steps (equal to a from-scratch sum), reads by range,
// chosen steps, pages and block summaries, and progress in steps.
import { describe, expect, test } from "bun:test";
import { encodeEpoch, MAX_METRIC_NAMES, type EpochRecord } from "../src/schemas/epoch.ts";
import { decodeStep, type StepRecord } from "../src/schemas/step.ts";
import { epochRecord, sumSteps } from "../src/operations/step_epochs.ts";
import type { Store } from "../src/store/store.ts";
import { BLOCK } from "../src/store/blocks.ts";
import { summarizeRows } from "../src/trends/downsample.ts";
import { Rng } from "../src/trainer/datasets/prng.ts";
import { cancelControl } from "../src/operations/stop_policy.ts";

const T0 = Date.parse("2026-11-26T15:30:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

/** Step `s` of epoch `e`: a falling loss, a learning rate, a duration; an evaluation every 10 steps. */
export const stepOf = (s: number, e: number, extra: Partial<StepRecord> = {}): StepRecord => ({
  step: s,
  epoch: e,
  timestamp: at(s),
  train_loss: 1 / (s + 1),
  learning_rate: 0.1 / (1 + s),
  duration: 0.5,
  ...(s % 10 === 9 ? { val_loss: 2 / (s + 1), custom: { "eval/bleu": s } } : {}),
  ...extra,
});

export async function rejection(
  p: Promise<unknown>,
): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string; details?: Record<string, unknown> };
  }
  throw new Error("expected a rejection, got a result");
}

/** The derived records a from-scratch sum gives for every epoch of `steps` but `open` (the one still open). */
async function fromScratch(s: Store, id: string, open: number | null): Promise<Record<string, unknown>[]> {
  const rows = (await s.readSteps(id)).map((w) => decodeStep(w, w.timestamp!, "stored"));
  const epochs = [...new Set(rows.flatMap((r) => (r.epoch === undefined ? [] : [r.epoch])))].sort((a, b) => a - b);
  return epochs.filter((e) => e !== open).map((e) => encodeEpoch(epochRecord(sumSteps(e, rows))));
}

/** Numbers compared to 12 significant digits: a running sum and a from-scratch one may differ in the last bits. */
const rounded = (rows: readonly object[]) =>
  JSON.parse(JSON.stringify(rows, (_, v) => (typeof v === "number" ? Number(v.toPrecision(12)) : v)));

export function stepsContract(open: () => Promise<Store>): void {
  describe("steps", () => {
    test("round-trip in wire form, ascending, after since_step and up to until_step; NaN and ±Infinity are data", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      const res = await s.writeSteps(id, [
        stepOf(2, 0, { grad_norm: Number.NaN, samples: 64, tokens: 4096 }),
        {
          step: 0,
          timestamp: at(0),
          train_loss: Number.POSITIVE_INFINITY,
          custom: { "x/y": Number.NEGATIVE_INFINITY },
        },
        stepOf(1, 0),
      ]);
      expect(res).toMatchObject({ stored: 3, version: 1, epochs: null, control: null });
      expect(await s.readSteps(id)).toEqual([
        { step: 0, train_loss: "Infinity", "x/y": "-Infinity", timestamp: at(0) },
        { step: 1, epoch: 0, train_loss: 0.5, learning_rate: 0.05, duration: 0.5, timestamp: at(1) },
        {
          step: 2,
          epoch: 0,
          train_loss: 1 / 3,
          learning_rate: 0.1 / 3,
          grad_norm: "NaN",
          duration: 0.5,
          samples: 64,
          tokens: 4096,
          timestamp: at(2),
        },
      ] as never);
      expect((await s.readSteps(id, 0, 1)).map((r) => r.step)).toEqual([1]);
      expect(await s.readSteps(id, 0, 2, ["grad_norm", "epoch"])).toEqual([
        { step: 1, epoch: 0 },
        { step: 2, grad_norm: "NaN", epoch: 0 },
      ] as never);
      expect(await s.metricNames(id)).toEqual(["step", "x/y"]);
    });

    test("re-posting a step replaces it whole; a batch naming a step twice keeps the last copy; a retry stores once", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      const batch = Array.from({ length: 20 }, (_, i) => stepOf(i, 0));
      await s.writeSteps(id, batch);
      await s.writeSteps(id, batch);
      await s.writeSteps(id, [stepOf(5, 0, { train_loss: 9, grad_norm: 1 }), { step: 6, timestamp: at(6), tokens: 3 }]);
      await s.writeSteps(id, [stepOf(7, 0, { train_loss: 1 }), stepOf(7, 0, { train_loss: 2 })]);
      const rows = await s.readSteps(id);
      expect(rows.length).toBe(20);
      expect(rows[5]).toMatchObject({ train_loss: 9, grad_norm: 1 });
      expect(rows[6]).toEqual({ step: 6, tokens: 3, timestamp: at(6) } as never);
      expect(rows[7]!.train_loss).toBe(2);
    });

    test("a step of a later epoch closes the open one: its record is derived from its steps, as the contract words it", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      const first = await s.writeSteps(
        id,
        Array.from({ length: 30 }, (_, i) => stepOf(i, 0)),
      );
      expect(first.epochs).toBeNull();
      expect(await s.readEpochs(id)).toEqual([]);
      const second = await s.writeSteps(id, [stepOf(30, 1, { duration: null })]);
      expect(second.epochs!.records.map((r) => r.epoch)).toEqual([0]);
      expect(second.trends.total_epochs_completed).toBe(1);
      const mean = Array.from({ length: 30 }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b) / 30;
      const [e0] = await s.readEpochs(id);
      expect(e0!.epoch).toBe(0);
      expect(e0!.train_loss as number).toBeCloseTo(mean, 12);
      expect(e0).toMatchObject({ val_loss: 2 / 30, "eval/bleu": 29, learning_rate: 0.1, duration: 15, step: 29 });
      expect(e0!.timestamp).toBe(at(29));
      // Epoch 1 has a step without a duration: its duration is the span of its timestamps (0 s for one step).
      expect(await s.closeSteps(id)).toMatchObject({ records: [{ epoch: 1, duration: 0 }] });
      expect(await s.closeSteps(id)).toBeNull();
      expect(await s.epochEnds(id)).toEqual([
        { epoch: 0, step: 29 },
        { epoch: 1, step: 30 },
      ]);
    });

    test("a re-post of a closed epoch's step updates its derived record", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      await s.writeSteps(id, [...Array.from({ length: 10 }, (_, i) => stepOf(i, 0)), stepOf(10, 1)]);
      const before = (await s.readEpochs(id))[0]!;
      const res = await s.writeSteps(id, [stepOf(3, 0, { train_loss: 100 })]);
      expect(res.epochs!.records.map((r) => r.epoch)).toEqual([0]);
      const after = (await s.readEpochs(id))[0]!;
      expect((after.train_loss as number) - (before.train_loss as number)).toBeCloseTo((100 - 1 / 4) / 10, 12);
    });

    test("the derived records equal a from-scratch sum of the stored steps, whatever the write pattern", async () => {
      for (const seed of [1, 2, 3, 4, 5]) {
        const s = await open();
        const id = (await s.createOperation({ operation_type: "training" })).operation_id;
        const rng = new Rng(seed);
        const r = () => rng.next();
        let next = 0;
        let epoch = 0;
        for (let w = 0; w < 25; w++) {
          const batch: StepRecord[] = [];
          const n = 1 + Math.floor(r() * 30);
          for (let i = 0; i < n; i++) {
            if (r() < 0.25 && next > 0) {
              // A re-post of an earlier step, in its own epoch or (rarely) labelled with another.
              const old = Math.floor(r() * next);
              const stored = (await s.readStepsAt(id, [old]))[0];
              const e = stored?.epoch ?? epoch;
              batch.push(
                stepOf(old, r() < 0.1 ? Math.max(0, e - 1) : e, {
                  train_loss: r() < 0.1 ? Number.NaN : r(),
                  ...(r() < 0.3 ? { val_loss: r() } : {}),
                  duration: r() < 0.1 ? null : r(),
                }),
              );
            } else {
              if (r() < 0.06) epoch++;
              batch.push(stepOf(next++, epoch, { train_loss: r(), duration: r() < 0.05 ? null : 0.5 }));
            }
          }
          await s.writeSteps(id, batch);
        }
        const stored = (await s.readEpochs(id)).map((e) => ({ ...e }));
        // The open epoch has no record yet (unless an explicit one was posted: none here).
        const openEpoch = Math.max(...(await s.readSteps(id)).map((r) => r.epoch ?? -1));
        expect([seed, rounded(stored)]).toEqual([seed, rounded(await fromScratch(s, id, openEpoch))]);
      }
    });

    test("a refused batch stores nothing: past the shared name bound (named in the batch), or on a finished operation", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      // Epochs hold all but one name of the bound; a step batch adding two is refused whole, naming the step's field.
      const names = Array.from({ length: MAX_METRIC_NAMES - 1 }, (_, i) => `m${String(i).padStart(3, "0")}`);
      await s.writeEpochs(id, [
        { epoch: 0, timestamp: at(0), custom: Object.fromEntries(names.map((n) => [n, 1])) } as EpochRecord,
      ]);
      const err = await rejection(
        s.writeSteps(id, [
          { step: 0, timestamp: at(0), train_loss: 1 },
          { step: 1, timestamp: at(1), custom: { a: 1, b: 2 } },
        ]),
      );
      expect(err.code).toBe("VALIDATION_ERROR");
      expect(err.details).toMatchObject({ field: "body.steps.1.b", limit: MAX_METRIC_NAMES, step: 1 });
      expect(await s.readSteps(id)).toEqual([]);
      // Known names pass.
      await s.writeSteps(id, [{ step: 0, timestamp: at(0), custom: { m000: 1, a: 2 } }]);
      expect((await s.metricNames(id)).length).toBe(MAX_METRIC_NAMES);

      await s.finish(id, "completed");
      const finished = await rejection(s.writeSteps(id, [stepOf(1, 0)]));
      expect(finished.code).toBe("OPERATION_FINISHED");
      expect((await s.readSteps(id)).map((r) => r.step)).toEqual([0]);
      expect((await rejection(s.writeSteps("op_missing", [stepOf(0, 0)]))).code).toBe("OPERATION_NOT_FOUND");
    });

    test("a cancelled step run takes the rest of the epoch in progress at the cancel: its record is summed from all its steps", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      const steps = (from: number, to: number) =>
        Array.from({ length: to - from + 1 }, (_, i) => stepOf(from + i, Math.floor((from + i) / 10)));
      await s.writeSteps(id, steps(0, 14)); // epoch 0 closed, epoch 1 open at step 14
      const op = (await s.getOperation(id))!;
      const cancel = cancelControl({ by: "test" }, op.trends, at(14), op.progress.steps_completed! - 1);
      expect(cancel).toMatchObject({ epoch: 0, step: 14 });
      // As the service cancels: the open epoch closes, then the operation finishes.
      await s.closeSteps(id);
      await s.finish(id, "cancelled", { control: cancel });
      const late = await s.writeSteps(id, steps(15, 19));
      expect(late.stored).toBe(5);
      expect(late.control).toMatchObject({ action: "stop", decided_by: "test" });
      expect(late.epochs?.records.map((r) => r.epoch)).toEqual([1]);
      const epochs = await s.readEpochs(id);
      expect(rounded(epochs)).toEqual(rounded(await fromScratch(s, id, null)));
      expect(epochs[1]).toMatchObject({ epoch: 1, step: 19 });
      expect(await s.getOperation(id)).toMatchObject({ status: "cancelled", progress: { steps_completed: 20 } });
      // The next epoch's steps began after the cancel: refused whole, also when mixed with the grace epoch's.
      for (const batch of [steps(20, 21), [stepOf(19, 1), stepOf(20, 2)], [{ ...stepOf(20, 0), epoch: undefined }]]) {
        expect((await rejection(s.writeSteps(id, batch))).code).toBe("OPERATION_FINISHED");
      }
      expect((await s.readSteps(id)).map((r) => r.step)).toEqual(steps(0, 19).map((r) => r.step));
    });

    test("the first step write starts a pending operation; steps_completed and total_steps give the progress", async () => {
      const s = await open();
      const op = await s.createOperation({ operation_type: "training", status: "pending", total_steps_planned: 200 });
      expect(op.progress).toMatchObject({ steps_completed: 0, total_steps: 200, percentage: 0 });
      const res = await s.writeSteps(op.operation_id, [stepOf(49, 0)]);
      expect(res.statusChanged).toBe(true);
      const after = (await s.getOperation(op.operation_id))!;
      expect(after.status).toBe("running");
      expect(after.progress).toMatchObject({ steps_completed: 50, total_steps: 200, percentage: 25 });
      // A per-epoch operation's progress reads as before steps existed.
      const epochs = await s.createOperation({ operation_type: "training", total_epochs_planned: 4 });
      expect(Object.keys(epochs.progress).sort()).toEqual(
        ["current_epoch", "epochs_completed", "percentage", "total_epochs"].sort(),
      );
    });

    test("chart reads: chosen steps, steps before one, pages, and block summaries equal to a summary of their rows", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      await s.writeSteps(
        id,
        Array.from({ length: 600 }, (_, i) => stepOf(2 * i, Math.floor(i / 200))),
      );
      await s.writeSteps(id, [stepOf(300, 0, { train_loss: Number.NaN }), stepOf(301, 0)]);
      const all = await s.readSteps(id);
      expect(all.length).toBe(601);
      expect((await s.readStepsAt(id, [0, 301, 5, 1198])).map((r) => r.step)).toEqual([0, 301, 1198]);
      expect((await s.readStepsBefore(id, 301, 3)).map((r) => r.step)).toEqual([296, 298, 300]);
      const paged: number[] = [];
      for (let after = -1; ; ) {
        const page = await s.readStepPage(id, after, 97);
        paged.push(...page.map((r) => r.step));
        if (page.length < 97) break;
        after = page[page.length - 1]!.step;
      }
      expect(paged).toEqual(all.map((r) => r.step));
      for (const b of new Set(all.map((r) => Math.floor(r.step / BLOCK)))) {
        const inBlock = all.filter((r) => Math.floor(r.step / BLOCK) === b);
        expect([b, await s.stepSpans(id, b * BLOCK, b * BLOCK + BLOCK - 1)]).toEqual([
          b,
          [summarizeRows(inBlock, 0, inBlock.length, undefined, "step")],
        ]);
      }
      const spans = await s.stepSpans(id, 5, 1000);
      expect(spans.reduce((n, sp) => n + sp.count, 0)).toBe((await s.readSteps(id, 4, 1000)).length);
      for (const call of [
        () => s.readSteps("op_missing"),
        () => s.readStepsAt("op_missing", [1]),
        () => s.readStepsBefore("op_missing", 5, 5),
        () => s.stepSpans("op_missing", 0, 10),
        () => s.epochEnds("op_missing"),
      ])
        expect((await rejection(call())).code).toBe("OPERATION_NOT_FOUND");
    });
  });
}
