/**
 * Storage and API figures for the acceptance note: `bun run bench/storage.ts`.
 * Prints (a) database growth per 100 epochs (and per step row beside an epoch row), (b) GET metrics latency through the real
 * server, (c) API ingestion against raw bun:sqlite inserts, then where a batch's time goes.
 * It prints figures and PASS/MISS against the goals; it asserts nothing.
 */
import { Database } from "bun:sqlite";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Elysia } from "elysia";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { OperationsService } from "../src/operations/service.ts";
import { Envelope } from "../src/http/index.ts";
import { metricsView } from "../src/operations/reads.ts";
import { loadOperation } from "../src/store/load.ts";
import { MetricsData } from "../src/schemas/operation.ts";
import { MetricsInput, decodeMetricsBody, type EpochRecord } from "../src/schemas/epoch.ts";
import { startServerProcess } from "../tests/helpers.ts";
import { MIGRATIONS } from "../src/store/migrations.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { batchOf, stepBatchOf } from "./epochs.ts";
import { decodeStepsBody } from "../src/schemas/step.ts";
import { args, int } from "./args.ts";
import { median, quantile } from "./lag.ts";

const GROWTH_OPS = int("growth-ops", 20);
const GROWTH_EPOCHS = int("growth-epochs", 1000);
const LATENCY_EPOCHS = 1000;
const LATENCY_WARMUP = int("warmup", 200);
const LATENCY_SAMPLES = int("samples", 500);
const INGEST_BATCH = 1000;
const INGEST_BATCHES = int("batches", 50);

const dir = mkdtempSync(join(tmpdir(), "trainwatch-bench-"));

function usedBytes(db: Database): number {
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  const one = (sql: string) => Object.values(db.query(sql).get() as Record<string, number>)[0]!;
  return (one("PRAGMA page_count") - one("PRAGMA freelist_count")) * one("PRAGMA page_size");
}

const fmt = (n: number, digits = 2) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const rows: { what: string; value: string; goal: string; pass: boolean }[] = [];

// (a) growth --------------------------------------------------------------------------------
async function growth() {
  const store = new SqliteStore(join(dir, "growth.db"));
  const ids: string[] = [];
  for (let i = 0; i < GROWTH_OPS; i++)
    ids.push((await store.createOperation({ operation_type: "training" })).operation_id);
  const before = usedBytes(store.db);
  for (const id of ids) {
    for (let from = 0; from < GROWTH_EPOCHS; from += 1000) {
      await store.writeEpochs(
        id,
        decodeMetricsBody({ epochs: batchOf(from, Math.min(1000, GROWTH_EPOCHS - from)) }, new Date().toISOString()),
      );
    }
  }
  const after = usedBytes(store.db);
  const per100 = ((after - before) / (GROWTH_OPS * GROWTH_EPOCHS)) * 100;
  await store.close();
  console.log(
    `(a) ${GROWTH_OPS} ops × ${GROWTH_EPOCHS} epochs: used ${fmt(before / 1024, 1)} KB → ${fmt(after / 1024, 1)} KB`,
  );
  rows.push({
    what: "DB growth per 100 epochs (8 std fields)",
    value: `${fmt(per100 / 1024)} KB`,
    goal: "≤ 8 KB",
    pass: per100 <= 8 * 1024,
  });

  // The same count of steps (issue 22: "storage per step row stays near an epoch row's"): a fine-tuning run's step,
  // with its blocks, its derived epoch records and its step state.
  const steps = new SqliteStore(join(dir, "growth-steps.db"));
  const stepIds: string[] = [];
  for (let i = 0; i < GROWTH_OPS; i++)
    stepIds.push((await steps.createOperation({ operation_type: "training" })).operation_id);
  const stepsBefore = usedBytes(steps.db);
  for (const id of stepIds)
    for (let from = 0; from < GROWTH_EPOCHS; from += 1000)
      await steps.writeSteps(
        id,
        decodeStepsBody(
          { steps: stepBatchOf(from, Math.min(1000, GROWTH_EPOCHS - from)).map((w) => ({ ...w, epoch: 0 })) },
          new Date().toISOString(),
        ),
      );
  const perStep = (usedBytes(steps.db) - stepsBefore) / (GROWTH_OPS * GROWTH_EPOCHS);
  await steps.close();
  console.log(`(a) bytes per row: epoch ${fmt(per100 / 100, 1)} B, step ${fmt(perStep, 1)} B`);
  rows.push({
    what: "DB growth per step row (7 fields, evals 1 in 50)",
    value: `${fmt(perStep, 1)} B (epoch row ${fmt(per100 / 100, 1)} B)`,
    goal: "near an epoch row's (≤ 1.25×)",
    pass: perStep <= 1.25 * (per100 / 100),
  });
}

// (b) + (c) through the real server ----------------------------------------------------------
async function throughServer() {
  // The server runs in its own process, as it does for users: the client's work (sending
  // bodies, reading replies) must not share the server's thread and be billed to the API.
  const server = await startServerProcess({ TRAINWATCH_DB: join(dir, "server.db") });
  const headers = { "content-type": "application/json" };
  const register = async () => {
    const res = await fetch(`${server.url}/api/v1/operations`, {
      method: "POST",
      headers,
      body: JSON.stringify({ operation_type: "training" }),
    });
    return ((await res.json()) as { data: { operation_id: string } }).data.operation_id;
  };
  const post = async (id: string, body: string) => {
    const res = await fetch(`${server.url}/api/v1/operations/${id}/metrics`, { method: "POST", headers, body });
    if (res.status !== 200) throw new Error(`POST metrics: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  };
  try {
    // (b) latency
    const id = await register();
    await post(id, JSON.stringify({ epochs: batchOf(0, LATENCY_EPOCHS) }));
    const url = `${server.url}/api/v1/operations/${id}/metrics`;
    let bytes = 0;
    for (let i = 0; i < LATENCY_WARMUP; i++) bytes = (await (await fetch(url)).arrayBuffer()).byteLength;
    const samples: number[] = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const t0 = performance.now();
      const res = await fetch(url);
      await res.arrayBuffer();
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    const med = quantile(samples, 0.5);
    const p99 = quantile(samples, 0.99);
    console.log(
      `(b) GET metrics, ${LATENCY_EPOCHS} epochs (${fmt(bytes / 1024, 0)} KB reply), ${LATENCY_SAMPLES} samples after ${LATENCY_WARMUP} warm-up`,
    );
    rows.push({ what: "GET metrics 1,000 epochs: median", value: `${fmt(med)} ms`, goal: "≤ 2 ms", pass: med <= 2 });
    rows.push({ what: "GET metrics 1,000 epochs: p99", value: `${fmt(p99)} ms`, goal: "≤ 5 ms", pass: p99 <= 5 });

    // (c) ingestion: the same rows through the API and raw, interleaved batch by batch so both
    // see the same machine; bodies and raw rows are prepared before the clock starts.
    const bodies = Array.from({ length: INGEST_BATCHES }, (_, b) =>
      JSON.stringify({ epochs: batchOf(b * INGEST_BATCH, INGEST_BATCH) }),
    );
    const raw = rawInserter();
    const warm = await register();
    for (let i = 0; i < 20; i++) {
      await post(
        warm,
        bodies[i % bodies.length]!.replace(/"epoch":(\d+)/g, (_, e) => `"epoch":${Number(e) + i * 1_000_000}`),
      );
      raw.insert(i);
    }
    raw.reset();
    const ingestId = await register();
    const api: number[] = [];
    const rawTimes: number[] = [];
    for (let b = 0; b < INGEST_BATCHES; b++) {
      const t0 = performance.now();
      await post(ingestId, bodies[b]!);
      api.push(performance.now() - t0);
      rawTimes.push(raw.insert(b));
    }
    raw.close();
    const total = INGEST_BATCH * INGEST_BATCHES;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const apiRate = total / (sum(api) / 1000);
    const rawRate = total / (sum(rawTimes) / 1000);
    const ratio = apiRate / rawRate;
    console.log(
      `(c) ${fmt(total, 0)} epochs in batches of ${INGEST_BATCH}, API and raw interleaved: median batch API ${fmt(median(api), 3)} ms, raw ${fmt(median(rawTimes), 3)} ms (median ratio ${fmt(median(rawTimes) / median(api))})`,
    );
    rows.push({ what: "ingestion through the API (epochs/s)", value: fmt(apiRate, 0), goal: "", pass: true });
    rows.push({ what: "raw bun:sqlite inserts (epochs/s)", value: fmt(rawRate, 0), goal: "", pass: true });
    rows.push({ what: "API / raw", value: fmt(ratio), goal: "≥ 0.50", pass: ratio >= 0.5 });
  } finally {
    await server.stop();
  }
}

/**
 * Raw bun:sqlite on its own file: same schema, same pragmas (WAL, synchronous=FULL), one
 * transaction per 1,000 rows. Rows are the same values the API stores, prepared in advance.
 */
function rawInserter() {
  const db = new Database(join(dir, "raw.db"), { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = FULL");
  for (const m of MIGRATIONS) db.run(m);
  db.run(
    "INSERT INTO operations (id, operation_id, operation_type, status, created_at, summary) VALUES (1, 'raw', 'training', 'running', '', '{}')",
  );
  const insert = db.query(
    "INSERT OR REPLACE INTO epochs (op, epoch, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration, ts, custom) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const batches = Array.from({ length: INGEST_BATCHES }, (_, b) =>
    batchOf(b * INGEST_BATCH, INGEST_BATCH).map((e) => [
      1,
      e.epoch,
      e.train_loss,
      e.val_loss,
      e.train_accuracy,
      e.val_accuracy,
      e.learning_rate,
      e.duration,
      Date.parse(e.timestamp),
      null,
    ]),
  );
  const write = db.transaction((rows: (number | null)[][]) => {
    for (const r of rows) insert.run(...r);
  });
  return {
    /** Inserts batch `b` in one transaction; returns the milliseconds it took. */
    insert(b: number): number {
      const t0 = performance.now();
      write.immediate(batches[b]!);
      return performance.now() - t0;
    },
    reset: () => db.run("DELETE FROM epochs"),
    close: () => db.close(),
  };
}

/** OperationsService that marks when the route has decoded the body and when the store has written it. */
class TimedService extends OperationsService {
  marks = { decoded: 0, written: 0 };
  override async writeEpochs(operationId: string, epochs: EpochRecord[]) {
    this.marks.decoded = performance.now();
    const res = await super.writeEpochs(operationId, epochs);
    this.marks.written = performance.now();
    return res;
  }
}

/** Where a 1,000-epoch POST and a 1,000-epoch GET spend their time, phase by phase (medians). */
async function breakdown() {
  const N = 40;
  const config = loadConfig({ TRAINWATCH_DB: join(dir, "breakdown.db") });
  const store = new SqliteStore(config.db.kind === "sqlite" ? config.db.path : ":memory:", config.trends);
  const operations = new TimedService(store);
  const inner = createApp({ store, config, operations });
  let mark = { request: 0, transform: 0, beforeHandle: 0 };
  // Outer hooks see Elysia's phases: parse happens before transform, validation between transform and beforeHandle.
  const app = new Elysia()
    .onRequest(() => void (mark = { request: performance.now(), transform: 0, beforeHandle: 0 }))
    .onTransform({ as: "global" }, () => void (mark.transform = performance.now()))
    .onBeforeHandle({ as: "global" }, () => void (mark.beforeHandle = performance.now()))
    .use(inner);
  const id = (await store.createOperation({ operation_type: "training" })).operation_id;
  const post: Record<string, number[]> = {
    "read body + JSON.parse (Elysia parse)": [],
    "TypeBox validation incl. normalize (Elysia)": [],
    "decode wire → records (route)": [],
    "store.writeEpochs: inserts, trends, commit": [],
    "reply (envelope, response check, serialise)": [],
    "whole request in process (app.handle)": [],
  };
  const check = TypeCompiler.Compile(MetricsInput);
  const bare: number[] = [];
  for (let b = 0; b < N; b++) {
    const text = JSON.stringify({ epochs: batchOf(b * INGEST_BATCH, INGEST_BATCH) });
    const t0 = performance.now();
    const res = await app.handle(
      new Request(`http://localhost/api/v1/operations/${id}/metrics`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: text,
      }),
    );
    await res.arrayBuffer();
    const end = performance.now();
    if (b < 10) continue; // warm-up
    const h = operations.marks;
    post["read body + JSON.parse (Elysia parse)"]!.push(mark.transform - mark.request);
    post["TypeBox validation incl. normalize (Elysia)"]!.push(mark.beforeHandle - mark.transform);
    post["decode wire → records (route)"]!.push(h.decoded - mark.beforeHandle);
    post["store.writeEpochs: inserts, trends, commit"]!.push(h.written - h.decoded);
    post["reply (envelope, response check, serialise)"]!.push(end - h.written);
    post["whole request in process (app.handle)"]!.push(end - t0);
    const body = JSON.parse(text);
    const t1 = performance.now();
    check.Check(body);
    bare.push(performance.now() - t1);
  }
  console.log(`\nWhere a 1,000-epoch POST spends its time (median of ${N - 10}):`);
  for (const [name, xs] of Object.entries(post))
    console.log(`  ${name.padEnd(46)} ${fmt(median(xs), 3).padStart(8)} ms`);
  console.log(
    `  ${"  for comparison: compiled TypeBox Check alone".padEnd(46)} ${fmt(median(bare), 3).padStart(8)} ms`,
  );
  console.log(
    `  ${"  for comparison: one empty FULL-sync commit".padEnd(46)} ${fmt(fsyncCost(store.db), 3).padStart(8)} ms`,
  );

  // GET: 1,000 epochs of the op above.
  const getId = (await store.createOperation({ operation_type: "training" })).operation_id;
  await store.writeEpochs(getId, decodeMetricsBody({ epochs: batchOf(0, LATENCY_EPOCHS) }, new Date().toISOString()));
  const view = { success: true, data: await metricsView(store, await loadOperation(store, getId)) };
  const responseCheck = TypeCompiler.Compile(Envelope(MetricsData));
  const timeIt = async (f: () => unknown) => {
    const xs: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      await f();
      xs.push(performance.now() - t);
    }
    return median(xs.slice(100));
  };
  const handle = async () => {
    const xs: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      await (await app.handle(new Request(`http://localhost/api/v1/operations/${getId}/metrics`))).arrayBuffer();
      xs.push(performance.now() - t);
    }
    return median(xs.slice(100));
  };
  const get: [string, number][] = [
    ["store.readEpochs (SQL + row → wire)", await timeIt(() => store.readEpochs(getId))],
    ["TypeBox check of the reply (if validated)", await timeIt(() => responseCheck.Check(view))],
    ["JSON.stringify of the reply", await timeIt(() => JSON.stringify(view))],
    ["whole request in process (app.handle)", await handle()],
  ];
  console.log(`\nWhere a 1,000-epoch GET metrics spends its time (median of 200):`);
  for (const [name, v] of get) console.log(`  ${name.padEnd(46)} ${fmt(v, 3).padStart(8)} ms`);
  await store.close();
}

function fsyncCost(db: Database): number {
  db.run("CREATE TABLE IF NOT EXISTS bench_fsync (x INTEGER)");
  const ins = db.query("INSERT INTO bench_fsync VALUES (1)");
  const xs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    ins.run();
    xs.push(performance.now() - t);
  }
  return median(xs);
}

try {
  console.log(`Trainwatch storage bench — Bun ${Bun.version}, ${process.platform}/${process.arch}\n`);
  await growth();
  await throughServer();
  console.log("");
  const w = Math.max(...rows.map((r) => r.what.length));
  console.log(`${"figure".padEnd(w)}  ${"value".padStart(14)}  ${"goal".padEnd(8)}  result`);
  console.log("-".repeat(w + 34));
  for (const r of rows)
    console.log(
      `${r.what.padEnd(w)}  ${r.value.padStart(14)}  ${r.goal.padEnd(8)}  ${r.goal ? (r.pass ? "PASS" : "MISS") : ""}`,
    );
  if (!args.has("no-breakdown")) await breakdown();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
