/**
 * The judgement benchmark's replay: every corpus run is fed to the API epoch by epoch, as a live external trainer would post
 * it (the held-out test loss left out), and after every epoch the server's judgement is read back
 * (GET /operations/{id}/analysis). The figures compare what the judgement said with what the held-out loss did. Every run
 * of a group counts toward every goal: there is no filter.
 * Importable (tests/judgement_corpus.test.ts runs it) and pure of timing: the same corpus and thresholds give the same figures.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import {
  cellValue,
  loadCorpus,
  type Cell,
  type Corpus,
  type CorpusRun,
  type Half,
  type Kind,
} from "./judgement_corpus_format.ts";

/** An alarm after which the held-out loss still improves by more than this fraction (of its best so far) was unjustified. */
export const STILL_TO_GAIN = 0.02;
/** Divergence must be flagged within this many epochs of the blow-up. */
export const DIVERGENCE_WITHIN = 3;

const ROOT = join(import.meta.dir, "..");

export interface RunOutcome {
  id: string;
  half: Half;
  kind: Kind;
  /** Shown beside a miss (the CSV fixtures validate on 6–18 rows); never used to leave a run out. */
  validation_rows: number;
  epochs: number;
  /** Epochs with an overfitting/diverging flag or a stop action after which the held-out loss still gained > 2 %. */
  unjustified: { epoch: number; flags: string; gain: number }[];
  first_overfitting: number | null;
  first_diverging: number | null;
  stalled_flagged: boolean;
  held_out_best_epoch: number | null;
  blow_up_epoch: number | null;
  /** The final (completed) advice's checkpoint epoch, or the last epoch when it names none. */
  advised_epoch: number;
  advised_named: boolean;
  /** Held-out loss at the advised epoch ÷ the run's best held-out loss; null without a finite best. */
  regret: number | null;
  /** The same for the naive choice, the epoch of the lowest finite val_loss (ties: earliest; the last epoch if none). */
  baseline_regret: number | null;
}

export interface Figures {
  runs: number;
  by_kind: Record<string, number>;
  unjustified_runs: string[];
  overfit_runs: number;
  overfit_caught: number;
  overfit_missed: string[];
  overfit_delays: number[];
  overfit_median_delay: number | null;
  exploding_runs: number;
  divergence_caught: number;
  divergence_missed: string[];
  stalled_runs: number;
  stalled_caught: number;
  stalled_missed: string[];
  regret_mean: number | null;
  regret_max: { value: number; run: string } | null;
  /** Mean regret of the lowest-val_loss choice over the same runs as regret_mean. */
  baseline_regret_mean: number | null;
}

export interface Goal {
  name: string;
  value: string;
  goal: string;
  met: boolean;
}

const finite = (v: number | null): v is number => v !== null && Number.isFinite(v);

/** Validation rows of a run's dataset: (dataset rows − held-out rows) × validation_split (default 0.2), as the engine splits. */
export function validationRows(run: CorpusRun): number {
  const d = run.spec.dataset as { kind: string; samples?: number; path?: string };
  const rows =
    d.kind === "csv" ? readFileSync(join(ROOT, d.path!), "utf8").trim().split("\n").length - 1 : (d.samples ?? 1000);
  const split = run.spec.training?.validation_split ?? 0.2;
  return Math.round((rows - run.held_out_rows) * split);
}

function wire(run: CorpusRun, e: number): Record<string, Cell | number> {
  const c = run.curves;
  const out: Record<string, Cell | number> = { epoch: e };
  for (const k of ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate"] as const) {
    const v = c[k][e];
    if (v !== null && v !== undefined) out[k] = v;
  }
  return out;
}

/** The epoch of the lowest finite val_loss (ties: earliest), null when none is finite. */
function lowestValidation(run: CorpusRun): number | null {
  let epoch: number | null = null;
  run.curves.val_loss.forEach((c, e) => {
    const v = cellValue(c);
    if (finite(v) && (epoch === null || v < cellValue(run.curves.val_loss[epoch])!)) epoch = e;
  });
  return epoch;
}

/** Replays one run through `app` and reads the judgement after every epoch. */
export async function replayRun(app: ReturnType<typeof createApp>, run: CorpusRun): Promise<RunOutcome> {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app.handle(
      new Request(`http://localhost/api/v1${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    const json = (await res.json()) as { success: boolean; data: any; error?: { message: string } };
    if (!json.success) throw new Error(`${method} ${path}: ${res.status} ${json.error?.message}`);
    return json.data;
  };
  const n = run.curves.train_loss.length;
  const test = run.curves.test_loss.map(cellValue);
  const op = await call("POST", "/operations", { operation_type: "training", name: run.id, total_epochs_planned: n });
  const id = op.operation_id as string;
  const out: RunOutcome = {
    id: run.id,
    half: run.half,
    kind: run.kind,
    validation_rows: validationRows(run),
    epochs: n,
    unjustified: [],
    first_overfitting: null,
    first_diverging: null,
    stalled_flagged: false,
    held_out_best_epoch: run.labels.held_out_best_epoch,
    blow_up_epoch: run.labels.blow_up_epoch,
    advised_epoch: n - 1,
    advised_named: false,
    regret: null,
    baseline_regret: null,
  };
  for (let e = 0; e < n; e++) {
    await call("POST", `/operations/${id}/metrics`, wire(run, e));
    const a = await call("GET", `/operations/${id}/analysis`);
    const f = a.flags as { overfitting: boolean; diverging: boolean; plateau: boolean; stalled?: boolean };
    if (f.overfitting && out.first_overfitting === null) out.first_overfitting = e;
    if (f.diverging && out.first_diverging === null) out.first_diverging = e;
    if (f.stalled) out.stalled_flagged = true;
    const stop = a.recommendation.action === "stop";
    if (f.overfitting || f.diverging || stop) {
      const upTo = Math.min(...test.slice(0, e + 1).filter(finite));
      const after = Math.min(...test.slice(e + 1).filter(finite));
      if (Number.isFinite(upTo) && after < (1 - STILL_TO_GAIN) * upTo) {
        const flags = [
          f.overfitting && "overfitting",
          f.diverging && "diverging",
          f.stalled && "stalled",
          f.plateau && "plateau",
          stop && "stop",
        ];
        out.unjustified.push({ epoch: e, flags: flags.filter(Boolean).join("+"), gain: 1 - after / upTo });
      }
    }
  }
  await call("POST", `/operations/${id}/complete`, { status: "completed" });
  const final = await call("GET", `/operations/${id}/analysis`);
  const advised = final.recommendation.checkpoint_epoch as number | null;
  out.advised_named = advised !== null;
  out.advised_epoch = advised ?? n - 1;
  const best = run.labels.held_out_best;
  const regretAt = (epoch: number) => {
    const at = test[epoch] ?? null;
    return finite(at) ? at / best! : Number.POSITIVE_INFINITY;
  };
  if (finite(best) && best > 0) {
    out.regret = regretAt(out.advised_epoch);
    out.baseline_regret = regretAt(lowestValidation(run) ?? n - 1);
  }
  return out;
}

/** Replays every run on a fresh in-memory server configured from `env` (the server's TRAINWATCH_* thresholds). */
export async function replayCorpus(
  corpus: Corpus = loadCorpus(),
  env: Record<string, string | undefined> = {},
): Promise<RunOutcome[]> {
  const config = loadConfig(env);
  const store = new SqliteStore(":memory:", config.trends);
  const app = createApp({ store, config });
  try {
    const outcomes: RunOutcome[] = [];
    for (const run of corpus.runs) outcomes.push(await replayRun(app, run));
    return outcomes;
  } finally {
    store.close();
  }
}

const median = (xs: number[]) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The benchmark's figures over a set of outcomes. */
export function figures(outcomes: readonly RunOutcome[]): Figures {
  const of = outcomes.filter((o) => o.kind === "overfit");
  const ex = outcomes.filter((o) => o.kind === "exploding");
  const st = outcomes.filter((o) => o.kind === "stalled");
  const delays = of
    .filter((o) => o.first_overfitting !== null && o.held_out_best_epoch !== null)
    .map((o) => o.first_overfitting! - o.held_out_best_epoch!);
  const caught = (o: RunOutcome) =>
    o.first_diverging !== null && o.blow_up_epoch !== null && o.first_diverging <= o.blow_up_epoch + DIVERGENCE_WITHIN;
  const regrets = outcomes.filter((o) => o.regret !== null);
  const max = regrets.reduce<RunOutcome | null>((m, o) => (m === null || o.regret! > m.regret! ? o : m), null);
  return {
    runs: outcomes.length,
    by_kind: outcomes.reduce<Record<string, number>>((m, o) => ((m[o.kind] = (m[o.kind] ?? 0) + 1), m), {}),
    unjustified_runs: outcomes.filter((o) => o.unjustified.length > 0).map((o) => o.id),
    overfit_runs: of.length,
    overfit_caught: of.filter((o) => o.first_overfitting !== null).length,
    overfit_missed: of.filter((o) => o.first_overfitting === null).map((o) => o.id),
    overfit_delays: delays,
    overfit_median_delay: median(delays),
    exploding_runs: ex.length,
    divergence_caught: ex.filter(caught).length,
    divergence_missed: ex.filter((o) => !caught(o)).map((o) => o.id),
    stalled_runs: st.length,
    stalled_caught: st.filter((o) => o.stalled_flagged).length,
    stalled_missed: st.filter((o) => !o.stalled_flagged).map((o) => o.id),
    regret_mean: regrets.length ? regrets.reduce((s, o) => s + o.regret!, 0) / regrets.length : null,
    regret_max: max ? { value: max.regret!, run: max.id } : null,
    baseline_regret_mean: regrets.length ? regrets.reduce((s, o) => s + o.baseline_regret!, 0) / regrets.length : null,
  };
}

/** The benchmark's goals, checked on a group's figures; every figure beside its goal. */
export function goals(f: Figures): Goal[] {
  const num = (v: number | null, d = 3) => (v === null ? "n/a" : v.toFixed(d));
  return [
    {
      name: "unjustified alarms: runs with overfitting/diverging/stop at an epoch after which the held-out loss still got > 2 % better",
      value: String(f.unjustified_runs.length),
      goal: "0",
      met: f.unjustified_runs.length === 0,
    },
    {
      name: "overfitting caught",
      value: `${f.overfit_caught}/${f.overfit_runs}`,
      goal: "all",
      met: f.overfit_caught === f.overfit_runs,
    },
    {
      name: "overfitting, median delay after the held-out best epoch",
      value: num(f.overfit_median_delay, 1),
      goal: "≤ 5",
      met: f.overfit_median_delay !== null && f.overfit_median_delay <= 5,
    },
    {
      name: `divergence caught within ${DIVERGENCE_WITHIN} epochs of the held-out blow-up`,
      value: `${f.divergence_caught}/${f.exploding_runs}`,
      goal: "all",
      met: f.divergence_caught === f.exploding_runs,
    },
    {
      name: "stalled runs called out",
      value: `${f.stalled_caught}/${f.stalled_runs}`,
      goal: "all",
      met: f.stalled_caught === f.stalled_runs,
    },
    {
      name: "checkpoint regret: held-out loss at the final advice ÷ best held-out loss, mean",
      value: num(f.regret_mean),
      goal: "≤ 1.03",
      met: f.regret_mean !== null && f.regret_mean <= 1.03,
    },
    {
      name: "checkpoint regret against choosing the lowest val_loss (its mean regret)",
      value: `${num(f.regret_mean, 4)} vs ${num(f.baseline_regret_mean, 4)}`,
      goal: "≤",
      met: f.regret_mean !== null && f.baseline_regret_mean !== null && f.regret_mean <= f.baseline_regret_mean,
    },
  ];
}
