// The REST contract of /api/v1, exercised in process through app.handle on an in-memory database.
import { describe, expect, test } from "bun:test";
import { json, makeApp, req } from "./helpers.ts";
import { overfitAt14 } from "./fixtures/runs.ts";

type App = ReturnType<typeof makeApp>["app"];

const OP_ID = /^op_training_\d{8}_\d{6}_[0-9a-f]{8}$/;

async function register(app: App, body: Record<string, unknown> = {}): Promise<string> {
  const { status, body: res } = await json(
    app.handle(req("POST", "/api/v1/operations", { operation_type: "training", ...body })),
  );
  expect(status).toBe(201);
  return res.data.operation_id as string;
}

const postMetrics = (app: App, id: string, body: unknown) =>
  json(app.handle(req("POST", `/api/v1/operations/${id}/metrics`, body)));
const getMetrics = (app: App, id: string, query = "") =>
  json(app.handle(req("GET", `/api/v1/operations/${id}/metrics${query}`)));

/** Epochs `from` … `from + count − 1` with fields from `f`. */
function epochs(from: number, count: number, f: (e: number) => Record<string, unknown> = () => ({})) {
  return Array.from({ length: count }, (_, i) => ({ epoch: from + i, ...f(from + i) }));
}

/** Train loss keeps falling; val loss bottoms out at epoch 14 and climbs after: a textbook overfit over 30 epochs. */
const overfitting = overfitAt14;

describe("operations", () => {
  test("registering returns 201 with a running operation and a URL-safe id", async () => {
    const { app } = makeApp();
    const { status, body } = await json(
      app.handle(
        req("POST", "/api/v1/operations", {
          operation_type: "training",
          name: "resnet",
          total_epochs_planned: 20,
          metadata: { lr: 0.1 },
        }),
      ),
    );
    expect(status).toBe(201);
    expect(body.success).toBe(true);
    const op = body.data;
    expect(op.operation_id).toMatch(OP_ID);
    expect(op).toMatchObject({
      operation_type: "training",
      name: "resnet",
      status: "running",
      completed_at: null,
      error_message: null,
      progress: { percentage: 0, current_epoch: null, total_epochs: 20 },
      metadata: { lr: 0.1 },
      trends: { best_epoch: null, is_overfitting: false, is_plateaued: false, is_diverging: false },
    });
    expect(Date.parse(op.created_at)).not.toBeNaN();
    expect(Date.parse(op.started_at)).not.toBeNaN();
  });

  test("registering with a bad operation_type is a 400 naming the field", async () => {
    const { app } = makeApp();
    const { status, body } = await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "Not OK!" })));
    expect(status).toBe(400);
    expect(body.success).toBe(false);
    expect(body.error.code).toBe("VALIDATION_ERROR");
    expect(body.error.message).toContain("operation_type");
  });

  test("the list is newest first, filters by status and type, and pages with total_count", async () => {
    const { app } = makeApp();
    const a = await register(app);
    const b = await register(app, { operation_type: "evaluation" });
    const c = await register(app);
    await app.handle(req("POST", `/api/v1/operations/${a}/complete`, { status: "completed" }));

    const all = await json(app.handle(req("GET", "/api/v1/operations")));
    expect(all.status).toBe(200);
    expect(all.body.data.map((o: { operation_id: string }) => o.operation_id)).toEqual([c, b, a]);
    expect(all.body.total_count).toBe(3);

    const running = await json(app.handle(req("GET", "/api/v1/operations?status=running")));
    expect(running.body.data.map((o: { operation_id: string }) => o.operation_id)).toEqual([c, b]);
    expect(running.body.total_count).toBe(2);

    const evals = await json(app.handle(req("GET", "/api/v1/operations?operation_type=evaluation")));
    expect(evals.body.data.map((o: { operation_id: string }) => o.operation_id)).toEqual([b]);

    const page = await json(app.handle(req("GET", "/api/v1/operations?limit=1&offset=1")));
    expect(page.body.data.map((o: { operation_id: string }) => o.operation_id)).toEqual([b]);
    expect(page.body.total_count).toBe(3);

    const bad = await json(app.handle(req("GET", "/api/v1/operations?status=sleeping")));
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("status");
  });

  test("get returns the operation, and 404 for an unknown id", async () => {
    const { app } = makeApp();
    const id = await register(app, { total_epochs_planned: 4 });
    await postMetrics(app, id, { epochs: epochs(0, 2, (e) => ({ train_loss: 1 / (e + 1) })) });
    const { status, body } = await json(app.handle(req("GET", `/api/v1/operations/${id}`)));
    expect(status).toBe(200);
    expect(body.data).toMatchObject({
      operation_id: id,
      status: "running",
      progress: { percentage: 50, current_epoch: 1, total_epochs: 4 },
      trends: { monitor: "train_loss", best_epoch: 1, total_epochs_completed: 2 },
    });

    const missing = await json(app.handle(req("GET", "/api/v1/operations/op_training_20260101_000000_deadbeef")));
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({
      success: false,
      error: {
        code: "OPERATION_NOT_FOUND",
        message: expect.stringContaining("op_training_20260101_000000_deadbeef"),
        details: expect.anything(),
      },
    });
  });

  test("complete marks completed, and a second complete is a 409", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const done = await json(app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "completed" })));
    expect(done.status).toBe(200);
    expect(done.body.data).toMatchObject({ status: "completed", error_message: null, progress: { percentage: 100 } });
    expect(Date.parse(done.body.data.completed_at)).not.toBeNaN();

    const again = await json(app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "failed" })));
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("OPERATION_FINISHED");
  });

  test("complete with failed keeps the error message", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const { status, body } = await json(
      app.handle(
        req("POST", `/api/v1/operations/${id}/complete`, { status: "failed", error_message: "CUDA out of memory" }),
      ),
    );
    expect(status).toBe(200);
    expect(body.data).toMatchObject({ status: "failed", error_message: "CUDA out of memory" });
  });

  test("complete refuses a status other than completed, failed or cancelled", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const { status, body } = await json(
      app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "running" })),
    );
    expect(status).toBe(400);
    expect(body.error.message).toContain("status");
  });

  test("complete with cancelled on a cancelled operation records the trainer's result; on a completed one it is a 409", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await json(app.handle(req("DELETE", `/api/v1/operations/${id}`)));
    const result = {
      stop_reason: "cancelled",
      checkpoints: [{ epoch: 3, kind: "last", path: "/models/x/checkpoints/epoch-3" }],
    };
    const r = await json(app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "cancelled", result })));
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({ status: "cancelled", result });
    const done = await register(app);
    await json(app.handle(req("POST", `/api/v1/operations/${done}/complete`, { status: "completed" })));
    expect(
      (await json(app.handle(req("POST", `/api/v1/operations/${done}/complete`, { status: "cancelled", result }))))
        .status,
    ).toBe(409);
  });

  test("DELETE cancels a running operation and is a 409 once it is finished", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const cancelled = await json(app.handle(req("DELETE", `/api/v1/operations/${id}`)));
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.data.status).toBe("cancelled");
    expect((await json(app.handle(req("DELETE", `/api/v1/operations/${id}`)))).status).toBe(409);

    const completed = await register(app);
    await app.handle(req("POST", `/api/v1/operations/${completed}/complete`, { status: "completed" }));
    const refused = await json(app.handle(req("DELETE", `/api/v1/operations/${completed}`)));
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: "OPERATION_FINISHED", details: { status: "completed" } });

    expect((await json(app.handle(req("DELETE", "/api/v1/operations/op_nope")))).status).toBe(404);
  });
});

describe("metrics", () => {
  test("a single epoch is stored and returned", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const ts = "2026-11-26T15:30:00.000Z";
    const epoch = {
      epoch: 0,
      train_loss: 0.9,
      val_loss: 1.0,
      train_accuracy: 0.5,
      val_accuracy: 0.45,
      learning_rate: 0.001,
      duration: 12.5,
      timestamp: ts,
    };
    const posted = await postMetrics(app, id, epoch);
    expect(posted.status).toBe(200);
    expect(posted.body.data).toMatchObject({
      operation_id: id,
      stored: 1,
      trends: { monitor: "val_loss", best_epoch: 0, best_val_loss: 1.0 },
    });

    const { body } = await getMetrics(app, id);
    expect(body.data.metrics.epochs).toEqual([epoch]);
  });

  test("an epoch without a timestamp gets the server's time", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const before = Date.now();
    await postMetrics(app, id, { epoch: 0, train_loss: 1 });
    const { body } = await getMetrics(app, id);
    const ts = Date.parse(body.data.metrics.epochs[0].timestamp);
    expect(ts).toBeGreaterThanOrEqual(before - 1000);
    expect(ts).toBeLessThanOrEqual(Date.now() + 1000);
  });

  test("a batch of 100 epochs is stored in one request, in epoch order", async () => {
    const { app } = makeApp();
    const id = await register(app, { total_epochs_planned: 100 });
    const batch = epochs(0, 100, (e) => ({ train_loss: 2 / (e + 1), val_loss: 2.1 / (e + 1), learning_rate: 0.01 }));
    const posted = await postMetrics(app, id, { epochs: [...batch].reverse() });
    expect(posted.status).toBe(200);
    expect(posted.body.data.stored).toBe(100);

    const { status, body } = await getMetrics(app, id);
    expect(status).toBe(200);
    const m = body.data.metrics;
    expect(m.epochs).toHaveLength(100);
    expect(m.epochs.map((e: { epoch: number }) => e.epoch)).toEqual(batch.map((e) => e.epoch));
    expect(m.epochs[42]).toMatchObject(batch[42]!);
    expect(m).toMatchObject({ total_epochs_planned: 100, total_epochs_completed: 100, best_epoch: 99 });
    expect(body.data).toMatchObject({ operation_id: id, operation_type: "training", status: "running" });
  });

  test("trend fields are correct on an overfitting curve", async () => {
    const { app } = makeApp();
    const id = await register(app, { total_epochs_planned: 50 });
    const posted = await postMetrics(app, id, { epochs: epochs(0, 30, overfitting) });
    const { body } = await getMetrics(app, id);
    const m = body.data.metrics;
    expect(m).toMatchObject({
      monitor: "val_loss",
      best_epoch: 14,
      epochs_since_improvement: 15,
      is_overfitting: true,
      is_plateaued: true,
      is_diverging: false,
      total_epochs_planned: 50,
      total_epochs_completed: 30,
    });
    expect(m.best_val_loss).toBeCloseTo(0.44, 10);
    // The write's reply and the operation carry the same summary.
    const { latest_epoch, ...trends } = posted.body.data.trends;
    expect(latest_epoch).toBe(29);
    expect(m).toMatchObject(trends);
    const op = await json(app.handle(req("GET", `/api/v1/operations/${id}`)));
    expect(op.body.data.trends).toEqual(posted.body.data.trends);
    expect(op.body.data.progress).toMatchObject({ current_epoch: 29, percentage: 60 });
  });

  test("an improving curve raises no flag and its best epoch is the latest", async () => {
    const { app } = makeApp();
    const id = await register(app);
    for (let e = 0; e < 20; e++)
      await postMetrics(app, id, { epoch: e, train_loss: 1 / (e + 1), val_loss: 1.1 / (e + 1) });
    const { body } = await getMetrics(app, id);
    expect(body.data.metrics).toMatchObject({
      monitor: "val_loss",
      best_epoch: 19,
      epochs_since_improvement: 0,
      is_overfitting: false,
      is_plateaued: false,
      is_diverging: false,
    });
  });

  test('"NaN" and "Infinity" are stored and returned as strings and flag divergence', async () => {
    const { app } = makeApp();
    const id = await register(app);
    await postMetrics(app, id, { epochs: epochs(0, 5, (e) => ({ train_loss: 1 - 0.1 * e, val_loss: 1.1 - 0.1 * e })) });
    expect((await getMetrics(app, id)).body.data.metrics.is_diverging).toBe(false);

    const posted = await postMetrics(app, id, {
      epoch: 5,
      train_loss: "NaN",
      val_loss: "Infinity",
      train_accuracy: "-Infinity",
    });
    expect(posted.status).toBe(200);
    expect(posted.body.data.trends.is_diverging).toBe(true);

    const { body } = await getMetrics(app, id);
    const m = body.data.metrics;
    expect(m.epochs[5]).toMatchObject({
      epoch: 5,
      train_loss: "NaN",
      val_loss: "Infinity",
      train_accuracy: "-Infinity",
    });
    expect(m.is_diverging).toBe(true);
    // A non-finite value never becomes the best.
    expect(m.best_epoch).toBe(4);
    expect(m.best_val_loss).toBeCloseTo(0.7, 10);
  });

  test("a null metric is stored as absent, not as zero", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await postMetrics(app, id, { epoch: 0, train_loss: 0.5, val_loss: null });
    const { body } = await getMetrics(app, id);
    expect(body.data.metrics.epochs[0].train_loss).toBe(0.5);
    expect(body.data.metrics.epochs[0].val_loss ?? null).toBeNull();
    expect(body.data.metrics.monitor).toBe("train_loss");
  });

  test("re-posting an epoch replaces it: the value changes and nothing is duplicated", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await postMetrics(app, id, {
      epochs: epochs(0, 10, (e) => ({ train_loss: 1 - 0.05 * e, val_loss: 1 - 0.05 * e })),
    });
    expect((await getMetrics(app, id)).body.data.metrics.best_epoch).toBe(9);

    const again = await postMetrics(app, id, { epoch: 5, train_loss: 0.3, val_loss: 0.01 });
    expect(again.body.data.trends.total_epochs_completed).toBe(10);

    const m = (await getMetrics(app, id)).body.data.metrics;
    expect(m.epochs).toHaveLength(10);
    expect(m.epochs.filter((e: { epoch: number }) => e.epoch === 5)).toEqual([
      expect.objectContaining({ epoch: 5, val_loss: 0.01, train_loss: 0.3 }),
    ]);
    expect(m).toMatchObject({
      total_epochs_completed: 10,
      best_epoch: 5,
      best_val_loss: 0.01,
      epochs_since_improvement: 4,
    });

    // A retried batch (a relay resending) changes nothing either.
    await postMetrics(app, id, { epochs: epochs(8, 2, (e) => ({ train_loss: 1 - 0.05 * e, val_loss: 1 - 0.05 * e })) });
    expect((await getMetrics(app, id)).body.data.metrics.epochs).toHaveLength(10);
  });

  test("since_epoch returns only newer epochs while trends cover the whole history", async () => {
    const { app } = makeApp();
    const id = await register(app);
    // Best val_loss at epoch 3, well before the window a poller asks for.
    await postMetrics(app, id, {
      epochs: epochs(0, 20, (e) => ({ train_loss: 1 / (e + 1), val_loss: e === 3 ? 0.1 : 0.5 })),
    });

    const { status, body } = await getMetrics(app, id, "?since_epoch=14");
    expect(status).toBe(200);
    const m = body.data.metrics;
    expect(m.epochs.map((e: { epoch: number }) => e.epoch)).toEqual([15, 16, 17, 18, 19]);
    expect(m).toMatchObject({
      best_epoch: 3,
      best_val_loss: 0.1,
      epochs_since_improvement: 16,
      total_epochs_completed: 20,
      is_plateaued: true,
    });

    expect((await getMetrics(app, id, "?since_epoch=19")).body.data.metrics.epochs).toEqual([]);
    expect((await getMetrics(app, id, "?since_epoch=-1")).body.data.metrics.epochs).toHaveLength(20);
    const bad = await getMetrics(app, id, "?since_epoch=abc");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("since_epoch");
  });

  test("max_points keeps the first, last and best epochs and returns at most M points", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const best = 437;
    await postMetrics(app, id, {
      epochs: epochs(0, 1000, (e) => ({ train_loss: 1, val_loss: e === best ? 0.01 : 1 + ((e * 7919) % 101) / 1000 })),
    });

    for (const m of [3, 10, 50, 999]) {
      const { status, body } = await getMetrics(app, id, `?max_points=${m}`);
      expect(status).toBe(200);
      const got: number[] = body.data.metrics.epochs.map((e: { epoch: number }) => e.epoch);
      expect(got.length).toBeLessThanOrEqual(m);
      expect(got).toContain(0);
      expect(got).toContain(999);
      expect(got).toContain(best);
      expect(got).toEqual([...new Set(got)].sort((a, b) => a - b));
      expect(body.data.metrics.best_epoch).toBe(best);
    }
    // Fewer epochs than max_points: everything comes back.
    expect((await getMetrics(app, id, "?since_epoch=989&max_points=50")).body.data.metrics.epochs).toHaveLength(10);
    expect((await getMetrics(app, id, "?max_points=2")).status).toBe(400);
  });

  test("before any metrics the reply is 200 with no epochs, null trend values and false flags", async () => {
    const { app } = makeApp();
    const id = await register(app, { total_epochs_planned: 10 });
    const { status, body } = await getMetrics(app, id);
    expect(status).toBe(200);
    expect(body).toEqual({
      success: true,
      data: {
        operation_id: id,
        operation_type: "training",
        status: "running",
        metrics: {
          epochs: [],
          monitor: null,
          best_epoch: null,
          best_val_loss: null,
          epochs_since_improvement: null,
          is_overfitting: false,
          is_plateaued: false,
          is_stalled: false,
          is_diverging: false,
          total_epochs_planned: 10,
          total_epochs_completed: 0,
        },
      },
    });
  });

  test("metrics for an unknown operation are a 404", async () => {
    const { app } = makeApp();
    const get = await getMetrics(app, "op_training_20260101_000000_00000000");
    expect(get.status).toBe(404);
    expect(get.body.error.code).toBe("OPERATION_NOT_FOUND");
    const post = await postMetrics(app, "op_training_20260101_000000_00000000", { epoch: 0, train_loss: 1 });
    expect(post.status).toBe(404);
    expect(post.body.error.code).toBe("OPERATION_NOT_FOUND");
  });

  test("a completed, failed or cancelled operation refuses metrics with 409 and keeps its epochs", async () => {
    const { app } = makeApp();
    for (const finish of [
      (id: string) => req("POST", `/api/v1/operations/${id}/complete`, { status: "completed" }),
      (id: string) => req("POST", `/api/v1/operations/${id}/complete`, { status: "failed", error_message: "boom" }),
      (id: string) => req("DELETE", `/api/v1/operations/${id}`),
    ]) {
      const id = await register(app);
      await postMetrics(app, id, { epoch: 0, train_loss: 1 });
      expect((await app.handle(finish(id))).status).toBe(200);
      // Epoch 2: a cancel still takes epoch 1, the one in progress when it arrived (tests/cancel_grace.test.ts).
      const { status, body } = await postMetrics(app, id, { epoch: 2, train_loss: 0.5 });
      expect(status).toBe(409);
      expect(body.error.code).toBe("OPERATION_FINISHED");
      const after = await getMetrics(app, id);
      expect(after.status).toBe(200);
      expect(after.body.data.metrics.epochs).toHaveLength(1);
    }
  });

  test("custom metrics round trip", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const epoch = {
      epoch: 0,
      train_loss: 1,
      grad_norm: 3.25,
      "lr/group-1": 0.0005,
      "top5.acc": 0.9,
      "kl-div": "Infinity",
    };
    expect((await postMetrics(app, id, epoch)).status).toBe(200);
    const { body } = await getMetrics(app, id);
    expect(body.data.metrics.epochs[0]).toMatchObject(epoch);
  });
});

describe("bad input gets a 4xx naming the field and stores nothing", () => {
  async function rejected(body: unknown, field: string, status = 400) {
    const { app } = makeApp();
    const id = await register(app);
    const res = await postMetrics(app, id, body);
    expect(res.status).toBe(status);
    expect(res.body.success).toBe(false);
    expect(res.body.error.message).toContain(field);
    expect(res.body.error.details.field).toContain(field);
    expect((await getMetrics(app, id)).body.data.metrics).toMatchObject({ epochs: [], total_epochs_completed: 0 });
    return res.body.error;
  }

  test("malformed JSON", async () => {
    const e = await rejected('{"epoch": 1, "train_loss": ', "body");
    expect(e.message).toContain("malformed JSON");
  });
  test("an empty body", () => rejected("", "body"));
  test("a wrong type for a metric", () => rejected({ epoch: 1, train_loss: "low" }, "train_loss"));
  test("a wrong type for epoch", () => rejected({ epoch: "1", train_loss: 1 }, "epoch"));
  test("a fractional epoch", () => rejected({ epoch: 1.5 }, "epoch"));
  test("a missing epoch", async () => {
    const e = await rejected({ train_loss: 1 }, "body.epoch");
    expect(e.details.field).toBe("body.epoch");
  });
  test("a negative epoch", () => rejected({ epoch: -1, train_loss: 1 }, "epoch"));
  test("a negative duration", () => rejected({ epoch: 1, duration: -3 }, "duration"));
  test("a timestamp that is not ISO-8601", () => rejected({ epoch: 1, timestamp: "yesterday" }, "timestamp"));
  test("a bad custom metric name", () => rejected({ epoch: 1, "bad name!": 1 }, "bad name!"));
  test("a custom metric name over 64 characters", () => rejected({ epoch: 1, ["m".repeat(65)]: 1 }, "m".repeat(65)));
  test("a non-numeric custom metric", () => rejected({ epoch: 1, note: "hello" }, "note"));
  test("an empty batch", () => rejected({ epochs: [] }, "epochs"));

  test("a batch whose 7th epoch is bad stores nothing from that batch", async () => {
    const bad: Record<string, unknown>[] = epochs(0, 10, (e) => ({ train_loss: 1 / (e + 1) }));
    bad[7] = { epoch: -7, train_loss: 1 };
    const e = await rejected({ epochs: bad }, "epochs.7.epoch");
    expect(e.details.field).toBe("body.epochs.7.epoch");
  });

  test("a batch whose 7th epoch has a bad custom metric name stores nothing from that batch", async () => {
    const bad: Record<string, unknown>[] = epochs(0, 10, (e) => ({ train_loss: 1 / (e + 1) }));
    bad[7] = { epoch: 7, "no spaces please": 1 };
    await rejected({ epochs: bad }, "epochs.7.no spaces please");
  });

  test("a body over 5 MB is a 413 naming the body", async () => {
    const e = await rejected(
      { epochs: [{ epoch: 0, train_loss: 1 }], padding: "x".repeat(5 * 1024 * 1024) },
      "body",
      413,
    );
    expect(e.code).toBe("PAYLOAD_TOO_LARGE");
  });

  test("a batch of 10,001 epochs is a 400; 10,000 is accepted", async () => {
    const e = await rejected({ epochs: epochs(0, 10_001) }, "epochs");
    expect(e.message).toContain("10000");
    const { app } = makeApp();
    const id = await register(app);
    const ok = await postMetrics(app, id, { epochs: epochs(0, 10_000, (e) => ({ train_loss: 1 / (e + 1) })) });
    expect(ok.status).toBe(200);
    expect(ok.body.data.stored).toBe(10_000);
  });

  test("the app keeps serving after bad input", async () => {
    const { app } = makeApp();
    const id = await register(app);
    for (const body of ["{", "[]", "null", '"x"', "1", { epochs: "no" }, { epochs: [null] }])
      await postMetrics(app, id, body);
    expect((await postMetrics(app, id, { epoch: 0, train_loss: 1 })).status).toBe(200);
    expect((await json(app.handle(req("GET", "/api/v1/health")))).status).toBe(200);
  });

  test("an unknown route is a 404 in the error envelope", async () => {
    const { app } = makeApp();
    const { status, body } = await json(app.handle(req("GET", "/api/v1/nothing-here")));
    expect(status).toBe(404);
    expect(body).toMatchObject({ success: false, error: { code: "NOT_FOUND" } });
  });
});

describe("auth", () => {
  const TOKEN = "s3cret-token";

  test("with TRAINWATCH_TOKEN set, /api/v1 needs the bearer token and health stays public", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: TOKEN });
    const none = await json(app.handle(req("GET", "/api/v1/operations")));
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ success: false, error: { code: "UNAUTHORIZED" } });
    expect(
      (await app.handle(req("GET", "/api/v1/operations", undefined, { authorization: "Bearer wrong" }))).status,
    ).toBe(401);
    expect((await app.handle(req("GET", "/api/v1/operations", undefined, { authorization: TOKEN }))).status).toBe(401);
    expect(
      (await app.handle(req("GET", "/api/v1/operations", undefined, { authorization: `Bearer ${TOKEN}` }))).status,
    ).toBe(200);
    expect((await app.handle(req("GET", "/api/v1/health"))).status).toBe(200);

    // Writes are guarded too, and a refused write stores nothing.
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await app.handle(req("POST", "/api/v1/operations", { operation_type: "training" }))).status).toBe(401);
    const created = await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" }, auth)));
    const id = created.body.data.operation_id;
    expect(
      (await app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epoch: 0, train_loss: 1 }))).status,
    ).toBe(401);
    expect((await app.handle(req("DELETE", `/api/v1/operations/${id}`))).status).toBe(401);
    const m = await json(app.handle(req("GET", `/api/v1/operations/${id}/metrics`, undefined, auth)));
    expect(m.body.data.metrics.epochs).toEqual([]);
  });

  test("without TRAINWATCH_TOKEN no header is needed", async () => {
    const { app } = makeApp();
    expect((await app.handle(req("GET", "/api/v1/operations"))).status).toBe(200);
  });
});

describe("Swagger UI and OpenAPI", () => {
  test("/swagger is HTML that loads only local assets", async () => {
    const { app } = makeApp();
    const res = await app.handle(req("GET", "/swagger"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const a of assets) {
      expect(a).toStartWith("/swagger/assets/");
      const asset = await app.handle(req("GET", a));
      expect(asset.status).toBe(200);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    expect(html).toContain("/swagger/json");
    expect((await app.handle(req("GET", "/swagger/assets/..%2Fpackage.json"))).status).toBe(404);
  });

  test("/swagger/json documents every route with a summary and a description", async () => {
    const { app } = makeApp();
    const { status, body: spec } = await json(app.handle(req("GET", "/swagger/json")));
    expect(status).toBe(200);
    const documented = new Set<string>();
    for (const [path, methods] of Object.entries(
      spec.paths as Record<string, Record<string, { summary?: string; description?: string }>>,
    )) {
      for (const [method, op] of Object.entries(methods)) {
        documented.add(`${method.toUpperCase()} ${path}`);
        expect(op.summary, `${method} ${path} summary`).toBeTruthy();
        expect(op.description, `${method} ${path} description`).toBeTruthy();
      }
    }
    const routes = app.routes
      .filter((r) => r.path.startsWith("/api/v1"))
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
    expect(routes.length).toBeGreaterThanOrEqual(8);
    for (const r of routes) expect(documented.has(r), `${r} is in /swagger/json`).toBe(true);
    for (const r of [
      "GET /api/v1/health",
      "POST /api/v1/operations",
      "GET /api/v1/operations",
      "GET /api/v1/operations/{id}",
      "POST /api/v1/operations/{id}/complete",
      "DELETE /api/v1/operations/{id}",
      "POST /api/v1/operations/{id}/metrics",
      "GET /api/v1/operations/{id}/metrics",
    ]) {
      expect(documented.has(r), `${r} is in /swagger/json`).toBe(true);
    }
  });
});
