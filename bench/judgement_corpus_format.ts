/**
 * The labelled-run corpus of the judgement benchmark (bench/corpus/judgement.json): its shape, its loader, and the two
 * labels computed from the data (held-out best epoch, blow-up epoch), shared by the generator and the replay.
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
    /** See blowUpEpoch; null when the run never blew up. */
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

export const BLOW_UP_FACTOR = 10;

/**
 * The blow-up epoch: the first epoch e from which the run never recovers, i.e. at e and at every later epoch, train_loss
 * or val_loss is non-finite, or is above BLOW_UP_FACTOR (10) × its best before e (the lowest finite value at epochs < e)
 * AND above its epoch-0 value. The last condition keeps a loss near zero that jumps 10× (0.002 → 0.02, still far better
 * than where it started) from counting; "never recovers" keeps a transient spike that training comes back from from
 * counting (those are judged by the unjustified-alarm figure instead). A loss that is finite but huge at epoch 0 is not
 * a blow-up by itself. Null when the run ends un-blown.
 */
export function blowUpEpoch(curves: Pick<Curves, "train_loss" | "val_loss">): number | null {
  const n = curves.train_loss.length;
  const keys = (["train_loss", "val_loss"] as const).filter((k) => curves[k].some((c) => c !== null));
  const at = (k: (typeof keys)[number], e: number) => cellValue(curves[k][e]);
  const best = Object.fromEntries(keys.map((k) => [k, Number.POSITIVE_INFINITY])) as Record<
    (typeof keys)[number],
    number
  >;
  const bad = (e: number) =>
    keys.some((k) => {
      const v = at(k, e);
      if (v === null) return false;
      if (!Number.isFinite(v)) return true;
      const first = at(k, 0);
      return v > BLOW_UP_FACTOR * best[k] && first !== null && v > first;
    });
  for (let e = 0; e < n; e++) {
    let k = e;
    while (k < n && bad(k)) k++;
    if (k === n) return e;
    for (const key of keys) {
      const v = at(key, e);
      if (v !== null && Number.isFinite(v)) best[key] = Math.min(best[key], v);
    }
  }
  return null;
}

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
