/**
 * The training spec's rules: normalisation that fills every omitted field from the one DEFAULTS table (defaults.ts) so
 * the trainer never has to guess, the cross-field checks the schema cannot express, and validation that runs the schema,
 * those checks and the memory budget in that order. Pure: no I/O, no randomness; same input, same output.
 */
import { Value } from "@sinclair/typebox/value";
import { invalid, type TrainwatchError } from "../errors.ts";
import { DEFAULTS } from "./defaults.ts";
import { explain, fieldOf } from "./explain.ts";
import { memoryProblem } from "./memory.ts";
import { TrainingSpec, type NormalizedDataset, type NormalizedSpec, type TrainingSpecInput } from "./spec.ts";

/** Upper bound of samples × features for generated data (200 MB of float32). */
export const MAX_SYNTHETIC_VALUES = 50_000_000;

/** Fills every default of a schema-valid spec from DEFAULTS. */
export function normalizeSpec(input: TrainingSpecInput): NormalizedSpec {
  const t = input.training ?? {};
  const m = input.model ?? {};
  const T = DEFAULTS.training;
  const seed = t.seed ?? T.seed;
  const optimizer = t.optimizer ?? T.optimizer;
  const ds = input.dataset;
  const dataset: NormalizedDataset =
    ds.kind === "synthetic"
      ? {
          kind: "synthetic",
          generator: ds.generator,
          samples: ds.samples ?? DEFAULTS.generators[ds.generator].samples,
          seed: ds.seed ?? seed,
          features: ds.features ?? DEFAULTS.generators[ds.generator].features,
          // The other generators make a binary label.
          classes: ds.generator === "spirals" ? (ds.classes ?? DEFAULTS.generators.spirals.classes) : 2,
        }
      : { kind: "csv", path: ds.path, label: ds.label, features: ds.features ?? null, task: ds.task ?? null };
  const es = t.early_stopping;
  const lr = t.lr_schedule;
  return {
    name: input.name ?? (ds.kind === "synthetic" ? ds.generator : (ds.path.split(/[\\/]/).pop() ?? ds.path)),
    dataset,
    model: {
      hidden_layers: m.hidden_layers ?? [...DEFAULTS.model.hidden_layers],
      activation: m.activation ?? DEFAULTS.model.activation,
      dropout: m.dropout ?? DEFAULTS.model.dropout,
    },
    training: {
      epochs: t.epochs ?? T.epochs,
      batch_size: t.batch_size ?? T.batch_size,
      learning_rate: t.learning_rate ?? T.learning_rate,
      optimizer,
      weight_decay: t.weight_decay ?? (optimizer === "adamw" ? T.weight_decay.adamw : T.weight_decay.other),
      validation_split: t.validation_split ?? T.validation_split,
      seed,
      early_stopping: es ? fill(es, DEFAULTS.early_stopping) : null,
      lr_schedule:
        lr?.kind === "reduce_on_plateau"
          ? { kind: "reduce_on_plateau", ...fill(lr, DEFAULTS.reduce_on_plateau) }
          : { kind: "constant" },
    },
  };
}

/** What `fill` makes of a rule's settings: each key of the defaults, given or defaulted. */
type Filled<G, D> = { -readonly [K in keyof D]: (K extends keyof G ? NonNullable<G[K]> : never) | D[K] };

/** Every key of `defaults`, from `given` where it is set (neither undefined nor null), else the default. */
function fill<G extends object, D extends object>(given: G, defaults: D): Filled<G, D> {
  const out: Record<string, unknown> = {};
  for (const [key, dflt] of Object.entries(defaults)) out[key] = (given as Record<string, unknown>)[key] ?? dflt;
  return out as Filled<G, D>;
}

export type SpecValidation = { ok: true; spec: NormalizedSpec } | { ok: false; path: string; message: string };

/**
 * Schema check, then the cross-field rules the schema cannot express, then (with `maxModelMb`) the memory budget
 * (memory.ts); on failure names the first failing field path, e.g. { path: "/training/batch_size", message:
 * "/training/batch_size: Expected integer to be greater or equal to 1" }.
 */
export function validateSpec(value: unknown, opts: { maxModelMb?: number } = {}): SpecValidation {
  if (!Value.Check(TrainingSpec, value)) {
    const error = explain(TrainingSpec, value) ?? { path: "", message: "Invalid training spec" };
    const path = error.path || "/";
    return { ok: false, path, message: `${path}: ${error.message}` };
  }
  const spec = normalizeSpec(value);
  const problem = crossFieldProblem(value, spec);
  if (problem) return { ok: false, path: problem.path, message: `${problem.path}: ${problem.message}` };
  const memory = opts.maxModelMb === undefined ? null : memoryProblem(spec, opts.maxModelMb);
  if (memory) return { ok: false, path: memory.path, message: `${memory.path}: ${memory.message}` };
  return { ok: true, spec };
}

/** The rules between fields, read on the normalised spec (defaults filled) and, for what was given, on the input. */
function crossFieldProblem(input: TrainingSpecInput, spec: NormalizedSpec): { path: string; message: string } | null {
  const ds = input.dataset;
  if (ds.kind === "synthetic" && spec.dataset.kind === "synthetic") {
    const size = spec.dataset.samples * spec.dataset.features;
    if (size > MAX_SYNTHETIC_VALUES)
      return {
        path: "/dataset/samples",
        message: `samples × features is ${size}; at most ${MAX_SYNTHETIC_VALUES} values are generated`,
      };
    if (ds.generator === "spirals" && ds.features !== undefined && ds.features < 2)
      return { path: "/dataset/features", message: "spirals needs at least 2 features (the coordinates)" };
    if (ds.generator !== "spirals" && ds.classes !== undefined)
      return {
        path: "/dataset/classes",
        message: `classes applies only to the spirals generator, not ${ds.generator}`,
      };
  } else if (ds.kind === "csv" && ds.features?.includes(ds.label)) {
    return { path: "/dataset/features", message: `the label column "${ds.label}" cannot also be a feature` };
  }
  const t = spec.training;
  const monitors: [string, string | undefined][] = [
    ["/training/early_stopping/monitor", t.early_stopping?.monitor],
    ["/training/lr_schedule/monitor", t.lr_schedule.kind === "reduce_on_plateau" ? t.lr_schedule.monitor : undefined],
  ];
  for (const [path, monitor] of monitors) {
    if (monitor?.startsWith("val_") && t.validation_split === 0)
      return { path, message: `${monitor} needs training.validation_split > 0` };
  }
  return null;
}

/** A failed validateSpec as a 400 naming the field under `prefix` (e.g. "body" → "body.training.batch_size"). */
export function specError(prefix: string, failure: { path: string; message: string }): TrainwatchError {
  return invalid(fieldOf(prefix, failure.path), failure.message.slice(failure.path.length + 2));
}
