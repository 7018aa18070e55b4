/**
 * Issue 20's acceptance, re-tried from outside as an attacker would: `bun run bench/attack.ts`. It starts the real
 * server (`bun run src/server.ts`) on 127.0.0.1 with a token, a configured training host (a stand-in that takes every
 * session and then answers nothing, tests/fixtures/stand_in_host.ts) and a short heartbeat interval and host timeout, so
 * the watchdog acts within seconds; beside it a forged host, a listener that records every request it receives. Then:
 *   1. the issue's reproductions as written (forged host, deep bodies, deep metadata, 10,000 distinct metric names and
 *      the export, requests without the token) and its smaller items, each: status, milliseconds, /health right after;
 *   2. the server's RSS throughout (idle, sampled peak and the kernel's high-water mark, after);
 *   3. the forged host's request count, read after the watchdog had several periods to act;
 *   4. a host training whose host goes silent, with deep metadata sent at it and beside it, and one whose host lost its
 *      session (404): each must end `failed` (host_unreachable, host_lost_session) within TRAINWATCH_HOST_TIMEOUT plus
 *      one watchdog period (a heartbeat interval: a late host is asked at most once per interval);
 *   5. the heaviest requests repeated, each on a fresh server, beside an ordinary batch of the same size: what RSS
 *      keeps when an attacker insists, against what ordinary use keeps.
 * Prints a table of figures against goals (MET/MISSED). Exits 1 only when something is plainly broken: a 5xx, a
 * request that got no answer, or the server gone. About 15 s.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HOST_TRAINING, standInHost } from "../tests/fixtures/stand_in_host.ts";
import { startServerProcess } from "../tests/helpers.ts";
import { MAX_METRIC_NAMES } from "../src/schemas/epoch.ts";

const TOKEN = "attack-bench-token";
const HOST_TOKEN = "attack-bench-host-token";
/** TRAINWATCH_HEARTBEAT_INTERVAL: the watchdog asks a late host at most once per interval (its period). */
const HEARTBEAT_S = 0.5;
/** TRAINWATCH_HOST_TIMEOUT: silence after which a host training fails as host_unreachable. */
const HOST_TIMEOUT_S = 3;
const RSS_GOAL_MB = 50;
/** "Within milliseconds": every refusal answers in under this. */
const MS_GOAL = 100;
/** How often the heaviest requests are sent again for the repeated figures. */
const REPEATS = 30;

const auth = { authorization: `Bearer ${TOKEN}` };
const jsonType = { "content-type": "application/json" };
const fmt = (n: number, digits = 1) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** `[[[…]]]` nested `n` deep. */
const nested = (n: number) => "[".repeat(n) + "]".repeat(n);
/** `{"a":{"a":…1…}}` nested `n` deep. */
const nestedObject = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;

// ---- the processes -------------------------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), "trainwatch-attack-"));
const host = standInHost();
const forgedRequests: string[] = [];
const forged = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(r) {
    forgedRequests.push(`${r.method} ${new URL(r.url).pathname} (authorization: ${r.headers.get("authorization")})`);
    return Response.json({ success: true, data: { status: "running" } });
  },
});
const forgedUrl = `http://127.0.0.1:${forged.port}`;
/** A second configured host that takes a session and then has no such session (404): it restarted and lost it. */
const lost = standInHost({ lost: true });
const lostUrl = lost.url;
const server = await startServerProcess({
  TRAINWATCH_DB: join(dir, "attack.db"),
  TRAINWATCH_MODELS_DIR: join(dir, "models"),
  TRAINWATCH_LOGS_DIR: join(dir, "logs"),
  TRAINWATCH_TOKEN: TOKEN,
  TRAINING_HOST_URL: `${host.url},${lostUrl}`,
  TRAINWATCH_HOST_TOKEN: HOST_TOKEN,
  TRAINWATCH_HEARTBEAT_INTERVAL: String(HEARTBEAT_S),
  TRAINWATCH_HOST_TIMEOUT: String(HOST_TIMEOUT_S),
});
const api = `${server.url}/api/v1`;
const pid = server.proc.pid;

// ---- RSS -----------------------------------------------------------------------------------------------------------

/** VmRSS and VmHWM (the peak since the last reset) of a server process, in MB; null once it is gone. */
function memory(of = pid): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${of}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) / 1024;
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    return null;
  }
}

/** Resets VmHWM to the current RSS (writing 5 to clear_refs), so it holds the peak from here on; false where refused. */
function resetPeak(of = pid): boolean {
  try {
    writeFileSync(`/proc/${of}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

let sampledPeak = 0;
const sampler = setInterval(() => {
  const m = memory();
  if (m) sampledPeak = Math.max(sampledPeak, m.rss);
}, 5);

// ---- the attacks ---------------------------------------------------------------------------------------------------

interface Row {
  what: string;
  status: number | string;
  ms: number;
  /** Reply size in bytes. */
  bytes: number;
  /** The server's RSS peak while it answered (kernel high-water mark, else sampled), in MB. */
  peakMb: number | null;
  goal: string;
  met: boolean;
  healthMs: number;
  healthOk: boolean;
}
const rows: Row[] = [];
const broken: string[] = [];

/**
 * Sends one request and records it: status against `want` (a status or a predicate over it), time, reply size, and
 * whether /health answers 200 right after. `extra` may add a check on the reply (its text and headers).
 */
async function attempt(
  what: string,
  path: string,
  init: RequestInit,
  want: number | "4xx",
  extra?: (text: string, res: Response) => string | null,
): Promise<{ status: number; text: string; res: Response | null }> {
  const canReset = resetPeak();
  const t0 = performance.now();
  let status: number | string;
  let text = "";
  let res: Response | null = null;
  try {
    res = await fetch(`${server.url}${path}`, { ...init, signal: AbortSignal.timeout(30_000) });
    text = await res.text();
    status = res.status;
  } catch (err) {
    status = (err as Error).name;
  }
  const ms = performance.now() - t0;
  const peakMb = canReset ? (memory()?.hwm ?? null) : null;
  const h0 = performance.now();
  const healthOk = await fetch(`${api}/health`, { signal: AbortSignal.timeout(10_000) })
    .then((r) => r.status === 200)
    .catch(() => false);
  const healthMs = performance.now() - h0;
  const statusMet = typeof status === "number" && (want === "4xx" ? status >= 400 && status < 500 : status === want);
  const problem = statusMet && res ? (extra?.(text, res) ?? null) : null;
  rows.push({
    what,
    status,
    ms,
    bytes: text.length,
    peakMb,
    goal: `${want}, < ${MS_GOAL} ms${problem ? `; ${problem}` : ""}`,
    met: statusMet && ms < MS_GOAL && !problem && healthOk,
    healthMs,
    healthOk,
  });
  if (typeof status !== "number" || status >= 500) broken.push(`${what}: ${status} ${text.slice(0, 300)}`);
  if (!healthOk) broken.push(`${what}: /health did not answer 200 right after`);
  return { status: typeof status === "number" ? status : 0, text, res };
}

const withToken = (method: string, body?: string, headers: Record<string, string> = {}): RequestInit => ({
  method,
  body,
  headers: { ...auth, ...(body === undefined ? {} : jsonType), ...headers },
});
const noToken = (method: string, body?: string): RequestInit => ({
  method,
  body,
  headers: body === undefined ? {} : jsonType,
});

async function call<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${api}${path}`, withToken(method, body === undefined ? undefined : JSON.stringify(body)));
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

async function register(name: string): Promise<string> {
  const r = await call("POST", "/operations", { operation_type: "training", name });
  if (r.status !== 201) throw new Error(`POST /operations: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.data.operation_id as string;
}

/** What the training host configured here would have been sent; the forged one must have none of it. */
const forgedMetadata = {
  location: "host",
  host: forgedUrl,
  checkpoints: [{ epoch: 1, kind: "best", path: "x" }],
};

console.log(`Trainwatch attack bench — Bun ${Bun.version}, ${process.platform}/${process.arch}`);
console.log(
  `server ${server.url} (pid ${pid}), token set; configured host ${host.url}; forged host ${forgedUrl}; heartbeat ${HEARTBEAT_S} s, host timeout ${HOST_TIMEOUT_S} s\n`,
);

try {
  // Warm up on ordinary requests along the same routes, so "idle" is a server that has served, not a cold one.
  const warm = await register("warm-up");
  await call("POST", `/operations/${warm}/metrics`, { epochs: [{ epoch: 0, train_loss: 1, warm_metric: 1 }] });
  await fetch(`${api}/operations/${warm}/metrics.csv`, { headers: auth }).then((r) => r.arrayBuffer());
  await call("GET", "/operations?limit=5");
  Bun.gc(true);
  await Bun.sleep(300);
  const idle = memory()!.rss;
  const peakReset = resetPeak();
  sampledPeak = idle;

  // 4 (started first, so the timeout runs while the attacks do): two host trainings the normal way, one on each
  // configured host (the API picks the one with the fewer sessions).
  const hostStartedAt = Date.now();
  const deadHosts: { id: string; host: string }[] = [];
  for (const name of ["dead-host-1", "dead-host-2"]) {
    const started = await call("POST", "/trainings", { ...HOST_TRAINING, name });
    if (started.status !== 202)
      throw new Error(`POST /trainings (host): ${started.status} ${JSON.stringify(started.body)}`);
    deadHosts.push({ id: started.body.data.operation_id, host: started.body.data.metadata.host });
  }
  // Deep metadata goes at the one on the silent host: it stays running longest.
  const dead = (deadHosts.find((d) => d.host === host.url) ?? deadHosts[0]!).id;

  // 1. The forged host, as in the issue (no token; then with it), and where its keys could go next.
  const forgery = JSON.stringify({ operation_type: "training", metadata: forgedMetadata });
  await attempt("1 forged host: POST /operations, no token", "/api/v1/operations", noToken("POST", forgery), 401);
  await attempt("1 forged host: POST /operations, token", "/api/v1/operations", withToken("POST", forgery), 400);
  const external = await register("external");
  await attempt(
    "1 forged host: PATCH …/metadata {host}",
    `/api/v1/operations/${external}/metadata`,
    withToken("PATCH", JSON.stringify({ location: "host", host: forgedUrl })),
    400,
  );
  await attempt(
    "1 forged host: nested under a free key",
    "/api/v1/operations",
    withToken("POST", JSON.stringify({ operation_type: "training", metadata: { x: forgedMetadata } })),
    201,
  );
  // A plain heartbeat (`{}`) is a client's, taken for any run since issue 24; a host's report (its checkpoints, what it
  // started) is refused for an operation no configured host runs.
  await attempt(
    "1 host's heartbeat report to an external operation",
    `/api/v1/operations/${external}/heartbeat`,
    withToken("POST", JSON.stringify({ checkpoints: [{ epoch: 1, kind: "best", path: "x" }] })),
    "4xx",
  );
  await attempt(
    "1 checkpoint of an external operation",
    `/api/v1/operations/${external}/checkpoints/1`,
    withToken("GET"),
    "4xx",
  );
  await attempt("1 logs of an external operation", `/api/v1/operations/${external}/logs`, withToken("GET"), "4xx");

  // 2. Deep bodies.
  const target = await register("deep-target");
  const body60k = nested(30_000);
  await attempt(
    `2 POST …/metrics ${fmt(body60k.length / 1000, 0)} KB nested 30,000 deep`,
    `/api/v1/operations/${target}/metrics`,
    withToken("POST", body60k),
    400,
  );
  await attempt("2 same, no token", `/api/v1/operations/${target}/metrics`, noToken("POST", body60k), 401);
  await attempt(
    "2 POST …/metrics nested 200,000 deep",
    `/api/v1/operations/${target}/metrics`,
    withToken("POST", nested(200_000)),
    400,
  );
  await attempt(
    "2 POST /operations config 100,000 deep",
    "/api/v1/operations",
    withToken("POST", `{"operation_type":"training","config":${nestedObject(100_000)}}`),
    400,
  );
  const longName = "m".repeat(10_000);
  await attempt(
    "2 a 10 KB metric name (echo bounded)",
    `/api/v1/operations/${target}/metrics`,
    withToken("POST", JSON.stringify({ epoch: 1, [longName]: 1 })),
    400,
    (text) => (text.length > 2_000 ? `reply ${text.length} B echoes the name` : null),
  );

  // 3. Deep metadata: on a new operation, and on the running host training itself.
  await attempt(
    "3 POST /operations metadata 1,500 deep",
    "/api/v1/operations",
    withToken("POST", `{"operation_type":"training","metadata":{"deep":${nestedObject(1_500)}}}`),
    400,
  );
  await attempt(
    "3 PATCH host training's metadata 1,500 deep",
    `/api/v1/operations/${dead}/metadata`,
    withToken("PATCH", `{"deep":${nestedObject(1_500)}}`),
    400,
  );
  await attempt(
    "3 PATCH host training's metadata 60 deep",
    `/api/v1/operations/${dead}/metadata`,
    withToken("PATCH", `{"deep":${nestedObject(60)}}`),
    200,
  );

  // 4. Export amplification: the issue's 10,000 new names; then the most an attacker can store, and its export.
  const wide = await register("wide");
  const oneNameEach = Array.from({ length: 10_000 }, (_, e) => ({ epoch: e, [`m${e}`]: 1 }));
  await attempt(
    "4 10,000 epochs, one new metric name each",
    `/api/v1/operations/${wide}/metrics`,
    withToken("POST", JSON.stringify({ epochs: oneNameEach })),
    400,
  );
  await attempt("4 then GET metrics.csv", `/api/v1/operations/${wide}/metrics.csv`, withToken("GET"), 200, (text) =>
    text.length > 1_000 ? `${text.length} B exported from a refused batch` : null,
  );
  const full = await register("full");
  const atLimit = Array.from({ length: 10_000 }, (_, e) => ({ epoch: e, [`m${e % MAX_METRIC_NAMES}`]: e / 1000 }));
  await attempt(
    `4 10,000 epochs at the ${MAX_METRIC_NAMES}-name limit (stored)`,
    `/api/v1/operations/${full}/metrics`,
    withToken("POST", JSON.stringify({ epochs: atLimit })),
    200,
  );
  await attempt(
    `4 then name ${MAX_METRIC_NAMES + 1} in one more epoch`,
    `/api/v1/operations/${full}/metrics`,
    withToken("POST", JSON.stringify({ epochs: [{ epoch: 10_000, one_more: 1 }] })),
    400,
  );
  const csv = await attempt(
    `4 GET metrics.csv of those 10,000 epochs`,
    `/api/v1/operations/${full}/metrics.csv`,
    withToken("GET"),
    200,
  );
  const csvBytes = csv.text.length;
  // The export streams: it is a download, so its goal is RSS (below), not MS_GOAL; note its time without judging it.
  const csvRow = rows.at(-1)!;
  csvRow.goal = `200, streamed (${fmt(csvBytes / 1e6, 2)} MB)`;
  csvRow.met = csvRow.status === 200 && csvRow.healthOk;

  // 5. Auth first: nothing but the public routes answers anything but 401 without the token.
  await attempt("5 GET /operations?x=1, no token", "/api/v1/operations?x=1", noToken("GET"), 401);
  await attempt("5 bad path parameter, no token", "/api/v1/operations/%00%ff/checkpoints/abc", noToken("GET"), 401);
  await attempt("5 wrong method (PUT /operations), no token", "/api/v1/operations", noToken("PUT"), 401);
  await attempt("5 unknown path, no token", "/api/v1/no-such-route", noToken("GET"), 401);
  await attempt("5 OPTIONS /operations, no token", "/api/v1/operations", noToken("OPTIONS"), 401);
  await attempt(
    "5 POST /mcp, no token",
    "/mcp",
    noToken("POST", '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'),
    401,
  );
  await attempt("5 wrong token", "/api/v1/operations", { headers: { authorization: "Bearer wrong" } }, 401);

  // Smaller items.
  await attempt("s DELETE /operations/compare", "/api/v1/operations/compare", withToken("DELETE"), 405, (text) =>
    text.includes("not found") ? "reads as an operation not found" : null,
  );
  const openapi = (await (await fetch(`${server.url}/swagger/json`)).json()) as { paths: Record<string, object> };
  const documented = Object.keys(openapi.paths["/api/v1/operations/{id}"] ?? {})
    .map((m) => m.toUpperCase())
    .sort();
  await attempt("s OPTIONS /operations/{id}", `/api/v1/operations/${external}`, withToken("OPTIONS"), 405, (_, res) => {
    const allow = (res.headers.get("allow") ?? "")
      .split(",")
      .map((m) => m.trim())
      .filter((m) => m !== "OPTIONS" && m !== "HEAD")
      .sort();
    const want = documented.filter((m) => m !== "OPTIONS" && m !== "HEAD");
    return allow.join(",") === want.join(",") ? null : `Allow ${allow} ≠ OpenAPI ${want}`;
  });
  for (const epoch of ["0x9", "9e0", "+9", "%209"])
    await attempt(
      `s checkpoint epoch ${epoch}`,
      `/api/v1/operations/${external}/checkpoints/${epoch}`,
      withToken("GET"),
      400,
    );

  const after = memory();
  if (!after) broken.push("the server process is gone");

  // 3 and 4: wait for the dead hosts' trainings to fail; that also gives the watchdog several periods with the forged rows.
  const deadline = hostStartedAt + (HOST_TIMEOUT_S + HEARTBEAT_S) * 1000;
  type Ended = {
    status: string;
    failure_code: string | null;
    error_message: string | null;
    completed_at: string | null;
  };
  const ended = new Map<string, Ended>();
  while (Date.now() < deadline + 5_000 && ended.size < deadHosts.length) {
    for (const d of deadHosts) {
      if (ended.has(d.id)) continue;
      const op = (await call("GET", `/operations/${d.id}`)).body.data as Ended;
      if (op.status !== "running") ended.set(d.id, op);
    }
    await Bun.sleep(50);
  }
  // At least two more watchdog periods before the forged host's count is read.
  await Bun.sleep(2 * HEARTBEAT_S * 1000 + 200);
  const end = memory();
  if (!end) broken.push("the server process is gone");
  const peaks = rows.map((r) => r.peakMb).filter((m): m is number => m !== null);
  const hwm = peakReset && end ? Math.max(end.hwm, ...peaks) : null;

  // ---- the report --------------------------------------------------------------------------------------------------
  const w = Math.max(...rows.map((r) => r.what.length));
  console.log(`${"reproduction".padEnd(w)}  status      ms    reply B  RSS peak  /health ms  goal  result`);
  for (const r of rows)
    console.log(
      `${r.what.padEnd(w)}  ${String(r.status).padStart(6)}  ${fmt(r.ms).padStart(6)}  ${String(r.bytes).padStart(9)}  ${(r.peakMb === null ? "—" : fmt(r.peakMb)).padStart(8)}  ${(r.healthOk ? fmt(r.healthMs) : "DOWN").padStart(10)}  ${r.goal}  ${r.met ? "MET" : "MISSED"}`,
    );
  const peak = Math.max(sampledPeak, hwm ?? 0);
  const rssMet = peak - idle <= RSS_GOAL_MB && (end?.rss ?? Infinity) - idle <= RSS_GOAL_MB;
  console.log(
    `\nRSS: idle ${fmt(idle)} MB, peak ${fmt(peak)} MB (sampled every 5 ms: ${fmt(sampledPeak)}; kernel high-water mark, reset before each request: ${hwm === null ? "unavailable" : fmt(hwm)}), after the attacks ${after ? fmt(after.rss) : "—"} MB, at the end ${end ? fmt(end.rss) : "—"} MB; goal within ${RSS_GOAL_MB} MB of idle (+${fmt(peak - idle)} MB at peak)  ${rssMet ? "MET" : "MISSED"}`,
  );
  console.log(
    `Forged host: ${forgedRequests.length} request(s) received${forgedRequests.length ? ` (${forgedRequests.slice(0, 3).join("; ")})` : ""}; goal 0  ${forgedRequests.length === 0 ? "MET" : "MISSED"}`,
  );
  let watchdogMissed = 0;
  for (const d of deadHosts) {
    const op = ended.get(d.id);
    const code = d.host === lostUrl ? "host_lost_session" : "host_unreachable";
    const afterMs = op?.completed_at ? Date.parse(op.completed_at) - hostStartedAt : null;
    const met =
      op?.status === "failed" && op.failure_code === code && afterMs !== null && afterMs <= deadline - hostStartedAt;
    if (!met) watchdogMissed++;
    console.log(
      `Watchdog: ${d.id === dead ? "the training with deep metadata sent at it" : "the other training"}, on ${d.host} (${d.host === lostUrl ? "404 for its session" : "silent"}), ended ${op?.status ?? "running"} (${op?.failure_code ?? "no failure_code"})${afterMs === null ? "" : ` ${fmt(afterMs / 1000, 2)} s after the start`}; goal failed (${code}) within ${HOST_TIMEOUT_S} s + one ${HEARTBEAT_S} s period  ${met ? "MET" : "MISSED"}`,
    );
    if (op?.error_message) console.log(`  error_message: ${op.error_message}`);
  }
  // Repeated: what a hostile request leaves in RSS when it is sent again and again, beside an ordinary request of the
  // same size sent as often; each on a fresh server, since the heap a first run grows serves the next.
  const epochsAtLimit = JSON.stringify({ epochs: atLimit });
  const repeated = [
    {
      what: "the 10,000-name batch (400)",
      path: (id: string) => `/operations/${id}/metrics`,
      body: JSON.stringify({ epochs: oneNameEach }),
      fill: false,
    },
    {
      what: "metrics.csv of 10,000 epochs at the limit (200)",
      path: (id: string) => `/operations/${id}/metrics.csv`,
      body: undefined,
      fill: true,
    },
    {
      what: "ordinary 10,000-epoch batch (200), for comparison",
      path: (id: string) => `/operations/${id}/metrics`,
      body: epochsAtLimit,
      fill: false,
    },
  ];
  console.log(`\nRepeated ${REPEATS} times, each on a fresh server: RSS above its idle level (MB)`);
  const growth: number[] = [];
  for (const r of repeated) {
    const fresh = await startServerProcess({
      TRAINWATCH_DB: join(dir, `repeat-${growth.length}.db`),
      TRAINWATCH_TOKEN: TOKEN,
    });
    try {
      const res = await fetch(`${fresh.url}/api/v1/operations`, withToken("POST", '{"operation_type":"training"}'));
      const id = ((await res.json()) as { data: { operation_id: string } }).data.operation_id;
      if (r.fill)
        await fetch(
          `${fresh.url}/api/v1${r.path(id).replace("metrics.csv", "metrics")}`,
          withToken("POST", epochsAtLimit),
        ).then((x) => x.text());
      Bun.gc(true);
      await Bun.sleep(300);
      const base = memory(fresh.proc.pid)!.rss;
      resetPeak(fresh.proc.pid);
      const t0 = performance.now();
      for (let i = 0; i < REPEATS; i++) {
        const x = await fetch(`${fresh.url}/api/v1${r.path(id)}`, withToken(r.body ? "POST" : "GET", r.body));
        await x.arrayBuffer();
        if (x.status >= 500) broken.push(`repeated ${r.what}: ${x.status}`);
      }
      const ms = (performance.now() - t0) / REPEATS;
      const m = memory(fresh.proc.pid)!;
      growth.push(m.hwm - base);
      await Bun.sleep(1_000);
      console.log(
        `  ${r.what.padEnd(50)} ${fmt(ms).padStart(6)} ms each; peak +${fmt(m.hwm - base)}, right after +${fmt(m.rss - base)}, 1 s later +${fmt(memory(fresh.proc.pid)!.rss - base)} (idle ${fmt(base)})`,
      );
    } finally {
      await fresh.stop();
    }
  }
  const repeatedMet = growth[0]! <= growth[2]! && growth[1]! <= growth[2]!;
  console.log(
    `  goal: a hostile request repeated leaves no more than an ordinary one of its size  ${repeatedMet ? "MET" : "MISSED"}`,
  );

  const missed =
    rows.filter((r) => !r.met).length +
    (rssMet ? 0 : 1) +
    (forgedRequests.length ? 1 : 0) +
    watchdogMissed +
    (repeatedMet ? 0 : 1);
  console.log(`\n${missed === 0 ? "Every goal met." : `${missed} goal(s) missed.`}`);
} catch (err) {
  broken.push(`the bench itself failed: ${(err as Error).stack ?? err}`);
} finally {
  clearInterval(sampler);
  if (broken.length) {
    console.log("\nBROKEN:");
    for (const b of broken) console.log(`  ${b}`);
    console.log(`\nserver output (last 3,000 characters):\n${server.output().slice(-3_000)}`);
  }
  await server.stop();
  forged.stop(true);
  host.stop();
  lost.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(broken.length ? 1 : 0);
