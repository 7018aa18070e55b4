// Liveness for every run (issue 24): the pure rules (stale, lost, hung, the row cadence) with a clock, the
// configuration, the heartbeat and complete routes for client runs, the analysis's liveness, and the client watchdog
// with a clock on an in-memory store (stale published once, lost with its message, revived, hung raised once).
import { describe, expect, test } from "bun:test";
import { createApp } from "../src/app.ts";
import { clientLiveness } from "../src/config.ts";
import { ConfigError } from "../src/env.ts";
import { startClientWatchdog, watchdogPeriodMs } from "../src/operations/client_watchdog.ts";
import { isRevivable } from "../src/operations/lifecycle.ts";
import {
  CADENCE_INTERVALS,
  DEFAULT_CLIENT_LIVENESS,
  adviceOnLiveness,
  hungDetail,
  hungThresholdMs,
  isLost,
  livenessOf,
  lostMessage,
  medianInterval,
  noteRows,
  type Cadence,
  type HungDetail,
  type LivenessRow,
} from "../src/operations/liveness.ts";
import { OperationsService, type OperationEvent } from "../src/operations/service.ts";
import { describeUtilisation } from "../src/operations/utilisation.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { json, makeApp, req } from "./helpers.ts";
import { TS, curve } from "./store_contract.ts";

const cfg = DEFAULT_CLIENT_LIVENESS;

/** A cadence of writes `gaps` ms apart, the first at `start`. */
function cadenceOf(start: number, gaps: number[]): Cadence {
  let c = noteRows(null, start);
  let t = start;
  for (const g of gaps) c = noteRows(c, (t += g));
  return c;
}

const row = (over: Partial<LivenessRow> = {}): LivenessRow => ({
  status: "running",
  location: "external",
  last_seen_at: 0,
  watched_at: 0,
  cadence: null,
  ...over,
});

describe("the liveness rules", () => {
  test("a watched running run is stale past TRAINWATCH_STALE_AFTER of silence, and lost past TRAINWATCH_LOST_AFTER", () => {
    const r = row({ last_seen_at: 1_000 });
    expect(livenessOf(r, 1_000 + cfg.staleAfterMs, cfg)!.stale).toBe(false);
    expect(livenessOf(r, 1_001 + cfg.staleAfterMs, cfg)!.stale).toBe(true);
    expect(isLost(r, 1_000 + cfg.lostAfterMs, cfg)).toBe(false);
    expect(isLost(r, 1_001 + cfg.lostAfterMs, cfg)).toBe(true);
  });

  test("a run that never heartbeats, a host training, a local one and a finished one are never judged here", () => {
    const far = 10 * cfg.lostAfterMs;
    for (const r of [
      row({ watched_at: null }),
      row({ location: "host" }),
      row({ location: "local" }),
      row({ status: "failed" }),
    ]) {
      expect(livenessOf(r, far, cfg)).toBeNull();
      expect(isLost(r, far, cfg)).toBe(false);
    }
  });

  test("the defaults never call a run with 10-minute evaluations lost while it heartbeats", () => {
    // One epoch every 10 minutes; the heartbeat thread beats every 15 s throughout.
    const tenMin = 600_000;
    const c = cadenceOf(0, [tenMin, tenMin, tenMin]);
    const during = 3 * tenMin + 9 * 60_000; // 9 minutes into the next evaluation
    const r = row({ last_seen_at: during - 15_000, cadence: JSON.stringify(c) });
    const v = livenessOf(r, during, cfg)!;
    expect(v).toMatchObject({ stale: false, hung: false });
    expect(isLost(r, during, cfg)).toBe(false);
  });

  test("the cadence keeps the recent 32 intervals and the longest gap ever; a write in the same millisecond adds none", () => {
    let c = cadenceOf(0, [5_000, ...Array(40).fill(100)]);
    expect(c.intervals).toHaveLength(CADENCE_INTERVALS);
    expect(c.longest_ms).toBe(5_000);
    expect(medianInterval(c)).toBe(100);
    const same = noteRows(c, c.last_ms);
    expect(same).toBe(c);
    c = cadenceOf(0, [10, 30]);
    expect(medianInterval(c)).toBe(20);
    expect(medianInterval(noteRows(null, 5))).toBeNull();
  });

  test("hung past max(10 × median, 1.5 × longest gap, TRAINWATCH_HUNG_AFTER) without a row, while heartbeats arrive", () => {
    // Steps every 60 s, one 4-minute evaluation: 10 × 60 s = 600 s beats 1.5 × 240 s = 360 s and the 300 s floor.
    const c = cadenceOf(0, [60_000, 60_000, 240_000, 60_000, 60_000]);
    expect(hungThresholdMs(c, cfg.hungAfterMs)).toBe(600_000);
    // A fast loop: the floor rules.
    expect(hungThresholdMs(cadenceOf(0, [100, 100]), cfg.hungAfterMs)).toBe(cfg.hungAfterMs);
    // One long gap seen before: 1.5 × it.
    expect(hungThresholdMs(cadenceOf(0, [100, 100, 100, 1_000_000]), cfg.hungAfterMs)).toBe(1_500_000);
    const last = c.last_ms;
    const beating = (now: number) => row({ last_seen_at: now - 5_000, cadence: JSON.stringify(c) });
    expect(livenessOf(beating(last + 600_000), last + 600_000, cfg)!.hung).toBe(false);
    const v = livenessOf(beating(last + 600_001), last + 600_001, cfg)!;
    expect(v).toMatchObject({ hung: true, stale: false, median_interval_s: 60, longest_gap_s: 240, hung_after_s: 600 });
    // Silent altogether: stale (then lost), not hung.
    const silent = row({ last_seen_at: last, cadence: JSON.stringify(c) });
    expect(livenessOf(silent, last + 700_000, cfg)).toMatchObject({ hung: false, stale: true });
  });

  test("a run that heartbeats but never logs a row is hung past the floor, counted from its first heartbeat", () => {
    const r = (now: number) => row({ watched_at: 1_000, last_seen_at: now - 1_000 });
    expect(livenessOf(r(1_000 + cfg.hungAfterMs), 1_000 + cfg.hungAfterMs, cfg)!.hung).toBe(false);
    expect(livenessOf(r(1_001 + cfg.hungAfterMs), 1_001 + cfg.hungAfterMs, cfg)!.hung).toBe(true);
  });

  test("the lost message says how long it was silent and the last epoch or step; the hung reason cites the usual interval", () => {
    expect(lostMessage(301_000, { epoch: 25, steps: 0 })).toContain("for 301 s");
    expect(lostMessage(301_000, { epoch: 25, steps: 0 })).toContain("its last epoch was 25");
    expect(lostMessage(301_000, { epoch: 2, steps: 1200 })).toContain("its last step was 1199 (epoch 2)");
    expect(lostMessage(301_000, { epoch: null, steps: 0 })).toContain("it logged no epoch or step");
    const v = livenessOf(
      row({ last_seen_at: 999_000, cadence: JSON.stringify(cadenceOf(0, [1_000, 1_000])) }),
      1_000_000,
      cfg,
    )!;
    const d = hungDetail(v, "GPU 0 at 0 %");
    expect(d).toMatchObject({ flag: "hung", median_interval_s: 1, longest_gap_s: 1, utilisation: "GPU 0 at 0 %" });
    expect(d.reason).toContain("median interval is 1 s");
    expect(d.reason).toContain("GPU 0 at 0 %");
    expect(hungDetail(v).utilisation).toBeUndefined();
  });

  test("lost is revivable, terminated and trainer_error are final", () => {
    expect(isRevivable({ status: "failed", failure_code: "lost" })).toBe(true);
    expect(isRevivable({ status: "failed", failure_code: "terminated" })).toBe(false);
    expect(isRevivable({ status: "failed", failure_code: "trainer_error" })).toBe(false);
  });
});

describe("the advice while the trainer is quiet", () => {
  const verdict = {
    stale: false,
    hung: false,
    silent_s: 0,
    rows_silent_s: 0,
    median_interval_s: 2,
    longest_gap_s: 5,
    hung_after_s: 300,
  };
  const go = { action: "continue", reason: "The loss is still falling.", checkpoint_epoch: null };
  test("neither stale nor hung: the curves' advice as it is", () => {
    expect(adviceOnLiveness(go, { stale: false, hung: false, liveness: verdict })).toBe(go);
  });
  test("stale or hung: continue becomes check_trainer, saying what is silent, the curves' reason after it", () => {
    const stale = adviceOnLiveness(go, {
      stale: true,
      hung: false,
      liveness: { ...verdict, stale: true, silent_s: 75.4 },
    });
    expect(stale.action).toBe("check_trainer");
    expect(stale.reason).toStartWith("The trainer has sent nothing (no heartbeat, epoch or step) for 75 s");
    expect(stale.reason).toEndWith("The curves so far: The loss is still falling.");
    const hung = adviceOnLiveness(
      { ...go, action: "insufficient_data" },
      { stale: false, hung: true, liveness: { ...verdict, hung: true, rows_silent_s: 400 } },
      "GPU 0 utilisation 0 %, sampled 3 s before",
    );
    expect(hung.action).toBe("check_trainer");
    expect(hung.reason).toStartWith(
      "The trainer heartbeats but has logged no epoch or step for 400 s (usually every 2 s); GPU 0 utilisation 0 %, sampled 3 s before: it looks hung",
    );
  });
  test("a stop stays a stop (the curves already end the run), the silence added to its reason", () => {
    const stop = { action: "stop", reason: "Diverging.", checkpoint_epoch: 4 };
    const out = adviceOnLiveness(stop, { stale: true, hung: false, liveness: null });
    expect(out).toMatchObject({ action: "stop", checkpoint_epoch: 4 });
    expect(out.reason).toStartWith("Diverging. The trainer has sent nothing (no heartbeat, epoch or step): it may");
  });
});

describe("the utilisation a hung flag cites", () => {
  const at = Date.parse("2026-12-07T10:00:00Z");
  const ts = "2026-12-07T09:59:48Z";
  test("the GPUs' when any reports one (one GPU by its index), else the process's CPU, else the machine's", () => {
    const gpu = { index: 2, utilization_percent: 97.25 };
    expect(describeUtilisation({ timestamp: ts, gpus: [gpu], process: { cpu_percent: 5 } }, at)).toBe(
      "GPU 2 utilisation 97.3 %, sampled 12 s before",
    );
    const idle = { timestamp: ts, gpus: [{ index: 0, utilization_percent: null }], process: { cpu_percent: 0.4 } };
    expect(describeUtilisation(idle, at)).toBe("process CPU 0.4 % of one core, sampled 12 s before");
    expect(describeUtilisation({ timestamp: ts, machine: { cpu_percent: 12 } }, at)).toBe(
      "machine CPU 12 %, sampled 12 s before",
    );
  });

  test("nothing to cite: no sample, or one without a utilisation", () => {
    expect(describeUtilisation(null, at)).toBeUndefined();
    expect(describeUtilisation({ timestamp: ts, process: { rss_mb: 100 } }, at)).toBeUndefined();
  });
});

describe("configuration", () => {
  test("defaults: heartbeat 15 s, stale 60 s, lost 300 s, hung 300 s", () => {
    expect(clientLiveness({})).toEqual({
      clientHeartbeatMs: 15_000,
      client: { staleAfterMs: 60_000, lostAfterMs: 300_000, hungAfterMs: 300_000 },
    });
  });

  test("a ConfigError naming the variable unless heartbeat < stale < lost", () => {
    const bad = (env: Record<string, string>, variable: string) => {
      let err: unknown;
      try {
        clientLiveness(env);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe(variable);
    };
    bad({ TRAINWATCH_CLIENT_HEARTBEAT: "60" }, "TRAINWATCH_STALE_AFTER");
    bad({ TRAINWATCH_STALE_AFTER: "300" }, "TRAINWATCH_LOST_AFTER");
    bad({ TRAINWATCH_LOST_AFTER: "30" }, "TRAINWATCH_LOST_AFTER");
    bad({ TRAINWATCH_HUNG_AFTER: "soon" }, "TRAINWATCH_HUNG_AFTER");
  });
});

/** The app on an in-memory store whose read clock is `clock.now` (writes and heartbeats stamp real time). */
function clockedApp(env: Record<string, string> = {}) {
  const clock = { now: Date.now() };
  const base = makeApp(env);
  const store = new SqliteStore(":memory:", base.config.trends, {
    lateAfterMs: 15_000,
    client: base.config.client,
    now: () => clock.now,
  });
  const raised: { id: string; detail: HungDetail }[] = [];
  // The alerts part's hook, recorded: what the watchdog raises, once per turn.
  class Recording extends OperationsService {
    override async flagRaised(id: string, detail: HungDetail): Promise<void> {
      raised.push({ id, detail });
      await super.flagRaised(id, detail);
    }
  }
  const operations = new Recording(store, { trends: base.config.trends });
  const app = createApp({ store, operations, config: base.config });
  return { app, store, operations, clock, raised, config: base.config };
}

/** A client watchdog on `t`'s clock, checked by hand (its own timer is an hour). */
const handDog = (t: ReturnType<typeof clockedApp>, log: (line: string) => void = () => {}) =>
  startClientWatchdog(t.operations, { liveness: t.config.client, now: () => t.clock.now, log, intervalMs: 3_600_000 });

async function register(app: { handle: (r: Request) => Promise<Response> }): Promise<string> {
  const res = await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })));
  expect(res.status).toBe(201);
  return res.body.data.operation_id;
}

const beat = (app: { handle: (r: Request) => Promise<Response> }, id: string) =>
  json(app.handle(req("POST", `/api/v1/operations/${id}/heartbeat`, {})));

describe("heartbeats and goodbyes of client runs", () => {
  test("a client's heartbeat is taken, makes the run watched and names the server's client interval", async () => {
    const t = clockedApp({ TRAINWATCH_CLIENT_HEARTBEAT: "7" });
    const id = await register(t.app);
    expect((await t.store.getOperation(id))!.liveness).toBeNull();
    const res = await beat(t.app, id);
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      operation_id: id,
      status: "running",
      revived: false,
      heartbeat_interval_s: 7,
    });
    const op = (await t.store.getOperation(id))!;
    expect(op.liveness).toMatchObject({ stale: false, hung: false });
    expect(op.last_seen_at).not.toBeNull();
  });

  test("an operation that never heartbeats keeps today's behaviour: never stale, never lost", async () => {
    const t = clockedApp();
    const id = await register(t.app);
    await t.store.writeEpochs(id, curve(0, 2));
    t.clock.now += 10 * t.config.client.lostAfterMs;
    const dog = startClientWatchdog(t.operations, { liveness: t.config.client, now: () => t.clock.now });
    try {
      expect(await dog.check()).toEqual([]);
    } finally {
      dog.stop();
    }
    expect((await t.store.getOperation(id))!).toMatchObject({ status: "running", stale: false, hung: false });
  });

  test("complete takes failure_code terminated and trainer_error; another code is a 400 naming the field", async () => {
    const t = clockedApp();
    const codes = ["terminated", "trainer_error"] as const;
    for (const code of codes) {
      const id = await register(t.app);
      const message = code === "terminated" ? "stopped by SIGTERM" : "ValueError: bad batch";
      const res = await json(
        t.app.handle(
          req("POST", `/api/v1/operations/${id}/complete`, {
            status: "failed",
            error_message: message,
            failure_code: code,
          }),
        ),
      );
      expect(res.status).toBe(200);
      expect(await t.store.getOperation(id)).toMatchObject({
        status: "failed",
        failure_code: code,
        error_message: message,
      });
    }
    const id = await register(t.app);
    const res = await json(
      t.app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "failed", failure_code: "lost" })),
    );
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.error)).toContain("failure_code");
  });
});

describe("the client watchdog", () => {
  test("a silent watched run turns stale (heard once), then lost with its silence and last epoch; a heartbeat revives it", async () => {
    const t = clockedApp();
    const id = await register(t.app);
    await t.store.writeEpochs(id, curve(0, 3));
    expect((await beat(t.app, id)).status).toBe(200);
    const events: OperationEvent[] = [];
    t.operations.subscribe(id, (e) => events.push(e));
    const logs: string[] = [];
    const dog = handDog(t, (l) => logs.push(l));
    try {
      const start = t.clock.now;
      t.clock.now = start + t.config.client.staleAfterMs + 1_000;
      expect(await dog.check()).toEqual([]);
      expect(await dog.check()).toEqual([]);
      const stale = events.filter((e) => e.type === "status");
      expect(stale).toHaveLength(1); // announced when it turned, not on every check
      expect(stale[0]).toMatchObject({ operation: { status: "running", stale: true } });
      // Its curves would say continue: the advice is to check the trainer, citing the silence.
      const advice = (await json(t.app.handle(req("GET", `/api/v1/operations/${id}/analysis`)))).body.data;
      expect(advice.flags.stale).toBe(true);
      expect(advice.recommendation.action).toBe("check_trainer");
      expect(advice.recommendation.reason).toMatch(
        /^The trainer has sent nothing \(no heartbeat, epoch or step\) for \d+ s/,
      );

      t.clock.now = start + t.config.client.lostAfterMs + 1_000;
      expect(await dog.check()).toEqual([id]);
      const lost = (await t.store.getOperation(id))!;
      expect(lost).toMatchObject({ status: "failed", failure_code: "lost", stale: false });
      expect(lost.error_message).toContain("its last epoch was 2");
      expect(lost.error_message).toMatch(/no heartbeat, epoch or step for 30\d s/);
      expect(logs.some((l) => l.includes(id) && l.includes("lost"))).toBe(true);

      const back = await beat(t.app, id);
      expect(back.body.data).toMatchObject({ status: "running", revived: true });
      expect((await t.store.getOperation(id))!).toMatchObject({ status: "running", failure_code: null });
    } finally {
      dog.stop();
    }
  });

  test("an epoch from a lost run revives it too", async () => {
    const t = clockedApp();
    const id = await register(t.app);
    await beat(t.app, id);
    const dog = handDog(t);
    try {
      t.clock.now += t.config.client.lostAfterMs + 1_000;
      expect(await dog.check()).toEqual([id]);
    } finally {
      dog.stop();
    }
    const res = await json(t.app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epochs: curve(0, 1) })));
    expect(res.status).toBe(200);
    expect((await t.store.getOperation(id))!.status).toBe("running");
  });

  test("a run whose heartbeats arrive but whose rows stop is hung: published, raised once, and in the analysis", async () => {
    const t = clockedApp();
    const id = await register(t.app);
    await beat(t.app, id);
    await t.store.writeEpochs(id, curve(0, 1));
    await Bun.sleep(2); // a later millisecond, so the cadence has an interval
    await t.store.writeEpochs(id, curve(1, 1));
    const events: OperationEvent[] = [];
    t.operations.subscribe(id, (e) => events.push(e));
    const dog = handDog(t);
    try {
      // Heartbeats keep coming (stamped at the clock), rows do not.
      for (let i = 0; i < 3; i++) {
        t.clock.now += t.config.client.hungAfterMs / 2;
        await t.operations.touch(id, t.clock.now, true);
        expect(await dog.check()).toEqual([]);
      }
      const op = (await t.store.getOperation(id))!;
      expect(op).toMatchObject({ status: "running", stale: false, hung: true });
      expect(t.raised).toHaveLength(1);
      expect(t.raised[0]).toMatchObject({ id, detail: { flag: "hung", longest_gap_s: expect.any(Number) } });
      expect(t.raised[0]!.detail.silent_s).toBeGreaterThan(t.config.client.hungAfterMs / 1000);
      expect(events.some((e) => e.type === "status" && e.operation.hung)).toBe(true);

      const analysis = await json(t.app.handle(req("GET", `/api/v1/operations/${id}/analysis`)));
      expect(analysis.status).toBe(200);
      expect(analysis.body.data.flags).toMatchObject({ hung: true, stale: false, overfitting: false });
      expect(analysis.body.data.liveness).toMatchObject({ hung: true, median_interval_s: expect.any(Number) });

      // A row: no longer hung; the next time it hangs is raised again.
      await t.store.writeEpochs(id, curve(2, 1));
      t.clock.now = Date.now(); // writes stamp the machine's time
      await t.operations.touch(id, t.clock.now, true);
      expect(await dog.check()).toEqual([]);
      expect((await t.store.getOperation(id))!.hung).toBe(false);
    } finally {
      dog.stop();
    }
  });

  test("a hung run that samples system metrics: the raised reason and the analysis cite its GPU utilisation", async () => {
    const t = clockedApp();
    const id = await register(t.app);
    await beat(t.app, id);
    await t.store.writeEpochs(id, curve(0, 1));
    const sampled = new Date(t.clock.now).toISOString();
    const sample = {
      timestamp: sampled,
      process: { cpu_percent: 99, rss_mb: 900 },
      gpus: [
        { index: 0, utilization_percent: 0, memory_used_mb: 30_000 },
        { index: 1, utilization_percent: 3, memory_used_mb: 30_000 },
      ],
    };
    const posted = await json(t.app.handle(req("POST", `/api/v1/operations/${id}/system`, { samples: [sample] })));
    expect(posted.status).toBe(200);
    const dog = handDog(t);
    try {
      t.clock.now += t.config.client.hungAfterMs + 1_000;
      await t.operations.touch(id, t.clock.now, true);
      await dog.check();
      expect(t.raised).toHaveLength(1);
      const cited = "GPU utilisation 1.5 % (GPU 0 0 %, GPU 1 3 %), sampled 301 s before";
      expect(t.raised[0]!.detail.utilisation).toBe(cited);
      expect(t.raised[0]!.detail.reason).toEndWith(`; ${cited}`);
      const analysis = await json(t.app.handle(req("GET", `/api/v1/operations/${id}/analysis`)));
      expect(analysis.body.data.flags.hung).toBe(true);
      expect(analysis.body.data.liveness.utilisation).toStartWith("GPU utilisation 1.5 % (GPU 0 0 %, GPU 1 3 %)");
      expect(analysis.body.data.recommendation.action).toBe("check_trainer");
      expect(analysis.body.data.recommendation.reason).toContain("; GPU utilisation 1.5 % (GPU 0 0 %, GPU 1 3 %)");
      // The hung alert (a default event), with the watchdog's reason, at the run's last epoch.
      const alerts = await json(t.app.handle(req("GET", `/api/v1/alerts?operation_id=${id}`)));
      expect(alerts.status).toBe(200);
      const hung = alerts.body.data.filter((a: { alert: { event: string } }) => a.alert.event === "hung");
      expect(hung).toHaveLength(1);
      expect(hung[0].alert.reason).toBe(t.raised[0]!.detail.reason);
    } finally {
      dog.stop();
    }
  });

  test("a step run's analysis carries the liveness flags too", async () => {
    const t = clockedApp();
    const id = await register(t.app);
    await beat(t.app, id);
    await t.store.writeSteps(id, [{ step: 0, timestamp: TS, train_loss: 1 }]);
    const analysis = await json(t.app.handle(req("GET", `/api/v1/operations/${id}/analysis`)));
    expect(analysis.body.data.judged_on).toBe("steps");
    expect(analysis.body.data.flags).toMatchObject({ hung: false, stale: false });
    expect(analysis.body.data.liveness).toMatchObject({ hung: false, stale: false });
  });

  test("each row is checked on its own: an unreadable cadence is judged as none, and the other runs are still failed", async () => {
    const t = clockedApp();
    const a = await register(t.app);
    const b = await register(t.app);
    await beat(t.app, a);
    await beat(t.app, b);
    t.store.db.run("UPDATE operations SET cadence = '{not json' WHERE operation_id = ?", [a]);
    const dog = handDog(t);
    try {
      t.clock.now += t.config.client.lostAfterMs + 1_000;
      expect((await dog.check()).sort()).toEqual([a, b].sort());
    } finally {
      dog.stop();
    }
  });

  test("the default period is a quarter of the shortest limit, 50 ms … 5 s", () => {
    expect(watchdogPeriodMs(DEFAULT_CLIENT_LIVENESS)).toBe(5_000);
    expect(watchdogPeriodMs({ staleAfterMs: 1_000, lostAfterMs: 3_000, hungAfterMs: 1_500 })).toBe(250);
    expect(watchdogPeriodMs({ staleAfterMs: 10, lostAfterMs: 30, hungAfterMs: 10 })).toBe(50);
  });
});
