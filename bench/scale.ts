/**
 * Issue 26's scale bench: `bun run bench/scale.ts [--seconds=60] [--trainings=1000] [--rate=10] [--readers=200]
 * [--pollers=100] [--only=pg|sqlite] [--quick]`.
 * It starts its own PostgreSQL (.ci/postgres.sh in a temp dir, the server's default durability: fsync on; `--pg=URL`
 * uses a given server instead, whose CPU is then not shown), two API replicas on it (`bun run src/server.ts`, separate
 * processes on loopback), and, as the baseline, one server process on a SQLite file; each gets the same load:
 *   - `--trainings` simulated step trainings, each registered as a client run, each posting one batch of `--rate` steps
 *     a second (POST /operations/{id}/steps, one POST in flight per training, a loss on every step and an evaluation
 *     every 50), through a round-robin client, for `--seconds`;
 *   - `--readers` stream readers, each following `--follow` operations' SSE streams (on a replica of its own while the
 *     writes go round-robin), checking that the step writes' versions and the epoch numbers arrive with no gap and no
 *     duplicate, and that each stream reached the last acknowledged write;
 *   - `--pollers` pollers, each once a second: GET a run's status, then GET its steps since the last one it saw.
 * Then the writes alone at `--cpu-rates` writes a second (200 and 1,000; `--cpu-seconds` each) for the CPU per write,
 * replicas and PostgreSQL apart (/proc/PID/stat of the server processes and of the postmaster and its children). After
 * the run every stored step of every run is counted against the acknowledged ones.
 * The load comes from `--clients` child processes (bench/scale_client.ts); their CPU, their busiest thread and how late
 * they sent what was due are printed, so a generator that could not offer the load says so ("offered ÷ meant").
 * Prints one table with the goals of issue 26 beside the figures ("met"/"missed"); exits non-zero only when the bench
 * itself breaks, never for a missed goal. `--quick` is for development: 5 s, 100 trainings, 20 readers, 10 pollers.
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServerProcess, type ServerProcess } from "../tests/helpers.ts";
import { args, int } from "./args.ts";
import { quantile } from "./lag.ts";
import { busyLine, cpuOf, machineCpu, postgresCpu, probe, startPostgres, type Pg, type Probed } from "./servers.ts";
import type { FromClient, PhaseResult, ReaderResult, ToClient } from "./scale_client.ts";

const QUICK = args.has("quick");
const SECONDS = int("seconds", QUICK ? 5 : 60);
const TRAININGS = int("trainings", QUICK ? 100 : 1000);
const RATE = int("rate", 10);
const READERS = int("readers", QUICK ? 20 : 200);
const FOLLOW = int("follow", 1);
const POLLERS = int("pollers", QUICK ? 10 : 100);
const CLIENTS = int("clients", 2);
const WARMUP = int("warmup", 3);
const CPU_SECONDS = int("cpu-seconds", QUICK ? 3 : 20);
const CPU_RATES = (args.get("cpu-rates") ?? (QUICK ? "50,100" : "200,1000")).split(",").map(Number);
const STEPS_PER_EPOCH = int("steps-per-epoch", 100);
const ONLY = args.get("only");
if (ONLY !== undefined && ONLY !== "pg" && ONLY !== "sqlite") {
  console.error(`--only=${ONLY}: expected --only=pg or --only=sqlite`);
  process.exit(2);
}

/** Issue 26's goals. */
const GOAL = { storedShare: 0.99, p99Ms: 100, cpuPerWriteMs: 0.5 };

const ROOT = join(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "trainwatch-scale-bench-"));
const headers = { "content-type": "application/json" };
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

// The load-generator processes -------------------------------------------------------------------------------------

/** A bench/scale_client.ts child: one request at a time, answered by its next message. */
class Client {
  private waiting: ((m: FromClient) => void) | null = null;
  readonly proc: ReturnType<typeof Bun.spawn>;
  constructor() {
    this.proc = Bun.spawn([process.execPath, "run", join(import.meta.dir, "scale_client.ts")], {
      cwd: ROOT,
      stdout: "inherit",
      stderr: "inherit",
      ipc: (m: FromClient) => {
        const w = this.waiting;
        this.waiting = null;
        w?.(m);
      },
    });
  }
  ask<T extends FromClient>(m: ToClient): Promise<T> {
    if (this.waiting) throw new Error("scale client: a request is still waiting");
    return new Promise<T>((resolve, reject) => {
      this.waiting = resolve as (m: FromClient) => void;
      this.proc.exited.then((code) => reject(new Error(`scale client ${this.proc.pid} exited with ${code}`)));
      this.proc.send(m);
    });
  }
}

// CPU ----------------------------------------------------------------------------------------------------------------

/** utime + stime of every thread of `pid`, by thread id, with the thread's name. */
function threadsOf(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        const name = f.slice(f.indexOf("(") + 1, f.lastIndexOf(")"));
        const v = f.slice(f.lastIndexOf(") ") + 2).split(" ");
        out.set(`${pid}/${tid} ${name}`, (Number(v[11]) + Number(v[12])) / 100);
      } catch {
        // the thread ended
      }
    }
  } catch {
    // no /proc
  }
  return out;
}

interface CpuMark {
  at: number;
  servers: number;
  postgres: number | null;
  clients: number;
  main: number;
  machine: number;
  threads: Map<string, number>;
}

function mark(servers: ServerProcess[], postmaster: number | null, clients: Client[]): CpuMark {
  const threads = new Map<string, number>();
  for (const c of clients) for (const [k, v] of threadsOf(c.proc.pid)) threads.set(k, v);
  const u = process.cpuUsage();
  return {
    at: performance.now(),
    servers: sum(servers.map((s) => cpuOf(s.proc.pid))),
    postgres: postgresCpu(postmaster),
    clients: sum(clients.map((c) => cpuOf(c.proc.pid))),
    main: (u.user + u.system) / 1e6,
    machine: machineCpu(),
    threads,
  };
}

/** CPU seconds between two marks; the generator's busiest thread in cores. */
interface Cpu {
  seconds: number;
  servers: number;
  postgres: number | null;
  generator: number;
  machine: number;
  busiestThread: { name: string; cores: number };
}

function between(a: CpuMark, b: CpuMark): Cpu {
  const seconds = (b.at - a.at) / 1000;
  let busiest = { name: "-", cores: 0 };
  for (const [k, v] of b.threads) {
    const cores = (v - (a.threads.get(k) ?? 0)) / seconds;
    if (cores > busiest.cores) busiest = { name: k, cores };
  }
  return {
    seconds,
    servers: b.servers - a.servers,
    postgres: a.postgres === null || b.postgres === null ? null : b.postgres - a.postgres,
    generator: b.clients - a.clients + (b.main - a.main),
    machine: b.machine - a.machine,
    busiestThread: busiest,
  };
}

// A run per store ----------------------------------------------------------------------------------------------------

interface Phase {
  name: string;
  /** Writes a second the phase meant. */
  rate: number;
  r: Omit<PhaseResult, "type">;
  cpu: Cpu;
  db: Probed | null;
}

interface StoredCheck {
  /** By phase: steps sent, and of those stored. */
  byPhase: Map<string, { sent: number; stored: number }>;
  acked: number;
  ackedStored: number;
  /** Stored steps no acknowledged batch holds (a timed-out POST that was stored after all). */
  unacked: number;
  firstMissing: string | null;
}

interface Run {
  name: "PostgreSQL" | "SQLite";
  replicas: number;
  /** Before the load, with every run registered and nothing sent. */
  idle: Cpu;
  load: Phase;
  cpuPhases: Phase[];
  readers: ReaderResult[];
  readersNotOpen: string[];
  stored: StoredCheck;
}

function merge(name: string, parts: PhaseResult[]): Omit<PhaseResult, "type"> {
  const tally = (pick: (p: PhaseResult) => [string, number][]) => {
    const out = new Map<string, number>();
    for (const p of parts) for (const [k, n] of pick(p)) out.set(k, (out.get(k) ?? 0) + n);
    return [...out];
  };
  return {
    name,
    post: sorted(parts.flatMap((p) => p.post)),
    getStatus: sorted(parts.flatMap((p) => p.getStatus)),
    getSteps: sorted(parts.flatMap((p) => p.getSteps)),
    errors: tally((p) => p.errors),
    retried: tally((p) => p.retried),
    meant: sum(parts.map((p) => p.meant)),
    sent: sum(parts.map((p) => p.sent)),
    acked: sum(parts.map((p) => p.acked)),
    skipped: sum(parts.map((p) => p.skipped)),
    lateness: sorted(parts.flatMap((p) => p.lateness)),
    lagP99: Math.max(0, ...parts.map((p) => p.lagP99)),
    polls: {
      meant: sum(parts.map((p) => p.polls.meant)),
      done: sum(parts.map((p) => p.polls.done)),
    },
  };
}

async function register(base: string, i: number): Promise<string> {
  const res = await fetch(`${base}/api/v1/operations`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      operation_type: "training",
      name: `scale-${i}`,
      metadata: { client: "bench/scale.ts" },
    }),
  });
  if (res.status !== 201) throw new Error(`POST /operations: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { data: { operation_id: string } }).data.operation_id;
}

/** Runs `f` over `xs` with at most `n` at once. */
async function pool<T, R>(xs: T[], n: number, f: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(xs.length);
  let at = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, xs.length) }, async () => {
      while (at < xs.length) {
        const i = at++;
        out[i] = await f(xs[i]!, i);
      }
    }),
  );
  return out;
}

/** Every stored step of every run, read back through the API, against the batches the generator sent. */
async function checkStored(urls: string[], batches: Record<string, [number, string, boolean][]>): Promise<StoredCheck> {
  const check: StoredCheck = { byPhase: new Map(), acked: 0, ackedStored: 0, unacked: 0, firstMissing: null };
  await pool(Object.entries(batches), 8, async ([op, sent], i) => {
    const res = await fetch(`${urls[i % urls.length]}/api/v1/operations/${op}/steps?fields=train_loss`);
    if (!res.ok) throw new Error(`GET steps of ${op}: ${res.status} ${await res.text()}`);
    const stored = new Set(
      ((await res.json()) as { data: { steps: { step: number }[] } }).data.steps.map((s) => s.step),
    );
    const ackedSteps = new Set<number>();
    for (const [first, phase, acked] of sent) {
      const p = check.byPhase.get(phase) ?? { sent: 0, stored: 0 };
      check.byPhase.set(phase, p);
      for (let s = first; s < first + RATE; s++) {
        p.sent++;
        if (stored.has(s)) p.stored++;
        if (!acked) continue;
        ackedSteps.add(s);
        check.acked++;
        if (stored.has(s)) check.ackedStored++;
        else check.firstMissing ??= `${op} step ${s}`;
      }
    }
    for (const s of stored) if (!ackedSteps.has(s)) check.unacked++;
  });
  return check;
}

async function measure(name: Run["name"], env: (i: number) => Record<string, string>, pg: Pg | null): Promise<Run> {
  const servers: ServerProcess[] = [];
  const clients: Client[] = [];
  try {
    for (let i = 0; i < (name === "PostgreSQL" ? 2 : 1); i++) servers.push(await startServerProcess(env(i)));
    const urls = servers.map((s) => s.url);
    const t = Date.now();
    const ids = await pool(
      Array.from({ length: TRAININGS }, (_, i) => i),
      16,
      (i) => register(urls[i % urls.length]!, i),
    );
    console.log(
      `${name}: ${servers.length} server process(es); ${fmt(TRAININGS)} runs registered in ${fmt((Date.now() - t) / 1000, 1)} s`,
    );
    for (let i = 0; i < CLIENTS; i++) clients.push(new Client());
    // Trainings, readers and pollers dealt round the clients; reader r follows operations r, r + R, … (spread).
    await Promise.all(
      clients.map((c, k) =>
        c.ask({
          type: "init",
          replicas: urls,
          rate: RATE,
          stepsPerEpoch: STEPS_PER_EPOCH,
          trainings: ids.map((id, index) => ({ id, index })).filter((x) => x.index % CLIENTS === k),
          readers: Array.from({ length: READERS }, (_, index) => ({
            index,
            ops: Array.from({ length: FOLLOW }, (_, j) => ids[(index + j * READERS) % ids.length]!),
          })).filter((x) => x.index % CLIENTS === k),
          pollers: Array.from({ length: POLLERS }, (_, index) => ({
            index,
            op: ids[(index * 7 + 3) % ids.length]!,
          })).filter((x) => x.index % CLIENTS === k),
        }),
      ),
    );
    const postmaster = pg?.postmaster ?? null;
    const phase = async (p: { name: string; seconds: number; rate: number; pollers: boolean }): Promise<Phase> => {
      const active = Math.min(TRAININGS, p.rate);
      const startAt = Date.now() + 500;
      const endAt = startAt + p.seconds * 1000;
      const probed = pg ? await probe(pg.url) : null;
      const replies = clients.map((c) =>
        c.ask<PhaseResult>({
          type: "phase",
          name: p.name,
          startAt,
          endAt,
          active,
          periodMs: (1000 * active) / p.rate,
          pollers: p.pollers,
        }),
      );
      await Bun.sleep(Math.max(0, startAt - Date.now()));
      const m0 = mark(servers, postmaster, clients);
      const results = await Promise.all(replies);
      const cpu = between(m0, mark(servers, postmaster, clients));
      return { name: p.name, rate: p.rate, r: merge(p.name, results), cpu, db: probed ? await probed() : null };
    };
    // What the servers and the database burn with nothing to do (timers, leases, the watchdog), for scale.
    const i0 = mark(servers, postmaster, clients);
    await Bun.sleep(QUICK ? 1000 : 3000);
    const idle = between(i0, mark(servers, postmaster, clients));
    await phase({ name: "warm-up", seconds: WARMUP, rate: TRAININGS, pollers: false });
    const opened = await Promise.all(
      clients.map((c) => c.ask<Extract<FromClient, { type: "readers-open" }>>({ type: "open-readers" })),
    );
    const load = await phase({ name: "load", seconds: SECONDS, rate: TRAININGS, pollers: true });
    const ackedWrites = async () => {
      const sent = await Promise.all(
        clients.map((c) => c.ask<Extract<FromClient, { type: "sent" }>>({ type: "sent" })),
      );
      return Object.assign({}, ...sent.map((s) => s.batches)) as Record<string, [number, string, boolean][]>;
    };
    const expect = Object.fromEntries(
      Object.entries(await ackedWrites()).map(([op, b]) => [op, b.filter(([, , ok]) => ok).length]),
    );
    const readers = (
      await Promise.all(
        clients.map((c) =>
          c.ask<Extract<FromClient, { type: "readers" }>>({ type: "close-readers", expect, waitMs: 10_000 }),
        ),
      )
    ).flatMap((x) => x.results);
    const cpuPhases: Phase[] = [];
    for (const rate of CPU_RATES)
      cpuPhases.push(await phase({ name: `writes ${rate}/s`, seconds: CPU_SECONDS, rate, pollers: false }));
    const stored = await checkStored(urls, await ackedWrites());
    return {
      name,
      replicas: servers.length,
      idle,
      load,
      cpuPhases,
      readers,
      readersNotOpen: opened.flatMap((o) => o.failed),
      stored,
    };
  } catch (err) {
    for (const s of servers)
      console.error(
        `--- ${s.url} (exit ${s.proc.exitCode ?? s.proc.signalCode ?? "alive"}):\n${s.output().slice(-3000)}`,
      );
    throw err;
  } finally {
    for (const c of clients) c.proc.kill();
    for (const s of servers) await s.stop();
  }
}

// Output -----------------------------------------------------------------------------------------------------------

const judged = (value: string, ok: boolean | null) => (ok === null ? value : `${value} ${ok ? "met" : "missed"}`);
const list = (counts: [string, number][]) => counts.map(([k, n]) => `${k} ×${fmt(n)}`).join(", ");
const ms = (v: number) => `${fmt(v, 1)} ms`;
const perWrite = (seconds: number | null, writes: number) =>
  seconds === null ? null : (seconds * 1000) / Math.max(1, writes);

/** The figures of one run, as cells; `value` keeps the number behind a cell for the ratio column. */
function cells(run: Run): Map<string, { text: string; value: number | null }> {
  const out = new Map<string, { text: string; value: number | null }>();
  const put = (k: string, text: string, value: number | null = null) => out.set(k, { text, value });
  const L = run.load.r;
  const secs = run.load.cpu.seconds;
  const genLate = L.lateness.filter((x) => x > 100).length;
  put(
    "offered",
    judged(
      `${fmt(L.sent / Math.max(1, L.meant), 3)} (${fmt(L.sent)} of ${fmt(L.meant)} batches; not sent: ${fmt(L.skipped)} due while their training still waited on the server's last reply${genLate ? `; ${fmt(genLate)} sent > 100 ms late by the generator itself` : ""})`,
      L.sent >= GOAL.storedShare * L.meant,
    ),
    L.sent / Math.max(1, L.meant),
  );
  const ph = run.stored.byPhase.get("load") ?? { sent: 0, stored: 0 };
  const share = ph.stored / Math.max(1, ph.sent);
  put(
    "stored/offered",
    judged(`${fmt(share, 4)} (${fmt(ph.stored)} of ${fmt(ph.sent)} steps)`, share >= GOAL.storedShare),
    share,
  );
  put(
    "stored/s",
    `${fmt(L.acked / secs)} writes/s (${fmt((L.acked * RATE) / secs)} steps/s) of ${fmt(TRAININGS)} meant`,
    L.acked / secs,
  );
  const errs = sum(L.errors.map(([, n]) => n));
  put(
    "errors",
    judged(
      `${errs === 0 ? "0" : `${fmt(errs)} (${list(L.errors)})`}${L.retried.length ? `; sent again after a failed connection: ${list(L.retried)}` : ""}`,
      errs === 0,
    ),
    errs,
  );
  const S = run.stored;
  put(
    "acked stored",
    judged(
      `${fmt(S.ackedStored)} of ${fmt(S.acked)}${S.unacked ? `; ${fmt(S.unacked)} stored unacknowledged` : ""}`,
      S.ackedStored === S.acked,
    ),
  );
  const p99 = (xs: number[]) => quantile(xs, 0.99);
  put(
    "POST",
    judged(`p50 ${ms(quantile(L.post, 0.5))}, p99 ${ms(p99(L.post))}`, p99(L.post) <= GOAL.p99Ms),
    p99(L.post),
  );
  const gets = sorted([...L.getStatus, ...L.getSteps]);
  put(
    "GET",
    judged(
      `p99 ${ms(p99(gets))} (status ${ms(p99(L.getStatus))}, steps ${ms(p99(L.getSteps))}; ${fmt(gets.length)} GETs)`,
      p99(gets) <= GOAL.p99Ms,
    ),
    p99(gets),
  );
  const clean = run.readers.filter((r) => r.gaps === 0 && r.duplicates === 0);
  const complete = run.readers.filter((r) => r.complete);
  const reconnects = sum(run.readers.map((r) => r.reconnects));
  const events = sum(run.readers.map((r) => r.stepsEvents + r.epochEvents));
  put(
    "readers",
    judged(
      `${clean.length} of ${run.readers.length} (${fmt(events)} events; gaps ${sum(run.readers.map((r) => r.gaps))}, duplicates ${sum(run.readers.map((r) => r.duplicates))}, reconnects ${reconnects}; reached the last write ${complete.length}${run.readersNotOpen.length ? `; ${run.readersNotOpen.length} never opened` : ""})`,
      clean.length === run.readers.length && complete.length === run.readers.length && run.readersNotOpen.length === 0,
    ),
  );
  const cpuCell = (p: Phase, goal: boolean) => {
    const writes = p.r.acked;
    const srv = perWrite(p.cpu.servers, writes)!;
    const db = perWrite(p.cpu.postgres, writes);
    const total = srv + (db ?? 0);
    const parts =
      db === null
        ? `server ${fmt(srv, 2)} ms`
        : `replicas ${fmt(srv, 2)} + PostgreSQL ${fmt(db, 2)} = ${fmt(total, 2)} ms`;
    return {
      text: judged(
        `${parts} (${fmt(writes / p.cpu.seconds)} writes/s stored)`,
        goal ? total <= GOAL.cpuPerWriteMs : null,
      ),
      value: total,
    };
  };
  out.set("cpu load", cpuCell(run.load, false));
  run.cpuPhases.forEach((p, i) => out.set(`cpu ${i}`, cpuCell(p, i === run.cpuPhases.length - 1)));
  const g = run.load.cpu;
  const lateP99 = quantile(L.lateness, 0.99);
  put(
    "generator",
    judged(
      `${fmt(g.generator / secs, 2)} cores in ${CLIENTS + 1} processes, busiest thread ${fmt(g.busiestThread.cores, 2)} (${g.busiestThread.name.split(" ")[1]}); sends p99 ${ms(lateP99)} late, ${genLate} > 100 ms`,
      g.busiestThread.cores < 0.8 && genLate <= 0.01 * L.sent,
    ),
  );
  put(
    "machine",
    `${fmt(g.machine / secs, 2)} of ${navigator.hardwareConcurrency} cores busy: servers ${fmt(g.servers / secs, 2)}, PostgreSQL ${g.postgres === null ? "—" : fmt(g.postgres / secs, 2)}, generator ${fmt(g.generator / secs, 2)}, other work ${fmt((g.machine - g.servers - (g.postgres ?? 0) - g.generator) / secs, 2)}`,
  );
  return out;
}

function table(runs: Run[]): void {
  const rows: [string, string][] = [
    ["offered", `offered ÷ meant (batches sent on time ÷ due)`],
    ["stored/offered", "stored ÷ offered (steps of the load)"],
    ["stored/s", "writes stored a second during the load"],
    ["errors", "errors"],
    ["acked stored", "acknowledged steps stored (whole run)"],
    ["POST", "POST …/steps latency"],
    ["GET", "GET latency (pollers)"],
    ["readers", "stream readers gap-free, duplicate-free"],
    ["cpu load", "CPU per write during the load (readers, pollers in)"],
    ...CPU_RATES.map((r, i): [string, string] => [`cpu ${i}`, `CPU per write, writes alone at ${fmt(r)}/s`]),
    ["generator", "load generator (during the load)"],
    ["machine", "machine during the load"],
  ];
  const goals: Record<string, string> = {
    offered: "≥ 0.99",
    "stored/offered": "≥ 0.99",
    errors: "0",
    "acked stored": "all",
    POST: "p99 ≤ 100 ms",
    GET: "p99 ≤ 100 ms",
    readers: "all",
    [`cpu ${CPU_RATES.length - 1}`]: "replicas + PostgreSQL ≤ 0.5 ms",
    generator: "not the bottleneck",
  };
  const ratioRows = new Set(["stored/s", "POST", "GET", "cpu load", ...CPU_RATES.map((_, i) => `cpu ${i}`)]);
  const all = runs.map(cells);
  const pgAt = runs.findIndex((r) => r.name === "PostgreSQL");
  const sqAt = runs.findIndex((r) => r.name === "SQLite");
  for (const [key, label] of rows) {
    console.log(`\n${label}${goals[key] ? ` — goal ${goals[key]}` : ""}`);
    runs.forEach((run, i) => {
      const c = all[i]!.get(key)!;
      console.log(
        `  ${(run.name === "PostgreSQL" ? `PostgreSQL, ${run.replicas} replicas` : "SQLite, 1 process").padEnd(26)} ${c.text}`,
      );
    });
    if (pgAt >= 0 && sqAt >= 0 && ratioRows.has(key)) {
      const a = all[pgAt]!.get(key)!.value;
      const b = all[sqAt]!.get(key)!.value;
      if (a !== null && b !== null && b > 0) console.log(`  ${"PostgreSQL ÷ SQLite".padEnd(26)} ${fmt(a / b, 2)}×`);
    }
  }
}

function details(run: Run): void {
  const i = run.idle;
  console.log(
    `\n${run.name}: idle before the load (${fmt(i.seconds, 1)} s), CPU cores: servers ${fmt(i.servers / i.seconds, 3)}, PostgreSQL ${i.postgres === null ? "—" : fmt(i.postgres / i.seconds, 3)}, machine ${fmt(i.machine / i.seconds, 2)}`,
  );
  for (const p of [run.load, ...run.cpuPhases]) {
    const r = p.r;
    const c = p.cpu;
    console.log(
      `  ${p.name.padEnd(16)} ${fmt(c.seconds, 1)} s: meant ${fmt(r.meant)} batches, sent ${fmt(r.sent)}, acknowledged ${fmt(r.acked)} (${fmt(r.acked / c.seconds)}/s), skipped ${fmt(r.skipped)}; POST p50 ${ms(quantile(r.post, 0.5))} p99 ${ms(quantile(r.post, 0.99))}; CPU cores: servers ${fmt(c.servers / c.seconds, 2)}, PostgreSQL ${c.postgres === null ? "—" : fmt(c.postgres / c.seconds, 2)}, generator ${fmt(c.generator / c.seconds, 2)}, machine ${fmt(c.machine / c.seconds, 2)}; generator lag p99 ${ms(r.lagP99)}`,
    );
    if (p.db) {
      console.log(
        `  ${"".padEnd(16)} WAL ${fmt(p.db.walBytes / Math.max(1, r.acked) / 1024, 2)} KB a write; NOTIFY ${fmt(p.db.notifications)} (${fmt(p.db.notifyBytes / Math.max(1, p.db.notifications))} B each); ${busyLine(p.db)}`,
      );
    }
  }
  if (run.load.db)
    console.log(
      `  connections at the end of the load: ${Object.entries(run.load.db.connections)
        .map(([app, n]) => `${app} ×${n}`)
        .join(", ")}`,
    );
  const problems = run.readers.filter((r) => r.firstProblem).slice(0, 5);
  for (const r of problems) console.log(`  reader ${r.index}: ${r.firstProblem}`);
  if (run.stored.firstMissing) console.log(`  first acknowledged step not stored: ${run.stored.firstMissing}`);
  if (run.load.r.polls.done < run.load.r.polls.meant)
    console.log(`  pollers: ${fmt(run.load.r.polls.done)} of ${fmt(run.load.r.polls.meant)} polls done`);
}

async function main() {
  console.log(
    `Trainwatch scale bench — Bun ${Bun.version}, ${process.platform}/${process.arch}, ${navigator.hardwareConcurrency} cores${QUICK ? " (--quick)" : ""}`,
  );
  console.log(
    `${fmt(TRAININGS)} step trainings × 1 batch of ${RATE} steps a second for ${SECONDS} s (warm-up ${WARMUP} s), ${READERS} stream readers × ${FOLLOW} operation(s), ${POLLERS} pollers; then writes alone at ${CPU_RATES.map((r) => `${fmt(r)}/s`).join(" and ")} for ${CPU_SECONDS} s each; ${CLIENTS} generator processes`,
  );
  const runs: Run[] = [];
  const dirs = (name: string, i: number) => ({
    TRAINWATCH_MODELS_DIR: join(dir, `${name}-${i}`, "models"),
    TRAINWATCH_LOGS_DIR: join(dir, `${name}-${i}`, "logs"),
    TRAINWATCH_DATA_DIR: join(dir, `${name}-${i}`, "datasets"),
  });
  try {
    if (ONLY !== "sqlite") {
      const pg = await startPostgres(args.get("pg"));
      console.log(pg.describe);
      try {
        runs.push(
          await measure(
            "PostgreSQL",
            (i) => ({ TRAINWATCH_DB: pg.url, TRAINWATCH_REPLICA_ID: `scale-${i}`, ...dirs("pg", i) }),
            pg,
          ),
        );
      } finally {
        await pg.close();
      }
    }
    if (ONLY !== "pg")
      runs.push(await measure("SQLite", (i) => ({ TRAINWATCH_DB: join(dir, "scale.db"), ...dirs("sqlite", i) }), null));
    table(runs);
    for (const run of runs) details(run);
    console.log(
      "\nA write is one POST of a batch of steps (one transaction). CPU per write: the server processes' (and PostgreSQL's: its postmaster and children) CPU seconds over the writes acknowledged meanwhile.",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  console.error("scale bench failed:", err);
  process.exit(1);
}
process.exit(0);
