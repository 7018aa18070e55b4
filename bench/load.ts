/**
 * Load figures: `bun run bench/load.ts [--seconds=60] [--pollers=200] [--trainings=3] [--rate=10] [--samples=4000] [--batch=32]`.
 * The API runs in its own process on loopback, as for users. For `--seconds`, at once:
 *   - `--pollers` clients, each once a second: GET an operation's metrics, then GET its status;
 *   - `--trainings` local trainings (spirals, small MLP, batch 4: many short epochs);
 *   - one writer posting `--rate` epochs a second to an operation of its own.
 * Prints errors (goal 0), GET latency (p99 goal ≤ 20 ms), the server's event-loop lag (sampled
 * inside the server process by bench/lag.ts, preloaded) and the server's RSS at start and end.
 * The clients share this machine with the server, so their own event-loop lag is printed too:
 * a client that is late to read a reply inflates the latency it measures. Asserts nothing.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServerProcess } from "../tests/helpers.ts";
import { lagStats, quantile, startLagSampler, type LagSample } from "./lag.ts";
import { int } from "./args.ts";

const SECONDS = int("seconds", 60);
const POLLERS = int("pollers", 200);
const TRAININGS = int("trainings", 3);
const RATE = int("rate", 10);

const fmt = (n: number, digits = 2) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const headers = { "content-type": "application/json" };

/** Resident set size of a process in MB (Linux /proc), or null where there is no /proc. */
function rssMb(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb ? Number(kb) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * A training that outlasts the run (cancelled at the end): spirals with the default MLP, 4,000 rows in batches of 32;
 * about 13 epochs a second each here (2 cores, wasm), so the 3 trainings store ~40 epochs a second on top of the writer.
 */
const trainingSpec = (i: number) => ({
  name: `load-${i}`,
  dataset: { kind: "synthetic", generator: "spirals", samples: int("samples", 4000), seed: i },
  training: { epochs: 10_000, batch_size: int("batch", 32), seed: i },
});

/** Per-kind latencies and errors ("GET metrics 503", "POST metrics TimeoutError"). */
class Tally {
  readonly ms = new Map<string, number[]>();
  readonly errors = new Map<string, number>();
  async time(kind: string, url: string, init?: RequestInit): Promise<void> {
    const t0 = performance.now();
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      if (!res.ok) this.error(`${kind} ${res.status}`);
    } catch (err) {
      this.error(`${kind} ${(err as Error).name}`);
      return;
    }
    const list = this.ms.get(kind) ?? [];
    list.push(performance.now() - t0);
    this.ms.set(kind, list);
  }
  error(key: string) {
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }
  sorted(...kinds: string[]): number[] {
    return kinds.flatMap((k) => this.ms.get(k) ?? []).sort((a, b) => a - b);
  }
}

/** Runs `tick` at fixed times (start + k·period) until `end`; a late tick runs once, never in a burst. */
async function every(periodMs: number, startAt: number, end: number, tick: () => Promise<void>): Promise<void> {
  for (let next = startAt; next < end; next += periodMs) {
    const wait = next - Date.now();
    if (wait > 0) await Bun.sleep(wait);
    else if (wait < -periodMs) continue; // more than a period behind: skip this one
    await tick();
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "trainwatch-load-"));
  const lagFile = join(dir, "lag.json");
  console.log(
    `Trainwatch load bench — Bun ${Bun.version}, ${process.platform}/${process.arch}, ${navigator.hardwareConcurrency} cores`,
  );
  console.log(
    `${POLLERS} pollers (GET metrics + GET status, 1/s each), ${TRAININGS} local trainings, 1 writer at ${RATE} epochs/s, ${SECONDS} s\n`,
  );
  const server = await startServerProcess({
    TRAINWATCH_DB: join(dir, "load.db"),
    TRAINWATCH_MODELS_DIR: join(dir, "models"),
    TRAINWATCH_MAX_LOCAL_TRAININGS: String(Math.max(1, TRAININGS)),
    BUN_OPTIONS: `--preload=${join(import.meta.dir, "lag.ts")}`,
    BENCH_LAG_FILE: lagFile,
  });
  const api = `${server.url}/api/v1`;
  const pid = server.proc.pid;
  const tally = new Tally();
  const clientLag = startLagSampler();
  try {
    const rssStart = rssMb(pid);
    const trainings: string[] = [];
    for (let i = 0; i < TRAININGS; i++) {
      const res = await fetch(`${api}/trainings`, {
        method: "POST",
        headers,
        body: JSON.stringify(trainingSpec(i + 1)),
      });
      if (res.status !== 202) throw new Error(`POST /trainings: ${res.status} ${await res.text()}`);
      trainings.push(((await res.json()) as { data: { operation_id: string } }).data.operation_id);
    }
    const reg = await fetch(`${api}/operations`, {
      method: "POST",
      headers,
      body: JSON.stringify({ operation_type: "training", name: "load-writer" }),
    });
    const writerOp = ((await reg.json()) as { data: { operation_id: string } }).data.operation_id;
    const ops = [...trainings, writerOp];
    // The clock starts once every training is past its start-up (worker, TF.js load, data) and has finished an epoch:
    // the figures are for 3 trainings running, not for 3 workers loading TF.js.
    const ready = Date.now();
    for (const id of trainings) {
      for (;;) {
        const op = (
          (await (await fetch(`${api}/operations/${id}`)).json()) as {
            data: { status: string; progress: { epochs_completed: number } };
          }
        ).data;
        if (op.status !== "pending" && op.status !== "running")
          throw new Error(`training ${id} ended ${op.status} before the run`);
        if (op.progress.epochs_completed > 0) break;
        if (Date.now() - ready > 120_000) throw new Error(`training ${id} has no epoch after 120 s`);
        await Bun.sleep(100);
      }
    }
    console.log(`trainings running after ${fmt((Date.now() - ready) / 1000, 1)} s; the run starts\n`);

    const t0 = Date.now();
    const end = t0 + SECONDS * 1000;
    clientLag.reset();
    let epoch = 0;
    const writer = every(1000 / RATE, t0, end, () => {
      const body = JSON.stringify({
        epochs: [
          { epoch, train_loss: 1 / (epoch + 1), val_loss: 1.1 / (epoch + 1), timestamp: new Date().toISOString() },
        ],
      });
      epoch++;
      return tally.time("POST metrics", `${api}/operations/${writerOp}/metrics`, { method: "POST", headers, body });
    });
    // Pollers start spread over the first second, so the load is even rather than 200 requests on each second's edge.
    const pollers = Array.from({ length: POLLERS }, (_, i) => {
      const id = ops[i % ops.length]!;
      return every(1000, t0 + (i * 1000) / POLLERS, end, async () => {
        await tally.time("GET metrics", `${api}/operations/${id}/metrics`);
        await tally.time("GET status", `${api}/operations/${id}`);
      });
    });
    await Promise.all([writer, ...pollers]);
    const t1 = Date.now();
    const rssEnd = rssMb(pid);
    const epochsTrained: number[] = [];
    for (const id of trainings) {
      const op = (
        (await (await fetch(`${api}/operations/${id}`)).json()) as {
          data: { status: string; progress: { epochs_completed: number } };
        }
      ).data;
      if (op.status !== "running") tally.error(`training ${op.status}`);
      epochsTrained.push(op.progress.epochs_completed);
      await fetch(`${api}/operations/${id}`, { method: "DELETE" });
    }
    await server.stop(); // SIGTERM: the server exits and the preloaded sampler writes its file
    const serverLag = lagStats((JSON.parse(readFileSync(lagFile, "utf8")) as { samples: LagSample[] }).samples, t0, t1);
    const client = lagStats(clientLag.samples());

    const gets = tally.sorted("GET metrics", "GET status");
    const line = (what: string, xs: number[]) =>
      `    ${what.padEnd(13)} n=${String(xs.length).padStart(6)}  p50 ${fmt(quantile(xs, 0.5))} ms  p99 ${fmt(quantile(xs, 0.99))} ms  max ${fmt(xs[xs.length - 1] ?? 0)} ms`;
    const errors = [...tally.errors.values()].reduce((a, b) => a + b, 0);
    console.log(`latency (client-side, request sent to body read):`);
    for (const kind of ["GET metrics", "GET status", "POST metrics"]) console.log(line(kind, tally.sorted(kind)));
    console.log(
      `    ${fmt((gets.length / (t1 - t0)) * 1000, 0)} GET/s; writer stored ${epoch} epochs; trainings ran ${epochsTrained.join(", ")} epochs`,
    );
    console.log(`errors: ${errors === 0 ? "none" : [...tally.errors].map(([k, n]) => `${k} ×${n}`).join(", ")}`);
    console.log(
      `server event loop (10 ms timer drift, ${serverLag.n} samples): p50 ${fmt(serverLag.p50)} ms, p99 ${fmt(serverLag.p99)} ms, max ${fmt(serverLag.max)} ms`,
    );
    console.log(
      `client event loop (the same sampler in this process):  p50 ${fmt(client.p50)} ms, p99 ${fmt(client.p99)} ms, max ${fmt(client.max)} ms`,
    );
    const mb = (v: number | null) => (v === null ? "n/a" : `${fmt(v, 1)} MB`);
    console.log(`server RSS: ${mb(rssStart)} at start, ${mb(rssEnd)} at the end (training workers included)\n`);

    const rows = [
      { what: "errors", value: String(errors), goal: "0", pass: errors === 0 },
      {
        what: "GET p99 (metrics + status)",
        value: `${fmt(quantile(gets, 0.99))} ms`,
        goal: "≤ 20 ms",
        pass: quantile(gets, 0.99) <= 20,
      },
      { what: "server event-loop lag p99", value: `${fmt(serverLag.p99)} ms`, goal: "", pass: null },
      { what: "server RSS start → end", value: `${mb(rssStart)} → ${mb(rssEnd)}`, goal: "", pass: null },
    ];
    const w = Math.max(...rows.map((r) => r.what.length));
    const v = Math.max(...rows.map((r) => r.value.length));
    console.log(`${"figure".padEnd(w)}  ${"value".padStart(v)}  ${"goal".padEnd(8)}  result`);
    console.log("-".repeat(w + v + 20));
    for (const r of rows)
      console.log(
        `${r.what.padEnd(w)}  ${r.value.padStart(v)}  ${r.goal.padEnd(8)}  ${r.pass === null ? "" : r.pass ? "PASS" : "MISS"}`,
      );
  } finally {
    clientLag.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
