/**
 * Local-training figures for the acceptance note:
 *   bun run bench/training.ts [--part=overhead|lag] [--repeats=11] [--samples=20000] [--epochs=8] [--lag-epochs=20]
 * (a) overhead of the metrics pipeline over a bare worker run of the same spec, (b) the API's event-loop lag while 3
 * local trainings run, (c) a pointer to bench/throughput.ts. Prints figures and PASS/MISS; asserts nothing.
 *
 * This one file plays three parts: the bench (main thread), the bare training worker (a worker thread) and, with
 * --lag-server, the API process whose event loop is sampled.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TrainingSpecInput } from "../src/schemas/spec.ts";
import { args, int } from "./args.ts";
import { median, quantile, startLagSampler } from "./lag.ts";

const REPEATS = int("repeats", 11);
// 16,000 training rows: an epoch takes ~0.25 s on wasm here, a run ~2.5 s with its worker start and TF.js load.
const SAMPLES = int("samples", 20_000);
const EPOCHS = int("epochs", 8);
/** The lag trainings run longer, so the start-up burst (3 workers loading TF.js at once) is not most of the window. */
const LAG_EPOCHS = int("lag-epochs", 20);
const LAG_INTERVAL_MS = 10;
/** --part=overhead or --part=lag runs only that figure. */
const PART = args.get("part") ?? "all";

/** The spec of every run: spirals, the default MLP [64, 32] with dropout 0.2, batch 32, 20 % validation. */
const SPEC: TrainingSpecInput = {
  name: "bench",
  dataset: { kind: "synthetic", generator: "spirals", samples: SAMPLES, seed: 1 },
  training: { epochs: EPOCHS, batch_size: 32, seed: 42 },
};

const fmt = (n: number, digits = 2) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

// ── Part 1: the bare worker. runTraining with no-op events: no Comlink, no operations service, no store, no progress writes. ──

interface BareRequest {
  spec: import("../src/schemas/spec.ts").NormalizedSpec;
  modelsDir: string;
  operationId: string;
}

async function bareWorker(): Promise<void> {
  const { runTraining } = await import("../src/trainer/engine.ts");
  self.onmessage = async (e: MessageEvent<BareRequest>) => {
    const { spec, modelsDir, operationId } = e.data;
    const noop = () => {};
    // The one message besides the result marks the start report, for the training-phase figure; no other events.
    const onStart = () => postMessage({ started: true });
    const result = await runTraining(spec, { modelsDir, operationId }, { onStart, onEpoch: noop, onProgress: noop });
    postMessage({ epochs: result.epochs_run, backend: result.backend });
  };
  postMessage({ ready: true });
}

// ── Part 2: the API process for the lag figure: the real startServer, plus a setInterval drift sampler. ──

async function lagServer(): Promise<void> {
  const { startServer } = await import("../src/server.ts");
  const server = await startServer();
  const sampler = startLagSampler(LAG_INTERVAL_MS);
  let since = Date.now();
  process.on("message", (msg: { cmd: "reset" | "collect" }) => {
    if (msg.cmd === "reset") {
      sampler.reset();
      since = Date.now();
      // Each sample sent: [ms since the last reset, lag in ms].
    } else process.send!({ lags: sampler.samples().map(([at, lag]) => [at - since, lag]) });
  });
  process.on("SIGTERM", () => void server.stop().finally(() => process.exit(0)));
  process.send!({ url: server.url });
}

// ── Part 3: the bench ──

const rows: { what: string; value: string; goal: string; pass: boolean | null }[] = [];

interface Timing {
  /** Seconds from asking for the training until it is finished: worker start, TF.js load, data, training, model save. */
  total: number;
  /** Seconds from the start report (backend ready, data loaded) until finished: the part that grows with the training. */
  training: number;
}

/** One bare run: a fresh worker (as LocalTrainer makes one per training), the same spec, until its result is back. */
async function bareRun(modelsDir: string, spec: BareRequest["spec"], n: number): Promise<Timing> {
  const asked = performance.now();
  let started = 0;
  const worker = new Worker(import.meta.url);
  try {
    const result = await new Promise<{ epochs: number }>((resolve, reject) => {
      worker.onerror = (e) => reject(new Error(e.message));
      worker.onmessage = (e: MessageEvent<{ ready?: true; started?: true; epochs: number }>) => {
        if (e.data.ready) worker.postMessage({ spec, modelsDir, operationId: `bare-${n}` } satisfies BareRequest);
        else if (e.data.started) started = performance.now();
        else resolve(e.data);
      };
    });
    if (result.epochs !== EPOCHS) throw new Error(`bare run trained ${result.epochs} epochs, expected ${EPOCHS}`);
    const done = performance.now();
    return { total: (done - asked) / 1000, training: (done - started) / 1000 };
  } finally {
    worker.terminate();
  }
}

async function overhead(dir: string): Promise<void> {
  const { createApp } = await import("../src/app.ts");
  const { loadConfig } = await import("../src/config.ts");
  const { OperationsService } = await import("../src/operations/service.ts");
  const { SqliteStore } = await import("../src/store/sqlite.ts");
  const { Dispatcher } = await import("../src/trainer/dispatcher.ts");
  const { LocalTrainer } = await import("../src/trainer/local.ts");
  const { validateSpec } = await import("../src/schemas/spec_rules.ts");

  const modelsDir = join(dir, "models");
  const config = loadConfig({ TRAINWATCH_MODELS_DIR: modelsDir, TRAINWATCH_MAX_LOCAL_TRAININGS: "1" });
  const store = new SqliteStore(join(dir, "overhead.db"), config.trends);
  const operations = new OperationsService(store);
  const local = new LocalTrainer(operations, { maxConcurrent: 1, modelsDir });
  const app = createApp({ store, operations, config, trainers: new Dispatcher(operations, local, null, config) });
  const checked = validateSpec(SPEC);
  if (!checked.ok) throw new Error(checked.message);
  let backend = "";
  // Clocks the main thread's share of the pipeline (every store and operations call the local trainer makes), a figure that,
  // unlike the run times, does not drift with the training's own noise.
  let mainThreadMs = 0;
  const clock = <T extends object>(target: T, names: (keyof T)[]) => {
    for (const name of names) {
      const fn = target[name] as unknown as (...a: unknown[]) => unknown;
      (target as Record<keyof T, unknown>)[name] = (...a: unknown[]) => {
        const t0 = performance.now();
        try {
          return fn.apply(target, a);
        } finally {
          mainThreadMs += performance.now() - t0;
        }
      };
    }
  };
  clock(operations, ["writeEpochs", "statusChanged", "finish"]);
  clock(store, ["setBatchProgress", "mergeMetadata", "markStarted", "setResult"]);
  const mainMs: number[] = [];

  /** The full pipeline: POST → LocalTrainer → Comlink worker → operations service → SQLite file store with trends, until finished. */
  const pipelineRun = async (): Promise<Timing> => {
    mainThreadMs = 0;
    const asked = performance.now();
    let started = 0;
    let done = 0;
    // Subscribed before the POST: the local trainer can start the worker before the reply is read.
    const finished = new Promise<void>((resolve) => {
      const off = operations.subscribe("*", (e) => {
        if (e.type !== "status") return;
        if (e.operation.status === "running") started ||= performance.now();
        else if (e.operation.status !== "pending") {
          done = performance.now();
          off();
          resolve();
        }
      });
    });
    const res = await app.handle(
      new Request("http://localhost/api/v1/trainings", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(SPEC),
      }),
    );
    const id = ((await res.json()) as { data: { operation_id: string } }).data.operation_id;
    await finished;
    const op = (await store.getOperation(id))!;
    if (op.status !== "completed" || op.trends.total_epochs_completed !== EPOCHS) {
      throw new Error(
        `pipeline run ${id} ended ${op.status} with ${op.trends.total_epochs_completed} epochs: ${op.error_message}`,
      );
    }
    backend = String(op.metadata.backend);
    mainMs.push(mainThreadMs);
    return { total: (done - asked) / 1000, training: (done - started) / 1000 };
  };

  console.log(
    `(a) overhead: ${SAMPLES} spirals rows, MLP [64, 32], batch 32, ${EPOCHS} epochs; ${REPEATS} interleaved pairs after 1 warm-up pair`,
  );
  console.log(
    "    bare = a fresh worker running src/trainer/engine.ts runTraining with no-op events (no Comlink, operations service or store)",
  );
  await pipelineRun();
  await bareRun(modelsDir, checked.spec, -1);
  const bare: Timing[] = [];
  const pipe: Timing[] = [];
  for (let i = 0; i < REPEATS; i++) {
    // Alternate which goes first, so drift in the machine's load falls on both sides alike.
    if (i % 2 === 0) {
      bare.push(await bareRun(modelsDir, checked.spec, i));
      pipe.push(await pipelineRun());
    } else {
      pipe.push(await pipelineRun());
      bare.push(await bareRun(modelsDir, checked.spec, i));
    }
    const [b, p] = [bare[i]!, pipe[i]!];
    console.log(
      `    pair ${String(i + 1).padStart(2)}: bare ${fmt(b.total, 3)} s (training ${fmt(b.training, 3)} s), ` +
        `pipeline ${fmt(p.total, 3)} s (training ${fmt(p.training, 3)} s) → ${fmt(p.total / b.total, 3)}`,
    );
  }
  store.close();
  const ratios = (k: keyof Timing) => pipe.map((p, i) => p[k] / bare[i]![k]).sort((x, y) => x - y);
  const spread = (k: keyof Timing) => {
    const r = ratios(k);
    return `median ${fmt(quantile(r, 0.5), 3)}, middle half ${fmt(quantile(r, 0.25), 3)} … ${fmt(quantile(r, 0.75), 3)}`;
  };
  const startCost = median(pipe.map((p) => p.total - p.training)) - median(bare.map((b) => b.total - b.training));
  console.log(`    pair ratios, whole run:      ${spread("total")}`);
  console.log(`    pair ratios, training phase: ${spread("training")} (from the start report to finished)`);
  console.log(`    start-up (worker, TF.js, data): pipeline ${fmt(startCost * 1000, 0)} ms longer than bare, median`);
  const work = median(mainMs.slice(1));
  console.log(
    `    main-thread pipeline work (store + service calls): ${fmt(work, 1)} ms a run, median = ${fmt((100 * work) / 1000 / median(bare.map((b) => b.training)), 2)} % of the bare training phase`,
  );
  console.log(
    "    Where other work shares the cores, one run's time varies far more than 1 %: read the middle half with the median.\n",
  );
  const total = quantile(ratios("total"), 0.5);
  const training = quantile(ratios("training"), 0.5);
  rows.push({
    what: `overhead: pipeline / bare worker, whole run (${backend})`,
    value: fmt(total, 3),
    goal: "≤ 1.01",
    pass: total <= 1.01,
  });
  rows.push({
    what: `overhead: pipeline / bare worker, training phase`,
    value: fmt(training, 3),
    goal: "≤ 1.01",
    pass: training <= 1.01,
  });
}

async function lag(dir: string): Promise<void> {
  // Replies from the server process, in order: its URL, then one per "collect".
  const inbox: unknown[] = [];
  let waiting: ((m: unknown) => void) | null = null;
  const next = () => new Promise<any>((resolve) => (inbox.length > 0 ? resolve(inbox.shift()) : (waiting = resolve)));
  const child = Bun.spawn([process.execPath, "run", import.meta.path, "--lag-server"], {
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: "0",
      TRAINWATCH_DB: join(dir, "lag.db"),
      TRAINWATCH_MODELS_DIR: join(dir, "lag-models"),
      TRAINWATCH_MAX_LOCAL_TRAININGS: "3",
      TRAINWATCH_TOKEN: "",
    },
    stdout: "ignore",
    stderr: "inherit",
    ipc: (m) => {
      const w = waiting;
      waiting = null;
      if (w) w(m);
      else inbox.push(m);
    },
  });
  try {
    const { url } = (await next()) as { url: string };
    const collect = async () => {
      child.send({ cmd: "collect" });
      return (await next()) as { lags: [number, number][] };
    };
    const stats = (samples: [number, number][]) => {
      const s = samples.map(([, lag]) => lag).sort((a, b) => a - b);
      const worst = [...samples].sort((a, b) => b[1] - a[1]).slice(0, 5);
      return { n: s.length, p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1] ?? 0, worst };
    };

    child.send({ cmd: "reset" });
    await Bun.sleep(2000);
    const idle = stats((await collect()).lags);

    const specs = [1, 2, 3].map((seed) => ({
      ...SPEC,
      name: `lag-${seed}`,
      dataset: { ...SPEC.dataset, seed },
      training: { ...SPEC.training, epochs: LAG_EPOCHS, seed },
    }));
    child.send({ cmd: "reset" });
    const started = performance.now();
    const ids: string[] = [];
    for (const s of specs) {
      const res = await fetch(`${url}/api/v1/trainings`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(s),
      });
      ids.push(((await res.json()) as { data: { operation_id: string } }).data.operation_id);
    }
    // Watched as a dashboard would: each operation and its new epochs every 100 ms, and the trainer count.
    const since = new Map(ids.map((id) => [id, -1]));
    let peak = 0;
    const open = new Set(ids);
    while (open.size > 0) {
      for (const id of [...open]) {
        const op = ((await (await fetch(`${url}/api/v1/operations/${id}`)).json()) as any).data;
        const epochs = (
          (await (await fetch(`${url}/api/v1/operations/${id}/metrics?since_epoch=${since.get(id)}`)).json()) as any
        ).data.metrics.epochs;
        if (epochs.length) since.set(id, epochs[epochs.length - 1].epoch);
        if (op.status !== "pending" && op.status !== "running") {
          if (op.status !== "completed") throw new Error(`lag run ${id} ended ${op.status}: ${op.error_message}`);
          open.delete(id);
        }
      }
      const health = (await (await fetch(`${url}/api/v1/health`)).json()) as any;
      peak = Math.max(peak, health.data.trainers.local.running);
      await Bun.sleep(100);
    }
    const seconds = (performance.now() - started) / 1000;
    const busy = stats((await collect()).lags);
    console.log(
      `(b) event-loop lag of the API process (setInterval ${LAG_INTERVAL_MS} ms drift sampler in the server process)`,
    );
    console.log(
      `    idle, 2 s:               p50 ${fmt(idle.p50)} ms, p99 ${fmt(idle.p99)} ms, max ${fmt(idle.max)} ms (${idle.n} samples)`,
    );
    console.log(
      `    3 trainings, ${fmt(seconds, 1)} s:   p50 ${fmt(busy.p50)} ms, p99 ${fmt(busy.p99)} ms, max ${fmt(busy.max)} ms (${busy.n} samples)`,
    );
    console.log(
      `    worst stalls (lag @ seconds after the first POST): ${busy.worst.map(([at, l]) => `${fmt(l, 1)} ms @ ${fmt(at / 1000, 2)} s`).join(", ")}`,
    );
    console.log(
      `    ${peak} trainings seen running at once (TRAINWATCH_MAX_LOCAL_TRAININGS=3); the bench polled each operation and its new epochs every 100 ms\n`,
    );
    rows.push({
      what: "event-loop lag during 3 trainings: p99",
      value: `${fmt(busy.p99)} ms`,
      goal: "≤ 10 ms",
      pass: busy.p99 <= 10,
    });
    rows.push({ what: "event-loop lag during 3 trainings: max", value: `${fmt(busy.max)} ms`, goal: "", pass: null });
  } finally {
    child.kill("SIGTERM");
    await child.exited;
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "trainwatch-bench-"));
  console.log(
    `Trainwatch training bench — Bun ${Bun.version}, ${process.platform}/${process.arch}, ${navigator.hardwareConcurrency} cores\n`,
  );
  try {
    if (PART !== "lag") await overhead(dir);
    if (PART !== "overhead") await lag(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    "(c) training samples/s per backend (MLP 32→64→32→1, 20,000 rows, batch 64, 5 epochs vs PyTorch): bun run bench/throughput.ts\n",
  );
  rows.push({ what: "throughput per backend", value: "see bench/throughput.ts", goal: "≥ 0.5× PyTorch", pass: null });
  const w = Math.max(...rows.map((r) => r.what.length));
  const v = Math.max(...rows.map((r) => r.value.length));
  console.log(`${"figure".padEnd(w)}  ${"value".padStart(v)}  ${"goal".padEnd(14)}  result`);
  console.log("-".repeat(w + v + 26));
  for (const r of rows)
    console.log(
      `${r.what.padEnd(w)}  ${r.value.padStart(v)}  ${r.goal.padEnd(14)}  ${r.pass === null ? "" : r.pass ? "PASS" : "MISS"}`,
    );
}

/**
 * Picks the backend once (logging any fallback once), then reruns this bench with TRAINWATCH_BACKEND set to it: workers
 * copy the environment at process start, so this is how every worker, bare or not, skips re-probing (and re-logging).
 */
async function withBackendChosen(): Promise<void> {
  const { selectBackend } = await import("../src/trainer/backend.ts");
  const { backend } = await selectBackend();
  console.log(`backend: ${backend} (set TRAINWATCH_BACKEND to choose another)`);
  const child = Bun.spawn([process.execPath, "run", import.meta.path, ...process.argv.slice(2)], {
    env: { ...process.env, TRAINWATCH_BACKEND: backend },
    stdio: ["inherit", "inherit", "inherit"],
  });
  process.exit(await child.exited);
}

if (!Bun.isMainThread) await bareWorker();
else if (args.has("lag-server")) await lagServer();
else if (!process.env.TRAINWATCH_BACKEND) await withBackendChosen();
else await main();
