// The store contract's retention part (issue 26), run by tests/store_contract.ts over every Store: Store.pruneSteps
// removes the step rows of runs finished before the cutoff and keeps everything a finished run is read by (epochs,
// trends, step judgement, epoch ends, step blocks), marks the run pruned, and leaves unfinished and recent runs alone.
import { describe, expect, test } from "bun:test";
import type { Store } from "../src/store/store.ts";
import { stepOf } from "./store_contract_steps.ts";

/** A run of `count` steps over epochs of 100 steps, with a NaN run and a spike, finished as `status` (or left running). */
async function stepRun(s: Store, count: number, status: "completed" | "failed" | null): Promise<string> {
  const id = (await s.createOperation({ operation_type: "training" })).operation_id;
  const steps = Array.from({ length: count }, (_, i) =>
    stepOf(i, Math.floor(i / 100), i >= 40 && i < 43 ? { grad_norm: Number.NaN } : i === 77 ? { train_loss: 9 } : {}),
  );
  for (let i = 0; i < steps.length; i += 100) await s.writeSteps(id, steps.slice(i, i + 100));
  if (status) await s.finish(id, status);
  return id;
}

/** Everything a finished run is read by besides its step rows. */
async function kept(s: Store, id: string) {
  const op = (await s.getOperation(id))!;
  return {
    trends: op.trends,
    steps_completed: op.progress.steps_completed,
    epochs: await s.readEpochs(id),
    judgement: await s.readStepJudgement(id),
    ends: await s.epochEnds(id),
    spans: await s.stepSpans(id, 0, 10_000),
  };
}

/** The ms after `iso`, spinning out the (sub-millisecond) wait: a later finish then has a later completed_at. */
function justAfter(iso: string): number {
  const cutoff = Date.parse(iso) + 1;
  while (Date.now() <= cutoff) {
    // a millisecond at most
  }
  return cutoff;
}

export function retentionContract(open: () => Promise<Store>): void {
  describe("retention of step rows", () => {
    test("a run finished before the cutoff loses its step rows and keeps its epochs, trends, judgement, ends and blocks", async () => {
      const s = await open();
      const old = await stepRun(s, 300, "completed");
      const failed = await stepRun(s, 150, "failed");
      const before = await kept(s, old);
      const cutoff = justAfter((await s.getOperation(failed))!.completed_at!);
      const running = await stepRun(s, 200, null);
      const recent = await stepRun(s, 120, "completed");
      const recentRows = await s.readSteps(recent);
      const now = cutoff + 86_400_000;

      const res = await s.pruneSteps(cutoff, now);
      expect(res.operations).toEqual([old, failed].sort());
      expect(await s.readSteps(old)).toEqual([]);
      expect(await s.readSteps(failed)).toEqual([]);
      expect(await s.readStepPage(old, -1, 1000)).toEqual([]);
      expect(await kept(s, old)).toEqual(before);
      expect(before.spans.reduce((n, sp) => n + sp.count, 0)).toBe(300);
      const op = (await s.getOperation(old))!;
      expect(op.status).toBe("completed");
      expect(op.progress.steps_pruned_at).toBe(new Date(now).toISOString());
      // Untouched: a running run, a run finished since the cutoff.
      expect(await s.readSteps(running)).toHaveLength(200);
      expect(await s.readSteps(recent)).toEqual(recentRows);
      expect((await s.getOperation(recent))!.progress.steps_pruned_at).toBeUndefined();
      expect((await s.getOperation(running))!.progress.steps_pruned_at).toBeUndefined();
      // Once pruned, a round with the same cutoff has nothing left to do, and the mark keeps its first time.
      expect((await s.pruneSteps(cutoff, now + 1)).operations).toEqual([]);
      expect((await s.getOperation(old))!.progress.steps_pruned_at).toBe(new Date(now).toISOString());
    });

    test("a run with epochs and no step, and a run finished after the cutoff, are not marked", async () => {
      const s = await open();
      const epochsOnly = (await s.createOperation({ operation_type: "training" })).operation_id;
      await s.writeEpochs(epochsOnly, [{ epoch: 0, timestamp: new Date().toISOString(), train_loss: 1 }]);
      await s.finish(epochsOnly, "completed");
      const cutoff = justAfter((await s.getOperation(epochsOnly))!.completed_at!);
      const later = await stepRun(s, 50, "completed");
      expect((await s.pruneSteps(cutoff, cutoff)).operations).toEqual([]);
      expect(await s.readSteps(later)).toHaveLength(50);
      expect(await s.readEpochs(epochsOnly)).toHaveLength(1);
    });
  });
}
