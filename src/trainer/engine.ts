// The training loop: batches built on the host, a hand-derived forward/backward pass per batch, one device read per
// epoch, Keras-rule early stopping and reduce-on-plateau, the best and last epochs kept as checkpoints, and the model
// saved at the end. Runs wherever TF.js runs; in production inside a worker (worker.ts). The network is model.ts (shape,
// initial weights) and maths.ts (forward/backward); batches.ts builds the batches and sums each epoch; export.ts writes
// the model and checkpoint folders.

import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { TrainwatchError } from "../errors.ts";
import type { EpochRecord } from "../schemas/epoch.ts";
import type { NormalizedSpec } from "../schemas/spec.ts";
import { earlyStoppingInit, earlyStoppingStep, type EarlyStoppingState } from "../trends/early_stopping.ts";
import { reduceOnPlateauInit, reduceOnPlateauStep } from "../trends/reduce_on_plateau.ts";
import { activateBackend, selectBackend, type BackendName } from "./backend.ts";
import { chunks, disposeBatch, evaluateChunk, heldOutLoss, makeBatch, readTotals, Totals } from "./batches.ts";
import { CHECKPOINT_INTERVAL_MS, CheckpointWriter, type Snapshot } from "./checkpoints.ts";
import { loadDataset } from "./datasets/dataset.ts";
import { Rng } from "./datasets/prng.ts";
import { holdOut, splitDataset, standardizeRows, type SplitDataset } from "./datasets/split.ts";
import { saveModel } from "./export.ts";
import { tidy, trainStep, type HeadPlacement, type StepResult } from "./maths.ts";
import { initParams, mlpArch, paramShapes } from "./model.ts";
import { createParamStore, placementFor, type Placement } from "./optimizer.ts";
import { RUN, STOP, type TrainingEvents, type TrainingResult } from "./types.ts";

export interface RunOptions {
  modelsDir: string;
  operationId: string;
  /** Shared flag (SharedArrayBuffer): RUN, CANCEL or STOP (types.ts). Checked before every batch. */
  cancelFlag?: Int32Array;
  /** Where the optimizer runs; default: host for wasm/cpu, device otherwise (see optimizer.ts). */
  placement?: Placement;
  /** Run on this backend (benchmarks); default: selectBackend(), i.e. TRAINWATCH_BACKEND or the best available. */
  backend?: BackendName;
  /**
   * Benchmarks only: `rows` rows taken out of the dataset before the train/validation split, and their loss (per row, with
   * the evaluation pass of validation) handed to `onEpoch` after every epoch. It never enters the reported EpochRecord.
   */
  heldOut?: { rows: number; onEpoch(epoch: number, loss: number): void };
}

const PROGRESS_INTERVAL_MS = 250;

/** Runs one training to its end (all epochs, early stop or cancel) and returns how it ended. */
export async function runTraining(
  spec: NormalizedSpec,
  opts: RunOptions,
  events: TrainingEvents,
): Promise<TrainingResult> {
  const backend = opts.backend ? await activateBackend(opts.backend) : await selectBackend();
  const loaded = loadDataset(spec.dataset);
  const held = opts.heldOut ? holdOut(loaded, opts.heldOut.rows, spec.training.seed) : null;
  const data = splitDataset(held?.kept ?? loaded, spec.training.validation_split, spec.training.seed);
  if (held) standardizeRows(held.held, data);
  checkMonitors(spec, data);
  const arch = mlpArch(spec.model, data.features, data.task, data.classes?.length ?? 0);
  const t = spec.training;
  const batchSize = Math.min(t.batch_size, data.train.rows);
  const batches = Math.ceil(data.train.rows / batchSize);
  const root = new Rng((t.seed ^ 0x5bd1e995) >>> 0);
  const initRng = root.fork();
  const shuffleRng = root.fork();
  const dropoutRng = root.fork();
  /** RUN, CANCEL or STOP (types.ts): what the main thread asked for before this batch. */
  const flag = () => (opts.cancelFlag === undefined ? RUN : Atomics.load(opts.cancelFlag, 0));

  events.onStart({
    backend: backend.backend,
    backend_fallback_reason: backend.backend_fallback_reason,
    gpu: backend.gpu,
    gpu_visible: backend.gpu_visible,
    samples_train: data.train.rows,
    samples_val: data.val?.rows ?? 0,
    batches_per_epoch: batches,
    total_epochs: t.epochs,
    task: data.task,
    ...(data.classes ? { classes: data.classes } : {}),
  });

  const store = createParamStore(
    opts.placement ?? placementFor(backend.backend),
    initParams(arch, initRng),
    paramShapes(arch),
    {
      name: t.optimizer,
      weightDecay: t.weight_decay,
    },
  );
  // The optimizer's placement decides the head's too: both run in JS exactly when the tensors live in host memory.
  const head: HeadPlacement = store.placement;
  const valChunks = data.val ? chunks(data.val, arch) : [];
  const heldChunks = held ? chunks(held.held, arch) : [];
  const records: EpochRecord[] = [];
  const delivered: Promise<unknown>[] = [];
  let deliveryError: unknown = null;
  const es = t.early_stopping;
  let esState: EarlyStoppingState = earlyStoppingInit();
  /** What restore_best_weights restores (Keras's rule, which can differ from `best` when nothing has improved yet). */
  let restoreWeights: Float32Array[] | null = null;
  const bestKey = data.val ? "val_loss" : "train_loss";
  let best: EpochRecord | null = null;
  let bestSnap: Snapshot | null = null;
  let lastSnap: Snapshot | null = null;
  const checkpoints = new CheckpointWriter(opts.modelsDir, opts.operationId, (dir, weights) =>
    saveModel(dir, arch, weights, data, spec),
  );
  let checkpointedAt = performance.now();
  /** The loop ended and its checkpoints were written: a later failure (delivery, final save) leaves them as they are. */
  let loopEnded = false;
  const writeCheckpoints = async () => {
    const { checkpoints: list, changed } = await checkpoints.keep(bestSnap, lastSnap);
    checkpointedAt = performance.now();
    if (changed) await (events.onCheckpoints?.(list) as unknown);
  };
  const lrCfg = t.lr_schedule.kind === "reduce_on_plateau" ? t.lr_schedule : null;
  let lrState = lrCfg ? reduceOnPlateauInit(lrCfg) : null;
  let lr = t.learning_rate;
  let stopReason: TrainingResult["stop_reason"] = "completed";
  const order = Uint32Array.from({ length: data.train.rows }, (_, i) => i);
  let lastProgress = performance.now();

  try {
    epochs: for (let epoch = 0; epoch < t.epochs; epoch++) {
      const started = performance.now();
      const lrUsed = lr;
      shuffleRng.shuffle(order);
      const train = new Totals();
      try {
        for (let b = 0; b < batches; b++) {
          const asked = flag();
          if (asked !== RUN) {
            stopReason = asked === STOP ? "stop_requested" : "cancelled";
            break epochs;
          }
          const n = Math.min(batchSize, data.train.rows - b * batchSize);
          const batch = makeBatch(data.train, order, b * batchSize, n, arch, dropoutRng, head === "device");
          let step: StepResult;
          try {
            step = tidy(() => trainStep(arch, store.params, batch, head));
          } finally {
            disposeBatch(batch);
          }
          try {
            store.apply(step.grads, lrUsed);
          } finally {
            tf.dispose(step.grads);
          }
          train.add(step.lossSum, step.correct);
          const now = performance.now();
          if (now - lastProgress >= PROGRESS_INTERVAL_MS) {
            lastProgress = now;
            notify(events, { epoch, batch: b + 1, batches });
          }
        }
        const val = new Totals();
        try {
          for (const c of valChunks) val.add(...evaluateChunk(arch, store.params, c));
          // The epoch's one device→host read: all four sums at once.
          const [trainLoss, trainCorrect, valLoss, valCorrect] = readTotals(train, val);
          const classification = arch.head !== "linear";
          const record: EpochRecord = {
            epoch,
            train_loss: trainLoss! / data.train.rows,
            ...(data.val ? { val_loss: valLoss! / data.val.rows } : {}),
            ...(classification ? { train_accuracy: trainCorrect! / data.train.rows } : {}),
            ...(classification && data.val ? { val_accuracy: valCorrect! / data.val.rows } : {}),
            learning_rate: lrUsed,
            duration: (performance.now() - started) / 1000,
            timestamp: new Date().toISOString(),
          };
          records.push(record);
          // Not awaited: the next epoch starts while the main thread stores this one. The
          // acknowledgements are collected and awaited before the result is returned, since
          // the result travels on another channel and must not overtake the last epoch.
          delivered.push(
            Promise.resolve(events.onEpoch(record) as unknown).catch((err: unknown) => void (deliveryError ??= err)),
          );
        } finally {
          val.dispose();
        }
      } finally {
        train.dispose();
      }
      const record = records[records.length - 1]!;
      // One host copy per epoch: the last checkpoint must hold this epoch's weights even when a cancel or a failure
      // comes in the middle of the next one.
      const weights = store.read();
      lastSnap = { epoch, weights };
      if (held && opts.heldOut)
        opts.heldOut.onEpoch(epoch, heldOutLoss(arch, store.params, heldChunks) / held.held.rows);

      let stop = false;
      if (es) {
        const current = metric(record, es.monitor);
        const step = earlyStoppingStep(es, esState, epoch, current);
        esState = step.state;
        stop = step.stop;
        // Keras keeps the weights of the best epoch (and of the first monitored one, before anything improved).
        if (
          es.restore_best_weights &&
          current != null &&
          epoch >= es.start_from_epoch &&
          esState.best_epoch === epoch
        ) {
          restoreWeights = weights;
        }
      }
      best = nextBest(best, record, bestKey, es ? esState : null);
      if (best === record) bestSnap = { epoch, weights };
      if (stop) {
        stopReason = "early_stopping";
        break;
      }
      if (lrCfg && lrState) {
        const step = reduceOnPlateauStep(lrCfg, lrState, lr, metric(record, lrCfg.monitor));
        lrState = step.state;
        lr = step.lr;
      }
      if (performance.now() - checkpointedAt >= CHECKPOINT_INTERVAL_MS) await writeCheckpoints();
    }
    // First thing after the loop: a cancelled worker is terminated after a short grace period.
    await writeCheckpoints();
    loopEnded = true;

    await Promise.all(delivered);
    if (deliveryError !== null) throw deliveryError;
    let modelPath: string | null = null;
    if (stopReason !== "cancelled") {
      // A stop asked mid-epoch keeps the last completed epoch's weights, the ones its metrics describe.
      if (restoreWeights) store.write(restoreWeights);
      else if (stopReason === "stop_requested" && lastSnap) store.write(lastSnap.weights);
      modelPath = join(opts.modelsDir, opts.operationId);
      await saveModel(modelPath, arch, store.read(), data, spec);
    }
    return {
      stop_reason: stopReason,
      epochs_run: records.length,
      best_epoch: best?.epoch ?? null,
      best_metrics: best,
      final_metrics: records[records.length - 1] ?? null,
      model_path: modelPath,
      checkpoints: checkpoints.list,
      backend: backend.backend,
    };
  } catch (err) {
    // A failure after some epochs still leaves their best and last checkpoints (listed through onCheckpoints).
    if (lastSnap && !loopEnded) {
      await writeCheckpoints().catch((e: unknown) =>
        console.error(
          `[trainer] ${opts.operationId}: writing checkpoints after the failure failed:`,
          e instanceof Error ? e.message : e,
        ),
      );
    }
    throw err;
  } finally {
    store.dispose();
    for (const c of [...valChunks, ...heldChunks]) disposeBatch(c);
  }
}

function metric(record: EpochRecord, name: string): number | null | undefined {
  return (record as unknown as Record<string, number | null | undefined>)[name];
}

function checkMonitors(spec: NormalizedSpec, data: SplitDataset): void {
  const watched: [string, string][] = [];
  if (spec.training.early_stopping)
    watched.push(["training.early_stopping.monitor", spec.training.early_stopping.monitor]);
  if (spec.training.lr_schedule.kind === "reduce_on_plateau")
    watched.push(["training.lr_schedule.monitor", spec.training.lr_schedule.monitor]);
  for (const [field, monitor] of watched) {
    if (monitor.startsWith("val_") && !data.val)
      throw new TrainwatchError("TRAINING_FAILED", `${field}: ${monitor} needs validation_split > 0`);
    if (monitor.endsWith("accuracy") && data.task !== "classification") {
      throw new TrainwatchError(
        "TRAINING_FAILED",
        `${field}: ${monitor} needs a classification dataset; this one is ${data.task}`,
      );
    }
  }
}

/**
 * The best epoch after `r`, given the best before it: the early-stopping monitor's best when early stopping runs (`es`,
 * already stepped with `r`; none while nothing improved), else the lowest finite `key` (val_loss when there is a
 * validation split, else train_loss; ties keep the earlier epoch).
 */
function nextBest(
  best: EpochRecord | null,
  r: EpochRecord,
  key: "val_loss" | "train_loss",
  es: EarlyStoppingState | null,
): EpochRecord | null {
  if (es) return es.best === null ? null : es.best_epoch === r.epoch ? r : best;
  const v = r[key];
  return typeof v === "number" && Number.isFinite(v) && (best === null || v < (best[key] as number)) ? r : best;
}

function notify(events: TrainingEvents, p: { epoch: number; batch: number; batches: number }): void {
  // Not awaited, so progress never slows training; a worker proxy returns a promise whose failure must still be seen.
  const pending = events.onProgress(p) as unknown;
  if (pending instanceof Promise) pending.catch((err) => console.error("[trainer] progress event failed:", err));
}
