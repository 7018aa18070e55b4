// Chart reads (src/store/charts.ts) and GET /metrics's range and smoothing: the block path keeps what the row path
// keeps, ranges are exact, smoothing is the EMA of every stored epoch (zoomed ranges included), and bad ranges are 400s.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { EpochRecord, WireEpoch } from "../src/schemas/epoch.ts";
import { readChart, type Smoothed } from "../src/store/charts.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { emaSmooth, metricValue } from "../src/trends/index.ts";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { json, makeApp, req } from "./helpers.ts";

const TS = "2026-11-26T15:30:00.000Z";
const N = 20_000;
const SPIKE = 12_345;
const NAN = 17_001;

/** A long run: a falling loss, a val_loss every 10 epochs, and grad_norm with one spike and one NaN. */
async function longRun(store: SqliteStore): Promise<string> {
  const id = (await store.createOperation({ operation_type: "training", name: "long" })).operation_id;
  const rows: EpochRecord[] = Array.from({ length: N }, (_, e) => ({
    epoch: e,
    timestamp: TS,
    train_loss: 2 * Math.exp(-e / 5000) + 0.01 * Math.sin(e),
    ...(e % 10 === 0 ? { val_loss: 2.2 * Math.exp(-e / 5000) } : {}),
    learning_rate: 0.001,
    custom: { grad_norm: e === SPIKE ? 80 : e === NAN ? Number.NaN : 1 + 0.1 * Math.cos(e / 3) },
  }));
  for (let i = 0; i < N; i += 5000) await store.writeEpochs(id, rows.slice(i, i + 5000));
  return id;
}

const store = new SqliteStore(":memory:");
const id = await longRun(store);
afterAll(() => store.close());
const all = await store.readEpochs(id);
const at = (rows: WireEpoch[], e: number) => rows.find((r) => r.epoch === e) as Record<string, unknown> | undefined;

/** A metric's EMA of weight w over every stored epoch. */
const fullEma = (name: string, w: number) =>
  emaSmooth(
    all.map((r) => metricValue((r as Record<string, unknown>)[name]) ?? null),
    w,
  );

/** Every smoothed value of the reply is the EMA over every stored epoch at its epoch (NaN passing through), within 1e-9. */
function expectFullEma(epochs: readonly WireEpoch[], smoothed: Smoothed, w: number): void {
  for (const name of ["train_loss", "val_loss", "grad_norm"]) {
    const expected = fullEma(name, w);
    const got = smoothed.series[name]!;
    expect(got).toHaveLength(epochs.length);
    epochs.forEach((e, i) => {
      const want = expected[e.epoch];
      if (want === null) expect(got[i]).toBeNull();
      else if (Number.isNaN(want)) expect(got[i]).toBe("NaN");
      else expect(Math.abs((got[i] as number) - want!)).toBeLessThan(1e-9);
    });
  }
}

describe("chart reads", () => {
  for (const [path, scanRows] of [
    ["rows", Number.POSITIVE_INFINITY],
    ["block summaries", 0],
  ] as const) {
    test(`${path}: at most max_points, the ends, the best, the spike and the NaN, at every zoom`, async () => {
      for (const [from, to, maxPoints] of [
        [0, N - 1, 200],
        [10_000, 19_999, 100],
        [12_000, 12_999, 50],
        [16_990, 17_010, 15],
      ] as const) {
        const { epochs } = await readChart(store, id, { from, to, maxPoints, keepEpoch: 15_000 }, { scanRows });
        expect(epochs.length).toBeLessThanOrEqual(maxPoints);
        expect(epochs[0]!.epoch).toBe(from);
        expect(epochs[epochs.length - 1]!.epoch).toBe(to);
        if (from <= 15_000 && 15_000 <= to) expect(at(epochs, 15_000)).toBeDefined();
        if (from <= SPIKE && SPIKE <= to) expect(at(epochs, SPIKE)?.grad_norm).toBe(80);
        if (from <= NAN && NAN <= to) expect(at(epochs, NAN)?.grad_norm).toBe("NaN");
        for (const e of epochs) expect(e).toEqual(all[e.epoch]!);
      }
    });
  }

  test("a range that fits comes back whole; since_epoch and from_epoch combine", async () => {
    expect((await readChart(store, id, { from: 100, to: 199, maxPoints: 1000 })).epochs).toEqual(all.slice(100, 200));
    expect((await readChart(store, id, { since: 150, from: 100, to: 199 })).epochs).toEqual(all.slice(151, 200));
    expect((await readChart(store, id, { from: 300, to: 200 })).epochs).toEqual([]);
  });

  test("smoothing is the EMA of every stored epoch, also in a zoomed range and after a reduction", async () => {
    for (const [from, to, maxPoints, w] of [
      [0, N - 1, 300, 0.6],
      [15_000, 15_999, undefined, 0.99],
      [12_000, 19_999, 100, 0.9],
    ] as const) {
      const { epochs, smoothed } = await readChart(store, id, { from, to, maxPoints, smoothing: w });
      expect(smoothed!.weight).toBe(w);
      expect(Object.keys(smoothed!.series).sort()).toEqual(["grad_norm", "train_loss", "val_loss"]);
      expectFullEma(epochs, smoothed!, w);
    }
    // The smoothed curve keeps its own extremes: its highest point (the spike, smoothed) is among the returned epochs.
    const { epochs, smoothed } = await readChart(store, id, { maxPoints: 60, smoothing: 0.6 });
    const g = fullEma("grad_norm", 0.6).map((v) => (v !== null && Number.isFinite(v) ? v : -Infinity));
    const peak = g.indexOf(Math.max(...g));
    expect(smoothed!.series.grad_norm![epochs.findIndex((e) => e.epoch === peak)]).toBeCloseTo(g[peak]!, 9);
  });

  test("block summaries, smoothed: the raw reduction's epochs, each within 1e-9 of the EMA over every stored epoch (a sparse metric and a NaN included), and a state that goes on live", async () => {
    const blocks = { scanRows: 0, windowShare: Number.POSITIVE_INFINITY };
    for (const [from, to, maxPoints, w] of [
      [0, N - 1, 300, 0.6],
      [12_000, 19_999, 100, 0.9],
      [16_000, N - 1, 20, 0.99],
    ] as const) {
      const q = { from, to, maxPoints, keepEpoch: 15_000 };
      const { epochs, smoothed } = await readChart(store, id, { ...q, smoothing: w }, blocks);
      expect(epochs).toEqual((await readChart(store, id, q, blocks)).epochs);
      expectFullEma(epochs, smoothed!, w);
      if (to === N - 1) {
        // The last epoch has no val_loss: its state still holds the whole history's.
        const state = { ...smoothed!.state.val_loss! };
        const next = [0.5, 0.4];
        const expected = emaSmooth([...all.map((r) => metricValue(r.val_loss) ?? null), ...next], w).slice(-2);
        emaSmooth(next, w, state).forEach((v, k) => expect(Math.abs(v! - expected[k]!)).toBeLessThan(1e-9));
      }
    }
    // Windows that would read more than the share allowed: the range's rows instead, as without blocks.
    const q = { maxPoints: 300, smoothing: 0.999 };
    expect(await readChart(store, id, q, { scanRows: 0 })).toEqual(
      await readChart(store, id, q, { scanRows: Number.POSITIVE_INFINITY }),
    );
  });

  test("block summaries, smoothed: windows read as one range give what reading their epochs by number gives", async () => {
    // The store as smoothAt used it before: every window's epochs listed by number (readEpochsAt), never a range.
    let ranges = 0;
    const counting = new Proxy(store, {
      get(target, key) {
        if (key === "readEpochs")
          return (...a: Parameters<SqliteStore["readEpochs"]>) => (ranges++, target.readEpochs(...a));
        const v = Reflect.get(target, key);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const byNumber = new Proxy(store, {
      get(target, key) {
        if (key === "readEpochs")
          return (opId: string, since = -1, until = N, fields?: string[]) =>
            target.readEpochsAt(
              opId,
              Array.from({ length: Math.max(0, Math.min(until, N - 1) - since) }, (_, i) => since + 1 + i),
              fields,
            );
        const v = Reflect.get(target, key);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const blocks = { scanRows: 0, windowShare: 1 };
    for (const q of [
      { maxPoints: 300, smoothing: 0.6, fields: ["grad_norm"], keepEpoch: 15_000 },
      { maxPoints: 600, smoothing: 0.6, fields: ["train_loss"] },
      { maxPoints: 300, smoothing: 0.8, fields: ["train_loss", "grad_norm"] },
    ]) {
      const before = ranges;
      const got = await readChart(counting, id, q, blocks);
      expect(ranges).toBeGreaterThan(before);
      // The block path's: the raw reduction's epochs (reading the range's rows would reduce the smoothed curves too).
      expect(got.epochs).toEqual((await readChart(store, id, { ...q, smoothing: undefined }, blocks)).epochs);
      expect(got.smoothed!.series).not.toEqual({});
      expect(JSON.stringify(got)).toBe(JSON.stringify(await readChart(byNumber, id, q, blocks)));
    }
  });

  test("fields: each epoch carries epoch and the metrics named, whose extremes and NaN every path keeps, smoothed alone", async () => {
    for (const scanRows of [Number.POSITIVE_INFINITY, 0]) {
      const { epochs, smoothed } = await readChart(
        store,
        id,
        { maxPoints: 40, fields: ["grad_norm"], smoothing: 0.6, keepEpoch: 15_000 },
        { scanRows },
      );
      expect(epochs.length).toBeLessThanOrEqual(40);
      for (const e of epochs) expect(Object.keys(e).sort()).toEqual(["epoch", "grad_norm"]);
      expect(at(epochs, SPIKE)?.grad_norm).toBe(80);
      expect(at(epochs, NAN)?.grad_norm).toBe("NaN");
      expect(at(epochs, 15_000)).toBeDefined();
      expect(Object.keys(smoothed!.series)).toEqual(["grad_norm"]);
    }
    // One metric's budget goes to that metric alone: narrower buckets than with every field.
    const one = await readChart(store, id, { maxPoints: 200, fields: ["train_loss"] });
    const every = await readChart(store, id, { maxPoints: 200 });
    expect(one.epochs.length).toBeGreaterThan(every.epochs.length / 2);
    expect(new Set(one.epochs.map((e) => e.train_loss))).toContain(Math.max(...all.map((r) => r.train_loss as number)));
    expect((await readChart(store, id, { from: 0, to: 2, fields: ["nothing"] })).epochs).toEqual([
      { epoch: 0 },
      { epoch: 1 },
      { epoch: 2 },
    ] as WireEpoch[]);
  });

  test("the state after the last epoch lets a client smooth live epochs exactly", async () => {
    const { smoothed } = await readChart(store, id, { from: 19_000, smoothing: 0.8 });
    const state = { ...smoothed!.state.train_loss! };
    const next = [0.5, 0.4];
    const expected = emaSmooth([...all.map((r) => r.train_loss as number), ...next], 0.8).slice(-2);
    emaSmooth(next, 0.8, state).forEach((v, i) => expect(Math.abs(v! - expected[i]!)).toBeLessThan(1e-9));
  });
});

describe("GET /metrics with a range", () => {
  const { app, store: s } = makeApp();
  afterAll(() => s.close());
  let op = "";
  beforeAll(async () => {
    op = (await s.createOperation({ operation_type: "training" })).operation_id;
    await s.writeEpochs(
      op,
      Array.from({ length: 50 }, (_, e) => ({ epoch: e, timestamp: TS, train_loss: 1 / (e + 1) })),
    );
  });
  const get = (q: string) => json(app.handle(req("GET", `/api/v1/operations/${op}/metrics?${q}`)));

  test("from_epoch/to_epoch are inclusive; smoothing adds the smoothed curves", async () => {
    const { status, body } = await get("from_epoch=10&to_epoch=19&smoothing=0.5");
    expect(status).toBe(200);
    expect(body.data.metrics.epochs.map((e: WireEpoch) => e.epoch)).toEqual(
      Array.from({ length: 10 }, (_, i) => 10 + i),
    );
    expect(body.data.metrics.smoothed.series.train_loss).toHaveLength(10);
    expect(body.data.metrics.smoothed.state.train_loss.n).toBe(20);
    expect((await get("to_epoch=4")).body.data.metrics.epochs).toHaveLength(5);
  });

  test("GET /operations/curves gives each run's curves as its GET /metrics does, in the order asked; an unknown id is a 404 naming it", async () => {
    const second = (await s.createOperation({ operation_type: "training" })).operation_id;
    await s.writeEpochs(
      second,
      Array.from({ length: 30 }, (_, e) => ({ epoch: e, timestamp: TS, train_loss: 2 / (e + 1), val_loss: 1 })),
    );
    const q = "from_epoch=5&to_epoch=25&max_points=8&smoothing=0.7&fields=train_loss";
    const { status, body } = await json(app.handle(req("GET", `/api/v1/operations/curves?ids=${second},${op}&${q}`)));
    expect(status).toBe(200);
    expect(body.data.runs.map((r: { operation_id: string }) => r.operation_id)).toEqual([second, op]);
    for (const run of body.data.runs) {
      const one = (await json(app.handle(req("GET", `/api/v1/operations/${run.operation_id}/metrics?${q}`)))).body.data
        .metrics;
      expect(run.curves).toEqual(one.epochs);
      expect(run.smoothed).toEqual(one.smoothed);
      expect(run.curves.length).toBeLessThanOrEqual(8);
    }
    const missing = await json(app.handle(req("GET", `/api/v1/operations/curves?ids=${op},op_nope`)));
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toContain("op_nope");
  });

  test("a range ending before it starts, or a weight out of range, is a 400 naming the parameter", async () => {
    const bad = await get("from_epoch=20&to_epoch=10");
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe("query.to_epoch");
    expect(bad.body.error.message).toContain("before from_epoch");
    for (const [q, field] of [
      ["smoothing=1", "query.smoothing"],
      ["smoothing=-0.1", "query.smoothing"],
      ["from_epoch=-1", "query.from_epoch"],
      ["to_epoch=x", "query.to_epoch"],
      ["fields=a,,b", "query.fields"],
      ["fields=val%20loss", "query.fields"],
    ]) {
      const r = await get(q!);
      expect(r.status).toBe(400);
      expect(r.body.error.details.field).toBe(field);
    }
  });
});

describe("chart reads projected in the store, byte for byte", () => {
  // 20 runs × 3,000 epochs: GET /operations/curves shares 2,500 rows a run, so max_points=50 takes the block path.
  const RUNS = 20;
  const EPOCHS = 3000;
  const config = loadConfig({});
  const s = new SqliteStore(":memory:", config.trends);
  afterAll(() => s.close());
  /** The chart reads as they went before the store projected them: every column read, then narrowed in memory. */
  const narrow = (rows: WireEpoch[], fields: readonly string[] | undefined) =>
    fields
      ? rows.map((r) => {
          const out: Record<string, unknown> = { epoch: r.epoch };
          for (const f of fields)
            if ((r as Record<string, unknown>)[f] !== undefined) out[f] = (r as Record<string, unknown>)[f];
          return out as WireEpoch;
        })
      : rows;
  const fullReads = new Proxy(s, {
    get(target, key) {
      if (key === "readEpochs")
        return async (id: string, since?: number, until?: number, fields?: string[]) =>
          narrow(await target.readEpochs(id, since, until), fields);
      if (key === "readEpochsBefore")
        return async (id: string, epoch: number, limit: number, fields?: string[]) =>
          narrow(await target.readEpochsBefore(id, epoch, limit), fields);
      if (key === "readEpochsAt")
        return async (id: string, epochs: number[], fields?: string[]) =>
          narrow(await target.readEpochsAt(id, epochs), fields);
      const v = Reflect.get(target, key);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  const projected = createApp({ store: s, config });
  const before = createApp({ store: fullReads, config });
  const ids: string[] = [];
  beforeAll(async () => {
    const odd = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    for (let run = 0; run < RUNS; run++) {
      const id = (await s.createOperation({ operation_type: "training", name: `run-${run}` })).operation_id;
      ids.push(id);
      await s.writeEpochs(
        id,
        Array.from({ length: EPOCHS }, (_, e): EpochRecord => {
          const noise = Math.sin(e * 12.9898 + run) * 0.01;
          return {
            epoch: e,
            timestamp: new Date(Date.parse(TS) + e * 1000).toISOString(),
            train_loss: e === 777 + run ? odd[run % 3]! : 2 * Math.exp(-e / 900) + noise,
            ...(e % 7 === 0 ? {} : { val_loss: e === 2100 ? Number.NaN : 2.2 * Math.exp(-e / 1000) + noise }),
            learning_rate: 0.001 * 0.5 ** Math.floor(e / 1000),
            custom: {
              grad_norm: e === 1654 ? 80 : e === 1900 ? Number.NaN : e % 500 === 3 ? null : 1 + noise * 5,
              ...(e % 3 === 0 && { "acc/top5": 1 - 1 / (e + 2) }),
            },
          };
        }),
      );
    }
  });
  const both = async (path: string) => {
    const [a, b] = await Promise.all(
      [projected, before].map(async (app) => {
        const res = await app.handle(req("GET", `/api/v1${path}`));
        expect(res.status).toBe(200);
        return res.text();
      }),
    );
    return { projected: a!, before: b! };
  };

  test("GET /metrics with fields (and smoothing) replies the same bytes as reading every column", async () => {
    for (const q of [
      "fields=val_loss&smoothing=0.6",
      "fields=grad_norm&smoothing=0.6&max_points=300",
      "fields=train_loss,grad_norm&smoothing=0.6&from_epoch=1000&to_epoch=1800&max_points=100",
      "fields=acc/top5,val_loss,timestamp&max_points=200",
      "fields=grad_norm&smoothing=0.3&from_epoch=1600&to_epoch=1999",
      "fields=no_such_metric&smoothing=0.6&max_points=40",
    ]) {
      const { projected: got, before: want } = await both(`/operations/${ids[0]}/metrics?${q}`);
      expect(got).toBe(want);
      expect(got).toContain(q.includes("fields=grad_norm&") ? '"grad_norm":"NaN"' : '"epoch"');
    }
  });

  test("GET /operations/curves with fields and smoothing replies the same bytes, rows and block paths alike", async () => {
    for (const q of [
      "fields=val_loss&smoothing=0.6&max_points=300",
      "fields=grad_norm&smoothing=0.6&max_points=300",
      "fields=grad_norm&smoothing=0.3&max_points=50",
      "fields=train_loss&max_points=50",
      "fields=grad_norm&smoothing=0.6&from_epoch=1500&to_epoch=1999&max_points=1000",
    ]) {
      const { projected: got, before: want } = await both(`/operations/curves?ids=${ids.join(",")}&${q}`);
      expect(got).toBe(want);
      expect(JSON.parse(got).data.runs).toHaveLength(RUNS);
    }
  });
});
