/**
 * Steps at scale (issue 22): `bun run bench/steps.ts [--steps=1000000] [--batch=10000] [--samples=20]`.
 * Prints (a) ingestion of a `steps`-step run through the API (app.handle on a file database: validation, decoding, the
 * write, fsync) in batches of `batch`, as rows/s; (b) bytes stored per step row beside an epoch row (the same count of
 * epochs); (c) GET …/steps with max_points=1000 over the whole run, a 20 % zoom, a 1 % zoom and a 2,000-step window
 * (median and p95 of `samples` reads, in-process). Figures only; it asserts nothing.
 */
import type { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { batchOf, stepBatchOf } from "./epochs.ts";
import { int } from "./args.ts";
import { median, quantile } from "./lag.ts";

const STEPS = int("steps", 1_000_000);
const BATCH = int("batch", 10_000);
const SAMPLES = int("samples", 20);

const dir = mkdtempSync(join(tmpdir(), "trainwatch-steps-"));
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function usedBytes(db: Database): number {
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  const one = (sql: string) => Object.values(db.query(sql).get() as Record<string, number>)[0]!;
  return (one("PRAGMA page_count") - one("PRAGMA freelist_count")) * one("PRAGMA page_size");
}

const post = (path: string, body: string) =>
  new Request(`http://localhost/api/v1${path}`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
  });

try {
  console.log(`Trainwatch steps bench — Bun ${Bun.version}, ${process.platform}/${process.arch}\n`);
  const store = new SqliteStore(join(dir, "steps.db"));
  const app = createApp({ store, config: loadConfig({}) });
  const created = await app.handle(
    post("/operations", JSON.stringify({ operation_type: "training", total_steps_planned: STEPS })),
  );
  const id = ((await created.json()) as { data: { operation_id: string } }).data.operation_id;
  const empty = usedBytes(store.db);

  // (a) ingestion: only app.handle is timed (the client's JSON.stringify is not the API's work).
  let spent = 0;
  for (let from = 0; from < STEPS; from += BATCH) {
    const body = JSON.stringify({ steps: stepBatchOf(from, Math.min(BATCH, STEPS - from)) });
    const t = performance.now();
    const res = await app.handle(post(`/operations/${id}/steps`, body));
    spent += performance.now() - t;
    if (res.status !== 200) throw new Error(`batch at ${from}: ${res.status} ${await res.text()}`);
  }
  console.log(
    `(a) ${fmt(STEPS)} steps in batches of ${fmt(BATCH)} through the API: ${fmt(spent / 1000, 2)} s, ${fmt(STEPS / (spent / 1000))} rows/s`,
  );
  const op = (await (await app.handle(new Request(`http://localhost/api/v1/operations/${id}`))).json()) as {
    data: { progress: unknown; trends: { total_epochs_completed: number } };
  };
  console.log(
    `    progress ${JSON.stringify(op.data.progress)}, derived epochs ${op.data.trends.total_epochs_completed}`,
  );

  // (b) bytes per row: the step run against the same count of epochs (8 standard fields each).
  const perStep = (usedBytes(store.db) - empty) / STEPS;
  const epochsDb = new SqliteStore(join(dir, "epochs.db"));
  const eid = (await epochsDb.createOperation({ operation_type: "training" })).operation_id;
  const before = usedBytes(epochsDb.db);
  const epochApp = createApp({ store: epochsDb, config: loadConfig({}) });
  for (let from = 0; from < STEPS; from += BATCH) {
    const res = await epochApp.handle(
      post(`/operations/${eid}/metrics`, JSON.stringify({ epochs: batchOf(from, Math.min(BATCH, STEPS - from)) })),
    );
    if (res.status !== 200) throw new Error(`epochs at ${from}: ${res.status}`);
  }
  const perEpoch = (usedBytes(epochsDb.db) - before) / STEPS;
  await epochsDb.close();
  console.log(
    `(b) bytes per row (rows, blocks, state): step ${fmt(perStep, 1)} B, epoch ${fmt(perEpoch, 1)} B (${fmt(perStep / perEpoch, 2)}×)`,
  );

  // (c) chart reads.
  const reads: [string, string][] = [
    ["whole run, max_points=1000", "max_points=1000"],
    ["whole run, one field", "max_points=1000&fields=train_loss"],
    ["20 % zoom, max_points=1000", `from_step=${STEPS * 0.4}&to_step=${STEPS * 0.6}&max_points=1000`],
    ["1 % zoom, max_points=1000", `from_step=${STEPS * 0.5}&to_step=${STEPS * 0.51}&max_points=1000`],
    ["2,000-step window, max_points=1000", `from_step=${STEPS / 2}&to_step=${STEPS / 2 + 1999}&max_points=1000`],
    ["whole run, max_points=1000, smoothing=0.6", "max_points=1000&smoothing=0.6&fields=train_loss"],
  ];
  console.log(`(c) GET …/steps, ${SAMPLES} reads each (after one warm-up):`);
  for (const [what, q] of reads) {
    const url = `http://localhost/api/v1/operations/${id}/steps?${q}`;
    let n = 0;
    const warm = await app.handle(new Request(url));
    n = ((await warm.json()) as { data: { steps: unknown[] } }).data.steps.length;
    const xs: number[] = [];
    const p95 = () =>
      quantile(
        [...xs].sort((a, b) => a - b),
        0.95,
      );
    for (let i = 0; i < SAMPLES; i++) {
      const t = performance.now();
      const res = await app.handle(new Request(url));
      await res.arrayBuffer();
      xs.push(performance.now() - t);
    }
    console.log(
      `    ${what.padEnd(42)} ${String(n).padStart(5)} steps  median ${fmt(median(xs), 1)} ms  p95 ${fmt(p95(), 1)} ms`,
    );
  }
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
