// The epoch a trainer finishes after a cancel (issue 24): over the API, a cancelled operation still takes the epoch that
// was in progress when the cancel arrived (answering 200 with the cancel's `control`, so the trainer still hears stop),
// the analysis judges it and advises its checkpoint when it is the best, and a later epoch is a 409 as before.
import { afterAll, describe, expect, test } from "bun:test";
import { json, makeApp, req } from "./helpers.ts";

describe("a cancel keeps the epoch in progress", () => {
  const { app, store } = makeApp();
  afterAll(() => store.close());
  const call = (method: string, path: string, body?: unknown) => json(app.handle(req(method, `/api/v1${path}`, body)));
  const register = async () =>
    (await call("POST", "/operations", { operation_type: "training", total_epochs_planned: 10 })).body.data
      .operation_id as string;
  // A loss that falls every epoch: each new epoch is the best.
  const epoch = (e: number) => ({ epoch: e, train_loss: 1 / (e + 1), val_loss: 1.5 / (e + 1) });

  test("the epoch posted after DELETE is stored with a 200 carrying the stop, judged, and advised as the checkpoint", async () => {
    const id = await register();
    expect((await call("POST", `/operations/${id}/metrics`, { epochs: [0, 1, 2, 3].map(epoch) })).status).toBe(200);
    const cancelled = (await call("DELETE", `/operations/${id}`, { reason: "enough", by: "test" })).body.data;
    expect(cancelled.control).toMatchObject({ epoch: 3, checkpoint_epoch: 3 });

    const late = await call("POST", `/operations/${id}/metrics`, { epochs: [epoch(4)] });
    expect(late.status).toBe(200);
    expect(late.body.data).toMatchObject({
      stored: 1,
      control: { action: "stop", decided_by: "test", reason: "cancelled by test: enough", checkpoint_epoch: 4 },
      trends: { latest_epoch: 4, best_epoch: 4 },
    });

    const op = (await call("GET", `/operations/${id}`)).body.data;
    expect(op).toMatchObject({ status: "cancelled", control: { checkpoint_epoch: 4 }, progress: { current_epoch: 4 } });
    const analysis = (await call("GET", `/operations/${id}/analysis`)).body.data;
    expect(analysis.recommendation).toMatchObject({ action: "use_checkpoint", checkpoint_epoch: 4 });
    const stored = (await call("GET", `/operations/${id}/metrics`)).body.data.metrics.epochs;
    expect(stored.map((e: { epoch: number }) => e.epoch)).toEqual([0, 1, 2, 3, 4]);

    const refused = await call("POST", `/operations/${id}/metrics`, { epochs: [epoch(5)] });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({
      code: "OPERATION_FINISHED",
      details: { status: "cancelled", control: { checkpoint_epoch: 4 } },
    });
    // The trainer's own finish after the stop changes nothing: the operation stays cancelled.
    const done = await call("POST", `/operations/${id}/complete`, { status: "cancelled" });
    expect(done.body.data).toMatchObject({ status: "cancelled" });
  });

  test("a step run: the steps that end the epoch in progress are stored and its record derived from all of them", async () => {
    const id = await register();
    const step = (s: number) => ({ step: s, epoch: Math.floor(s / 5), train_loss: 1 / (s + 1) });
    const steps = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => step(from + i));
    expect((await call("POST", `/operations/${id}/steps`, { steps: steps(0, 7) })).status).toBe(200);
    expect((await call("DELETE", `/operations/${id}`)).body.data.control).toMatchObject({ epoch: 0, step: 7 });

    const late = await call("POST", `/operations/${id}/steps`, { steps: steps(8, 9) });
    expect(late.status).toBe(200);
    expect(late.body.data.control).toMatchObject({ action: "stop", decided_by: "api" });
    const epochs = (await call("GET", `/operations/${id}/metrics`)).body.data.metrics.epochs;
    expect(epochs.map((e: { epoch: number; step: number }) => [e.epoch, e.step])).toEqual([
      [0, 4],
      [1, 9],
    ]);
    const mean = [5, 6, 7, 8, 9].reduce((a, s) => a + 1 / (s + 1), 0) / 5;
    expect(epochs[1].train_loss).toBeCloseTo(mean, 12);
    expect((await call("POST", `/operations/${id}/steps`, { steps: steps(10, 10) })).status).toBe(409);
  });
});
