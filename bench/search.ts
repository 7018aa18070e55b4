/**
 * The search over many runs (issue 27): `bun run bench/search.ts [--runs=100000] [--reps=200] [--pg[=postgres://…]]`.
 * Fills a SQLite store (a file, WAL, synchronous=FULL) with `--runs` runs through the Store itself (createOperation
 * with tags, group and configuration, writeEpochs with a curve, finish), many per transaction so the fill is not one
 * fsync per run; 2,000 groups of 50, tags from a skewed pool, log-uniform learning rates, and curves that converge,
 * overfit or diverge. Then each typical query `--reps` times through Store.listOperations (count + a page of 50, as
 * GET /operations answers), printing p50 / p99 per query beside the goal (p99 ≤ 50 ms on SQLite). With `--pg` (or
 * TRAINWATCH_TEST_PG) the same on PostgreSQL in a schema of its own (dropped at the end), printed without a goal.
 * It asserts nothing: a shared 2-core machine moves too much to assert on.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../src/store/sqlite.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import type { Store } from "../src/store/store.ts";
import type { EpochRecord } from "../src/schemas/epoch.ts";
import { parseQuery, parseSort } from "../src/schemas/search.ts";
import { dropSchema, schemaName } from "../tests/fixtures/postgres.ts";
import { quantile } from "./lag.ts";
import { Rng } from "../src/trainer/datasets/prng.ts";
import { args, int } from "./args.ts";

const RUNS = int("runs", 100_000);
const REPS = int("reps", 200);
const GOAL_MS = 50;
const GROUP_SIZE = 50;

const TS = "2026-12-07T10:00:00.000Z";

/** Run `i`: its labels, configuration, curve and ending, drawn from a PRNG seeded by `i`. */
function runOf(i: number) {
  const rng = new Rng(i + 1);
  const r = () => rng.next();
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const tags = new Set<string>();
  if (r() < 0.5) tags.add("optuna");
  if (r() < 0.1) tags.add("bert");
  if (r() < 0.1) tags.add("gpt");
  if (r() < 0.2) tags.add("resnet");
  if (r() < 0.05) tags.add("baseline");
  if (r() < 0.01) tags.add(`rare-${i % 97}`);
  const lr = 10 ** (-5 + 4 * r());
  const kind = r();
  const n = 5 + Math.floor(r() * 26);
  const epochs: EpochRecord[] = Array.from({ length: n }, (_, e) => {
    const base = 1 / (1 + e * lr * 100);
    // 10% diverge (NaN at the end), 20% overfit (val_loss turns up half-way), the rest converge.
    const val = kind < 0.3 && kind >= 0.1 && e > n / 2 ? base * 1.2 + 0.02 * (e - n / 2) : base * 1.2;
    const diverged = kind < 0.1 && e === n - 1;
    return {
      epoch: e,
      timestamp: TS,
      train_loss: diverged ? Number.NaN : base,
      val_loss: diverged ? Number.NaN : val,
    };
  });
  return {
    name: `trial-${i}`,
    tags: [...tags],
    group: `sweep-${Math.floor(i / GROUP_SIZE)}`,
    config: {
      lr,
      optimizer: pick(["adam", "adamw", "sgd"] as const),
      dropout: Math.round(r() * 50) / 100,
      seed: i,
      model: { width: pick([64, 128, 256, 512, 1024] as const), depth: 2 + Math.floor(r() * 6) },
    },
    epochs,
    end: r() < 0.9 ? ("completed" as const) : r() < 0.5 ? ("failed" as const) : null,
  };
}

/** Stores run `i` through the Store: create, write its epochs, finish. */
async function storeRun(s: Store, i: number): Promise<void> {
  const run = runOf(i);
  const op = await s.createOperation({
    operation_type: "training",
    name: run.name,
    tags: run.tags,
    group: run.group,
    config: run.config,
  });
  await s.writeEpochs(op.operation_id, run.epochs);
  if (run.end) await s.finish(op.operation_id, run.end);
}

/** The typical queries: q, sort, order. */
const QUERIES: { q: string; sort?: string; order?: "asc" | "desc"; note?: string }[] = [
  { q: "" },
  { q: "", sort: "best_val_loss", order: "asc" },
  { q: 'group = "sweep-1234"' },
  { q: 'group = "sweep-1234"', sort: "best_val_loss", order: "asc" },
  { q: 'tags has "bert"' },
  { q: 'tags has "rare-42"' },
  { q: "config.lr < 1e-3" },
  { q: 'config.optimizer = "sgd" and config.model.width >= 512' },
  { q: "flags.overfitting", sort: "best_val_loss", order: "asc" },
  { q: "not flags.diverging and status = completed", sort: "final_val_loss", order: "asc" },
  { q: 'tags has "bert" and group = "sweep-7" and config.lr < 1e-3 and not flags.diverging' },
  { q: 'group = "sweep-42" and config.lr < 1e-3 and not flags.diverging', sort: "best_val_loss", order: "asc" },
  { q: 'tags has "gpt" and config.lr < 1e-3', sort: "config.lr", order: "asc" },
  { q: 'created_at >= "2020-01-01" and epochs_completed >= 20', sort: "best_val_loss", order: "asc" },
  { q: 'name ~ "trial-4242"', note: "substring: scans every name" },
];

async function measure(s: Store, label: string, goal: boolean): Promise<void> {
  console.log(`\n${label}: ${REPS} repetitions per query (count + a page of 50)`);
  console.log(
    `${"query".padEnd(90)} ${"matches".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)}${goal ? "  goal p99 ≤ 50 ms" : ""}`,
  );
  for (const { q, sort, order, note } of QUERIES) {
    const filter = { query: parseQuery(q), sort: parseSort(sort), order, limit: 50, offset: 0 };
    let total = 0;
    for (let i = 0; i < 3; i++) total = (await s.listOperations(filter)).total; // warm-up
    const times: number[] = [];
    for (let i = 0; i < REPS; i++) {
      const t0 = performance.now();
      await s.listOperations(filter);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const p99 = quantile(times, 0.99);
    const text = `${q || "(all)"}${sort ? `  sort=${sort} ${order ?? "desc"}` : ""}${note ? `  [${note}]` : ""}`;
    const verdict = goal ? `  ${p99 <= GOAL_MS ? "met" : "MISSED"}` : "";
    console.log(
      `${text.padEnd(90)} ${String(total).padStart(8)} ${quantile(times, 0.5).toFixed(2).padStart(8)} ${p99.toFixed(2).padStart(8)}${verdict}`,
    );
  }
}

async function sqlite(): Promise<void> {
  // --db=<file>: keep the filled database there and reuse it on the next run (the fill takes minutes at 100,000).
  const kept = args.get("db");
  const dir = kept ? null : mkdtempSync(join(tmpdir(), "trainwatch-search-bench-"));
  const path = kept ?? join(dir!, "search.db");
  const filled = kept !== undefined && existsSync(kept);
  const store = new SqliteStore(path);
  try {
    if (filled) {
      const n = store.db.query<{ n: number }, []>("SELECT count(*) AS n FROM operations").get()!.n;
      console.log(`SQLite: ${n.toLocaleString("en-US")} runs in ${kept}, filled before`);
    } else await fill(store);
    await measure(store, "SQLite", true);
  } finally {
    await store.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Fills `store` with RUNS runs through the Store. */
async function fill(store: SqliteStore): Promise<void> {
  {
    const t0 = performance.now();
    // Many runs per transaction: each Store call nests inside it (a savepoint), so the fill is one fsync per chunk.
    const CHUNK = 1000;
    for (let from = 0; from < RUNS; from += CHUNK) {
      store.db.run("BEGIN IMMEDIATE");
      try {
        for (let i = from; i < Math.min(RUNS, from + CHUNK); i++) await storeRun(store, i);
        store.db.run("COMMIT");
      } catch (err) {
        store.db.run("ROLLBACK");
        throw err;
      }
    }
    const s = (performance.now() - t0) / 1000;
    console.log(`SQLite: ${RUNS.toLocaleString("en-US")} runs stored through the Store in ${s.toFixed(1)} s`);
  }
}

async function postgres(url: string): Promise<void> {
  const schema = schemaName();
  const store = await PostgresStore.open(url, { schema, max: 8 });
  try {
    const t0 = performance.now();
    const WORKERS = 8;
    let next = 0;
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        for (let i = next++; i < RUNS; i = next++) await storeRun(store, i);
      }),
    );
    await store.sql`ANALYZE`;
    const s = (performance.now() - t0) / 1000;
    console.log(
      `\nPostgreSQL: ${RUNS.toLocaleString("en-US")} runs stored through the Store (8 at once) in ${s.toFixed(1)} s`,
    );
    await measure(store, "PostgreSQL", false);
  } finally {
    await store.close();
    await dropSchema(url, schema);
  }
}

await sqlite();
const pg =
  args.get("pg") ?? (args.has("pg") ? process.env.TRAINWATCH_TEST_PG : undefined) ?? process.env.TRAINWATCH_TEST_PG;
if (pg) await postgres(pg);
else console.log("\nPostgreSQL: not run (give --pg=postgres://… or set TRAINWATCH_TEST_PG)");
