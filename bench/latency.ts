/**
 * The latencies the tests used to assert with a stopwatch, as figures beside their goals (a test asserts order and
 * outcome; on a busy 2-core runner a stopwatch only flakes):
 *   bun run bench/latency.ts [--part=cancel|heartbeat|stream] [--repeats=5] [--seconds=2] [--epochs=30]
 * (a) cancel → `done` of a local worker training, two checkpoint writes included (tests/trainer_engine.test.ts);
 * (b) how old a host training's last_seen_at reads while its heartbeats arrive, in process (tests/host_dispatch.test.ts);
 * (c) a posted epoch's arrival on an open metrics stream of a real server process after its POST returned
 * (tests/stream.test.ts). Prints figures and PASS/MISS; exits non-zero only when a run does not end as it must.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateSpec } from "../src/schemas/spec_rules.ts";
import { startWorkerTraining } from "../src/trainer/worker_client.ts";
import { world } from "../tests/fixtures/hosts.ts";
import { req, startServerProcess } from "../tests/helpers.ts";
import { SseReader } from "../tests/sse.ts";
import { args, int } from "./args.ts";
import { median, quantile } from "./lag.ts";

const PART = args.get("part") ?? "all";
const REPEATS = int("repeats", 5);
const SECONDS = int("seconds", 2);
const EPOCHS = int("epochs", 30);

const GOAL_CANCEL_MS = 1000;
/** The in-process world reads a host training stale after 1.5 s of silence (tests/fixtures/hosts.ts). */
const GOAL_HEARTBEAT_AGE_MS = 1500;
const GOAL_ARRIVAL_P95_MS = 100;
const GOAL_ARRIVAL_MAX_MS = 500;

const ms = (n: number) => `${n.toFixed(1)} ms`;
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");
let broken = false;

/** p50 / p95 / max of figures in any order. */
function stats(xs: number[]) {
  const sorted = [...xs].sort((a, b) => a - b);
  return { p50: median(xs), p95: quantile(sorted, 0.95), max: sorted.at(-1) ?? 0 };
}

async function cancelToDone(): Promise<void> {
  const v = validateSpec({
    dataset: { kind: "synthetic", generator: "spirals", samples: 2000 },
    training: { epochs: 200, batch_size: 8 },
  });
  if (!v.ok) throw new Error(v.message);
  const models = mkdtempSync(join(tmpdir(), "trainwatch-latency-"));
  const took: number[] = [];
  try {
    for (let i = 0; i < REPEATS; i++) {
      let cancelledAt = 0;
      const handle = startWorkerTraining(
        { operationId: `cancel-${i}`, spec: v.spec, modelsDir: models },
        {
          onStart() {},
          onEpoch() {
            if (cancelledAt !== 0) return;
            cancelledAt = performance.now();
            handle.cancel();
          },
          onProgress() {},
        },
      );
      const result = await handle.done;
      took.push(performance.now() - cancelledAt);
      if (result.stop_reason !== "cancelled" || result.checkpoints.length !== 2) {
        console.error(`(a) run ${i} ended ${result.stop_reason} with ${result.checkpoints.length} checkpoint(s)`);
        broken = true;
      }
    }
  } finally {
    rmSync(models, { recursive: true, force: true });
  }
  const s = stats(took);
  console.log(
    `(a) cancel → done of a worker training, its two checkpoints written (${REPEATS} runs): median ${ms(s.p50)}, max ${ms(s.max)}; goal under ${GOAL_CANCEL_MS} ms: ${verdict(s.max < GOAL_CANCEL_MS)}`,
  );
}

async function heartbeatAge(): Promise<void> {
  const w = world(["http://gpu-a.test"], { trainerMs: 20 });
  const get = async () => (await (await w.app.handle(req("GET", `/api/v1/operations/${id}`))).json()).data;
  const started = await w.app.handle(
    req("POST", "/api/v1/trainings", {
      dataset: { kind: "synthetic", generator: "spirals", samples: 40 },
      // Longer than the reads: an epoch every 20 ms, so ten times the epochs the window needs (at most the spec's 10,000).
      training: { epochs: Math.min(10_000, SECONDS * 500) },
    }),
  );
  const id = ((await started.json()) as { data: { operation_id: string } }).data.operation_id;
  const ages: number[] = [];
  const until = performance.now() + SECONDS * 1000;
  while (performance.now() < until) {
    const op = await get();
    if (op.last_seen_at) ages.push(Date.now() - Date.parse(op.last_seen_at));
    await Bun.sleep(10);
  }
  await w.app.handle(req("DELETE", `/api/v1/operations/${id}`));
  for (const h of w.hosts) {
    h.sessions.stopFromApi(id, "bench over");
    h.outbox.stop();
  }
  await w.local.stopAll();
  if (ages.length === 0) {
    console.error("(b) no heartbeat arrived");
    broken = true;
    return;
  }
  const s = stats(ages);
  console.log(
    `(b) age of a host training's last_seen_at while heartbeats arrive every 20 ms (${ages.length} reads over ${SECONDS} s): median ${ms(s.p50)}, p95 ${ms(s.p95)}, max ${ms(s.max)}; goal under ${GOAL_HEARTBEAT_AGE_MS} ms: ${verdict(s.max < GOAL_HEARTBEAT_AGE_MS)}`,
  );
}

async function streamArrival(): Promise<void> {
  const server = await startServerProcess();
  try {
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`${server.url}/api/v1${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const created = (await (await call("POST", "/operations", { operation_type: "training" })).json()) as {
      data: { operation_id: string };
    };
    const id = created.data.operation_id;
    const sse = new SseReader(await fetch(`${server.url}/api/v1/operations/${id}/metrics/stream`));
    await sse.until(() => sse.events.some((e) => e.event === "trends"), 5000, "the replay");
    const latencies: number[] = [];
    for (let e = 0; e < EPOCHS; e++) {
      const res = await call("POST", `/operations/${id}/metrics`, { epoch: e, train_loss: 1 / (e + 1) });
      const returned = performance.now();
      await res.arrayBuffer();
      await sse.until(() => sse.epochs().includes(e), 20_000, `epoch ${e}`);
      const arrived = sse.events.find((x) => x.event === "epoch" && x.data.epoch === e)!.at;
      latencies.push(Math.max(0, arrived - returned));
    }
    await sse.cancel();
    const s = stats(latencies);
    console.log(
      `(c) epoch arrival on an open stream after its POST returned, real server process (${EPOCHS} epochs): median ${ms(s.p50)}, p95 ${ms(s.p95)}, max ${ms(s.max)}; goals p95 under ${GOAL_ARRIVAL_P95_MS} ms, max under ${GOAL_ARRIVAL_MAX_MS} ms: ${verdict(s.p95 < GOAL_ARRIVAL_P95_MS && s.max < GOAL_ARRIVAL_MAX_MS)}`,
    );
  } finally {
    await server.stop();
  }
}

if (PART === "all" || PART === "cancel") await cancelToDone();
if (PART === "all" || PART === "heartbeat") await heartbeatAge();
if (PART === "all" || PART === "stream") await streamArrival();
process.exit(broken ? 1 : 0);
