/**
 * The step-level judgement corpus (bench/corpus/steps.json, built by bench/step_corpus.py): its shape, its loader, its
 * split by seed, and its labels recomputed from the held-out test loss exactly as the builder computed them, so a test can
 * prove the stored labels are the curves' and not hand-edited.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const STEP_CORPUS_PATH = join(import.meta.dir, "corpus", "steps.json");

/** Run kinds: a plan's intent (`planned_kind`) and what the held-out loss shows (`kind`). */
export const STEP_KINDS = ["healthy", "noisy", "spike", "diverged", "nan", "overfit", "stalled", "slowdown"] as const;
export type StepKind = (typeof STEP_KINDS)[number];
export type Half = "tune" | "report";

/** A value as stored: a number (6 significant digits) or "NaN" / "Infinity" / "-Infinity". */
export type Cell = number | "NaN" | "Infinity" | "-Infinity";

/** One value per step, index = step (0 … steps − 1). */
export interface StepCurves {
  train_loss: Cell[];
  learning_rate: Cell[];
  /** Total L2 norm of the gradients before clipping. */
  grad_norm: Cell[];
  /** Wall seconds of the step, data loading included: a measurement, not reproducible. */
  step_time: Cell[];
}

/** Parallel arrays at the evaluation steps (every eval_every steps, and the last step). */
export interface StepEvals {
  step: number[];
  /** Posted by the replay. */
  val_loss: Cell[];
  /** The held-out loss: never posted; the labels read it alone. */
  test_loss: Cell[];
}

/** What the plan injected, inclusive step ranges: the ground truth of WHEN, not of the judgement. */
export interface StepEvents {
  spikes: [number, number][];
  slowdowns: [number, number][];
  /** Step from which the learning rate was raised for good (blow-up and nan-lr plans); null otherwise. */
  lr_change_step: number | null;
  /** Step at which an inf was injected into the embeddings; null otherwise. */
  inf_step: number | null;
}

export interface SpikeLabel {
  from: number;
  to: number;
  recovered: boolean;
}

export interface StepLabels {
  nan_step: number | null;
  held_out_best_step: number | null;
  held_out_best: number | null;
  diverged_onset_step: number | null;
  spikes: SpikeLabel[];
  overfit: boolean;
  stalled: boolean;
}

export interface StepRun {
  id: string;
  plan: string;
  planned_kind: StepKind;
  plan_note: string;
  seed: number;
  half: Half;
  batch_size: number;
  train_bytes: number;
  steps: number;
  eval_every: number;
  events: StepEvents;
  curves: StepCurves;
  evals: StepEvals;
  build_seconds: number;
  labels: StepLabels;
  kind: StepKind;
  relabel_reason: string | null;
}

export interface StepThresholds {
  diverge_factor: number;
  diverge_stays: number;
  spike_recovery: number;
  spike_recovery_evals: number;
  overfit_rise: number;
  stall_gain: number;
  report_seeds_from: number;
}

export interface StepCorpus {
  about: string;
  built_with: Record<string, unknown>;
  thresholds: StepThresholds;
  definitions: Record<string, string>;
  plans: { id: string; planned_kind: StepKind; note: string }[];
  runs: StepRun[];
}

export function loadStepCorpus(path = STEP_CORPUS_PATH): StepCorpus {
  return JSON.parse(readFileSync(path, "utf8")) as StepCorpus;
}

/** A stored value as a JS number (NaN and ±Infinity included). */
export function cellValue(c: Cell): number {
  if (c === "NaN") return Number.NaN;
  if (c === "Infinity") return Number.POSITIVE_INFINITY;
  if (c === "-Infinity") return Number.NEGATIVE_INFINITY;
  return c;
}

/** The half a seed puts a run in: below `report_seeds_from` (100) tune, the rest report. */
export function halfOfSeed(seed: number, reportSeedsFrom = 100): Half {
  return seed >= reportSeedsFrom ? "report" : "tune";
}

/** The run's eval steps and held-out losses as numbers. */
export function heldOut(run: Pick<StepRun, "evals">): { steps: number[]; test: number[] } {
  return { steps: run.evals.step, test: run.evals.test_loss.map(cellValue) };
}

/**
 * First eval step e where the held-out loss is non-finite or ≥ diverge_factor (2) × its lowest finite value before e, and at
 * every later eval stays non-finite or ≥ diverge_stays (1.5) × that same best; with no finite value before e, e counts when
 * it and every later value are non-finite. Null when the run never diverges.
 */
export function divergedOnset(steps: readonly number[], test: readonly number[], t: StepThresholds): number | null {
  for (let i = 0; i < test.length; i++) {
    const before = test.slice(0, i).filter(Number.isFinite);
    const rest = test.slice(i + 1);
    if (before.length === 0) {
      if (!Number.isFinite(test[i]!) && rest.every((v) => !Number.isFinite(v))) return steps[i]!;
      continue;
    }
    const best = Math.min(...before);
    const bad = (v: number, factor: number) => !Number.isFinite(v) || v >= factor * best;
    if (bad(test[i]!, t.diverge_factor) && rest.every((v) => bad(v, t.diverge_stays))) return steps[i]!;
  }
  return null;
}

/** Every label of a run, from its held-out loss, its train_loss (nan_step only: a fact) and its injected events. */
export function labelRun(run: Pick<StepRun, "evals" | "curves" | "events">, t: StepThresholds): StepLabels {
  const { steps, test } = heldOut(run);
  const trainLoss = run.curves.train_loss.map(cellValue);
  const nanAt = trainLoss.findIndex((v) => !Number.isFinite(v));
  let best: number | null = null;
  let bestStep: number | null = null;
  test.forEach((v, i) => {
    if (Number.isFinite(v) && (best === null || v < best)) {
      best = v;
      bestStep = steps[i]!;
    }
  });
  const onset = divergedOnset(steps, test, t);
  const spikes = run.events.spikes.map(([from, to]) => {
    const pre = test.filter((_, i) => steps[i]! < from);
    const after = test.filter((_, i) => steps[i]! > to).slice(0, t.spike_recovery_evals);
    const last = pre.at(-1);
    const back =
      last !== undefined &&
      Number.isFinite(last) &&
      after.some((v) => Number.isFinite(v) && v <= (1 + t.spike_recovery) * last);
    return { from, to, recovered: back && (onset === null || onset > to) };
  });
  const end = test.at(-1)!;
  const overfit =
    onset === null &&
    best !== null &&
    bestStep! < steps.at(-1)! &&
    Number.isFinite(end) &&
    end >= t.overfit_rise * best;
  const first = test.find(Number.isFinite);
  const stalled = onset === null && first !== undefined && first - best! < t.stall_gain * Math.abs(first);
  return {
    nan_step: nanAt < 0 ? null : nanAt,
    held_out_best_step: bestStep,
    held_out_best: best === null ? null : Number((best as number).toPrecision(6)),
    diverged_onset_step: onset,
    spikes,
    overfit,
    stalled,
  };
}

/**
 * The kind the labels give, in order: nan (non-finite train_loss and diverged), diverged, overfit, stalled, spike (spikes
 * injected), slowdown (a slow-down injected), noisy (when planned so: a noisy run is a healthy one by behaviour), healthy.
 */
export function kindOf(
  labels: StepLabels,
  events: Pick<StepEvents, "spikes" | "slowdowns">,
  planned: StepKind,
): StepKind {
  if (labels.diverged_onset_step !== null) return labels.nan_step !== null ? "nan" : "diverged";
  if (labels.overfit) return "overfit";
  if (labels.stalled) return "stalled";
  if (events.spikes.length > 0) return "spike";
  if (events.slowdowns.length > 0) return "slowdown";
  return planned === "noisy" ? "noisy" : "healthy";
}

/** Is the run one the judgement must call diverging (NaN runs included)? */
export const divergent = (run: Pick<StepRun, "kind">) => run.kind === "diverged" || run.kind === "nan";
