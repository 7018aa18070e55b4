// The host's relay outbox against an in-memory fake API: order, retries, the final
// status last, restarts from the SQLite file (and from one written before its schema was
// versioned), and one log line per outage. Time is a ManualClock wherever a retry is awaited.
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ApiError } from "../src/client/api.ts";
import { HOST_RESTARTED, Outbox, type OutboxOptions, type RelayApi } from "../src/host/outbox.ts";
import { OUTBOX_MIGRATIONS } from "../src/host/outbox_store.ts";
import { encodeEpoch, type WireEpoch } from "../src/schemas/epoch.ts";
import type { HeartbeatInput } from "../src/schemas/host.ts";
import type { StopControl } from "../src/schemas/control.ts";
import type { WireStep } from "../src/schemas/step.ts";
import { ManualClock } from "./fixtures/clock.ts";
import { until } from "./fixtures/poll.ts";
import { falling } from "./fixtures/trainer.ts";
import { tempDir } from "./helpers.ts";

type Call =
  | { kind: "metrics"; id: string; epochs: number[] }
  | { kind: "steps"; id: string; steps: number[] }
  | { kind: "complete"; id: string; status: string; error_message?: string; result?: Record<string, unknown> }
  | { kind: "heartbeat"; id: string; body: HeartbeatInput };

/** The API in memory: records what it acknowledged; `down` makes every call fail like a refused connection. */
class FakeApi implements RelayApi {
  calls: Call[] = [];
  attempts = 0;
  down = false;
  /** Set to 401 or 403: the API refuses the host's token. */
  refuse: number | null = null;
  /** Operations the API has finished: relays get 409. */
  finished = new Set<string>();
  /** Of those, the ones it cancelled: like the real API, it still takes `complete` with status cancelled (the result). */
  cancelled = new Set<string>();
  stored = new Map<string, number[]>();
  /** Steps as the API keeps them: one row per step number (a re-posted step replaces itself). */
  storedSteps = new Map<string, Map<number, WireStep>>();
  /** The control a steps reply carries (the operation's stop policy fired). */
  stepControl: StopControl | null = null;

  private async gate(id: string) {
    this.attempts++;
    await Bun.sleep(0);
    if (this.down)
      throw new ApiError("UNREACHABLE", "cannot reach the Trainwatch API at http://fake (Connection refused)", null);
    if (this.refuse) throw new ApiError("UNAUTHORIZED", "missing or invalid bearer token", this.refuse);
    if (this.finished.has(id)) throw new ApiError("OPERATION_FINISHED", `operation ${id} is cancelled`, 409);
  }
  async postMetrics(id: string, epochs: WireEpoch[]) {
    await this.gate(id);
    this.calls.push({ kind: "metrics", id, epochs: epochs.map((e) => e.epoch) });
    // Like the real API, re-posting an epoch replaces it.
    const kept = (this.stored.get(id) ?? []).filter((n) => !epochs.some((e) => e.epoch === n));
    this.stored.set(id, [...kept, ...epochs.map((e) => e.epoch)]);
  }
  async writeSteps(id: string, steps: WireStep[]) {
    await this.gate(id);
    this.calls.push({ kind: "steps", id, steps: steps.map((s) => s.step) });
    let kept = this.storedSteps.get(id);
    if (!kept) this.storedSteps.set(id, (kept = new Map()));
    for (const s of steps) kept.set(s.step, s);
    return { stored: steps.length, control: this.stepControl ?? { action: "continue" } };
  }
  async completeOperation(
    id: string,
    body: { status: string; error_message?: string; result?: Record<string, unknown> },
  ) {
    if (!(body.status === "cancelled" && this.cancelled.has(id))) await this.gate(id);
    this.calls.push({
      kind: "complete",
      id,
      status: body.status,
      ...(body.error_message ? { error_message: body.error_message } : {}),
      ...(body.result ? { result: body.result } : {}),
    });
  }
  async heartbeat(id: string, body: HeartbeatInput = {}) {
    await this.gate(id);
    this.calls.push({ kind: "heartbeat", id, body });
  }
  durable(id?: string) {
    return this.calls.filter((c) => c.kind !== "heartbeat" && (id === undefined || c.id === id));
  }
}

/** Epoch `n` of the scripted trainer's curve, encoded for the wire as a session encodes its worker's epochs. */
const epoch = (n: number): WireEpoch => encodeEpoch({ epoch: n, ...falling(n), timestamp: new Date().toISOString() });

/** Steps `from` … `to` (inclusive) of epoch `epoch`, as a script posts them in one batch. */
const steps = (from: number, to: number, epoch = 0): WireStep[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ step: from + i, epoch, train_loss: 1 / (from + i + 1) }));

const opened: Outbox[] = [];
function outbox(api: FakeApi, extra: Partial<OutboxOptions> = {}) {
  const lines: string[] = [];
  const box = new Outbox({
    path: ":memory:",
    api: () => api,
    backoff: { initialMs: 5, maxMs: 20 },
    heartbeatMs: 0,
    log: (l) => lines.push(l),
    ...extra,
  });
  opened.push(box);
  return { box, lines };
}

afterEach(() => {
  for (const b of opened.splice(0)) {
    try {
      b.stop();
    } catch {
      // already stopped by the test
    }
  }
});

describe("outbox", () => {
  test("delivers epochs first in, first out, then the final status", async () => {
    const api = new FakeApi();
    const { box } = outbox(api);
    box.open("op_a", "http://api");
    for (let e = 0; e < 6; e++) box.epoch("op_a", epoch(e));
    box.close("op_a", { status: "completed", result: { stop_reason: "completed" } });
    await box.idle();
    expect(api.stored.get("op_a")).toEqual([0, 1, 2, 3, 4, 5]);
    expect(api.durable().at(-1)).toEqual({
      kind: "complete",
      id: "op_a",
      status: "completed",
      result: { stop_reason: "completed" },
    });
  });

  test("a finished operation is forgotten once delivered, so a long-running host does not grow", async () => {
    const api = new FakeApi();
    const { box } = outbox(api);
    for (let i = 0; i < 300; i++) {
      box.open(`op_${i}`, "http://api");
      box.epoch(`op_${i}`, epoch(0));
      box.epoch(`op_${i}`, epoch(1));
      box.close(`op_${i}`, { status: "completed" });
    }
    await box.idle();
    await until("api.durable().length >= 300 * 2", () => api.durable().length >= 300 * 2);
    expect(box.pending()).toBe(0);
    // Its count survives for GET /sessions; its lane does not (nothing more can be queued for it).
    expect(box.delivered("op_7")).toBeGreaterThanOrEqual(2);
    expect(() => box.epoch("op_7", epoch(2))).toThrow("never opened");
  });

  test("each operation keeps its own order when several interleave", async () => {
    const api = new FakeApi();
    const { box } = outbox(api);
    box.open("op_a", "http://api");
    box.open("op_b", "http://api");
    for (let e = 0; e < 5; e++) {
      box.epoch("op_a", epoch(e));
      box.epoch("op_b", epoch(e));
    }
    box.close("op_b", { status: "completed" });
    box.close("op_a", { status: "failed", error_message: "boom" });
    await box.idle();
    expect(api.stored.get("op_a")).toEqual([0, 1, 2, 3, 4]);
    expect(api.stored.get("op_b")).toEqual([0, 1, 2, 3, 4]);
    expect(api.durable("op_a").at(-1)).toEqual({
      kind: "complete",
      id: "op_a",
      status: "failed",
      error_message: "boom",
    });
  });

  test("the final status is sent only after every epoch is acknowledged", async () => {
    const api = new FakeApi();
    api.down = true;
    const clock = new ManualClock();
    const { box } = outbox(api, { clock });
    box.open("op_a", "http://api");
    for (let e = 0; e < 4; e++) box.epoch("op_a", epoch(e));
    box.close("op_a", { status: "completed" });
    // The heartbeat at open, then the epochs' call and its retries at 5, 10, 20, 20… ms.
    await clock.advance(100);
    expect(api.attempts).toBeGreaterThanOrEqual(5);
    expect(api.durable()).toEqual([]);
    expect(box.pending("op_a")).toBe(5);
    api.down = false;
    await clock.advance(20);
    await box.idle();
    const kinds = api.durable().map((c) => c.kind);
    expect(kinds.at(-1)).toBe("complete");
    expect(kinds.filter((k) => k === "complete")).toHaveLength(1);
    expect(api.stored.get("op_a")).toEqual([0, 1, 2, 3]);
  });

  test("a long outage keeps retrying at the capped delay until acknowledged", async () => {
    const api = new FakeApi();
    api.down = true;
    const clock = new ManualClock();
    const { box } = outbox(api, { backoff: { initialMs: 250, maxMs: 5000 }, clock });
    box.open("op_a", "http://api");
    box.epoch("op_a", epoch(0));
    // Each retry waits twice the last, up to the cap, and keeps retrying there.
    const delays: (number | null)[] = [];
    for (let i = 0; i < 10; i++) {
      await clock.advance(0);
      delays.push(clock.nextIn());
      await clock.advance(clock.nextIn()!);
    }
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000]);
    expect(api.stored.get("op_a")).toBeUndefined();
    api.down = false;
    await clock.advance(5000);
    await box.idle();
    expect(api.stored.get("op_a")).toEqual([0]);
  });

  test("logs one line when an outage starts and one when it ends, not one per retry", async () => {
    const api = new FakeApi();
    api.down = true;
    const clock = new ManualClock();
    const { box, lines } = outbox(api, { clock });
    box.open("op_a", "http://api");
    box.epoch("op_a", epoch(0));
    box.epoch("op_a", epoch(1));
    await clock.advance(200);
    expect(api.attempts).toBeGreaterThanOrEqual(8);
    api.down = false;
    await clock.advance(20);
    await box.idle();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain("cannot deliver to the API at http://api");
    expect(lines[1]).toContain("reachable again");
    // A second outage gets its own pair.
    api.down = true;
    box.epoch("op_a", epoch(2));
    await clock.advance(0);
    expect(lines).toHaveLength(3);
    api.down = false;
    await clock.advance(20);
    await box.idle();
    expect(lines).toHaveLength(4);
  });

  test("a 401 is a refused token, not an outage: reported and logged naming TRAINWATCH_TOKEN, nothing dropped, delivered once the token is accepted", async () => {
    const api = new FakeApi();
    api.refuse = 401;
    const clock = new ManualClock();
    const { box, lines } = outbox(api, { clock });
    box.open("op_a", "http://api");
    box.epoch("op_a", epoch(0));
    box.epoch("op_a", epoch(1));
    // Parked: retried at the cap (20 ms) from the first refusal, not at the initial 5 ms.
    await clock.advance(0);
    expect(clock.nextIn()).toBe(20);
    await clock.advance(40);
    expect(api.attempts).toBeGreaterThanOrEqual(4);
    expect(box.pending("op_a")).toBe(2);
    expect(box.problem("http://api")).toMatchObject({ api_url: "http://api", refused: true, status: 401 });
    expect(box.problems()).toHaveLength(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(
      "the API at http://api refused this host's token (401); set the same TRAINWATCH_TOKEN on the API and on the host",
    );
    api.refuse = null;
    await clock.advance(20);
    await box.idle();
    expect(api.stored.get("op_a")).toEqual([0, 1]);
    expect(box.problem("http://api")).toBeNull();
    expect(lines[1]).toContain("reachable again");
  });

  test("a 409 from the API drops the operation's items and stops its training", async () => {
    const api = new FakeApi();
    const stopped: string[] = [];
    const clock = new ManualClock();
    const { box } = outbox(api, { onStop: (id) => stopped.push(id), clock });
    box.open("op_a", "http://api");
    api.finished.add("op_a");
    box.epoch("op_a", epoch(0));
    await clock.advance(0);
    expect(stopped).toEqual(["op_a"]);
    expect(clock.pending()).toBe(0); // not retried
    expect(box.pending()).toBe(0);
    // What the training still emits is dropped, not queued.
    box.epoch("op_a", epoch(1));
    box.close("op_a", { status: "cancelled" });
    expect(box.pending()).toBe(0);
  });

  test("cancelled on the API: the epochs still queued are dropped, but the result of the cancel (its checkpoints) is delivered", async () => {
    const api = new FakeApi();
    const clock = new ManualClock();
    const { box } = outbox(api, { clock });
    box.open("op_a", "http://api");
    api.down = true;
    box.epoch("op_a", epoch(0));
    await clock.advance(0);
    expect(api.attempts).toBeGreaterThanOrEqual(1);
    api.finished.add("op_a");
    api.cancelled.add("op_a");
    const result = { stop_reason: "cancelled", checkpoints: [{ epoch: 0, kind: "best", path: "/m/epoch-0" }] };
    box.checkpoints("op_a", result.checkpoints as never);
    box.close("op_a", { status: "cancelled", result });
    api.down = false;
    await clock.advance(20);
    await box.idle();
    expect(api.durable("op_a")).toEqual([{ kind: "complete", id: "op_a", status: "cancelled", result }]);
    expect(api.stored.get("op_a")).toBeUndefined();
  });

  test("a cancelled final the API refuses (the operation ended otherwise) is dropped, not retried", async () => {
    const api = new FakeApi();
    const { box } = outbox(api);
    box.open("op_a", "http://api");
    api.finished.add("op_a");
    box.close("op_a", { status: "cancelled", result: { checkpoints: [] } });
    await box.idle();
    expect(box.pending()).toBe(0);
    expect(api.durable("op_a")).toEqual([]);
    // The heartbeat at open, then the final once: a refused final is not sent again.
    expect(api.attempts).toBe(2);
  });

  test("a restart delivers what the previous process left in the SQLite file", async () => {
    const tmp = tempDir();
    try {
      const path = join(tmp.dir, "host.db");
      const api = new FakeApi();
      api.down = true;
      const firstClock = new ManualClock();
      const first = outbox(api, { path, clock: firstClock }).box;
      first.open("op_done", "http://api");
      first.open("op_cut", "http://api");
      for (let e = 0; e < 3; e++) first.epoch("op_done", epoch(e));
      first.close("op_done", { status: "completed" });
      for (let e = 0; e < 2; e++) first.epoch("op_cut", epoch(e));
      await firstClock.advance(0);
      expect(api.attempts).toBeGreaterThanOrEqual(3);
      first.stop(); // the host dies with op_cut still training

      api.down = false;
      const second = outbox(api, { path }).box;
      await second.idle();
      expect(api.stored.get("op_done")).toEqual([0, 1, 2]);
      expect(api.durable("op_done").at(-1)).toEqual({ kind: "complete", id: "op_done", status: "completed" });
      expect(api.stored.get("op_cut")).toEqual([0, 1]);
      expect(api.durable("op_cut").at(-1)).toEqual({
        kind: "complete",
        id: "op_cut",
        status: "failed",
        error_message: HOST_RESTARTED,
      });
      second.stop();

      // Everything was acknowledged: a third start has nothing to send.
      const calls = api.calls.length;
      const clock = new ManualClock();
      const third = outbox(api, { path, clock }).box;
      expect(third.pending()).toBe(0);
      await clock.advance(0);
      expect(clock.pending()).toBe(0); // no retry or heartbeat scheduled: nothing will ever go
      expect(api.calls.length).toBe(calls);
    } finally {
      tmp.cleanup();
    }
  });

  test("consecutive epochs go as one call of at most maxBatch, in order", async () => {
    const api = new FakeApi();
    api.down = true;
    const clock = new ManualClock();
    const { box } = outbox(api, { maxBatch: 2, clock });
    box.open("op_a", "http://api");
    for (let e = 0; e < 5; e++) box.epoch("op_a", epoch(e));
    box.close("op_a", { status: "completed" });
    await clock.advance(0);
    api.down = false;
    await clock.advance(20);
    await box.idle();
    expect(api.durable("op_a").map((c) => (c.kind === "metrics" ? c.epochs : c.kind))).toEqual([
      [0, 1],
      [2, 3],
      [4],
      "complete",
    ]);
  });

  test("step batches are relayed in order with the epochs around them, consecutive batches as one call, every step once", async () => {
    const api = new FakeApi();
    api.down = true;
    const clock = new ManualClock();
    const { box } = outbox(api, { clock });
    box.open("op_s", "http://api");
    box.steps("op_s", steps(0, 99));
    box.steps("op_s", steps(100, 199));
    box.epoch("op_s", epoch(0));
    box.steps("op_s", steps(200, 249, 1));
    box.steps("op_s", []); // an empty batch is no item
    box.close("op_s", { status: "completed" });
    expect(box.pending("op_s")).toBe(5);
    await clock.advance(0);
    api.down = false;
    await clock.advance(20);
    await box.idle();
    expect(api.durable("op_s").map((c) => (c.kind === "steps" ? [c.steps[0], c.steps.at(-1)] : c.kind))).toEqual([
      [0, 199],
      "metrics",
      [200, 249],
      "complete",
    ]);
    expect([...api.storedSteps.get("op_s")!.keys()]).toEqual(Array.from({ length: 250 }, (_, i) => i));
    expect(box.delivered("op_s")).toBe(5);
  });

  test("consecutive step batches merge up to maxSteps steps, a batch never split", async () => {
    const api = new FakeApi();
    api.down = true;
    const clock = new ManualClock();
    const { box } = outbox(api, { maxSteps: 250, clock });
    box.open("op_s", "http://api");
    box.steps("op_s", steps(0, 99));
    box.steps("op_s", steps(100, 199));
    box.steps("op_s", steps(200, 299)); // 300 > 250: the next call
    box.steps("op_s", steps(300, 599)); // alone over the bound: goes whole
    box.close("op_s", { status: "completed" });
    await clock.advance(0);
    api.down = false;
    await clock.advance(20);
    await box.idle();
    expect(api.durable("op_s").map((c) => (c.kind === "steps" ? [c.steps[0], c.steps.length] : c.kind))).toEqual([
      [0, 200],
      [200, 100],
      [300, 300],
      "complete",
    ]);
  });

  test("steps left in the SQLite file by a host that died are delivered by the next start, once", async () => {
    const tmp = tempDir();
    try {
      const path = join(tmp.dir, "host.db");
      const api = new FakeApi();
      api.down = true;
      const clock = new ManualClock();
      const first = outbox(api, { path, clock }).box;
      first.open("op_s", "http://api");
      first.steps("op_s", steps(0, 9));
      first.steps("op_s", steps(10, 19));
      await clock.advance(0);
      first.stop();
      api.down = false;
      const second = outbox(api, { path }).box;
      await second.idle();
      expect(api.durable("op_s").map((c) => (c.kind === "steps" ? c.steps : c.kind))).toEqual([
        Array.from({ length: 20 }, (_, i) => i),
        "complete",
      ]);
      second.stop();
    } finally {
      tmp.cleanup();
    }
  });

  test("a steps reply carrying the stop decision stops the training once; delivery goes on", async () => {
    const api = new FakeApi();
    api.stepControl = {
      action: "stop",
      reason: "diverging at epoch 3",
      checkpoint_epoch: 1,
      decided_by: "stop_policy",
      epoch: 3,
      at: new Date(0).toISOString(),
    };
    const heard: string[] = [];
    const { box } = outbox(api, { onControl: (id, c) => heard.push(`${id}: ${c.reason}`) });
    box.open("op_s", "http://api");
    box.steps("op_s", steps(0, 9));
    await box.idle();
    box.steps("op_s", steps(10, 19));
    await box.idle();
    expect(heard).toEqual(["op_s: diverging at epoch 3"]);
    expect(api.storedSteps.get("op_s")!.size).toBe(20);
  });

  test("an outbox file written before its schema was versioned migrates forward and delivers what it kept", async () => {
    const tmp = tempDir();
    try {
      const path = join(tmp.dir, "host.db");
      // The file exactly as the unversioned outbox left it (user_version 0): two epochs and a final queued for
      // op_done, and op_cut still open when that host died.
      const old = new Database(path, { create: true, strict: true });
      old.run("PRAGMA journal_mode = WAL");
      old.run(`CREATE TABLE IF NOT EXISTS outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, operation_id TEXT NOT NULL, api_url TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL)`);
      old.run(`CREATE TABLE IF NOT EXISTS open_sessions (
      operation_id TEXT PRIMARY KEY, api_url TEXT NOT NULL, opened_at INTEGER NOT NULL)`);
      const put = old.query("INSERT INTO outbox (operation_id, api_url, kind, body) VALUES (?, ?, ?, ?)");
      for (const e of [0, 1])
        put.run("op_done", "http://api", "epoch", JSON.stringify({ kind: "epoch", epoch: epoch(e) }));
      put.run(
        "op_done",
        "http://api",
        "final",
        JSON.stringify({ kind: "final", final: { status: "completed", result: { stop_reason: "completed" } } }),
      );
      put.run("op_cut", "http://api", "epoch", JSON.stringify({ kind: "epoch", epoch: epoch(0) }));
      old
        .query("INSERT INTO open_sessions (operation_id, api_url, opened_at) VALUES (?, ?, ?)")
        .run("op_cut", "http://api", 1_700_000_000_000);
      expect(old.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBe(0);
      old.close();

      const api = new FakeApi();
      const { box, lines } = outbox(api, { path });
      expect(box.pending()).toBe(5); // 4 kept, and the cut-off training's final
      await box.idle();
      expect(api.stored.get("op_done")).toEqual([0, 1]);
      expect(api.durable("op_done").at(-1)).toEqual({
        kind: "complete",
        id: "op_done",
        status: "completed",
        result: { stop_reason: "completed" },
      });
      expect(api.stored.get("op_cut")).toEqual([0]);
      expect(api.durable("op_cut").at(-1)).toEqual({
        kind: "complete",
        id: "op_cut",
        status: "failed",
        error_message: HOST_RESTARTED,
      });
      expect(lines[0]).toContain("resuming delivery of 5 item(s) for 2 operation(s)");
      box.stop();

      const after = new Database(path, { readonly: true });
      expect(after.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBe(
        OUTBOX_MIGRATIONS.length,
      );
      expect(after.query<{ n: number }, []>("SELECT count(*) AS n FROM outbox").get()!.n).toBe(0);
      expect(after.query<{ n: number }, []>("SELECT count(*) AS n FROM open_sessions").get()!.n).toBe(0);
      after.close();
    } finally {
      tmp.cleanup();
    }
  });

  test("heartbeats go out while training, carry the latest progress, and stop at close", async () => {
    const api = new FakeApi();
    const clock = new ManualClock();
    const { box } = outbox(api, { heartbeatMs: 10_000, clock });
    box.open("op_a", "http://api");
    box.progress("op_a", { epoch: 0, batch: 3, batches: 10 });
    await clock.advance(30_000);
    const beats = api.calls.filter((c): c is Extract<Call, { kind: "heartbeat" }> => c.kind === "heartbeat");
    // One at open, then one every 10 s.
    expect(beats).toHaveLength(4);
    expect(beats.some((b) => b.body.progress?.batch === 3)).toBe(true);
    box.close("op_a", { status: "completed" });
    await box.idle();
    expect(clock.pending()).toBe(0); // the heartbeat interval is gone
    const after = api.calls.length;
    await clock.advance(60_000);
    expect(api.calls.length).toBe(after);
  });

  test("a heartbeat answered 409 (cancelled on the API) stops the training", async () => {
    const api = new FakeApi();
    const stopped: string[] = [];
    const clock = new ManualClock();
    const { box } = outbox(api, { heartbeatMs: 10_000, onStop: (id) => stopped.push(id), clock });
    box.open("op_a", "http://api");
    await clock.advance(0);
    expect(api.calls.some((c) => c.kind === "heartbeat")).toBe(true);
    api.finished.add("op_a");
    await clock.advance(10_000);
    expect(stopped).toEqual(["op_a"]);
    expect(clock.pending()).toBe(0);
  });
});
