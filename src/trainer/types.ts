// The seam between the training engine and whoever runs it (the worker client, the local trainer, tests).

import type { Checkpoint } from "../schemas/checkpoint.ts";
import type { EpochRecord } from "../schemas/epoch.ts";
import type { BatchProgress, StartReport } from "../schemas/host.ts";
import type { Operation } from "../schemas/operation.ts";
import type { TrainingSpecInput } from "../schemas/spec.ts";
import type { LogLines, RecipeList, RecipeRequest, Target } from "../schemas/recipe.ts";

/** The TF.js backends, in the order they are tried (src/trainer/backend.ts); here so configuration can check a name without loading TF.js. */
export const BACKEND_NAMES = ["tensorflow-gpu", "tensorflow", "wasm", "cpu"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/**
 * Callbacks of one training. onEpoch gets exactly one complete record per finished epoch (including the one that
 * triggers early stopping); onProgress at most 4 times a second.
 */
export interface TrainingEvents {
  /** The backend and the data, once loaded (schemas/host.ts StartReport: the names the operation's metadata keeps). */
  onStart(info: StartReport): void;
  onEpoch(epoch: EpochRecord): void;
  onProgress(p: BatchProgress): void;
  /**
   * The checkpoints on disk changed (written while training, at most every CHECKPOINT_INTERVAL_MS, and once when the
   * loop ends, also on cancel or failure). The engine awaits it before returning or throwing, so the last list is known
   * here before the outcome is.
   */
  onCheckpoints?(checkpoints: Checkpoint[]): void;
}

/** The cancel flag's values (a SharedArrayBuffer Int32 the engine reads before every batch). */
export const RUN = 0;
/** Stop and throw nothing away: the model is saved from the last completed epoch; the operation is cancelled. */
export const CANCEL = 1;
/** Stop because the operation's recorded control says so (its stop policy fired): saved like a finished run, `completed`. */
export const STOP = 2;

export interface TrainingResult {
  /** stop_requested: the operation's `control` asked it to stop (its stop policy fired); the model is kept as for a completed run. */
  stop_reason: "completed" | "early_stopping" | "cancelled" | "stop_requested";
  /** Epochs completed and reported. */
  epochs_run: number;
  /** Epoch of the best monitored value (the early-stopping monitor when set, else val_loss, else train_loss). */
  best_epoch: number | null;
  best_metrics: EpochRecord | null;
  final_metrics: EpochRecord | null;
  /**
   * Folder holding model.json, weights.bin and preprocessing.json (the best weights when restore_best_weights, else the
   * last); null when cancelled, whose models are its checkpoints.
   */
  model_path: string | null;
  /** The best and last epochs' checkpoints (see CheckpointWriter); empty when no epoch completed. */
  checkpoints: Checkpoint[];
  backend: string;
}

/** A new training's tags and group (src/schemas/labels.ts), given to the operation as it is created. */
export interface RunLabels {
  tags?: readonly string[];
  group?: string | null;
}

/** What the API needs from whoever runs trainings (local workers, GPU hosts). */
export interface Trainers {
  /**
   * Creates the training operation, labelled, and starts or queues it (a built-in spec: local or host; slurm is a 400
   * naming body.target).
   */
  start(spec: TrainingSpecInput, target?: Target, labels?: RunLabels): Promise<Operation>;
  /** Stops a pending or running operation; returns a note to record (e.g. host unreachable), or null. */
  cancel(op: Operation): Promise<Record<string, unknown> | null>;
  /** A checkpoint the operation's training kept (locally, or fetched from its host), as a tar; CHECKPOINT_NOT_FOUND when gone. */
  checkpoint(op: Operation, epoch: number): Promise<Uint8Array>;
  describe(): Record<string, unknown>;
  /**
   * Creates a script training from a declared recipe and hands it to its executor (src/executors): 400 for an
   * undeclared recipe, bad params, or a target the recipe does not allow or this server has no executor for.
   */
  startRecipe?(req: RecipeRequest, labels?: RunLabels): Promise<Operation>;
  /** The recipes this server and its GPU hosts declare. */
  recipes?(): Promise<RecipeList>;
  /** The last `tail` lines a script training printed (from its host for a host training). */
  logs?(op: Operation, tail: number): Promise<LogLines>;
  /** Its log as an SSE byte stream: the tail, then live lines, then `end`. */
  logStream?(op: Operation, tail: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>>;
}
