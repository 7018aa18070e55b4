// Steps over the API (issue 22), with app.handle on an in-memory store: the write (reply like POST /metrics, 400 naming
// the field, 404, 409 carrying control), the chart reads with step names (range, max_points with the reducer's
// guarantees, fields, cursor, epoch_ends), the exports, progress in steps, the OpenAPI document, and the operation
// stream's `steps` events.
import { describe, expect, test } from "bun:test";
import { Rng } from "../src/trainer/datasets/prng.ts";
import { readSeries, stepSeries } from "../src/store/charts.ts";
import { metricValue } from "../src/trends/downsample.ts";
import { json, makeApp, req } from "./helpers.ts";
import { SseReader } from "./sse.ts";
import { servedDocument } from "./openapi.ts";
import { decodeChange, stepsNotice } from "../src/store/pg_notify.ts";
import { decodeStep, encodeStep } from "../src/schemas/step.ts";

type App = ReturnType<typeof makeApp>["app"];
const T0 = Date.parse("2026-11-26T15:30:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

async function register(app: App, body: Record<string, unknown> = {}): Promise<string> {
  const { status, body: res } = await json(
    app.handle(req("POST", "/api/v1/operations", { operation_type: "training", ...body })),
  );
  expect(status).toBe(201);
  return res.data.operation_id;
}

const postSteps = (app: App, id: string, body: unknown) =>
  json(app.handle(req("POST", `/api/v1/operations/${id}/steps`, body)));
const getSteps = (app: App, id: string, q = "") => json(app.handle(req("GET", `/api/v1/operations/${id}/steps${q}`)));

const step = (s: number, epoch: number, extra: Record<string, unknown> = {}) => ({
  step: s,
  epoch,
  train_loss: 1 / (s + 1),
  learning_rate: 0.01,
  timestamp: at(s),
  ...extra,
});

describe("POST /operations/{id}/steps", () => {
  test("stores a batch or one step and replies like POST /metrics: stored, trends, control", async () => {
    const { app } = makeApp();
    const id = await register(app, { total_steps_planned: 100 });
    const one = await postSteps(app, id, step(0, 0));
    expect(one.status).toBe(200);
    expect(one.body.data).toMatchObject({ operation_id: id, stored: 1, control: { action: "continue" } });
    expect(one.body.data.trends).toMatchObject({ total_epochs_completed: 0 });
    const batch = await postSteps(app, id, {
      steps: [...Array.from({ length: 9 }, (_, i) => step(i + 1, 0)), step(10, 1, { grad_norm: "NaN" })],
    });
    expect(batch.body.data).toMatchObject({ stored: 10, trends: { total_epochs_completed: 1, latest_epoch: 0 } });
    const op = (await json(app.handle(req("GET", `/api/v1/operations/${id}`)))).body.data;
    expect(op.progress).toMatchObject({ steps_completed: 11, total_steps: 100, percentage: 11 });
    // GET /metrics of a step run answers the derived per-epoch records.
    const metrics = (await json(app.handle(req("GET", `/api/v1/operations/${id}/metrics`)))).body.data.metrics;
    expect(metrics.epochs).toHaveLength(1);
    expect(metrics.epochs[0]).toMatchObject({ epoch: 0, step: 9, learning_rate: 0.01, timestamp: at(9) });
  });

  test("a bad value is a 400 naming its field; unknown operation 404; finished 409 carrying control past the cancel's epoch", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const bad = await postSteps(app, id, {
      steps: [step(0, 0), step(1, 0), step(2, 0), step(3, 0, { grad_norm: "huge" })],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe("body.steps.3.grad_norm");
    const badName = await postSteps(app, id, step(0, 0, { "bad name": 1 }));
    expect(badName.status).toBe(400);
    const noStep = await postSteps(app, id, { steps: [{ train_loss: 1 }] });
    expect(noStep.status).toBe(400);
    expect(noStep.body.error.details.field).toContain("body.steps.0");
    expect((await getSteps(app, id)).body.data.steps).toEqual([]);
    expect((await postSteps(app, "op_missing", step(0, 0))).status).toBe(404);
    await app.handle(req("DELETE", `/api/v1/operations/${id}`, { reason: "enough", by: "test" }));
    // Cancelled before any epoch: the first epoch's steps are still taken (0 or 1), a later one's refused.
    const finished = await postSteps(app, id, step(0, 2));
    expect(finished.status).toBe(409);
    expect(finished.body.error.details.control).toMatchObject({ action: "stop" });
  });

  test("a single step past the shared name bound is refused naming its own field", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const custom = Object.fromEntries(Array.from({ length: 255 }, (_, i) => [`m${i}`, 1]));
    expect((await postSteps(app, id, step(0, 0, custom))).status).toBe(200);
    const over = await postSteps(app, id, step(1, 0, { extra: 1 }));
    expect(over.status).toBe(400);
    expect(over.body.error.details.field).toBe("body.extra");
  });

  test("the finish closes the open epoch: its derived record is stored", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await postSteps(app, id, { steps: Array.from({ length: 5 }, (_, i) => step(i, 0)) });
    await app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "completed" }));
    const metrics = (await json(app.handle(req("GET", `/api/v1/operations/${id}/metrics`)))).body.data.metrics;
    expect(metrics.epochs.map((e: { epoch: number; step: number }) => [e.epoch, e.step])).toEqual([[0, 4]]);
  });
});

describe("GET /operations/{id}/steps", () => {
  test("range, cursor, fields and epoch_ends; to_step before from_step is a 400 naming it", async () => {
    const { app } = makeApp();
    const id = await register(app, { total_steps_planned: 1000 });
    await postSteps(app, id, {
      steps: Array.from({ length: 300 }, (_, i) => step(i, Math.floor(i / 100), i === 150 ? { val_loss: 0.5 } : {})),
    });
    const all = (await getSteps(app, id)).body.data;
    expect(all.steps).toHaveLength(300);
    expect(all.total_steps_planned).toBe(1000);
    expect(all.epoch_ends).toEqual([
      { epoch: 0, step: 99 },
      { epoch: 1, step: 199 },
      { epoch: 2, step: 299 },
    ]);
    expect(all.steps[150]).toEqual({ ...step(150, 1), val_loss: 0.5 });
    const zoom = (await getSteps(app, id, "?from_step=100&to_step=109&fields=val_loss,epoch")).body.data.steps;
    expect(zoom).toEqual(Array.from({ length: 10 }, (_, i) => ({ step: 100 + i, epoch: 1 })));
    expect((await getSteps(app, id, "?since_step=297")).body.data.steps.map((s: { step: number }) => s.step)).toEqual([
      298, 299,
    ]);
    const bad = await getSteps(app, id, "?from_step=10&to_step=5");
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe("query.to_step");
    expect((await getSteps(app, "op_missing")).status).toBe(404);
    const smoothed = (await getSteps(app, id, "?smoothing=0.6&max_points=20")).body.data;
    expect(smoothed.steps.length).toBeLessThanOrEqual(20);
    expect(smoothed.smoothed.series.train_loss).toHaveLength(smoothed.steps.length);
    // A step's epoch labels it: never smoothed as a metric.
    expect(smoothed.smoothed.series.epoch).toBeUndefined();
    // Evaluations are sparse points: an EMA over them would read thousands of steps per point (bench/dashboard_steps.ts).
    expect(smoothed.smoothed.series.val_loss).toBeUndefined();
  });

  test("every spike, NaN and ±Infinity survives any max_points, on the row path and on the block path", async () => {
    const { app, store } = makeApp();
    for (const seed of [11, 12, 13]) {
      const rng = new Rng(seed);
      const id = await register(app);
      const n = 3000 + Math.floor(rng.next() * 3000);
      const special = new Map<number, unknown>();
      type Loose = unknown[];
      const steps = Array.from({ length: n }, (_, i) => {
        const r = rng.next();
        let loss: unknown = 1 + 0.01 * rng.next();
        if (r < 0.002) loss = ["NaN", "Infinity", "-Infinity"][Math.floor(rng.next() * 3)];
        else if (r < 0.004) loss = 100 + rng.next();
        if (loss !== undefined && (typeof loss === "string" || (loss as number) > 50)) special.set(i, loss);
        return { step: i, epoch: Math.floor(i / 1000), train_loss: loss, timestamp: at(i) };
      });
      for (let i = 0; i < n; i += 1000) await postSteps(app, id, { steps: steps.slice(i, i + 1000) });
      for (const maxPoints of [40, 200, 1000]) {
        for (const scanRows of [Number.POSITIVE_INFINITY, 0]) {
          const { rows } = await readSeries(stepSeries(store, id), { maxPoints }, { scanRows });
          const kept = new Map(rows.map((r) => [r.step, r.train_loss]));
          expect(rows.length).toBeLessThanOrEqual(maxPoints);
          expect([seed, rows[0]!.step, rows.at(-1)!.step]).toEqual([seed, 0, n - 1]);
          const spikes = [...special].filter(([, v]) => typeof v === "number");
          // Every spike is a bucket maximum at this budget only when buckets are few enough; the highest is always kept.
          const top = spikes.sort((a, b) => (b[1] as number) - (a[1] as number))[0];
          if (top) expect([seed, maxPoints, kept.has(top[0])]).toEqual([seed, maxPoints, true]);
          // Every non-finite value survives: each kind that occurs is in the reply.
          const kinds = new Set([...special.values()].filter((v) => typeof v === "string"));
          const keptKinds = new Set<unknown>(rows.map((r) => r.train_loss).filter((v) => typeof v === "string"));
          expect([seed, maxPoints, scanRows, [...keptKinds].sort()] as Loose).toEqual([
            seed,
            maxPoints,
            scanRows,
            [...kinds].sort(),
          ]);
          if (maxPoints === 1000)
            for (const [s, v] of special)
              if (typeof v === "string") expect([seed, s, kept.get(s)] as Loose).toEqual([seed, s, v]);
          expect(rows.every((r) => r.train_loss === undefined || metricValue(r.train_loss) !== undefined)).toBe(true);
        }
      }
      // Through the route: the same reply as the reader's.
      const viaRoute = (await getSteps(app, id, "?max_points=200")).body.data.steps;
      expect(viaRoute).toEqual((await readSeries(stepSeries(store, id), { maxPoints: 200 })).rows);
    }
  });
});

describe("steps exports, the OpenAPI document, the operation stream", () => {
  test("steps.csv and steps.json stream every step", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await postSteps(app, id, { steps: [step(0, 0, { "eval/acc": 0.5 }), step(1, 0, { tokens: 10 })] });
    const csv = await app.handle(req("GET", `/api/v1/operations/${id}/steps.csv`));
    expect(csv.headers.get("content-disposition")).toContain(`${id}-steps.csv`);
    const lines = (await csv.text()).trimEnd().split("\r\n");
    expect(lines[0]).toBe(
      "step,epoch,timestamp,train_loss,val_loss,val_accuracy,learning_rate,grad_norm,duration,samples,tokens,eval/acc",
    );
    expect(lines[2]).toBe(`1,0,${at(1)},0.5,,,0.01,,,,10,`);
    const body = JSON.parse(await (await app.handle(req("GET", `/api/v1/operations/${id}/steps.json`))).text());
    expect(body.steps).toEqual((await getSteps(app, id)).body.data.steps);
    expect(body.operation.operation_id).toBe(id);
    expect((await app.handle(req("GET", "/api/v1/operations/op_missing/steps.csv"))).status).toBe(404);
  });

  test("the document states the step routes, their body, query and reply", async () => {
    const { app } = makeApp();
    const doc = (await servedDocument(app)) as { paths: unknown };
    const paths = doc.paths as Record<string, Record<string, any>>;
    const steps = paths["/api/v1/operations/{id}/steps"]!;
    expect(Object.keys(steps).sort()).toEqual(["get", "post"]);
    expect(steps.get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["since_step", "from_step", "to_step", "max_points", "smoothing", "fields"]),
    );
    expect(JSON.stringify(steps.get.responses["200"])).toContain("epoch_ends");
    expect(JSON.stringify(steps.post.requestBody)).toContain("grad_norm");
    expect(paths["/api/v1/operations/{id}/steps.csv"]?.get).toBeDefined();
    expect(paths["/api/v1/operations/{id}/steps.json"]?.get).toBeDefined();
  });

  test("the operation stream sends a `steps` event for every step write, and the closed epoch's `epoch` event", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const sse = new SseReader(await app.handle(req("GET", `/api/v1/operations/${id}/metrics/stream`)));
    await sse.until(() => sse.events.some((e) => e.event === "status"), 5000, "the status event");
    await postSteps(app, id, { steps: [step(0, 0), step(1, 0)] });
    await postSteps(app, id, step(2, 1));
    await sse.until(() => sse.epochs().length > 0, 5000, "the derived epoch");
    const stepEvents = sse.events.filter((e) => e.event === "steps").map((e) => e.data);
    expect(stepEvents.map((d) => [d.version, d.steps.map((s: { step: number }) => s.step)])).toEqual([
      [1, [0, 1]],
      [2, [2]],
    ]);
    expect(stepEvents[0].steps[0]).toEqual(step(0, 0));
    expect(sse.epochs()).toEqual([0]);
    await sse.cancel();
  });
});

describe("the PostgreSQL change codec carries step writes", () => {
  test("a small batch travels whole, a big one as the range to read; both decode to a steps change", () => {
    const rows = (n: number) =>
      Array.from({ length: n }, (_, i) => decodeStep(step(100 + i, 1) as never, at(100 + i), "s"));
    expect(decodeChange(stepsNotice("op_x", 7, rows(2), 100))).toEqual({
      kind: "steps",
      operation_id: "op_x",
      version: 7,
      steps: rows(2).map(encodeStep),
      range: [100, 101],
    });
    expect(decodeChange(stepsNotice("op_x", 8, rows(500), 100))).toEqual({
      kind: "steps",
      operation_id: "op_x",
      version: 8,
      steps: null,
      range: [100, 599],
    });
  });
});
