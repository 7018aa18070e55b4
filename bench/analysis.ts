/**
 * The judgement kept on write (issue 23), from outside, on real server processes:
 *   bun run bench/analysis.ts [--base=/path/to/another/checkout] [--reads=200] [--singles=2000] [--rounds=2] [--part=all|ingest]
 * For this checkout, and for `--base` (another checkout of Trainwatch, e.g. main's, whose node_modules resolve) in
 * alternate rounds, each server on a fresh file database:
 *  (a) ingestion through the API: 1,000, 100,000 and 1,000,000 epochs POSTed in batches of 10,000, and `singles`
 *      single-epoch POSTs (a trainer's usual write, where the judgement's part of a write weighs most), as rows/s;
 *  (b) GET …/analysis p50 and p99 over `reads` sequential reads at each length (at most 10 s of reads a length);
 *  (c) GET /health while two clients ask for the 1M run's analysis back to back for 3 s: p50, p99, max;
 *  (d) a zoom (GET …/metrics of 10 % of the 1M run, max_points 1000) asked right after the analysis, as the page
 *      asks them when it opens, against the same zoom alone.
 * `--part=ingest` runs (a) alone (more rounds in the same time: the write comparison is the noisier one).
 * Then (e) the CPU of advancing the kept state, in process: per row in batches of 1 (with the state's stored bytes read
 * and written, as a write does) and of 10,000. Prints figures beside the goals; asserts nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { analyzeTrends } from "../src/trends/summary.ts";
import { advanceJudge, decodeJudge, encodeJudge, judgeStateOf } from "../src/trends/judgement_state.ts";
import { advanceState } from "../src/trends/summary.ts";
import type { EpochPoint } from "../src/trends/types.ts";
import { args, int } from "./args.ts";
import { batchOf, wireEpoch } from "./epochs.ts";
import { median, quantile } from "./lag.ts";

const HERE = join(import.meta.dir, "..");
const BASE = args.get("base");
const READS = int("reads", 200);
const SINGLES = int("singles", 2000);
const ROUNDS = int("rounds", 2);
const INGEST_ONLY = args.get("part") === "ingest";
const SIZES = [1_000, 100_000, 1_000_000];
const BATCH = 10_000;

const GOAL_P99_MS = 5;
const GOAL_RATIO = 2;
const GOAL_INGEST = 0.1;

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ms = (n: number) => `${fmt(n, n < 10 ? 2 : 1)} ms`;
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");
const p = (xs: number[], q: number) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    q,
  );

interface Server {
  url: string;
  stop: () => Promise<void>;
}

/** `bun run src/server.ts` of the checkout at `root`, on a free port and a fresh database in `dir`. */
async function startServer(root: string, dir: string): Promise<Server> {
  const proc = Bun.spawn([process.execPath, "run", join(root, "src/server.ts")], {
    cwd: root,
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      TRAINWATCH_DB: join(dir, "trainwatch.db"),
      TRAINWATCH_TOKEN: "",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const decoder = new TextDecoder();
  void (async () => {
    const reader = proc.stdout.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) out += decoder.decode(r.value);
  })();
  const stop = async () => {
    proc.kill("SIGTERM");
    await proc.exited;
  };
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const url = /listening on (http:\/\/\S+)/.exec(out)?.[1]?.replace("//0.0.0.0:", "//127.0.0.1:");
    if (
      url &&
      (await fetch(`${url}/api/v1/health`).then(
        (r) => r.ok,
        () => false,
      ))
    )
      return { url, stop };
    await Bun.sleep(50);
  }
  await stop();
  throw new Error(`${root}: the server did not start:\n${out}`);
}

async function call(url: string, method: string, path: string, body?: string): Promise<any> {
  const res = await fetch(`${url}/api/v1${path}`, {
    method,
    body,
    headers: body === undefined ? {} : { "content-type": "application/json" },
  });
  const json = (await res.json()) as { success: boolean; data: unknown; error?: { message: string } };
  if (!json.success) throw new Error(`${method} ${path}: ${res.status} ${json.error?.message}`);
  return json.data;
}

/** Milliseconds `f` takes. */
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

interface Figures {
  /** Rows/s of the batched ingestion (all three runs), and of the single-epoch POSTs. */
  batched: number;
  singles: number;
  /** Per length: every read's ms. */
  reads: Map<number, number[]>;
  health: number[];
  zoomAlone: number[];
  zoomAfter: number[];
}

/** One round on the checkout at `root`. */
async function round(root: string): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), "trainwatch-analysis-"));
  const server = await startServer(root, dir);
  const { url } = server;
  try {
    const ids = new Map<number, string>();
    let rows = 0;
    let spent = 0;
    for (const n of SIZES) {
      const op = await call(
        url,
        "POST",
        "/operations",
        JSON.stringify({ operation_type: "training", name: `run-${n}` }),
      );
      ids.set(n, op.operation_id);
      for (let from = 0; from < n; from += BATCH) {
        const body = JSON.stringify({ epochs: batchOf(from, Math.min(BATCH, n - from)) });
        spent += await timed(() => call(url, "POST", `/operations/${op.operation_id}/metrics`, body));
      }
      rows += n;
    }
    const singleRate = async () => {
      const single = (await call(url, "POST", "/operations", JSON.stringify({ operation_type: "training" })))
        .operation_id;
      let spent = 0;
      for (let e = 0; e < SINGLES; e++) {
        const body = JSON.stringify(wireEpoch(e));
        spent += await timed(() => call(url, "POST", `/operations/${single}/metrics`, body));
      }
      return SINGLES / (spent / 1000);
    };
    const singles = await singleRate();
    if (INGEST_ONLY)
      return { batched: rows / (spent / 1000), singles, reads: new Map(), health: [], zoomAlone: [], zoomAfter: [] };
    const reads = new Map<number, number[]>();
    for (const n of SIZES) {
      const path = `/operations/${ids.get(n)}/analysis`;
      for (let i = 0; i < 3; i++) await call(url, "GET", path);
      const took: number[] = [];
      const until = performance.now() + 10_000;
      while (took.length < READS && performance.now() < until) took.push(await timed(() => call(url, "GET", path)));
      reads.set(n, took);
    }

    const big = ids.get(1_000_000)!;
    let busy = true;
    const load = async () => {
      while (busy) await call(url, "GET", `/operations/${big}/analysis`);
    };
    const loaders = [load(), load()];
    const health: number[] = [];
    const until = performance.now() + 3_000;
    while (performance.now() < until) {
      health.push(await timed(() => call(url, "GET", "/health")));
      await Bun.sleep(10);
    }
    busy = false;
    await Promise.all(loaders);

    const zoom = `/operations/${big}/metrics?from_epoch=450000&to_epoch=550000&max_points=1000`;
    const zoomAlone: number[] = [];
    const zoomAfter: number[] = [];
    for (let i = 0; i < 10; i++) {
      zoomAlone.push(await timed(() => call(url, "GET", zoom)));
      const analysis = call(url, "GET", `/operations/${big}/analysis`);
      zoomAfter.push(await timed(() => call(url, "GET", zoom)));
      await analysis;
    }
    return {
      batched: rows / (spent / 1000),
      singles,
      reads,
      health,
      zoomAlone,
      zoomAfter,
    };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ns per row of advancing the kept state: batches of 1 (its stored bytes decoded and encoded each time, as a write does) and of 10,000. */
function advanceCost(): { single: number; batched: number } {
  const points: EpochPoint[] = batchOf(0, 200_000).map((e) => ({
    epoch: e.epoch,
    train_loss: e.train_loss,
    val_loss: e.val_loss,
  }));
  const start = analyzeTrends(points.slice(0, 1000));
  let state = start.state;
  let bytes = encodeJudge(judgeStateOf(points.slice(0, 1000), "val_loss", state.best));
  let t = performance.now();
  const singles = 50_000;
  for (let i = 1000; i < 1000 + singles; i++) {
    const batch = [points[i]!];
    state = advanceState(state, batch, "val_loss");
    bytes = encodeJudge(advanceJudge(decodeJudge(bytes)!, batch, "val_loss", state.best));
  }
  const single = ((performance.now() - t) * 1e6) / singles;
  let kept = decodeJudge(bytes)!;
  t = performance.now();
  for (let i = 1000 + singles; i < points.length; i += BATCH) {
    const batch = points.slice(i, i + BATCH);
    state = advanceState(state, batch, "val_loss");
    kept = advanceJudge(kept, batch, "val_loss", state.best);
  }
  const batched = ((performance.now() - t) * 1e6) / (points.length - 1000 - singles);
  return { single, batched };
}

console.log(`Trainwatch analysis bench — Bun ${Bun.version}, ${process.platform}/${process.arch}`);
console.log(`this checkout: ${HERE}${BASE ? `\nbase: ${BASE}` : ""}\n`);
const trees = BASE ? [BASE, HERE] : [HERE];
const results = new Map<string, Figures[]>(trees.map((t) => [t, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const tree of r % 2 ? [...trees].reverse() : trees) {
    process.stdout.write(`round ${r + 1}: ${tree === HERE ? "this checkout" : "base"} … `);
    const f = await round(tree);
    results.get(tree)!.push(f);
    console.log(`done`);
  }
}

const merged = (tree: string) => {
  const fs = results.get(tree)!;
  return {
    batched: median(fs.map((f) => f.batched)),
    singles: median(fs.map((f) => f.singles)),
    all: fs.map((f) => `${fmt(f.batched)} / ${fmt(f.singles)}`).join(", "),
    reads: new Map(SIZES.map((n) => [n, fs.flatMap((f) => f.reads.get(n) ?? [])])),
    health: fs.flatMap((f) => f.health),
    zoomAlone: fs.flatMap((f) => f.zoomAlone),
    zoomAfter: fs.flatMap((f) => f.zoomAfter),
  };
};
for (const tree of trees) {
  const m = merged(tree);
  console.log(`\n== ${tree === HERE ? "this checkout" : `base (${tree})`} ==`);
  console.log(
    `(a) ingestion through the API: ${fmt(m.batched)} rows/s in batches of ${fmt(BATCH)}; ${fmt(m.singles)} single-epoch POSTs/s`,
  );
  if (INGEST_ONLY) continue;
  for (const n of SIZES) {
    const xs = m.reads.get(n)!;
    console.log(
      `(b) GET …/analysis at ${fmt(n).padStart(9)} epochs: p50 ${ms(median(xs))}, p99 ${ms(p(xs, 0.99))} (${xs.length} reads)  goal p99 ≤ ${GOAL_P99_MS} ms: ${verdict(p(xs, 0.99) <= GOAL_P99_MS)}`,
    );
  }
  const ratio = median(m.reads.get(1_000_000)!) / median(m.reads.get(1_000)!);
  console.log(`    1M ÷ 1k (p50): ${fmt(ratio, 2)}  goal ≤ ${GOAL_RATIO}: ${verdict(ratio <= GOAL_RATIO)}`);
  console.log(
    `(c) GET /health while the 1M run's analysis is asked back to back by 2 clients: p50 ${ms(median(m.health))}, p99 ${ms(p(m.health, 0.99))}, max ${ms(Math.max(...m.health))} (${m.health.length} probes)`,
  );
  console.log(
    `(d) 10 % zoom of the 1M run (max_points 1000): alone p50 ${ms(median(m.zoomAlone))}; asked right after the analysis p50 ${ms(median(m.zoomAfter))}, max ${ms(Math.max(...m.zoomAfter))}`,
  );
}
if (BASE) {
  const a = merged(BASE);
  const b = merged(HERE);
  const batched = b.batched / a.batched - 1;
  const singles = b.singles / a.singles - 1;
  console.log(`\n== ingestion, this checkout against the base (goal: within ${GOAL_INGEST * 100} %) ==`);
  console.log(`batches of ${fmt(BATCH)}: ${fmt(batched * 100, 1)} %  ${verdict(batched >= -GOAL_INGEST)}`);
  console.log(`single-epoch POSTs: ${fmt(singles * 100, 1)} %  ${verdict(singles >= -GOAL_INGEST)}`);
}
const cost = advanceCost();
console.log(
  `\n(e) advancing the kept state, in process: ${fmt(cost.single)} ns a row in batches of 1 (its stored bytes read and written each time), ${fmt(cost.batched)} ns a row in batches of ${fmt(BATCH)}`,
);
