// Retention of step rows (issue 26) above the store: the periodic job with the clock as a parameter (a run keeps its
// rows until its age passes TRAINWATCH_STEP_RETENTION_DAYS, not a minute earlier), and what GET …/steps answers for a
// pruned run (app.handle on an in-memory store): the chart drawn from its blocks, a zoom inside one block, the setting.
import { describe, expect, test } from "bun:test";
import { DAY_MS, startStepRetention } from "../src/operations/step_retention.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { BLOCK, spanPoints } from "../src/store/blocks.ts";
import { loadConfig } from "../src/config.ts";
import { json, makeApp, req } from "./helpers.ts";

const T0 = Date.parse("2026-11-26T15:30:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

/** A noisy falling loss with a spike at step 700 and a NaN at 300, an accuracy every 50 steps. */
const stepAt = (s: number) => ({
  step: s,
  epoch: Math.floor(s / 250),
  timestamp: at(s),
  train_loss: s === 300 ? "NaN" : s === 700 ? 50 : 1 / (s + 1) + ((s * 7919) % 13) / 1000,
  ...(s % 50 === 49 ? { val_accuracy: s / 1000 } : {}),
});

describe("the retention job", () => {
  test("a run keeps its step rows until it finished more than the configured days ago, by the clock it is given", async () => {
    const store = new SqliteStore(":memory:");
    const id = (await store.createOperation({ operation_type: "training" })).operation_id;
    await store.writeSteps(id, [
      { step: 0, timestamp: at(0), train_loss: 1 },
      { step: 1, timestamp: at(1), train_loss: 0.5 },
    ]);
    const finished = Date.parse((await store.finish(id, "completed")).completed_at!);
    let now = finished + 2 * DAY_MS - 60_000;
    const lines: string[] = [];
    const job = startStepRetention(store, {
      days: 2,
      now: () => now,
      intervalMs: 3_600_000,
      log: (l) => lines.push(l),
    });
    try {
      expect((await job.round()).operations).toEqual([]);
      expect(await store.readSteps(id)).toHaveLength(2);
      now = finished + 2 * DAY_MS + 1;
      expect(await job.round()).toEqual({ operations: [id], partitions: [] });
      expect(await store.readSteps(id)).toEqual([]);
      expect((await store.getOperation(id))!.progress.steps_pruned_at).toBe(new Date(now).toISOString());
      expect(lines).toEqual(["[retention] removed the step rows of 1 run(s) finished over 2 day(s) ago"]);
    } finally {
      await job.stop();
      await store.close();
    }
  });

  test("TRAINWATCH_STEP_RETENTION_DAYS is off unless set, and a bad value names the variable", () => {
    expect(loadConfig({}).stepRetentionDays).toBeNull();
    expect(loadConfig({ TRAINWATCH_STEP_RETENTION_DAYS: "30" }).stepRetentionDays).toBe(30);
    expect(() => loadConfig({ TRAINWATCH_STEP_RETENTION_DAYS: "0" })).toThrow(/TRAINWATCH_STEP_RETENTION_DAYS/);
    expect(() => loadConfig({ TRAINWATCH_STEP_RETENTION_DAYS: "soon" })).toThrow(/TRAINWATCH_STEP_RETENTION_DAYS/);
  });
});

describe("GET /operations/{id}/steps of a pruned run", () => {
  test("draws from the blocks: each metric's extremes per block at their steps, the NaN kept, steps_pruned_at set", async () => {
    const { app, store } = makeApp();
    const id = (await store.createOperation({ operation_type: "training" })).operation_id;
    const steps = Array.from({ length: 1000 }, (_, s) => stepAt(s));
    const post = await json(app.handle(req("POST", `/api/v1/operations/${id}/steps`, { steps })));
    expect(post.status).toBe(200);
    await store.finish(id, "completed");
    const spans = await store.stepSpans(id, 0, 999);
    const full = await json(app.handle(req("GET", `/api/v1/operations/${id}/steps?max_points=200`)));
    const pruned = await store.pruneSteps(Date.now() + 1, T0);
    expect(pruned.operations).toEqual([id]);

    const chart = await json(app.handle(req("GET", `/api/v1/operations/${id}/steps?max_points=200`)));
    expect(chart.status).toBe(200);
    expect(chart.body.data.steps_pruned_at).toBe(new Date(T0).toISOString());
    expect(full.body.data.steps_pruned_at).toBeUndefined();
    const points = chart.body.data.steps as Record<string, unknown>[];
    // Every block's extremes fit in 200 points here: the reply is exactly what the blocks hold.
    expect(points).toEqual(spanPoints(spans, "step"));
    expect(points.length).toBeLessThanOrEqual(200);
    expect(points.find((p) => p.step === 700)).toMatchObject({ train_loss: 50 });
    expect(points.find((p) => p.step === 300)).toMatchObject({ train_loss: "NaN" });
    expect(points.every((p) => p.timestamp === undefined)).toBe(true);
    // The epochs derived from the steps are untouched, and so is the epoch boundary list.
    expect(chart.body.data.epoch_ends).toEqual(full.body.data.epoch_ends);

    // A zoom inside block 1 (steps 128–255): the block's extremes that lie in the range, here steps 130–200.
    const zoom = await json(app.handle(req("GET", `/api/v1/operations/${id}/steps?from_step=130&to_step=200`)));
    expect(zoom.status).toBe(200);
    const inBlock = spanPoints(await store.stepSpans(id, BLOCK, 2 * BLOCK - 1), "step").filter(
      (p) => "step" in p && p.step >= 130 && p.step <= 200,
    );
    expect(inBlock.length).toBeGreaterThan(0);
    expect(zoom.body.data.steps).toEqual(inBlock);
    expect(zoom.body.data.steps_pruned_at).toBe(new Date(T0).toISOString());
  });
});
