/**
 * The PostgreSQL step table's layout, measured (issue 26): the table before migration 14 (one table, primary key
 * (op, step)) against the range partitions on `op` it creates, on the same server in one run.
 * `bun run bench/step_table.ts [--pg=postgres://…] [--runs=1000] [--seconds=15] [--writers=16] [--long=100000]
 * [--part-ops=256]`. Without `--pg` (or TRAINWATCH_TEST_PG) it starts a throwaway PostgreSQL with .ci/postgres.sh
 * (fsync on). For each layout, in a schema of its own:
 *   (a) ingestion through the store: `--runs` step runs, `--writers` writers each posting batches of 10 steps to its
 *       runs in turn (one writeSteps each, as a training posts about once a second) for `--seconds`: steps/s, writes/s;
 *   (b) bytes per stored row: heap and primary key (every partition's together), after (a);
 *   (c) reads of one long run of `--long` steps: a range of 1,000 steps from its middle, the step chart's block read of
 *       its whole range (stepSpans), and 300 chosen steps (what a reduced chart reads): median of 30, ms;
 *   (d) retention, two Store.pruneSteps rounds: the runs whose ids fill whole partitions finished first, then the
 *       others and the long run: ms, rows removed, partitions truncated.
 * `--part-ops`: operation ids per partition (the production default is 1,024; the bench's smaller default makes its
 * runs fill whole partitions, so (d) truncates some). Prints figures; asserts nothing.
 */
import { SQL } from "bun";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostgresStore } from "../src/store/postgres.ts";
import type { StepRecord } from "../src/schemas/step.ts";
import { args, int } from "./args.ts";
import { quantile } from "./lag.ts";

const ROOT = join(import.meta.dir, "..");
const RUNS = int("runs", 1000);
const SECONDS = int("seconds", 15);
const WRITERS = int("writers", 16);
const LONG = int("long", 100_000);
const PART_OPS = int("part-ops", 256);
const T0 = Date.parse("2026-12-01T00:00:00.000Z");

/** The step table as migration 5 made it: what a database before migration 14 holds. */
const PLAIN_STEPS = `CREATE TABLE steps (
  op bigint NOT NULL, ts bigint NOT NULL, train_loss float8, val_loss float8, val_accuracy float8, learning_rate float8,
  grad_norm float8, duration float8, samples float8, tokens float8, step integer NOT NULL, epoch integer, custom text,
  PRIMARY KEY (op, step))`;

const stepAt = (s: number): StepRecord => ({
  step: s,
  epoch: Math.floor(s / 1000),
  timestamp: new Date(T0 + s * 100).toISOString(),
  train_loss: 2 / (1 + s / 1000) + ((s * 7919) % 101) / 5000,
  learning_rate: 1e-3,
  grad_norm: 1 + ((s * 31) % 17) / 10,
  ...(s % 100 === 99 ? { val_loss: 2.1 / (1 + s / 1000) } : {}),
});

async function server(): Promise<{ url: string; stop: () => void; origin: string }> {
  const given = args.get("pg") ?? process.env.TRAINWATCH_TEST_PG?.trim();
  if (given) return { url: given, stop: () => {}, origin: "given" };
  const dir = mkdtempSync(join(tmpdir(), "trainwatch-bench-pg-"));
  const script = join(ROOT, ".ci/postgres.sh");
  const start = Bun.spawnSync(["bash", script, "start", dir, "--owner-pid", String(process.pid)]);
  if (start.exitCode !== 0) throw new Error(`.ci/postgres.sh start failed: ${start.stderr.toString().trim()}`);
  return {
    url: start.stdout.toString().trim(),
    stop: () => void Bun.spawnSync(["bash", script, "stop", dir]),
    origin: "throwaway (.ci/postgres.sh)",
  };
}

async function median(n: number, f: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  return quantile(
    times.sort((a, b) => a - b),
    0.5,
  );
}

interface Figures {
  stepsPerS: number;
  writesPerS: number;
  rows: number;
  heapPerRow: number;
  keyPerRow: number;
  range: number;
  spans: number;
  chosen: number;
  /** Retention rounds: the runs of whole partitions, then the rest. */
  whole: Pruned;
  rest: Pruned;
}

interface Pruned {
  ms: number;
  runs: number;
  rows: number;
  truncated: number;
}

async function measure(url: string, layout: "plain" | "partitioned"): Promise<Figures> {
  const schema = `bench_steps_${layout}_${Date.now().toString(36)}`;
  const admin = new SQL(url, { max: 1, connection: { search_path: schema } });
  let store = await PostgresStore.open(url, { schema, max: WRITERS });
  await store.close();
  if (layout === "plain") await admin.unsafe(`DROP TABLE steps; ${PLAIN_STEPS}`);
  else await admin`UPDATE step_partitioning SET ops = ${PART_OPS}`;
  store = await PostgresStore.open(url, { schema, max: WRITERS });
  try {
    const ids: string[] = [];
    for (let i = 0; i < RUNS; i++) ids.push((await store.createOperation({ operation_type: "training" })).operation_id);
    const next = new Map(ids.map((id) => [id, 0]));
    // (a) each writer posts 10 steps to its runs in turn until the time is up.
    let writes = 0;
    const until = performance.now() + SECONDS * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const mine = ids.filter((_, i) => i % WRITERS === w);
        for (let i = 0; performance.now() < until; i++) {
          const id = mine[i % mine.length]!;
          const from = next.get(id)!;
          await store.writeSteps(
            id,
            Array.from({ length: 10 }, (_, k) => stepAt(from + k)),
          );
          next.set(id, from + 10);
          writes++;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    // (b) every partition's heap and keys together (a plain table is its own tree).
    await admin`ANALYZE steps`;
    const [size] = await admin<{ rows: string; heap: string; keys: string }[]>`
      WITH leaves AS (
        SELECT relid FROM pg_partition_tree('steps') WHERE isleaf AND relid <> 'steps'::regclass
        UNION ALL SELECT 'steps'::regclass WHERE (SELECT relkind FROM pg_class WHERE oid = 'steps'::regclass) = 'r')
      SELECT (SELECT count(*) FROM steps) AS rows, sum(pg_relation_size(relid)) AS heap, sum(pg_indexes_size(relid)) AS keys
      FROM leaves`;
    const rows = Number(size!.rows);
    // (c) one long run.
    const long = (await store.createOperation({ operation_type: "training" })).operation_id;
    for (let s = 0; s < LONG; s += 1000)
      await store.writeSteps(
        long,
        Array.from({ length: Math.min(1000, LONG - s) }, (_, k) => stepAt(s + k)),
      );
    const mid = Math.floor(LONG / 2);
    const chosen = Array.from({ length: 300 }, (_, i) => Math.floor((i * LONG) / 300));
    const range = await median(30, () => store.readSteps(long, mid, mid + 1000));
    const spans = await median(30, () => store.stepSpans(long, 0, LONG - 1));
    const at = await median(30, () => store.readStepsAt(long, chosen));
    // (d) retention in two rounds: first the runs whose ids fill whole partitions (truncated there, deleted run by run
    // on the plain table), then the others with the long run (deleted run by run on both).
    const bound = Math.floor((RUNS + 2) / PART_OPS) * PART_OPS;
    const prune = async (finished: string[]): Promise<Pruned> => {
      for (const id of finished) await store.finish(id, "completed");
      const now = Date.now() + 1000;
      const count = async () => (await admin<{ n: number }[]>`SELECT count(*)::int AS n FROM steps`)[0]!.n;
      const before = await count();
      const t = performance.now();
      const res = await store.pruneSteps(now, now);
      const ms = performance.now() - t;
      return { ms, runs: res.operations.length, rows: before - (await count()), truncated: res.partitions.length };
    };
    const whole = await prune(ids.filter((_, i) => i + 1 < bound));
    const rest = await prune([...ids.filter((_, i) => i + 1 >= bound), long]);
    return {
      stepsPerS: (writes * 10) / elapsed,
      writesPerS: writes / elapsed,
      rows,
      heapPerRow: Number(size!.heap) / rows,
      keyPerRow: Number(size!.keys) / rows,
      range,
      spans,
      chosen: at,
      whole,
      rest,
    };
  } finally {
    await store.close();
    await admin.unsafe(`DROP SCHEMA "${schema}" CASCADE`);
    await admin.close();
  }
}

const pg = await server();
try {
  const [{ version }] = await new SQL(pg.url, { max: 1 })`SELECT current_setting('server_version') AS version`;
  console.log(
    `PostgreSQL ${version} (${pg.origin}); ${RUNS} runs, ${WRITERS} writers for ${SECONDS} s, batches of 10 steps; long run ${LONG} steps; partitions of ${PART_OPS} ids`,
  );
  const results: [string, Figures][] = [];
  const order = args.has("partitioned-first")
    ? (["partitioned", "plain"] as const)
    : (["plain", "partitioned"] as const);
  for (const layout of order) results.push([layout, await measure(pg.url, layout)]);
  const f = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log("layout       steps/s  writes/s  rows     heap B/row  key B/row  range 1k ms  spans ms  300 at ms");
  for (const [name, r] of results)
    console.log(
      `${name.padEnd(12)} ${f(r.stepsPerS).padStart(7)}  ${f(r.writesPerS).padStart(8)}  ${f(r.rows).padStart(7)}  ${f(r.heapPerRow, 1).padStart(10)}  ${f(r.keyPerRow, 1).padStart(9)}  ${f(r.range, 2).padStart(11)}  ${f(r.spans, 2).padStart(8)}  ${f(r.chosen, 2).padStart(9)}`,
    );
  const round = (p: Pruned) =>
    `${f(p.ms)} ms for ${p.runs} runs, ${f(p.rows)} rows (${f(p.ms / p.runs, 2)} ms a run)${p.truncated ? `, ${p.truncated} partition(s) truncated` : ""}`;
  console.log("retention    the runs of whole partitions, then the others and the long run");
  for (const [name, r] of results) console.log(`${name.padEnd(12)} ${round(r.whole)}; ${round(r.rest)}`);
} finally {
  pg.stop();
}
