// The comparison's x axis (GET /operations/compare and /operations/curves, `x=step|epoch`): by step each run's curves
// are its steps as GET …/steps reads them (range, max_points, smoothing, fields alike); by epoch, the default, a step
// run shows the epoch records derived from its steps; a bad `x`, or a bound of the other axis, is a 400 naming it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { json, makeApp, req } from "./helpers.ts";

const STEPS = 600;
const SPIKE = 437;

/** A step run: 3 epochs of 200 steps, a falling loss with one spike, an evaluation every 50 steps. */
const step = (s: number, run: number) => ({
  step: s,
  epoch: Math.floor(s / 200),
  train_loss: s === SPIKE ? 40 : 2 * Math.exp(-s / 300) + run * 0.1,
  learning_rate: 0.001,
  ...(s % 50 === 0 ? { val_loss: 2.1 * Math.exp(-s / 300) + run * 0.1 } : {}),
});

describe("the comparison by step or by epoch", () => {
  const { app, store } = makeApp();
  afterAll(() => store.close());
  const ids: string[] = [];
  const get = (path: string) => json(app.handle(req("GET", `/api/v1${path}`)));

  beforeAll(async () => {
    for (const run of [0, 1]) {
      const created = await json(
        app.handle(req("POST", "/api/v1/operations", { operation_type: "training", name: `steps-${run}` })),
      );
      const id = created.body.data.operation_id as string;
      ids.push(id);
      const posted = await json(
        app.handle(
          req("POST", `/api/v1/operations/${id}/steps`, {
            steps: Array.from({ length: STEPS }, (_, s) => step(s, run)),
          }),
        ),
      );
      expect(posted.status).toBe(200);
    }
  });

  test("x=step overlays each run's steps exactly as its GET …/steps reads them (range, max_points, smoothing, fields)", async () => {
    const q = "from_step=100&to_step=500&max_points=60&smoothing=0.6&fields=train_loss,val_loss";
    const { status, body } = await get(`/operations/curves?ids=${ids.join(",")}&x=step&${q}`);
    expect(status).toBe(200);
    expect(body.data.x).toBe("step");
    expect(body.data.runs.map((r: { operation_id: string }) => r.operation_id)).toEqual(ids);
    for (const run of body.data.runs) {
      const one = (await get(`/operations/${run.operation_id}/steps?${q}`)).body.data;
      expect(run.curves).toEqual(one.steps);
      expect(run.smoothed).toEqual(one.smoothed);
      expect(run.curves.length).toBeLessThanOrEqual(60);
      expect(run.curves[0].step).toBe(100);
      expect(run.curves.at(-1).step).toBe(500);
      // The spike survives the reduction.
      expect(run.curves.find((r: { step: number }) => r.step === SPIKE)?.train_loss).toBe(40);
    }
  });

  test("GET /operations/compare by step: the curves are steps, the summaries stay per epoch", async () => {
    const { status, body } = await get(`/operations/compare?ids=${ids.join(",")}&x=step&max_points=1000`);
    expect(status).toBe(200);
    expect(body.data.x).toBe("step");
    for (const run of body.data.runs) {
      expect(run.curves).toHaveLength(STEPS);
      expect(run.curves[0]).toMatchObject({ step: 0, epoch: 0 });
      // Two epochs closed (a later epoch's step arrived); the third is open until the run finishes.
      expect(run.summary.epochs_completed).toBe(2);
    }
  });

  test("by epoch (the default) a step run shows its derived epoch records, as its GET /metrics does", async () => {
    for (const path of ["curves", "compare"]) {
      const { status, body } = await get(`/operations/${path}?ids=${ids.join(",")}`);
      expect(status).toBe(200);
      expect(body.data.x).toBe("epoch");
      for (const run of body.data.runs) {
        const metrics = (await get(`/operations/${run.operation_id}/metrics`)).body.data.metrics;
        expect(run.curves.map((e: { epoch: number }) => e.epoch)).toEqual([0, 1]);
        expect(run.curves).toEqual(metrics.epochs);
      }
    }
  });

  test("an epoch run compared by step has no curve there", async () => {
    const created = await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })));
    const epochRun = created.body.data.operation_id as string;
    await app.handle(req("POST", `/api/v1/operations/${epochRun}/metrics`, { epoch: 0, train_loss: 1 }));
    const { status, body } = await get(`/operations/curves?ids=${epochRun},${ids[0]}&x=step`);
    expect(status).toBe(200);
    expect(body.data.runs[0].curves).toEqual([]);
    expect(body.data.runs[1].curves).toHaveLength(STEPS);
  });

  test("a bad x, a bound of the other axis, or a step range ending before it starts is a 400 naming the field", async () => {
    for (const path of ["curves", "compare"]) {
      for (const [q, field] of [
        ["x=steps", "query.x"],
        ["x=", "query.x"],
        ["x=step&from_epoch=1", "query.from_epoch"],
        ["x=step&to_epoch=1", "query.to_epoch"],
        ["from_step=1", "query.from_step"],
        ["x=epoch&to_step=1", "query.to_step"],
        ["x=step&from_step=9&to_step=3", "query.to_step"],
        ["x=step&from_step=-1", "query.from_step"],
      ]) {
        const r = await get(`/operations/${path}?ids=${ids.join(",")}&${q}`);
        expect([path, q, r.status]).toEqual([path, q, 400]);
        expect([path, q, r.body.error.details.field]).toEqual([path, q, field]);
      }
    }
  });
});
