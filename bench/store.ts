/**
 * SQLite and PostgreSQL side by side, in one run: `bun run bench/store.ts [--pg=postgres://…] [--seconds=30]`.
 * Without `--pg` (or TRAINWATCH_TEST_PG) it starts a throwaway PostgreSQL on loopback with .ci/postgres.sh, with the
 * server's default durability (fsync on); a given server gets a database of its own for the run, dropped at the end.
 * For each store it prints:
 *   (a) ingestion, batches of 1,000 epochs, through the HTTP API of a real server process (1 writer, and 4 writers on
 *       4 operations at once), and through the store directly in this process, in epochs/s;
 *   (b) GET metrics of a 1,000-epoch run, one client after a warm-up: p50 / p99;
 *   (c) load: 2 replicas (two server processes on the same PostgreSQL database; for SQLite one process, which its lock
 *       allows) behind a round-robin client, `--pollers` pollers (GET metrics + GET status of a writer's operation, once a
 *       second each) and `--writers` writers (one epoch per POST, `--rate` a second each) for `--seconds`: requests,
 *       errors, p50/p99 per kind, and whether every acknowledged epoch is stored.
 * Then where a PostgreSQL batch spends its time, and where the CPU went during the load. Goals beside each figure with
 * met/missed; it asserts nothing (a shared 2-core machine moves too much to assert on).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { loadConfig } from "../src/config.ts";
import { MetricsInput, decodeMetricsBody } from "../src/schemas/epoch.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { Store } from "../src/store/store.ts";
import { startServerProcess, type ServerProcess } from "../tests/helpers.ts";
import { batchOf, wireEpoch } from "./epochs.ts";
import { quantile, startLagSampler } from "./lag.ts";
import { args, int } from "./args.ts";
import { busyLine, cpuOf, machineCpu, postgresCpu, probe, startPostgres, type Pg, type Probed } from "./servers.ts";

const SECONDS = int("seconds", 30);
const POLLERS = int("pollers", 200);
const WRITERS = int("writers", 20);
const RATE = int("rate", 10);
const BATCH = 1000;
const BATCHES = int("batches", 40);
const GET_SAMPLES = int("samples", 500);
const SMALL_WRITERS = int("small-writers", 16);
const SMALL_SECONDS = int("small-seconds", 5);

const dir = mkdtempSync(join(tmpdir(), "trainwatch-store-bench-"));
const headers = { "content-type": "application/json" };
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

const body = (from: number, n: number) => JSON.stringify({ epochs: batchOf(from, n) });

// Figures ----------------------------------------------------------------------------------------------------------

interface Backend {
  name: "SQLite" | "PostgreSQL";
  /** A server process's environment; `i` numbers the replicas. */
  env(i: number): Record<string, string>;
  /** The store itself, in this process, on the same database. */
  open(): Promise<Store>;
  /** The database server's postmaster, for its CPU during the load (SQLite: none, it runs in the server process). */
  postmaster: number | null;
  /** PostgreSQL: the database's URL, for the probe. */
  db: string | null;
  /** The bytes the store's epochs take (tables and indexes), and how many epochs it holds. */
  size(store: Store): Promise<{ bytes: number; epochs: number }>;
}

interface Figures {
  apiOne: number;
  apiFour: number;
  store: number;
  /** Stored bytes per epoch of the 8 standard fields, chart blocks and indexes included. */
  bytesPerEpoch: number;
  small: SmallWrites;
  /** PostgreSQL: what the database waited on during the 1-writer API ingestion. */
  ingestDb: Probed | null;
  getP50: number;
  getP99: number;
  load: LoadResult;
}

async function register(base: string): Promise<string> {
  const res = await fetch(`${base}/api/v1/operations`, {
    method: "POST",
    headers,
    body: JSON.stringify({ operation_type: "training" }),
  });
  if (res.status !== 201) throw new Error(`POST /operations: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { data: { operation_id: string } }).data.operation_id;
}

async function post(base: string, id: string, text: string): Promise<void> {
  const res = await fetch(`${base}/api/v1/operations/${id}/metrics`, { method: "POST", headers, body: text });
  if (res.status !== 200) throw new Error(`POST metrics: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

/** `writers` operations at once, each posting BATCHES batches of 1,000 one after the other; epochs/s over the wall. */
async function ingestApi(base: string, writers: number, bodies: string[]): Promise<number> {
  const ids = await Promise.all(Array.from({ length: writers }, () => register(base)));
  const t0 = performance.now();
  await Promise.all(
    ids.map(async (id) => {
      for (const b of bodies) await post(base, id, b);
    }),
  );
  return (writers * bodies.length * BATCH) / ((performance.now() - t0) / 1000);
}

/** The same batches written by the store itself (decoded before the clock starts): what the HTTP layer adds is the rest. */
async function ingestStore(store: Store, bodies: string[]): Promise<number> {
  const records = bodies.map((b) => decodeMetricsBody(JSON.parse(b), new Date().toISOString()));
  const warm = (await store.createOperation({ operation_type: "training" })).operation_id;
  for (const r of records.slice(0, 5)) await store.writeEpochs(warm, r);
  const id = (await store.createOperation({ operation_type: "training" })).operation_id;
  const t0 = performance.now();
  for (const r of records) await store.writeEpochs(id, r);
  return (records.length * BATCH) / ((performance.now() - t0) / 1000);
}

/**
 * Single-epoch writes through the store, `SMALL_WRITERS` operations at once, each writing its next epoch as soon as the
 * last is stored, for SMALL_SECONDS: what many trainings at one epoch each per write cost, without HTTP. On PostgreSQL
 * the probe says what the busy backends waited on meanwhile.
 */
async function smallWrites(store: Store, db: string | null): Promise<SmallWrites> {
  const ids = await Promise.all(
    Array.from(
      { length: SMALL_WRITERS },
      async () => (await store.createOperation({ operation_type: "training" })).operation_id,
    ),
  );
  const probed = db ? await probe(db) : null;
  const ms: number[] = [];
  const end = performance.now() + SMALL_SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    ids.map(async (id) => {
      for (let e = 0; performance.now() < end; e++) {
        const t = performance.now();
        await store.writeEpochs(id, decodeMetricsBody(wireEpoch(e), new Date().toISOString()));
        ms.push(performance.now() - t);
      }
    }),
  );
  const rate = ms.length / ((performance.now() - t0) / 1000);
  const seen = probed ? await probed() : null;
  const s = sorted(ms);
  return { rate, p50: quantile(s, 0.5), p99: quantile(s, 0.99), db: seen };
}

interface SmallWrites {
  rate: number;
  p50: number;
  p99: number;
  db: Probed | null;
}

async function getLatency(base: string): Promise<{ p50: number; p99: number }> {
  const id = await register(base);
  await post(base, id, body(0, 1000));
  const url = `${base}/api/v1/operations/${id}/metrics`;
  for (let i = 0; i < 200; i++) await (await fetch(url)).arrayBuffer();
  const xs: number[] = [];
  for (let i = 0; i < GET_SAMPLES; i++) {
    const t0 = performance.now();
    await (await fetch(url)).arrayBuffer();
    xs.push(performance.now() - t0);
  }
  const s = sorted(xs);
  return { p50: quantile(s, 0.5), p99: quantile(s, 0.99) };
}

// (c) load ---------------------------------------------------------------------------------------------------------

const KINDS = ["GET metrics", "GET status", "POST metrics"] as const;
type Kind = (typeof KINDS)[number];

interface LoadResult {
  replicas: number;
  ms: Record<Kind, number[]>;
  errors: Map<string, number>;
  acknowledged: number;
  stored: number;
  clientLagP99: number;
  /** CPU seconds during the run: the server processes, this client, the whole machine. */
  cpu: { servers: number; client: number; postgres: number | null; machine: number; seconds: number };
  /** PostgreSQL only: what the database saw during the run (probe()). */
  db: Probed | null;
}

/** Runs `tick` at start + k·period until `end`; a tick more than a period late is skipped, never bunched. */
async function every(periodMs: number, startAt: number, end: number, tick: () => Promise<void>): Promise<void> {
  for (let next = startAt; next < end; next += periodMs) {
    const wait = next - Date.now();
    if (wait > 0) await Bun.sleep(wait);
    else if (wait < -periodMs) continue;
    await tick();
  }
}

async function load(servers: ServerProcess[], postmaster: number | null, db: string | null): Promise<LoadResult> {
  let turn = 0;
  /** The round-robin client: each request to the next replica. */
  const next = () => servers[turn++ % servers.length]!.url;
  const ops: string[] = [];
  for (let i = 0; i < WRITERS; i++) {
    const id = await register(next());
    await post(next(), id, body(0, 1000)); // a 1,000-epoch run to poll from the start
    ops.push(id);
  }
  const ms = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
  const errors = new Map<string, number>();
  const time = async (kind: Kind, path: string, init?: RequestInit): Promise<boolean> => {
    const t0 = performance.now();
    try {
      const res = await fetch(`${next()}/api/v1${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      if (!res.ok) {
        errors.set(`${kind} ${res.status}`, (errors.get(`${kind} ${res.status}`) ?? 0) + 1);
        return false;
      }
    } catch (err) {
      const key = `${kind} ${(err as Error).name}`;
      errors.set(key, (errors.get(key) ?? 0) + 1);
      return false;
    }
    ms[kind].push(performance.now() - t0);
    return true;
  };
  const lag = startLagSampler();
  const probed = db ? await probe(db) : null;
  const cpu0 = {
    servers: servers.reduce((s, p) => s + cpuOf(p.proc.pid), 0),
    client: process.cpuUsage(),
    postgres: postgresCpu(postmaster),
    machine: machineCpu(),
  };
  const t0 = Date.now() + 200;
  const end = t0 + SECONDS * 1000;
  let acknowledged = 0;
  const writers = ops.map((id, w) => {
    let epoch = 1000;
    return every(1000 / RATE, t0 + (w * 1000) / RATE / WRITERS, end, async () => {
      const e = epoch++;
      const text = JSON.stringify({ epochs: [{ ...wireEpoch(e), timestamp: new Date().toISOString() }] });
      if (await time("POST metrics", `/operations/${id}/metrics`, { method: "POST", headers, body: text }))
        acknowledged++;
    });
  });
  const pollers = Array.from({ length: POLLERS }, (_, i) =>
    every(1000, t0 + (i * 1000) / POLLERS, end, async () => {
      const id = ops[i % ops.length]!;
      await time("GET metrics", `/operations/${id}/metrics`);
      await time("GET status", `/operations/${id}`);
    }),
  );
  await Promise.all([...writers, ...pollers]);
  const seconds = (Date.now() - t0) / 1000;
  const cpu = {
    servers: servers.reduce((s, p) => s + cpuOf(p.proc.pid), 0) - cpu0.servers,
    client: (() => {
      const u = process.cpuUsage(cpu0.client);
      return (u.user + u.system) / 1e6;
    })(),
    postgres: cpu0.postgres === null ? null : postgresCpu(postmaster)! - cpu0.postgres,
    machine: machineCpu() - cpu0.machine,
    seconds,
  };
  lag.stop();
  const dbSeen = probed ? await probed() : null;
  let stored = 0;
  for (const id of ops) {
    const res = await fetch(`${next()}/api/v1/operations/${id}`);
    stored += ((await res.json()) as { data: { progress: { epochs_completed: number } } }).data.progress
      .epochs_completed;
  }
  return {
    replicas: servers.length,
    ms: Object.fromEntries(KINDS.map((k) => [k, sorted(ms[k])])) as Record<Kind, number[]>,
    errors,
    acknowledged,
    stored: stored - WRITERS * 1000,
    clientLagP99: quantile(sorted(lag.samples().map(([, l]) => l)), 0.99),
    cpu,
    db: dbSeen,
  };
}

// A run per store --------------------------------------------------------------------------------------------------

async function measure(b: Backend): Promise<Figures> {
  const bodies = Array.from({ length: BATCHES }, (_, i) => body(i * BATCH, BATCH));
  const one = await startServerProcess(b.env(0));
  let apiOne: number;
  let apiFour: number;
  let get: { p50: number; p99: number };
  let ingestDb: Probed | null = null;
  try {
    await ingestApi(one.url, 1, bodies.slice(0, 10)); // warm-up: JIT, prepared statements, pool
    const probed = b.db ? await probe(b.db, 5) : null; // the run lasts under a second: sample often
    apiOne = await ingestApi(one.url, 1, bodies);
    ingestDb = probed ? await probed() : null;
    apiFour = await ingestApi(one.url, 4, bodies.slice(0, Math.max(1, BATCHES / 2)));
    get = await getLatency(one.url);
  } finally {
    await one.stop();
  }
  const store = await b.open();
  let direct: number;
  let size: { bytes: number; epochs: number };
  let small: SmallWrites;
  try {
    direct = await ingestStore(store, bodies);
    size = await b.size(store);
    small = await smallWrites(store, b.db);
  } finally {
    await store.close();
  }
  // SQLite: its file is locked for one process, so the "2 replicas" are one.
  const servers: ServerProcess[] = [];
  try {
    for (let i = 0; i < (b.name === "SQLite" ? 1 : 2); i++) servers.push(await startServerProcess(b.env(i)));
    const result = await load(servers, b.postmaster, b.name === "PostgreSQL" ? b.db : null).catch((err) => {
      for (const s of servers)
        console.error(
          `--- ${s.url} (exit ${s.proc.exitCode ?? s.proc.signalCode ?? "alive"}):\n${s.output().slice(-3000)}`,
        );
      throw err;
    });
    return {
      apiOne,
      apiFour,
      store: direct,
      bytesPerEpoch: size.bytes / size.epochs,
      small,
      ingestDb,
      getP50: get.p50,
      getP99: get.p99,
      load: result,
    };
  } finally {
    for (const s of servers) await s.stop();
  }
}

/** Where a 1,000-epoch PostgreSQL batch spends its time, in this process: the HTTP side's steps, then the store's. */
async function breakdown(pg: Pg): Promise<[string, number][]> {
  const store = await PostgresStore.open(pg.url, { schema: "bench_breakdown" });
  try {
    const check = TypeCompiler.Compile(MetricsInput);
    const texts = Array.from({ length: 30 }, (_, i) => body(i * BATCH, BATCH));
    const id = (await store.createOperation({ operation_type: "training" })).operation_id;
    const steps: Record<string, number[]> = {
      "JSON.parse of the body": [],
      "TypeBox check": [],
      "decode wire → records": [],
      "store.writeEpochs (COPY, trends, blocks, NOTIFY, commit)": [],
    };
    for (let i = 0; i < texts.length; i++) {
      let t = performance.now();
      const parsed = JSON.parse(texts[i]!);
      steps["JSON.parse of the body"]!.push(performance.now() - t);
      t = performance.now();
      check.Check(parsed);
      steps["TypeBox check"]!.push(performance.now() - t);
      t = performance.now();
      const records = decodeMetricsBody(parsed, new Date().toISOString());
      steps["decode wire → records"]!.push(performance.now() - t);
      t = performance.now();
      await store.writeEpochs(id, records);
      steps["store.writeEpochs (COPY, trends, blocks, NOTIFY, commit)"]!.push(performance.now() - t);
    }
    return Object.entries(steps).map(([k, xs]) => [k, quantile(sorted(xs.slice(10)), 0.5)]);
  } finally {
    await store.sql.unsafe(`DROP SCHEMA IF EXISTS bench_breakdown CASCADE`);
    await store.close();
  }
}

// Output -----------------------------------------------------------------------------------------------------------
/** The table: one row per figure, SQLite and PostgreSQL side by side, "met"/"missed" beside a figure with a goal. */
function table(results: Map<string, Figures>): void {
  const sq = results.get("SQLite")!;
  const pg = results.get("PostgreSQL")!;
  const judged = (value: string, ok: boolean | null) => (ok === null ? value : `${value} ${ok ? "met" : "missed"}`);
  const rows: [string, string, string, string][] = [];
  const INGEST_GOAL = 100_000;
  for (const [what, k] of [
    ["ingestion, API, 1 writer (epochs/s)", "apiOne"],
    ["ingestion, API, 4 writers at once", "apiFour"],
    ["ingestion, store directly, 1 writer", "store"],
  ] as const) {
    // The goal is PostgreSQL's, per replica; SQLite's figure is there to compare.
    rows.push([what, `${fmt(sq[k])}/s`, judged(`${fmt(pg[k])}/s`, pg[k] >= INGEST_GOAL), "≥ 100,000/s (PostgreSQL)"]);
  }
  const smallCell = (f: Figures) => `${fmt(f.small.rate)}/s, p99 ${fmt(f.small.p99, 1)} ms`;
  rows.push([`single-epoch writes, store, ${SMALL_WRITERS} writers at once`, smallCell(sq), smallCell(pg), ""]);
  rows.push([
    "stored bytes per epoch (8 fields, indexes, blocks)",
    `${fmt(sq.bytesPerEpoch)} B`,
    `${fmt(pg.bytesPerEpoch)} B`,
    "",
  ]);
  const ms = (v: number) => `${fmt(v, 2)} ms`;
  rows.push(["GET metrics 1,000 epochs, p50", ms(sq.getP50), ms(pg.getP50), ""]);
  rows.push([
    "GET metrics 1,000 epochs, p99",
    judged(ms(sq.getP99), sq.getP99 <= 10),
    judged(ms(pg.getP99), pg.getP99 <= 10),
    "≤ 10 ms",
  ]);
  rows.push([
    "load: server processes (round-robin)",
    `${sq.load.replicas} (see below)`,
    `${pg.load.replicas} replicas`,
    "",
  ]);
  for (const k of KINDS) {
    const get = k.startsWith("GET");
    const cell = (f: Figures) => {
      const xs = f.load.ms[k];
      const p99 = quantile(xs, 0.99);
      return judged(
        `${fmt(xs.length)} req, p50 ${fmt(quantile(xs, 0.5), 1)} / p99 ${fmt(p99, 1)} ms`,
        get ? p99 <= 10 : null,
      );
    };
    rows.push([`load: ${k}`, cell(sq), cell(pg), get ? "p99 ≤ 10 ms" : ""]);
  }
  const errs = (f: Figures) => [...f.load.errors.values()].reduce((a, b) => a + b, 0);
  const errCell = (f: Figures) =>
    judged(
      errs(f) === 0 ? "0" : `${errs(f)} (${[...f.load.errors].map(([k, n]) => `${k} ×${n}`).join(", ")})`,
      errs(f) === 0,
    );
  rows.push(["load: errors", errCell(sq), errCell(pg), "0"]);
  const kept = (f: Figures) =>
    judged(`${fmt(f.load.stored)} of ${fmt(f.load.acknowledged)}`, f.load.stored === f.load.acknowledged);
  rows.push(["load: acknowledged epochs stored", kept(sq), kept(pg), "all"]);
  rows.push(["load: this client's event-loop lag p99", ms(sq.load.clientLagP99), ms(pg.load.clientLagP99), ""]);
  const head = ["figure", "SQLite", "PostgreSQL", "goal"] as const;
  const w = [0, 1, 2, 3].map((i) => Math.max(...[...rows, head].map((r) => r[i]!.length)));
  const line = (r: readonly string[]) =>
    `${r[0]!.padEnd(w[0]!)}  ${r[1]!.padStart(w[1]!)}  ${r[2]!.padStart(w[2]!)}  ${r[3]}`;
  console.log(line(head));
  console.log("-".repeat(w.reduce((a, b) => a + b, 0) + 6));
  for (const r of rows) console.log(line(r));
  console.log(
    "SQLite's load runs on one server process: its file is locked to one, so there is no second replica to balance to.",
  );
}

async function main() {
  console.log(
    `Trainwatch store bench — Bun ${Bun.version}, ${process.platform}/${process.arch}, ${navigator.hardwareConcurrency} cores`,
  );
  const pg = await startPostgres(args.get("pg") ?? process.env.TRAINWATCH_TEST_PG?.trim());
  console.log(pg.describe);
  console.log(
    `ingestion: ${BATCHES} batches of ${BATCH}; load: ${POLLERS} pollers + ${WRITERS} writers × ${RATE} epochs/s, ${SECONDS} s\n`,
  );
  const config = loadConfig({});
  const dirs = (name: string, i: number) => ({
    TRAINWATCH_MODELS_DIR: join(dir, `${name}-${i}`, "models"),
    TRAINWATCH_LOGS_DIR: join(dir, `${name}-${i}`, "logs"),
    TRAINWATCH_DATA_DIR: join(dir, `${name}-${i}`, "datasets"),
  });
  let sqliteRun = 0;
  const backends: Backend[] = [
    {
      name: "SQLite",
      // Each measurement its own file: a server process holds its file's lock until it stops.
      env: (i) => ({ TRAINWATCH_DB: join(dir, `sqlite-${sqliteRun++}.db`), ...dirs("sqlite", i) }),
      open: async () => new SqliteStore(join(dir, "sqlite-direct.db"), config.trends),
      postmaster: null,
      db: null,
      size: async (store) => {
        const db = (store as SqliteStore).db;
        db.run("PRAGMA wal_checkpoint(TRUNCATE)");
        const one = (q: string) => Object.values(db.query(q).get() as Record<string, number>)[0]!;
        const bytes = (one("PRAGMA page_count") - one("PRAGMA freelist_count")) * one("PRAGMA page_size");
        return { bytes, epochs: one("SELECT count(*) FROM epochs") };
      },
    },
    {
      name: "PostgreSQL",
      env: (i) => ({ TRAINWATCH_DB: pg.url, TRAINWATCH_REPLICA_ID: `bench-${i}`, ...dirs("pg", i) }),
      open: () => PostgresStore.open(pg.url, { trends: config.trends, schema: "bench_direct" }),
      postmaster: pg.postmaster,
      db: pg.url,
      size: async (store) => {
        const [r] = (await (store as PostgresStore).sql`
          SELECT (pg_total_relation_size('bench_direct.epochs') + pg_total_relation_size('bench_direct.epoch_blocks'))::float8 AS bytes,
                 (SELECT count(*) FROM bench_direct.epochs)::float8 AS epochs`) as { bytes: number; epochs: number }[];
        return r!;
      },
    },
  ];
  const results = new Map<string, Figures>();
  try {
    for (const b of backends) {
      const t = Date.now();
      results.set(b.name, await measure(b));
      console.log(`${b.name}: measured in ${fmt((Date.now() - t) / 1000, 1)} s`);
    }
    console.log("");
    table(results);
    console.log(`\nWhere a 1,000-epoch batch to PostgreSQL spends its time, in one process (median of 20):`);
    for (const [k, v] of await breakdown(pg)) console.log(`  ${k.padEnd(58)} ${fmt(v, 2).padStart(7)} ms`);
    console.log(
      `\nCPU during the load (seconds of CPU per second of run; the machine has ${navigator.hardwareConcurrency} cores):`,
    );
    for (const [name, f] of results) {
      const c = f.load.cpu;
      const per = (v: number) => fmt(v / c.seconds, 2);
      const pgPart = c.postgres === null ? 0 : c.postgres;
      console.log(
        `  ${name.padEnd(10)} server process(es) ${per(c.servers)}, PostgreSQL ${c.postgres === null ? (name === "SQLite" ? "—" : "n/a") : per(c.postgres)}, this client ${per(c.client)}, anything else on the machine ${per(c.machine - c.servers - c.client - pgPart)}; machine ${per(c.machine)}`,
      );
      // What a request costs, all kinds together: the figure to scale a deployment by (docs/scaling.md).
      const requests = KINDS.reduce((n, k) => n + f.load.ms[k].length, 0);
      const each = (v: number) => fmt((v / requests) * 1000, 2);
      console.log(
        `  ${"".padEnd(10)} per request (${fmt(requests)}): server ${each(c.servers)} ms${c.postgres === null ? "" : `, PostgreSQL ${each(c.postgres)} ms`} of CPU`,
      );
    }
    const pgLoad = results.get("PostgreSQL")!.load;
    const seen = pgLoad.db!;
    const posts = pgLoad.ms["POST metrics"].length;
    console.log(
      `\nWhat PostgreSQL saw during the load (${pgLoad.replicas} replicas, ${fmt(pgLoad.cpu.seconds, 1)} s):`,
    );
    console.log(
      `  WAL ${fmt(seen.walBytes / 1e6, 1)} MB: ${fmt(seen.walBytes / Math.max(1, posts) / 1024, 2)} KB per POST of one epoch (${fmt(posts)} POSTs)`,
    );
    console.log(
      `  NOTIFY ${fmt(seen.notifications)} (${fmt(seen.notifications / pgLoad.cpu.seconds)}/s), ${fmt(seen.notifyBytes / Math.max(1, seen.notifications))} bytes each on average; every replica hears every one`,
    );
    console.log(
      `  connections at the end: ${Object.entries(seen.connections)
        .map(([app, n]) => `${app} ×${n}`)
        .join(", ")}`,
    );
    console.log(`  ${busyLine(seen)}`);
    console.log(`\nWhat PostgreSQL saw during the ingestion through the API (1 writer, batches of ${BATCH}):`);
    console.log(`  ${busyLine(results.get("PostgreSQL")!.ingestDb!)}`);
    const small = results.get("PostgreSQL")!.small.db!;
    console.log(`\nWhat PostgreSQL saw during the single-epoch writes through the store (${SMALL_WRITERS} writers):`);
    console.log(`  ${busyLine(small)}`);
    console.log(
      "  (Lock:object is the database-wide lock a transaction that NOTIFYs holds from its commit until its WAL is flushed)",
    );
  } finally {
    await pg.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
