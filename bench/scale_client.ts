/**
 * One load-generator process of bench/scale.ts, driven over IPC: its share of the simulated step trainings (each posts
 * one batch of steps per period through a round-robin client, one POST in flight at a time, as the Python client's
 * sender thread does), of the stream readers (an operation's SSE stream, checked gap-free and duplicate-free by the
 * step write's version and by epoch number) and of the pollers (GET status, then GET steps since the last one seen).
 * bench/scale.ts spawns several so that the generator is not the bottleneck, and measures their CPU from /proc.
 * Not a module to import, except for its message types.
 */
import { quantile, startLagSampler } from "./lag.ts";

/** A simulated training: its operation, and its index among all the bench's trainings (its phase in the period). */
export interface TrainingRef {
  id: string;
  index: number;
}
export interface ReaderRef {
  index: number;
  ops: string[];
}
export interface PollerRef {
  index: number;
  op: string;
}

export type ToClient =
  | {
      type: "init";
      replicas: string[];
      /** Steps per batch (a training's steps a second at one batch a second). */
      rate: number;
      stepsPerEpoch: number;
      trainings: TrainingRef[];
      readers: ReaderRef[];
      pollers: PollerRef[];
    }
  | {
      type: "phase";
      name: string;
      /** Date.now() of the phase's first period. */
      startAt: number;
      endAt: number;
      /** Trainings with index < active post; each once per periodMs, at startAt + periodMs·index/active + k·periodMs. */
      active: number;
      periodMs: number;
      pollers: boolean;
    }
  | { type: "open-readers" }
  /** Closes the streams once each reader has seen `expect[op]` (the op's acknowledged writes), or after waitMs. */
  | { type: "close-readers"; expect: Record<string, number>; waitMs: number }
  | { type: "sent" };

/** Latencies in ms; errors by "kind status". */
export interface PhaseResult {
  type: "phase";
  name: string;
  post: number[];
  getStatus: number[];
  getSteps: number[];
  errors: [string, number][];
  /** Requests whose connection failed before a reply, sent again (by kind and error code). */
  retried: [string, number][];
  /** Batches the trainings meant to send in the phase, sent, and acknowledged (2xx). */
  meant: number;
  sent: number;
  acked: number;
  /** Batches not sent because the training's previous POST had not returned a period after this one was due. */
  skipped: number;
  /** For batches due while the training was free: how late the generator sent them (its own timer lag), ms. */
  lateness: number[];
  /** This process's event-loop lag p99 during the phase. */
  lagP99: number;
  polls: { meant: number; done: number };
}

export interface ReaderResult {
  index: number;
  streams: number;
  /** Steps events and epoch events received, after the first of each stream. */
  stepsEvents: number;
  epochEvents: number;
  /** A version or epoch number that skipped some (gaps), or came again or went back (duplicates). */
  gaps: number;
  duplicates: number;
  /** The server closed a stream that was then reopened with Last-Event-ID (versions restart there). */
  reconnects: number;
  /** Every stream reached the expected last version before the close. */
  complete: boolean;
  firstProblem: string | null;
}

export type FromClient =
  | { type: "ready" }
  | PhaseResult
  | { type: "readers-open"; failed: string[] }
  | { type: "readers"; results: ReaderResult[] }
  /** Per operation: [first step, phase name, acknowledged] of every batch sent. */
  | { type: "sent"; batches: Record<string, [number, string, boolean][]> };

const headers = { "content-type": "application/json" };

/** A training's loss curve and the rest of a step, deterministic in (training, step): a real run's shape and size. */
function stepRow(training: number, step: number, stepsPerEpoch: number): Record<string, unknown> {
  const noise = Math.sin(step * 12.9898 + training * 78.233) * 0.05;
  const row: Record<string, unknown> = {
    step,
    epoch: Math.floor(step / stepsPerEpoch),
    train_loss: 2.3 * Math.exp(-step / (2000 + 10 * training)) + 0.1 + noise,
    learning_rate: 1e-3 * (0.5 + 0.5 * Math.cos((Math.PI * (step % 10_000)) / 10_000)),
    grad_norm: 1 + Math.abs(noise) * 10,
  };
  // An evaluation every 50 steps, as a trainer's eval loop: sparse val_loss and one eval/ custom.
  if (step % 50 === 49) {
    row.val_loss = 2.4 * Math.exp(-step / (2200 + 10 * training)) + 0.15 + noise / 2;
    row["eval/accuracy"] = 1 - Math.exp(-step / 3000);
  }
  return row;
}

interface Training extends TrainingRef {
  nextStep: number;
  batches: [number, string, boolean][];
}

let replicas: string[] = [];
let rate = 10;
let stepsPerEpoch = 100;
let trainings: Training[] = [];
let readerRefs: ReaderRef[] = [];
let pollerRefs: PollerRef[] = [];
let turn = 0;
/** The round-robin client: each request to the next replica. */
const next = () => replicas[turn++ % replicas.length]!;

const send = (m: FromClient) => process.send!(m);

async function runPhase(m: Extract<ToClient, { type: "phase" }>): Promise<PhaseResult> {
  const r: PhaseResult = {
    type: "phase",
    name: m.name,
    post: [],
    getStatus: [],
    getSteps: [],
    errors: [],
    retried: [],
    meant: 0,
    sent: 0,
    acked: 0,
    skipped: 0,
    lateness: [],
    lagP99: 0,
    polls: { meant: 0, done: 0 },
  };
  const errors = new Map<string, number>();
  const retried = new Map<string, number>();
  const error = (key: string) => errors.set(key, (errors.get(key) ?? 0) + 1);
  const lag = startLagSampler();
  /**
   * The reply's body, or null on an error (counted by kind and status or error code). A request whose connection
   * failed before any reply (a pooled keep-alive connection the server had just closed: ECONNRESET) is sent once more,
   * on a fresh connection, as an HTTP client does (a re-posted step replaces itself); the retry is counted apart, and
   * its time is the request's.
   */
  const timed = async (kind: string, path: string, into: number[], init?: RequestInit): Promise<string | null> => {
    const t0 = performance.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(`${next()}/api/v1${path}`, {
          ...init,
          signal: AbortSignal.timeout(30_000),
          ...(attempt > 0 && { keepalive: false }),
        });
        const text = await res.text();
        if (!res.ok) {
          error(`${kind} ${res.status}`);
          return null;
        }
        into.push(performance.now() - t0);
        return text;
      } catch (err) {
        const e = err as Error & { code?: string };
        const what = `${kind} ${e.name === "TimeoutError" ? e.name : (e.code ?? e.name)}`;
        if (attempt === 0 && e.name !== "TimeoutError") {
          retried.set(what, (retried.get(what) ?? 0) + 1);
          continue;
        }
        error(what);
        return null;
      }
    }
  };
  const drive = async (t: Training) => {
    let free = 0; // when the previous POST returned
    for (let due = m.startAt + (m.periodMs * t.index) / m.active; due < m.endAt; due += m.periodMs) {
      r.meant++;
      const wait = due - Date.now();
      if (wait > 0) await Bun.sleep(wait);
      const now = Date.now();
      if (now - due > m.periodMs) {
        r.skipped++; // still waiting on the last reply when the next one was due: the server's backpressure
        continue;
      }
      if (free <= due) r.lateness.push(Math.max(0, now - due));
      const first = t.nextStep;
      t.nextStep += rate;
      const steps = Array.from({ length: rate }, (_, i) => stepRow(t.index, first + i, stepsPerEpoch));
      for (const s of steps) s.timestamp = new Date(now).toISOString();
      r.sent++;
      const ok = await timed("POST steps", `/operations/${t.id}/steps`, r.post, {
        method: "POST",
        headers,
        body: JSON.stringify({ steps }),
      });
      if (ok) r.acked++;
      t.batches.push([first, m.name, ok !== null]);
      free = Date.now();
    }
  };
  const poll = async (p: PollerRef) => {
    let since = -1;
    for (let due = m.startAt + (1000 * p.index) / Math.max(1, pollerRefs.length); due < m.endAt; due += 1000) {
      r.polls.meant++;
      const wait = due - Date.now();
      if (wait > 0) await Bun.sleep(wait);
      else if (wait < -1000) continue;
      await timed("GET status", `/operations/${p.op}`, r.getStatus);
      const text = await timed("GET steps", `/operations/${p.op}/steps?since_step=${since}`, r.getSteps);
      if (text !== null) {
        const steps = (JSON.parse(text) as { data: { steps: { step: number }[] } }).data.steps;
        if (steps.length > 0) since = steps[steps.length - 1]!.step;
        r.polls.done++;
      }
    }
  };
  await Promise.all([
    ...trainings.filter((t) => t.index < m.active).map(drive),
    ...(m.pollers ? pollerRefs.map(poll) : []),
  ]);
  lag.stop();
  r.lagP99 = quantile(
    lag
      .samples()
      .map(([, l]) => l)
      .sort((a, b) => a - b),
    0.99,
  );
  r.errors = [...errors];
  r.retried = [...retried];
  return r;
}

// Stream readers ---------------------------------------------------------------------------------------------------

/** One followed operation's stream: reads events, checks versions and epoch numbers, reopens when the server closes. */
class Follow {
  version = -1;
  epoch = -1;
  stepsEvents = 0;
  epochEvents = 0;
  gaps = 0;
  duplicates = 0;
  reconnects = 0;
  firstProblem: string | null = null;
  private closing = false;
  private abort = new AbortController();
  private opened!: () => void;
  readonly open = new Promise<void>((resolve) => (this.opened = resolve));
  done: Promise<void>;

  constructor(
    readonly op: string,
    private readonly replica: string,
  ) {
    this.done = this.loop();
  }

  private problem(what: string) {
    this.firstProblem ??= `${this.op}: ${what}`;
  }

  private onEvent(block: string) {
    let event = "";
    let id = "";
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("id: ")) id = line.slice(4);
      else if (line.startsWith("data: ")) data = line.slice(6);
    }
    if (event === "status") this.opened();
    else if (event === "steps") {
      const at = data.lastIndexOf('"version":');
      const v = Number.parseInt(data.slice(at + 10), 10);
      if (this.version >= 0) {
        this.stepsEvents++;
        if (v > this.version + 1) this.gaps++, this.problem(`steps version ${this.version} then ${v}`);
        else if (v <= this.version) this.duplicates++, this.problem(`steps version ${this.version} then ${v}`);
      }
      this.version = Math.max(this.version, v);
    } else if (event === "epoch") {
      const e = Number(id);
      this.epochEvents++;
      if (e > this.epoch + 1) this.gaps++, this.problem(`epoch ${this.epoch} then ${e}`);
      else if (e <= this.epoch) this.duplicates++, this.problem(`epoch ${this.epoch} then ${e}`);
      this.epoch = Math.max(this.epoch, e);
    }
  }

  private async loop(): Promise<void> {
    const decoder = new TextDecoder();
    while (!this.closing) {
      try {
        const res = await fetch(`${this.replica}/api/v1/operations/${this.op}/metrics/stream`, {
          headers: this.epoch >= 0 ? { "last-event-id": String(this.epoch) } : {},
          signal: this.abort.signal,
        });
        if (!res.ok || !res.body) throw new Error(`stream ${res.status}`);
        const reader = res.body.getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let cut = buf.indexOf("\n\n");
          while (cut >= 0) {
            this.onEvent(buf.slice(0, cut));
            buf = buf.slice(cut + 2);
            cut = buf.indexOf("\n\n");
          }
        }
      } catch (err) {
        if (this.closing) return;
        this.problem(`stream failed: ${(err as Error).message}`);
      }
      if (this.closing) return;
      // Closed by the server: steps are not replayed, so the version count restarts; epochs resume after Last-Event-ID.
      this.reconnects++;
      this.version = -1;
      await Bun.sleep(200);
    }
  }

  async close(expect: number, deadline: number) {
    while (this.version < expect && Date.now() < deadline) await Bun.sleep(50);
    this.closing = true;
    this.abort.abort();
    await this.done.catch(() => {});
    return this.version >= expect;
  }
}

let follows: { ref: ReaderRef; streams: Follow[] }[] = [];

async function openReaders(): Promise<string[]> {
  follows = readerRefs.map((ref) => ({
    ref,
    streams: ref.ops.map((op, j) => new Follow(op, replicas[(ref.index + j) % replicas.length]!)),
  }));
  const all = follows.flatMap((f) => f.streams);
  const timeout = Bun.sleep(30_000).then(() => "timeout" as const);
  const failed: string[] = [];
  for (const f of all) if ((await Promise.race([f.open, timeout])) === "timeout") failed.push(f.op);
  return failed;
}

async function closeReaders(expect: Record<string, number>, waitMs: number): Promise<ReaderResult[]> {
  const deadline = Date.now() + waitMs;
  return Promise.all(
    follows.map(async ({ ref, streams }) => {
      const complete = await Promise.all(streams.map((s) => s.close(expect[s.op] ?? 0, deadline)));
      const sum = (k: "stepsEvents" | "epochEvents" | "gaps" | "duplicates" | "reconnects") =>
        streams.reduce((n, s) => n + s[k], 0);
      return {
        index: ref.index,
        streams: streams.length,
        stepsEvents: sum("stepsEvents"),
        epochEvents: sum("epochEvents"),
        gaps: sum("gaps"),
        duplicates: sum("duplicates"),
        reconnects: sum("reconnects"),
        complete: complete.every(Boolean),
        firstProblem: streams.find((s) => s.firstProblem)?.firstProblem ?? null,
      };
    }),
  );
}

process.on("message", async (m: ToClient) => {
  if (m.type === "init") {
    replicas = m.replicas;
    rate = m.rate;
    stepsPerEpoch = m.stepsPerEpoch;
    trainings = m.trainings.map((t) => ({ ...t, nextStep: 0, batches: [] }));
    readerRefs = m.readers;
    pollerRefs = m.pollers;
    turn = process.pid; // the processes start their round-robin on different replicas
    send({ type: "ready" });
  } else if (m.type === "phase") send(await runPhase(m));
  else if (m.type === "open-readers") send({ type: "readers-open", failed: await openReaders() });
  else if (m.type === "close-readers") send({ type: "readers", results: await closeReaders(m.expect, m.waitMs) });
  else if (m.type === "sent")
    send({ type: "sent", batches: Object.fromEntries(trainings.map((t) => [t.id, t.batches])) });
});
