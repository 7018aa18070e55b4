// Alerts (issue 24): the pure rules and payloads on fixed inputs; what the write path records (one alert for a diverging
// run, naming the epoch or step and the checkpoint; statuses; thresholds; rules); the REST and SSE surfaces; and the
// delivery worker against a real receiver (Bun.serve on 127.0.0.1): delivered once, signed, in order; a receiver down
// for 30 s (a clock, not a wait) then up gets every alert once, in order, across a restart; failed after an hour.
import { afterEach, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { join } from "node:path";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { ConfigError } from "../src/env.ts";
import { alertBody, factId, slackMessage, type AlertFact } from "../src/alerts/payload.ts";
import { alertId, alertsOn, crossings, effectiveEvents, raisedFlags } from "../src/alerts/rules.ts";
import { Deliverer, MIN_ATTEMPTS, RETRY_FOR_MS, retryDelayMs, targetsOf, type Target } from "../src/alerts/deliver.ts";
import type { OperationsService } from "../src/operations/service.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { Alert } from "../src/schemas/alert.ts";
import { makeApp, req, tempDir } from "./helpers.ts";
import { SseReader } from "./sse.ts";

const API = "/api/v1";
/** Falls, then climbs past 3× its lowest value: the judgement calls it diverging at epoch 8, best epoch 5. */
const DIVERGING = [1.0, 0.8, 0.6, 0.5, 0.45, 0.42, 0.6, 0.9, 1.4, 2.2, 3.5, 5.0];

async function json(res: Response | Promise<Response>) {
  const r = await res;
  return { status: r.status, body: (await r.json()) as any };
}

type App = ReturnType<typeof makeApp>["app"];

async function createRun(app: App, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await json(
    app.handle(req("POST", `${API}/operations`, { operation_type: "training", name: "run", ...extra })),
  );
  expect(r.status).toBe(201);
  return r.body.data.operation_id;
}

async function postEpochs(app: App, id: string, losses: readonly number[], from = 0) {
  for (let i = 0; i < losses.length; i++) {
    const e = from + i;
    const r = await app.handle(
      req("POST", `${API}/operations/${id}/metrics`, { epoch: e, train_loss: losses[i], val_loss: losses[i]! * 1.1 }),
    );
    expect(r.status).toBe(200);
  }
}

const alertsOf = async (app: App, query = ""): Promise<Alert[]> =>
  (await json(app.handle(req("GET", `${API}/alerts${query}`)))).body.data;

describe("alert rules (pure)", () => {
  test("an event alerts when the server's defaults or the run's `on` name it, never when its `off` does", () => {
    const defaults = ["diverging", "failed", "lost", "hung"] as const;
    expect(alertsOn("diverging", null, defaults)).toBe(true);
    expect(alertsOn("completed", null, defaults)).toBe(false);
    expect(alertsOn("completed", { on: ["completed"] }, defaults)).toBe(true);
    expect(alertsOn("failed", { off: ["failed"] }, defaults)).toBe(false);
    expect(alertsOn("overfitting", { on: ["overfitting"], off: ["overfitting"] }, defaults)).toBe(false);
    expect(effectiveEvents({ on: ["completed"], off: ["hung"] }, defaults)).toEqual([
      "diverging",
      "completed",
      "failed",
      "lost",
    ]);
  });

  test("an alert id is the same for the same fact, and differs by run, event and where it happened", () => {
    const id = alertId("op_a", "flag", "diverging", 8);
    expect(id).toMatch(/^al_[0-9a-f]{24}$/);
    expect(alertId("op_a", "flag", "diverging", 8)).toBe(id);
    expect(
      new Set([
        id,
        alertId("op_b", "flag", "diverging", 8),
        alertId("op_a", "flag", "stalled", 8),
        alertId("op_a", "flag", "diverging", 9),
        alertId("op_a", "status", "diverging", null),
      ]).size,
    ).toBe(5);
  });

  test("a write raises only the flags that went from false to true", () => {
    expect(raisedFlags({ diverging: false, stalled: true }, { diverging: true, stalled: true, plateau: true })).toEqual(
      ["diverging", "plateau"],
    );
    expect(raisedFlags({ diverging: true }, { diverging: false })).toEqual([]);
  });

  test("a threshold is crossed at the first row past it (in step or epoch order), once; a non-finite value never crosses", () => {
    const above = { metric: "val_loss", when: "above" as const, value: 2 };
    const below = { metric: "acc", when: "below" as const, value: 0.5 };
    const rows = [
      { epoch: 3, val_loss: 2.5, custom: { acc: 0.4 } },
      { epoch: 1, val_loss: Number.NaN, custom: { acc: 0.9 } },
      { epoch: 2, val_loss: 2.1, custom: { acc: 0.45 } },
    ];
    expect(crossings([above, below], rows)).toEqual([
      { threshold: above, observed: 2.1, epoch: 2, step: null },
      { threshold: below, observed: 0.45, epoch: 2, step: null },
    ]);
    expect(crossings([{ metric: "val_loss", when: "above", value: 9 }], rows)).toEqual([]);
  });

  test("retries wait 1 s doubling to 5 min", () => {
    expect([1, 2, 3, 9, 10, 30].map(retryDelayMs)).toEqual([1000, 2000, 4000, 256_000, 300_000, 300_000]);
  });

  test("TRAINWATCH_ALERT_ON: a list of events or none; an unknown event is a ConfigError naming the variable", () => {
    expect(loadConfig({}).alerts.on).toEqual(["diverging", "failed", "lost", "hung"]);
    expect(loadConfig({ TRAINWATCH_ALERT_ON: "completed, failed" }).alerts.on).toEqual(["completed", "failed"]);
    expect(loadConfig({ TRAINWATCH_ALERT_ON: "none" }).alerts.on).toEqual([]);
    expect(() => loadConfig({ TRAINWATCH_ALERT_ON: "diverging,explode" })).toThrow(ConfigError);
    expect(() => loadConfig({ TRAINWATCH_ALERT_ON: "explode" })).toThrow(/TRAINWATCH_ALERT_ON/);
    expect(() => loadConfig({ TRAINWATCH_ALERT_WEBHOOK: "not a url" })).toThrow(/TRAINWATCH_ALERT_WEBHOOK/);
  });
});

describe("alert payloads (pure)", () => {
  const fact: AlertFact = { kind: "flag", event: "diverging", operation_id: "op_x", epoch: 8, step: null };
  const op = { operation_id: "op_x", name: "resnet <b>&", status: "running", error_message: null, failure_code: null };
  const advice = {
    action: "stop",
    reason: "Training loss exploded to 3.3× its lowest value.",
    checkpoint_epoch: 5,
    checkpoint_step: null,
  };
  const at = new Date("2026-11-26T15:30:00.000Z");

  test("the webhook body names the run, links its page, and gives the reason, the epoch and the checkpoint to restore", () => {
    expect(alertBody(fact, op, advice, "https://tw.example/", at)).toEqual({
      id: factId(fact),
      kind: "flag",
      event: "diverging",
      at: "2026-11-26T15:30:00.000Z",
      title: 'Run "resnet <b>&" is diverging at epoch 8',
      operation: { id: "op_x", name: "resnet <b>&", status: "running", url: "https://tw.example/#/op/op_x" },
      reason: "Training loss exploded to 3.3× its lowest value.",
      advice: { action: "stop", epoch: 8, step: null, checkpoint_epoch: 5, checkpoint_step: null },
      threshold: null,
      failure_code: null,
    });
  });

  test("a failure's message is its reason; a threshold carries the value that crossed it", () => {
    const failed = alertBody(
      { kind: "status", event: "lost", operation_id: "op_x" },
      { ...op, status: "failed", error_message: "no heartbeat for 600 s", failure_code: "lost" },
      advice,
      "http://h",
      at,
    );
    expect(failed).toMatchObject({
      title: 'Run "resnet <b>&" was lost: its trainer went silent',
      reason: "no heartbeat for 600 s",
      failure_code: "lost",
    });
    const t = alertBody(
      {
        kind: "threshold",
        operation_id: "op_x",
        crossing: {
          threshold: { metric: "val_loss", when: "above", value: 2 },
          observed: 2.25,
          epoch: null,
          step: 412,
        },
      },
      op,
      null,
      "http://h",
      at,
    );
    expect(t.title).toBe('Run "resnet <b>&": val_loss above 2 (2.250 at step 412)');
    expect(t.threshold).toEqual({
      metric: "val_loss",
      when: "above",
      value: 2,
      observed: 2.25,
      epoch: null,
      step: 412,
    });
  });

  test("the Slack message: text for the notification, a header, the reason, fields, a button to the page; markup escaped", () => {
    const m = slackMessage(alertBody(fact, op, advice, "https://tw.example", at));
    expect(m.text).toBe(
      ':warning: Run "resnet &lt;b&gt;&amp;" is diverging at epoch 8: Training loss exploded to 3.3× its lowest value.',
    );
    expect(m.blocks).toEqual([
      { type: "header", text: { type: "plain_text", text: 'Run "resnet <b>&" is diverging at epoch 8', emoji: true } },
      { type: "section", text: { type: "mrkdwn", text: "Training loss exploded to 3.3× its lowest value." } },
      {
        type: "section",
        fields: [
          { type: "mrkdwn", text: "*Run*\n<https://tw.example/#/op/op_x|resnet &lt;b&gt;&amp;>" },
          { type: "mrkdwn", text: "*Status*\nrunning" },
          { type: "mrkdwn", text: "*Where*\nepoch 8" },
          { type: "mrkdwn", text: "*Restore*\ncheckpoint of epoch 5" },
          { type: "mrkdwn", text: "*Advice*\nstop" },
        ],
      },
      {
        type: "actions",
        elements: [
          { type: "button", text: { type: "plain_text", text: "Open the run" }, url: "https://tw.example/#/op/op_x" },
        ],
      },
      { type: "context", elements: [{ type: "mrkdwn", text: `${factId(fact)} · 2026-11-26T15:30:00.000Z` }] },
    ]);
    const long = slackMessage(alertBody(fact, { ...op, name: "x".repeat(400) }, advice, "h", at));
    expect((long.blocks[0] as { text: { text: string } }).text.text.length).toBeLessThanOrEqual(150);
  });
});

describe("alerts on the write path", () => {
  test("a diverging run records exactly one alert, naming the epoch and the checkpoint to restore", async () => {
    const { app } = makeApp();
    const id = await createRun(app);
    await postEpochs(app, id, DIVERGING);
    // Still diverging on later writes, and a retried write of the same epoch: no second alert.
    await postEpochs(app, id, [6.0], DIVERGING.length);
    await postEpochs(app, id, [6.0], DIVERGING.length);
    const alerts = await alertsOf(app);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.alert).toMatchObject({
      kind: "flag",
      event: "diverging",
      title: 'Run "run" is diverging at epoch 8',
      operation: { id, url: `http://127.0.0.1:8000/#/op/${id}` },
      advice: { action: "stop", epoch: 8, checkpoint_epoch: 5 },
    });
    expect(alerts[0]!.alert.reason).toContain("epoch 5");
    expect(alerts[0]!.deliveries).toEqual([]);
  });

  test("a step run diverging on a NaN loss alerts once, at that step, with the step to restore", async () => {
    const { app } = makeApp();
    const id = await createRun(app);
    const steps = Array.from({ length: 40 }, (_, s) => ({ step: s, epoch: 0, train_loss: 2 / (s + 1) }));
    expect((await app.handle(req("POST", `${API}/operations/${id}/steps`, { steps }))).status).toBe(200);
    const bad = [
      { step: 40, epoch: 0, train_loss: "NaN" },
      { step: 41, epoch: 0, train_loss: "NaN" },
    ];
    expect((await app.handle(req("POST", `${API}/operations/${id}/steps`, { steps: bad }))).status).toBe(200);
    const alerts = await alertsOf(app, `?operation_id=${id}`);
    expect(alerts.map((a) => a.alert.event)).toEqual(["diverging"]);
    expect(alerts[0]!.alert.advice).toMatchObject({ step: 41, checkpoint_step: 39 });
    expect(alerts[0]!.alert.title).toBe('Run "run" is diverging at step 41');
  });

  test("statuses: failed alerts by default; completed only when the run turns it on; `off` silences a default", async () => {
    const { app } = makeApp();
    const failed = await createRun(app);
    const quiet = await createRun(app, { alerts: { off: ["failed"] } });
    const done = await createRun(app, { alerts: { on: ["completed"] } });
    const plain = await createRun(app);
    for (const id of [failed, quiet])
      await app.handle(
        req("POST", `${API}/operations/${id}/complete`, { status: "failed", error_message: "CUDA out of memory" }),
      );
    for (const id of [done, plain])
      await app.handle(req("POST", `${API}/operations/${id}/complete`, { status: "completed" }));
    const alerts = await alertsOf(app);
    expect(alerts.map((a) => [a.alert.operation.id, a.alert.event])).toEqual([
      [done, "completed"],
      [failed, "failed"],
    ]);
    expect(alerts[1]!.alert).toMatchObject({ reason: "CUDA out of memory", operation: { status: "failed" } });
  });

  test("a threshold alerts once, at the first epoch past it, whatever the server's defaults", async () => {
    const { app } = makeApp({ TRAINWATCH_ALERT_ON: "none" });
    const id = await createRun(app, { alerts: { thresholds: [{ metric: "val_loss", when: "above", value: 1.2 }] } });
    await postEpochs(app, id, DIVERGING);
    const alerts = await alertsOf(app);
    expect(alerts.map((a) => a.alert.kind)).toEqual(["threshold"]);
    expect(alerts[0]!.alert.threshold).toEqual({
      metric: "val_loss",
      when: "above",
      value: 1.2,
      observed: 1.54,
      epoch: 8,
      step: null,
    });
  });

  test("a stop decision alerts as `stopped` for a run that turns it on", async () => {
    const { app } = makeApp();
    const id = await createRun(app, {
      stop_policy: { on: ["diverging"] },
      alerts: { on: ["stopped"], off: ["diverging"] },
    });
    await postEpochs(app, id, DIVERGING.slice(0, 9));
    const alerts = await alertsOf(app);
    expect(alerts.map((a) => a.alert.event)).toEqual(["stopped"]);
    expect(alerts[0]!.alert.advice).toMatchObject({ action: "stop", checkpoint_epoch: 5 });
  });

  test("Alerts.raise records a fact others raise (hung) once, however often it is raised", async () => {
    const { app, store } = makeApp();
    const id = await createRun(app);
    const ops = (app.decorator as { deps: { operations: OperationsService } }).deps.operations;
    const hung: AlertFact = {
      kind: "flag",
      event: "hung",
      operation_id: id,
      epoch: 3,
      step: null,
      reason: "no epoch for 30 min (median 40 s)",
    };
    expect((await ops.alerts.raise(hung))?.alert.reason).toBe("no epoch for 30 min (median 40 s)");
    expect(await ops.alerts.raise(hung)).toBeNull();
    expect(await store.alerts.listAlerts({ limit: 10 })).toHaveLength(1);
  });
});

describe("alerts over REST and SSE", () => {
  test("GET/PUT /operations/{id}/alerts: the rules as set and the events they come to; bad input is a 400 naming the field", async () => {
    const { app } = makeApp({ TRAINWATCH_ALERT_WEBHOOK: "http://127.0.0.1:9/hook" });
    const id = await createRun(app);
    const got = await json(app.handle(req("GET", `${API}/operations/${id}/alerts`)));
    expect(got.body.data).toEqual({
      operation_id: id,
      rules: null,
      events: ["diverging", "hung", "failed", "lost"],
      defaults: ["diverging", "failed", "lost", "hung"],
      channels: ["webhook"],
    });
    const put = await json(
      app.handle(req("PUT", `${API}/operations/${id}/alerts`, { on: ["completed", "completed"], off: ["hung"] })),
    );
    expect(put.body.data).toMatchObject({
      rules: { on: ["completed"], off: ["hung"] },
      events: ["diverging", "completed", "failed", "lost"],
    });
    const bad = await json(app.handle(req("PUT", `${API}/operations/${id}/alerts`, { on: ["exploded"] })));
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body.error)).toContain("on");
    // A client never names where alerts go.
    const url = await json(
      app.handle(req("PUT", `${API}/operations/${id}/alerts`, { webhook: "http://evil.example/" })),
    );
    expect(url.status).toBe(400);
    const atCreate = await json(
      app.handle(
        req("POST", `${API}/operations`, { operation_type: "training", alerts: { url: "http://evil.example" } }),
      ),
    );
    expect(atCreate.status).toBe(400);
    expect((await app.handle(req("GET", `${API}/operations/op_nope/alerts`))).status).toBe(404);
  });

  test("GET /alerts/{id} is the alert with its delivery log per channel; an unknown id is 404", async () => {
    const { app } = makeApp({
      TRAINWATCH_ALERT_WEBHOOK: "http://127.0.0.1:9/hook",
      TRAINWATCH_ALERT_SLACK_WEBHOOK: "http://127.0.0.1:9/slack",
    });
    const id = await createRun(app);
    await app.handle(req("POST", `${API}/operations/${id}/complete`, { status: "failed" }));
    const [a] = await alertsOf(app);
    const one = await json(app.handle(req("GET", `${API}/alerts/${a!.alert.id}`)));
    expect(one.body.data.deliveries.map((d: { channel: string; state: string }) => [d.channel, d.state])).toEqual([
      ["slack", "pending"],
      ["webhook", "pending"],
    ]);
    expect((await app.handle(req("GET", `${API}/alerts/al_nope`))).status).toBe(404);
    expect((await app.handle(req("GET", `${API}/alerts?limit=0`))).status).toBe(400);
  });

  test("the operation's stream and the global stream carry an `alert` event", async () => {
    const { app } = makeApp();
    const id = await createRun(app);
    const own = new SseReader(await app.handle(req("GET", `${API}/operations/${id}/metrics/stream`)));
    const all = new SseReader(await app.handle(req("GET", `${API}/stream`)));
    await own.until(() => own.events.some((e) => e.event === "status"), 10_000, "the replay");
    await all.until(() => all.comments.length > 0 || all.events.length > 0, 10_000, "connected");
    await postEpochs(app, id, DIVERGING.slice(0, 9));
    await own.until(() => own.events.some((e) => e.event === "alert"), 10_000, "an alert on the operation's stream");
    await all.until(() => all.events.some((e) => e.event === "alert"), 10_000, "an alert on the global stream");
    const a = own.events.find((e) => e.event === "alert")!.data;
    expect(a.alert).toMatchObject({ event: "diverging", operation: { id } });
    expect(all.events.find((e) => e.event === "alert")!.data.alert.id).toBe(a.alert.id);
    await own.cancel();
    await all.cancel();
  });
});

/** A webhook receiver on 127.0.0.1: answers `status()` and keeps what it answered 2xx to. */
function receiver(status: () => number = () => 200) {
  const got: { body: string; headers: Headers }[] = [];
  const tries: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(r) {
      const body = await r.text();
      tries.push(r.headers.get("x-trainwatch-alert-id") ?? "");
      const s = status();
      if (s >= 200 && s < 300) got.push({ body, headers: r.headers });
      return new Response(s === 200 ? "ok" : "down", { status: s });
    },
  });
  return { url: `http://127.0.0.1:${server.port}/hook`, got, tries, stop: () => server.stop(true) };
}

describe("the delivery worker, against a real receiver", () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A file store with the server's wiring for `env`, raising `n` failed-run alerts. */
  async function outbox(path: string, env: Record<string, string>) {
    const config = loadConfig(env);
    const store = new SqliteStore(path, config.trends);
    const app = createApp({ store, config });
    return { store, app, config };
  }

  async function failRuns(app: App, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = await createRun(app, { name: `run ${i}` });
      await app.handle(
        req("POST", `${API}/operations/${id}/complete`, { status: "failed", error_message: `boom ${i}` }),
      );
      ids.push(id);
    }
    return ids;
  }

  test("each alert is delivered once, in order, signed, with its id in a header and the body", async () => {
    const rx = receiver();
    cleanups.push(rx.stop);
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const env = { TRAINWATCH_ALERT_WEBHOOK: rx.url, TRAINWATCH_ALERT_WEBHOOK_SECRET: "s3cret" };
    const { store, app, config } = await outbox(join(tmp.dir, "tw.db"), env);
    cleanups.push(() => store.close());
    const ids = await failRuns(app, 3);
    const worker = new Deliverer({ store: store.alerts, targets: targetsOf(config.alerts) });
    expect(await worker.drain()).toBeNull();
    expect(await worker.drain()).toBeNull();
    expect(rx.got.map((g) => JSON.parse(g.body).operation.id)).toEqual(ids);
    for (const g of rx.got) {
      const id = JSON.parse(g.body).id;
      expect(g.headers.get("x-trainwatch-alert-id")).toBe(id);
      const expected = `sha256=${createHmac("sha256", "s3cret").update(g.body).digest("hex")}`;
      expect(g.headers.get("x-trainwatch-signature")).toBe(expected);
    }
    const [last] = await store.alerts.listAlerts({ limit: 1 });
    expect(last!.deliveries[0]).toMatchObject({
      channel: "webhook",
      state: "delivered",
      attempts: 1,
      last_status: 200,
    });
  });

  test("a receiver's redirect is not followed: the signed body never reaches the other address, and it is retried", async () => {
    const elsewhere = receiver();
    cleanups.push(elsewhere.stop);
    const redirecting = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response(null, { status: 307, headers: { location: elsewhere.url } }),
    });
    cleanups.push(() => redirecting.stop(true));
    const env = {
      TRAINWATCH_ALERT_WEBHOOK: `http://127.0.0.1:${redirecting.port}/hook`,
      TRAINWATCH_ALERT_WEBHOOK_SECRET: "s3cret",
    };
    const { store, app, config } = await outbox(":memory:", env);
    cleanups.push(() => store.close());
    await failRuns(app, 1);
    expect(await new Deliverer({ store: store.alerts, targets: targetsOf(config.alerts) }).drain()).not.toBeNull();
    expect(elsewhere.tries).toEqual([]);
    const [alert] = await store.alerts.listAlerts({ limit: 1 });
    expect(alert!.deliveries[0]).toMatchObject({ state: "pending", attempts: 1, last_status: 307 });
  });

  test("a Slack channel gets the text and blocks; no signature header without a secret", async () => {
    const rx = receiver();
    cleanups.push(rx.stop);
    const { store, app, config } = await outbox(":memory:", { TRAINWATCH_ALERT_SLACK_WEBHOOK: rx.url });
    cleanups.push(() => store.close());
    await failRuns(app, 1);
    await new Deliverer({ store: store.alerts, targets: targetsOf(config.alerts) }).drain();
    const m = JSON.parse(rx.got[0]!.body);
    expect(m.text).toContain('Run "run 0" failed');
    expect(m.blocks[0]).toEqual({
      type: "header",
      text: { type: "plain_text", text: 'Run "run 0" failed', emoji: true },
    });
    expect(rx.got[0]!.headers.get("x-trainwatch-signature")).toBeNull();
  });

  test("a receiver down for 30 s, then up, gets every alert once, in order, across a server restart", async () => {
    let down = true;
    const rx = receiver(() => (down ? 503 : 200));
    cleanups.push(rx.stop);
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const path = join(tmp.dir, "tw.db");
    const env = { TRAINWATCH_ALERT_WEBHOOK: rx.url };
    let t = Date.now();
    const now = () => t;
    const first = await outbox(path, env);
    const ids = await failRuns(first.app, 2);
    const worker = new Deliverer({ store: first.store.alerts, targets: targetsOf(first.config.alerts), now });
    // Down: the head is retried 1 s, 2 s, 4 s, … later; the one behind it waits its turn (head of line).
    const start = t;
    let due = await worker.drain();
    while (t - start < 30_000) {
      expect(due).not.toBeNull();
      t = due!;
      due = await worker.drain();
    }
    expect(rx.got).toEqual([]);
    expect(new Set(rx.tries)).toEqual(new Set([(await first.store.alerts.listAlerts({ limit: 9 })).at(-1)!.alert.id]));
    // The server stops (nothing is delivered yet) and starts again on the same file; a third run fails meanwhile.
    first.store.close();
    const second = await outbox(path, env);
    cleanups.push(() => second.store.close());
    ids.push(...(await failRuns(second.app, 1)));
    down = false;
    const again = new Deliverer({ store: second.store.alerts, targets: targetsOf(second.config.alerts), now });
    t = due!;
    expect(await again.drain()).toBeNull();
    expect(rx.got.map((g) => JSON.parse(g.body).operation.id)).toEqual(ids);
    const log = (await second.store.alerts.listAlerts({ limit: 9 })).reverse().map((a) => a.deliveries[0]!);
    expect(log.map((d) => d.state)).toEqual(["delivered", "delivered", "delivered"]);
    expect(log[0]!.attempts).toBeGreaterThan(4);
    expect(log.slice(1).map((d) => d.attempts)).toEqual([1, 1]);
  });

  test("an alert its receiver never accepts is failed after an hour (and at least 5 tries), and the next one goes", async () => {
    let refuse = true;
    const rx = receiver(() => (refuse ? 500 : 200));
    cleanups.push(rx.stop);
    const { store, app, config } = await outbox(":memory:", { TRAINWATCH_ALERT_WEBHOOK: rx.url });
    cleanups.push(() => store.close());
    const [stuck] = await failRuns(app, 1);
    let t = Date.now();
    const worker = new Deliverer({
      store: store.alerts,
      targets: targetsOf(config.alerts),
      now: () => t,
      log: () => {},
    });
    let due = await worker.drain();
    const started = t;
    while (due !== null) {
      t = due;
      due = await worker.drain();
    }
    expect(t - started).toBeGreaterThanOrEqual(RETRY_FOR_MS - 300_000);
    const [a] = await store.alerts.listAlerts({ limit: 1 });
    expect(a!.deliveries[0]).toMatchObject({ state: "failed", last_status: 500, last_error: "HTTP 500" });
    expect(a!.deliveries[0]!.attempts).toBeGreaterThanOrEqual(MIN_ATTEMPTS);
    refuse = false;
    const [next] = await failRuns(app, 1);
    expect(await worker.drain()).toBeNull();
    expect(rx.got.map((g) => JSON.parse(g.body).operation.id)).toEqual([next]);
    expect(stuck).not.toBe(next);
  });

  test("started, the worker is woken by the write that raised the alert: the receiver gets it without a poll", async () => {
    const arrived = Promise.withResolvers<string>();
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(r) {
        arrived.resolve(await r.text());
        return new Response("ok");
      },
    });
    cleanups.push(() => server.stop(true));
    const { store, app, config } = await outbox(":memory:", {
      TRAINWATCH_ALERT_WEBHOOK: `http://127.0.0.1:${server.port}/`,
    });
    cleanups.push(() => store.close());
    const targets: Target[] = targetsOf(config.alerts);
    const worker = new Deliverer({ store: store.alerts, targets });
    const ops = (app.decorator as { deps: { operations: OperationsService } }).deps.operations;
    ops.alerts.onAlert(() => worker.wake());
    worker.start();
    cleanups.push(() => worker.stop());
    const id = await createRun(app);
    await postEpochs(app, id, DIVERGING.slice(0, 9));
    expect(JSON.parse(await arrived.promise)).toMatchObject({ event: "diverging", operation: { id } });
  });
});
