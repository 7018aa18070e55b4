/**
 * The labelled-run corpus of the judgement benchmark (bench/corpus/judgement.json): its shape, its loader, its split into a
 * tune half and a report half, and the labels (kind, held-out best epoch, blow-up epoch), every one read from the held-out
 * loss; shared by the generator, the replay and the tests.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { TrainingSpecInput } from "../src/schemas/spec.ts";

export const CORPUS_PATH = join(import.meta.dir, "corpus", "judgement.json");

export const KINDS = ["healthy", "noisy", "overfit", "exploding", "stalled"] as const;
export type Kind = (typeof KINDS)[number];

/** A metric as the API writes it: a number, null (not reported), or "NaN" / "Infinity" / "-Infinity". */
export type Cell = number | null | "NaN" | "Infinity" | "-Infinity";

/** The curves the engine reported, one array per field, index = epoch (epochs run 0 … n−1). */
export interface Curves {
  train_loss: Cell[];
  val_loss: Cell[];
  /** null entries on regression runs. */
  train_accuracy: Cell[];
  val_accuracy: Cell[];
  learning_rate: Cell[];
  /** Loss on rows held out of training and validation: what the judgement never sees. */
  test_loss: Cell[];
}

export interface CorpusRun {
  id: string;
  /** See halfOf: which half the run's seed puts it in. */
  half: Half;
  kind: Kind;
  /** What the spec was meant to produce; differs from `kind` when the run did not behave as planned (relabelled). */
  planned_kind: Kind;
  /** Why the run was relabelled, if it was. */
  relabel_reason: string | null;
  /** The spec the run was trained with (CSV paths relative to the repository root). */
  spec: TrainingSpecInput;
  /** Rows taken out of the dataset before the train/validation split, as the held-out test set. */
  held_out_rows: number;
  labels: {
    /** Epoch of the lowest finite test_loss (ties: earliest); null when no epoch has one. */
    held_out_best_epoch: number | null;
    held_out_best: number | null;
    /** See blowUpEpoch (read from test_loss); null when the run never blew up. */
    blow_up_epoch: number | null;
  };
  curves: Curves;
}

export interface Corpus {
  about: string;
  definitions: Record<string, string>;
  backend: string;
  runs: CorpusRun[];
}

export function loadCorpus(path = CORPUS_PATH): Corpus {
  return JSON.parse(readFileSync(path, "utf8")) as Corpus;
}

/** A cell as a JS number (NaN and ±Infinity included); null stays null. */
export function cellValue(c: Cell | undefined): number | null {
  if (c === undefined || c === null) return null;
  if (c === "NaN") return Number.NaN;
  if (c === "Infinity") return Number.POSITIVE_INFINITY;
  if (c === "-Infinity") return Number.NEGATIVE_INFINITY;
  return c;
}

/** A number as a cell: 6 significant digits, non-finite values as the API's strings. */
export function toCell(v: number | null | undefined): Cell {
  if (v === null || v === undefined) return null;
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
  return Number(v.toPrecision(6));
}

// ── Labels. Every label is read from the held-out loss (test_loss) alone: never from train_loss or val_loss, the curves
// the judgement reads, and with thresholds that are none of the rules' parameters (src/trends: 1 %, 3σ, 3×, 100×, 10 %,
// 20 %, 20 epochs). The thresholds below were set on the tune half and are not changed for the report half. ──

/** Seeds from this one on are the report half; lower seeds the tune half (see halfOf). */
export const REPORT_SEEDS_FROM = 1000;
export type Half = "tune" | "report";

/**
 * The half a run belongs to, from its training seed alone: seeds below REPORT_SEEDS_FROM (1000) are the tune half, the
 * runs the rules in src/trends were tuned on; seeds from 1000 on are the report half, each tune plan trained again with
 * seed + 1000 after the rules were frozen, on which nothing is tuned.
 */
export function halfOf(run: Pick<CorpusRun, "spec">): Half {
  return (run.spec.training?.seed ?? 42) >= REPORT_SEEDS_FROM ? "report" : "tune";
}

/** Exploding: the held-out loss leaves for good to more than this many times its best so far (and its first value). */
export const BLOW_UP_FACTOR = 5;
/** Stalled: the held-out loss never gets this fraction below its first value. */
export const STALL_GAIN = 0.05;
/** Overfit: the held-out loss's 5-epoch mean is lowest at least OVERFIT_MIN_AFTER epochs before the end, and ends
 * OVERFIT_RISE × that low or more (a mean, so one lucky epoch does not make a minimum). */
export const OVERFIT_RISE = 1.2;
export const OVERFIT_MIN_AFTER = 5;

/**
 * The blow-up epoch, read from the held-out loss: the first epoch e from which it never recovers, i.e. at e and at every
 * later epoch test_loss is non-finite, or is above BLOW_UP_FACTOR (5) × its lowest finite value before e AND above its
 * first finite value. The last condition keeps a held-out loss near zero that jumps (0.002 → 0.02, still far better than
 * where it started) from counting; "never recovers" keeps a spike that training comes back from from counting (those are
 * judged by the unjustified-alarm figure). Null when the run ends un-blown.
 */
export function blowUpEpoch(test: readonly Cell[]): number | null {
  const values = test.map(cellValue);
  const first = values.find((v) => v !== null && Number.isFinite(v)) ?? null;
  let best = Number.POSITIVE_INFINITY;
  const bad = values.map((v, e) => {
    if (e > 0) {
      const prev = values[e - 1];
      if (prev !== null && prev !== undefined && Number.isFinite(prev)) best = Math.min(best, prev);
    }
    if (v === null) return false;
    if (!Number.isFinite(v)) return true;
    return first !== null && v > BLOW_UP_FACTOR * best && v > first;
  });
  let from: number | null = null;
  for (let e = bad.length - 1; e >= 0 && bad[e]; e--) from = e;
  return from;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const finiteValues = (cells: readonly Cell[]) =>
  cells.map(cellValue).filter((v): v is number => v !== null && Number.isFinite(v));

/**
 * The kind a run's held-out loss shows, checked in this order: exploding (it has a blow-up epoch, see blowUpEpoch);
 * overfit (see OVERFIT_RISE); stalled (its lowest held-out loss is less than STALL_GAIN (5 %) below its first); else
 * healthy, or noisy when that was the plan (a noisy run is a healthy one by behaviour). Every run gets a kind.
 */
export function kindOf(curves: Pick<Curves, "test_loss">, planned: Kind): { kind: Kind; reason: string } {
  const test = curves.test_loss;
  const n = test.length;
  const blowUp = blowUpEpoch(test);
  if (blowUp !== null) return { kind: "exploding", reason: `held-out loss blown from epoch ${blowUp} to the end` };
  const smooth = test.map((_, e) => (e < 4 ? null : mean(finiteValues(test.slice(e - 4, e + 1)))));
  let low = -1;
  smooth.forEach((v, e) => {
    if (v !== null && Number.isFinite(v) && (low < 0 || v < smooth[low]!)) low = e;
  });
  if (low >= 0 && low <= n - 1 - OVERFIT_MIN_AFTER && smooth[n - 1]! >= OVERFIT_RISE * smooth[low]!) {
    return {
      kind: "overfit",
      reason: `held-out 5-epoch mean lowest at epoch ${low}, ${(smooth[n - 1]! / smooth[low]!).toFixed(2)}× that at the end`,
    };
  }
  const values = finiteValues(test);
  const gain = values.length ? (values[0]! - Math.min(...values)) / Math.abs(values[0]!) : 0;
  if (gain < STALL_GAIN) {
    return { kind: "stalled", reason: `held-out loss at best ${(100 * gain).toFixed(1)} % below its first value` };
  }
  const reason = `no blow-up, the held-out loss fell ${(100 * gain).toFixed(0)} % and did not rise clearly after its best`;
  return { kind: planned === "noisy" ? "noisy" : "healthy", reason };
}

/** The corpus's `definitions`: each label in words, with the thresholds above. */
export const DEFINITIONS: Record<string, string> = {
  test_loss:
    "loss (the training loss function, per row) on held_out_rows rows taken out of the dataset before the train/validation split, after each epoch; never posted to the API",
  half: `from the training seed alone: below ${REPORT_SEEDS_FROM} the tune half (the runs the rules were tuned on), from ${REPORT_SEEDS_FROM} on the report half (each tune plan again with seed + ${REPORT_SEEDS_FROM}, trained after the rules were frozen; nothing is tuned on it)`,
  held_out_best_epoch: "epoch of the lowest finite test_loss (ties: earliest)",
  blow_up_epoch: `first epoch e from which test_loss never recovers: at e and every later epoch it is non-finite, or above ${BLOW_UP_FACTOR}× its lowest finite value before e and above its first finite value`,
  kind: `from test_loss alone, in order: exploding (has a blow-up epoch); overfit (the 5-epoch mean of test_loss lowest ≥ ${OVERFIT_MIN_AFTER} epochs before the end, and ≥ ${OVERFIT_RISE}× that low at the end); stalled (the lowest finite test_loss less than ${100 * STALL_GAIN} % below the first finite one); else healthy (noisy when planned so). Thresholds set on the tune half, none of them a rule's parameter`,
  relabel_reason:
    "why kind differs from planned_kind (what the held-out loss did), null when the run behaved as planned",
};

/** The epoch of the lowest finite test_loss (ties: earliest) and its value. */
export function heldOutBest(test: readonly Cell[]): { epoch: number | null; value: number | null } {
  let epoch: number | null = null;
  let value: number | null = null;
  test.forEach((c, e) => {
    const v = cellValue(c);
    if (v !== null && Number.isFinite(v) && (value === null || v < value)) {
      value = v;
      epoch = e;
    }
  });
  return { epoch, value };
}
