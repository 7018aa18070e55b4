// The stop signal (issue 12): the pure decision rule, the routes that set a policy and cancel with a reason, the
// `control` every metrics reply and 409 carries, the stream event on a decision, and a local training that stops on it.
// The host training's side is in host_dispatch.test.ts (its in-process world).
import { afterAll, describe, expect, test } from "bun:test";
import {
  cancelControl,
  decideStop,
  finishedControl,
  firedFlags,
  normalizeStopPolicy,
} from "../src/operations/stop_policy.ts";
import type { StopPolicy } from "../src/schemas/operation.ts";
import { EMPTY_SUMMARY } from "../src/trends/types.ts";
import { diverging, scriptedTrainer } from "./fixtures/trainer.ts";
import { json, localTrainingApp, makeApp, req, until } from "./helpers.ts";
import { SseReader } from "./sse.ts";

const AT = "2026-11-26T15:30:00.000Z";
const summary = (over: Partial<typeof EMPTY_SUMMARY> = {}) => ({ ...EMPTY_SUMMARY, latest_epoch: 7, ...over });
const judgement = (action: string, reason: string, checkpoint_epoch: number | null = null) => ({
  flags: { overfitting: false, plateau: false, diverging: false, stalled: false },
  recommendation: { action, reason, checkpoint_epoch },
});
const policy = (on: StopPolicy["on"], min_epochs = 0): StopPolicy => ({ on, min_epochs });

describe("the decision rule (pure)", () => {
  const cases: {
    name: string;
    policy: StopPolicy | null;
    summary: ReturnType<typeof summary>;
    existing?: boolean;
    fires: boolean;
  }[] = [
    {
      name: "a named flag raised fires",
      policy: policy(["diverging"]),
      summary: summary({ is_diverging: true }),
      fires: true,
    },
    {
      name: "a flag not named does not",
      policy: policy(["overfitting"]),
      summary: summary({ is_diverging: true }),
      fires: false,
    },
    {
      name: "plateau maps to is_plateaued",
      policy: policy(["plateau"]),
      summary: summary({ is_plateaued: true }),
      fires: true,
    },
    {
      name: "stalled maps to is_stalled",
      policy: policy(["stalled", "overfitting"]),
      summary: summary({ is_stalled: true }),
      fires: true,
    },
    {
      name: "before min_epochs it waits",
      policy: policy(["diverging"], 8),
      summary: summary({ is_diverging: true }),
      fires: false,
    },
    {
      name: "at min_epochs it fires",
      policy: policy(["diverging"], 7),
      summary: summary({ is_diverging: true }),
      fires: true,
    },
    {
      name: "no epoch yet never fires",
      policy: policy(["diverging"]),
      summary: summary({ is_diverging: true, latest_epoch: null }),
      fires: false,
    },
    { name: "no policy never fires", policy: null, summary: summary({ is_diverging: true }), fires: false },
    {
      name: "one decision only: a recorded one stands",
      policy: policy(["diverging"]),
      summary: summary({ is_diverging: true }),
      existing: true,
      fires: false,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const existing = c.existing ? cancelControl({ by: "api" }, { latest_epoch: 3, best_epoch: 2 }, AT) : null;
      const d = decideStop(c.policy, c.summary, judgement("stop", "Training loss exploded: stop it.", 2), existing, AT);
      if (!c.fires) return expect(d).toBeNull();
      expect(d).toEqual({
        action: "stop",
        reason: "Training loss exploded: stop it.",
        checkpoint_epoch: 2,
        decided_by: "stop_policy",
        epoch: 7,
        at: AT,
      });
    });
  }

  test("when the judgement does not advise stopping, the fired flags lead the reason", async () => {
    const d = decideStop(
      policy(["plateau"]),
      summary({ is_plateaued: true }),
      judgement("continue", "the best was a lucky epoch, so keep training."),
      null,
      AT,
    );
    expect(d!.reason).toBe(
      "plateau flagged at epoch 7 (stop policy); the judgement: the best was a lucky epoch, so keep training.",
    );
    expect(firedFlags(policy(["plateau", "diverging"]), summary({ is_plateaued: true, is_diverging: true }))).toEqual([
      "plateau",
      "diverging",
    ]);
  });

  test("normalising fills min_epochs and drops repeats; a cancel names who and why; a 409 without a decision names the status", async () => {
    expect(normalizeStopPolicy({ on: ["stalled", "stalled", "diverging"] })).toEqual({
      on: ["stalled", "diverging"],
      min_epochs: 0,
    });
    expect(cancelControl({ by: "dashboard", reason: " enough " }, { latest_epoch: 4, best_epoch: 2 }, AT)).toEqual({
      action: "stop",
      reason: "cancelled by dashboard: enough",
      checkpoint_epoch: 2,
      decided_by: "dashboard",
      epoch: 4,
      at: AT,
    });
    expect(cancelControl({}, { latest_epoch: null, best_epoch: null }, AT).reason).toBe("cancelled by api");
    expect(finishedControl("completed", null)).toEqual({ action: "stop", reason: "operation is completed" });
  });
});

describe("stop policy and control over the API", () => {
  const { app, store } = makeApp();
  afterAll(() => store.close());
  const call = (method: string, path: string, body?: unknown) => json(app.handle(req(method, `/api/v1${path}`, body)));
  const register = async (body: Record<string, unknown> = {}) =>
    (await call("POST", "/operations", { operation_type: "training", ...body })).body.data;
  const post = (id: string, epochs: Record<string, unknown>[]) => call("POST", `/operations/${id}/metrics`, { epochs });
  const explode = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, k) => ({ epoch: from + k, ...diverging(from + k) }));

  test("config and stop_policy are stored and returned; without them both are null and replies say continue", async () => {
    const op = await register({
      config: { lr: 0.1, layers: [64, 32] },
      stop_policy: { on: ["diverging", "overfitting"] },
    });
    expect(op).toMatchObject({
      config: { lr: 0.1, layers: [64, 32] },
      stop_policy: { on: ["diverging", "overfitting"], min_epochs: 0 },
      control: null,
    });
    const plain = await register();
    expect(plain).toMatchObject({ config: null, stop_policy: null, control: null });
    const r = await post(plain.operation_id, explode(0, 4));
    expect(r.body.data.control).toEqual({ action: "continue" });
    expect(r.body.data.trends.is_diverging).toBe(true);
  });

  test("bad policies are 400s naming the field", async () => {
    const cases: [unknown, string][] = [
      [{ on: ["bored"] }, "body.stop_policy.on.0"],
      [{ on: ["diverging"], min_epochs: -1 }, "body.stop_policy.min_epochs"],
      [{ on: [] }, "body.stop_policy.on"],
      [{ on: ["diverging"], later: true }, "body.stop_policy.later"],
    ];
    for (const [stop_policy, field] of cases) {
      const r = await call("POST", "/operations", { operation_type: "training", stop_policy });
      expect(r.status).toBe(400);
      expect(r.body.error.details.field).toBe(field);
      expect(r.body.error.message).toStartWith(`${field}:`);
    }
    const id = (await register()).operation_id;
    const put = await call("PUT", `/operations/${id}/stop_policy`, { on: ["plateau"], min_epochs: -3 });
    expect(put.status).toBe(400);
    expect(put.body.error.details.field).toBe("body.min_epochs");
    const unknownFlag = await call("PUT", `/operations/${id}/stop_policy`, { on: ["diverging", "sad"] });
    expect(unknownFlag.body.error.details.field).toBe("body.on.1");
  });

  test("a diverging run with a policy gets one decision: the reply carries it, the operation stays running and still takes epochs", async () => {
    const id = (await register({ stop_policy: { on: ["diverging"], min_epochs: 1 } })).operation_id;
    expect((await post(id, explode(0, 2))).body.data.control).toEqual({ action: "continue" });
    const fired = (await post(id, explode(3, 3))).body.data.control;
    expect(fired).toMatchObject({ action: "stop", decided_by: "stop_policy", epoch: 3 });
    expect(fired.reason).toContain("diverging");
    expect(fired.checkpoint_epoch).toBe(2);
    expect(Date.parse(fired.at)).not.toBeNaN();
    const later = await post(id, explode(4, 5));
    expect(later.status).toBe(200);
    expect(later.body.data.control).toEqual(fired);
    const op = (await call("GET", `/operations/${id}`)).body.data;
    expect(op).toMatchObject({ status: "running", control: fired, stop_policy: { on: ["diverging"], min_epochs: 1 } });
    // The decision quotes the same judgement the analysis route gives at that epoch.
    expect((await call("GET", `/operations/${id}/analysis`)).body.data.flags.diverging).toBe(true);
  });

  test("min_epochs holds the decision back until an epoch at or past it", async () => {
    const id = (await register({ stop_policy: { on: ["diverging"], min_epochs: 5 } })).operation_id;
    expect((await post(id, explode(0, 4))).body.data.control).toEqual({ action: "continue" });
    expect((await post(id, explode(5, 5))).body.data.control).toMatchObject({ action: "stop", epoch: 5 });
  });

  test("PUT on a run that already diverges decides at once; DELETE clears the policy and keeps the decision; both 409 once finished", async () => {
    const id = (await register()).operation_id;
    await post(id, explode(0, 4));
    const set = await call("PUT", `/operations/${id}/stop_policy`, { on: ["overfitting"] });
    expect(set.body.data).toMatchObject({ stop_policy: { on: ["overfitting"], min_epochs: 0 }, control: null });
    const now = await call("PUT", `/operations/${id}/stop_policy`, { on: ["diverging"] });
    expect(now.body.data.control).toMatchObject({ action: "stop", decided_by: "stop_policy", epoch: 4 });
    const cleared = await call("DELETE", `/operations/${id}/stop_policy`);
    expect(cleared.body.data.stop_policy).toBeNull();
    expect(cleared.body.data.control).toEqual(now.body.data.control);
    await call("POST", `/operations/${id}/complete`, { status: "completed" });
    for (const [method, body] of [
      ["PUT", { on: ["diverging"] }],
      ["DELETE", undefined],
    ] as const) {
      const r = await call(method, `/operations/${id}/stop_policy`, body);
      expect(r.status).toBe(409);
      expect(r.body.error.details).toMatchObject({ status: "completed", control: now.body.data.control });
    }
  });

  test("DELETE with {reason, by} records the cancel as control; the epoch in progress is taken with it, a later one is a 409 whose details carry status and control", async () => {
    const id = (await register()).operation_id;
    await post(id, explode(0, 1));
    const cancelled = await call("DELETE", `/operations/${id}`, { reason: "wrong data", by: "dashboard" });
    expect(cancelled.body.data.status).toBe("cancelled");
    const control = cancelled.body.data.control;
    expect(control).toMatchObject({
      action: "stop",
      reason: "cancelled by dashboard: wrong data",
      decided_by: "dashboard",
      epoch: 1,
      checkpoint_epoch: 1,
    });
    // The epoch in progress when the cancel arrived is stored, its reply still saying stop; still falling, it is the
    // best epoch now, and the checkpoint the cancel advises moves to it.
    const late = await post(id, explode(2, 2));
    expect(late.status).toBe(200);
    const moved = { ...control, checkpoint_epoch: 2 };
    expect(late.body.data.control).toEqual(moved);
    const refused = await post(id, explode(3, 3));
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("OPERATION_FINISHED");
    expect(refused.body.error.details).toEqual({ operation_id: id, status: "cancelled", control: moved });
    // Without a body the cancel is the API's; a finished operation without a decision answers a stop naming its status.
    const plain = (await register()).operation_id;
    expect((await call("DELETE", `/operations/${plain}`)).body.data.control).toMatchObject({
      decided_by: "api",
      reason: "cancelled by api",
    });
    const done = (await register()).operation_id;
    await call("POST", `/operations/${done}/complete`, { status: "completed" });
    expect((await post(done, explode(0, 0))).body.error.details.control).toEqual({
      action: "stop",
      reason: "operation is completed",
    });
  });

  test("the operation's stream hears the decision as a status event carrying control", async () => {
    const id = (await register({ stop_policy: { on: ["diverging"] } })).operation_id;
    await post(id, explode(0, 2));
    const sse = new SseReader(await app.handle(req("GET", `/api/v1/operations/${id}/metrics/stream`)));
    const all = new SseReader(await app.handle(req("GET", "/api/v1/stream")));
    try {
      await sse.until(() => sse.events.some((e) => e.event === "trends"), 5000, "the replay");
      await all.until(() => all.comments.length > 0, 5000, "the global stream to open");
      await post(id, explode(3, 3));
      const decided = (e: { event: string; data: any }) => e.data?.control?.decided_by === "stop_policy";
      await sse.until(
        () => sse.events.some((e) => e.event === "status" && decided(e)),
        5000,
        "a status event with the decision",
      );
      await all.until(
        () => all.events.some((e) => e.event === "operation" && e.data.operation_id === id && decided(e)),
        5000,
        "an operation event with the decision",
      );
      expect(sse.events.find((e) => e.event === "status" && decided(e))!.data.status).toBe("running");
    } finally {
      await sse.cancel();
      await all.cancel();
    }
  });
});

describe("a local training honours its stop policy", () => {
  test("it stops after the epoch that fired and finishes completed, keeping its result and checkpoints", async () => {
    const w = localTrainingApp({ start: scriptedTrainer({ curve: diverging, ms: 25, checkpoints: true }) });
    try {
      const started = await json(
        w.app.handle(
          req("POST", "/api/v1/trainings", {
            dataset: { kind: "synthetic", generator: "spirals", samples: 40 },
            training: { epochs: 30 },
            target: "local",
          }),
        ),
      );
      const id = started.body.data.operation_id as string;
      expect(
        (await json(w.app.handle(req("PUT", `/api/v1/operations/${id}/stop_policy`, { on: ["diverging"] })))).status,
      ).toBe(200);
      const op = await until("the training to finish", async () => {
        const o = (await w.store.getOperation(id))!;
        return o.status !== "running" && o.status !== "pending" && o;
      });
      expect(op.status).toBe("completed");
      expect(op.control).toMatchObject({ action: "stop", decided_by: "stop_policy" });
      const fired = op.control!.epoch!;
      expect(fired).toBeGreaterThanOrEqual(3);
      // Stopped within one step of the scripted trainer (an epoch): nothing after the epoch that fired.
      expect((await w.store.readEpochs(id)).map((e) => e.epoch).at(-1)).toBe(fired);
      expect(op.result).toMatchObject({ stop_reason: "stop_requested", epochs_run: fired + 1 });
      expect((op.result!.checkpoints as unknown[]).length).toBe(2);
    } finally {
      await w.local.stopAll();
      w.close();
    }
  });
});
