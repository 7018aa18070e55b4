/**
 * Relay latency of the GPU host service: `bun run bench/relay_latency.ts`.
 * Starts the real API and host processes on free loopback ports, trains a tiny spec
 * of many short epochs on the host, and polls the API's GET metrics. Latency of an
 * epoch = when the poll first shows it − its `timestamp`, which the worker stamps the
 * moment it emits the epoch. Prints p50 / p99 / max; goal p99 ≤ 200 ms. Exits non-zero
 * when the training does not arrive complete (missing or duplicated epochs).
 * Options: --epochs=300 --poll-ms=2
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, spawnEntry } from "../tests/fixtures/spawn.ts";
import { int } from "./args.ts";
import { quantile } from "./lag.ts";

const EPOCHS = int("epochs", 300);
const POLL_MS = int("poll-ms", 2);
const GOAL_P99_MS = 200;
const dir = mkdtempSync(join(tmpdir(), "trainwatch-relay-bench-"));

/** `bun run <entry>` with `env`, ready once `base + health` answers. */
const spawn = (entry: string, env: Record<string, string>, base: string, health: string) =>
  spawnEntry({ entry, env, url: () => base, health, timeoutMs: 30_000 });

const hostPort = freePort();
const apiPort = freePort();
const hostUrl = `http://127.0.0.1:${hostPort}`;
const apiUrl = `http://127.0.0.1:${apiPort}`;
const procs: { proc: ReturnType<typeof Bun.spawn> }[] = [];
let exitCode = 0;
try {
  procs.push(
    await spawn(
      "src/host",
      {
        TRAINWATCH_HOST_PORT: String(hostPort),
        TRAINWATCH_HOST_DB: join(dir, "host.db"),
        TRAINWATCH_MODELS_DIR: join(dir, "host-models"),
      },
      hostUrl,
      "/health",
    ),
  );
  procs.push(
    await spawn(
      "src/server.ts",
      {
        PORT: String(apiPort),
        TRAINWATCH_DB: join(dir, "api.db"),
        TRAINING_HOST_URL: hostUrl,
        USE_TRAINING_HOST_SERVICE: "true",
      },
      apiUrl,
      "/api/v1/health",
    ),
  );
  const spec = {
    name: "relay-latency",
    target: "host",
    dataset: { kind: "synthetic", generator: "spirals", samples: 120, seed: 1 },
    model: { hidden_layers: [8] },
    training: { epochs: EPOCHS, batch_size: 32 },
  };
  const started = await fetch(`${apiUrl}/api/v1/trainings`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(spec),
  });
  if (started.status !== 202) throw new Error(`POST /trainings answered ${started.status}: ${await started.text()}`);
  const id = ((await started.json()) as { data: { operation_id: string } }).data.operation_id;

  const latencies: number[] = [];
  const seen: number[] = [];
  let last = -1;
  let status = "running";
  let polls = 0;
  const deadline = Date.now() + 300_000;
  while ((status === "running" || status === "pending") && Date.now() < deadline) {
    const res = await fetch(`${apiUrl}/api/v1/operations/${id}/metrics?since_epoch=${last}`);
    const now = Date.now();
    polls++;
    const body = (await res.json()) as {
      data: { status: string; metrics: { epochs: { epoch: number; timestamp: string }[] } };
    };
    status = body.data.status;
    for (const e of body.data.metrics.epochs) {
      latencies.push(now - Date.parse(e.timestamp));
      seen.push(e.epoch);
      last = Math.max(last, e.epoch);
    }
    await Bun.sleep(POLL_MS);
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const p50 = quantile(sorted, 0.5);
  const p99 = quantile(sorted, 0.99);
  const complete = seen.length === EPOCHS && seen.every((e, i) => e === i);
  console.log(
    `relay latency, host worker emits an epoch → visible in GET /api/v1/operations/{id}/metrics (loopback, ${POLL_MS} ms polls, ${polls} polls)`,
  );
  console.log(
    `  epochs: ${seen.length}/${EPOCHS}, status ${status}, ${complete ? "none missing or duplicated" : "INCOMPLETE"}`,
  );
  console.log(
    `  p50 ${p50} ms   p99 ${p99} ms   max ${sorted.at(-1)} ms   (goal p99 ≤ ${GOAL_P99_MS} ms: ${p99 <= GOAL_P99_MS ? "PASS" : "MISS"})`,
  );
  if (!complete || status !== "completed") exitCode = 1;
} catch (err) {
  console.error(`relay latency bench failed: ${(err as Error).message}`);
  exitCode = 1;
} finally {
  for (const p of procs.reverse()) {
    p.proc.kill("SIGTERM");
    await p.proc.exited;
  }
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
