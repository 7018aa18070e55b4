/**
 * Export amplification (issue 20, defect 4): `bun run bench/export.ts`. On a real server process (a SQLite file):
 * (a) 10,000 epochs at the custom metric name limit, dense (every epoch all 256 names) and sparse (one of the 256 per
 * epoch, the shape within the limit), each downloaded as metrics.csv, metrics.json and tfevents: bytes, time,
 * and the server's RSS peak during the download against its idle level (goal: within 50 MB); (b) the issue's
 * reproduction, 10,000 epochs with one new metric name each, which must now be a 400 at name 257 within milliseconds.
 * Prints figures beside their goals (PASS/MISS); asserts nothing. `--epochs=N` changes the run length.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_METRIC_NAMES } from "../src/schemas/epoch.ts";
import { startServerProcess } from "../tests/helpers.ts";
import { int } from "./args.ts";

const EPOCHS = int("epochs", 10_000);
const RSS_GOAL_MB = 50;
const REPRO_GOAL_MS = 500;

const headers = { "content-type": "application/json" };
const fmt = (n: number, digits = 1) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Resident set size of a process in MB (Linux /proc). */
const rssMb = (pid: number): number =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

const names = Array.from({ length: MAX_METRIC_NAMES }, (_, i) => `metric_${String(i).padStart(3, "0")}`);

/** Epoch `e` of a run: standard fields, then every name (dense) or one of them (sparse). */
function epochOf(e: number, dense: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    epoch: e,
    train_loss: 1 / (e + 1),
    val_loss: 1.1 / (e + 1),
    learning_rate: 0.001,
    duration: 1.5,
  };
  if (dense) for (let i = 0; i < names.length; i++) out[names[i]!] = (e * 7 + i) / 1000;
  else out[names[e % names.length]!] = e / 1000;
  return out;
}

const rows: { what: string; value: string; goal: string; pass: boolean | null }[] = [];

const dir = mkdtempSync(join(tmpdir(), "trainwatch-bench-export-"));
const server = await startServerProcess({ TRAINWATCH_DB: join(dir, "export.db") });
const api = `${server.url}/api/v1`;
const pid = server.proc.pid;

async function run(dense: boolean): Promise<string> {
  const res = await fetch(`${api}/operations`, {
    method: "POST",
    headers,
    body: JSON.stringify({ operation_type: "training", name: dense ? "dense" : "sparse" }),
  });
  const id = ((await res.json()) as { data: { operation_id: string } }).data.operation_id;
  // Batches under the 5 MB body limit: 400 dense epochs are ~2.3 MB of JSON.
  const per = dense ? 400 : 5_000;
  for (let from = 0; from < EPOCHS; from += per) {
    const epochs = Array.from({ length: Math.min(per, EPOCHS - from) }, (_, i) => epochOf(from + i, dense));
    const r = await fetch(`${api}/operations/${id}/metrics`, {
      method: "POST",
      headers,
      body: JSON.stringify({ epochs }),
    });
    if (r.status !== 200) throw new Error(`write: ${r.status} ${await r.text()}`);
  }
  return id;
}

/** The server's idle RSS: its level once it has been quiet a moment (the median of a few samples). */
async function idleRss(): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    await Bun.sleep(200);
    samples.push(rssMb(pid));
  }
  return samples.sort((a, b) => a - b)[2]!;
}

/** Downloads `path`, reading the body as it comes, with the server's RSS sampled every 10 ms. */
async function download(path: string): Promise<{ bytes: number; ms: number; peak: number }> {
  let peak = rssMb(pid);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 10);
  const t0 = performance.now();
  const res = await fetch(`${api}${path}`);
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  let bytes = 0;
  const reader = res.body!.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) bytes += r.value.byteLength;
  const ms = performance.now() - t0;
  clearInterval(sampler);
  peak = Math.max(peak, rssMb(pid));
  return { bytes, ms, peak };
}

try {
  console.log(
    `${EPOCHS.toLocaleString("en-US")} epochs per run, ${MAX_METRIC_NAMES} custom metric names (the limit)\n`,
  );
  for (const dense of [true, false]) {
    const label = dense ? `dense (all ${MAX_METRIC_NAMES} names every epoch)` : "sparse (one name per epoch)";
    const id = await run(dense);
    for (const file of ["metrics.csv", "metrics.json", "tfevents"]) {
      const idle = await idleRss();
      const d = await download(`/operations/${id}/${file}`);
      const growth = d.peak - idle;
      console.log(
        `${label}, ${file}: ${fmt(d.bytes / 1e6)} MB in ${fmt(d.ms, 0)} ms; server RSS idle ${fmt(idle)} MB, peak ${fmt(d.peak)} MB (+${fmt(growth)} MB)`,
      );
      rows.push({
        what: `${dense ? "dense" : "sparse"} ${file}: RSS peak − idle (${fmt(d.bytes / 1e6)} MB in ${fmt(d.ms, 0)} ms)`,
        value: `${fmt(growth)} MB`,
        goal: `≤ ${RSS_GOAL_MB} MB`,
        pass: growth <= RSS_GOAL_MB,
      });
    }
  }

  // (b) The reproduction: 10,000 epochs, each with a metric name of its own.
  const res = await fetch(`${api}/operations`, {
    method: "POST",
    headers,
    body: JSON.stringify({ operation_type: "training", name: "repro" }),
  });
  const id = ((await res.json()) as { data: { operation_id: string } }).data.operation_id;
  const body = JSON.stringify({ epochs: Array.from({ length: 10_000 }, (_, e) => ({ epoch: e, [`m${e}`]: 1 })) });
  const times: number[] = [];
  let answer = "";
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const r = await fetch(`${api}/operations/${id}/metrics`, { method: "POST", headers, body });
    const reply = (await r.json()) as { error?: { details?: { field?: string } } };
    times.push(performance.now() - t0);
    answer = `${r.status} ${reply.error?.details?.field}`;
  }
  const median = times.sort((a, b) => a - b)[2]!;
  console.log(
    `\nissue reproduction (10,000 epochs, one new name each, ${fmt(body.length / 1e3, 0)} KB): ${answer}, median of 5: ${fmt(median)} ms`,
  );
  rows.push({
    what: "issue reproduction: answer",
    value: answer,
    goal: `400 body.epochs.${MAX_METRIC_NAMES}.m${MAX_METRIC_NAMES}`,
    pass: answer === `400 body.epochs.${MAX_METRIC_NAMES}.m${MAX_METRIC_NAMES}`,
  });
  rows.push({
    what: "issue reproduction: time (median of 5)",
    value: `${fmt(median)} ms`,
    goal: `≤ ${REPRO_GOAL_MS} ms`,
    pass: median <= REPRO_GOAL_MS,
  });
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

console.log("\n| what | measured | goal | |\n|---|---|---|---|");
for (const r of rows)
  console.log(`| ${r.what} | ${r.value} | ${r.goal} | ${r.pass === null ? "" : r.pass ? "PASS" : "MISS"} |`);
