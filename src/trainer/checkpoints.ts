/**
 * Checkpoints on disk: `<modelsDir>/<operationId>/checkpoints/epoch-<N>/` holds model.json, weights.bin and
 * preprocessing.json (the layers model the final save writes). A training keeps two: its best epoch and its last
 * completed one; a folder no longer either is removed. Reading one back as a tar is the download route's half.
 */
import { existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { TrainwatchError } from "../errors.ts";
import { CHECKPOINT_FILES, type Checkpoint } from "../schemas/checkpoint.ts";
import { tar } from "../tar.ts";

/**
 * Checkpoints are written while training at most this often (at an epoch's end), and always when the loop ends. Writing
 * every epoch would cost a model save per epoch (a few ms; tiny epochs take tens of ms), so a crash can lose at most
 * this much; a cancel, an early stop or a failure in the loop loses nothing.
 */
export const CHECKPOINT_INTERVAL_MS = 2000;

/** The weights after one completed epoch, kept in memory until written. */
export interface Snapshot {
  epoch: number;
  weights: Float32Array[];
}

/** Where a training's checkpoint of `epoch` lives. Refuses an id that could leave `modelsDir` (ids are server-made). */
export function checkpointDir(modelsDir: string, operationId: string, epoch: number): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(operationId) || operationId.startsWith(".")) {
    throw new TrainwatchError(
      "VALIDATION_ERROR",
      `operation id ${JSON.stringify(operationId)} cannot name a checkpoint folder`,
      { field: "params.id" },
    );
  }
  return join(modelsDir, operationId, "checkpoints", `epoch-${epoch}`);
}

/**
 * Writes a training's best and last checkpoints. `save` writes one model folder (the engine's saveModel). A folder is
 * written once per epoch (best and last of the same epoch share it) into a temporary name and renamed, so a reader never
 * sees a half-written checkpoint; folders of epochs that are no longer best or last are removed after the new ones exist.
 */
export class CheckpointWriter {
  private readonly onDisk = new Set<number>();
  private kept: Checkpoint[] = [];

  constructor(
    private readonly modelsDir: string,
    private readonly operationId: string,
    private readonly save: (dir: string, weights: Float32Array[]) => Promise<void>,
  ) {}

  /** The checkpoints written so far, best first. */
  get list(): Checkpoint[] {
    return this.kept;
  }

  /** Makes best and last (either may be null) the kept checkpoints; returns the new list and whether it changed. */
  async keep(best: Snapshot | null, last: Snapshot | null): Promise<{ checkpoints: Checkpoint[]; changed: boolean }> {
    const wanted: [Checkpoint["kind"], Snapshot][] = [];
    if (best) wanted.push(["best", best]);
    if (last) wanted.push(["last", last]);
    for (const [, snap] of wanted) {
      if (this.onDisk.has(snap.epoch)) continue;
      const dir = checkpointDir(this.modelsDir, this.operationId, snap.epoch);
      const tmp = `${dir}.tmp`;
      rmSync(tmp, { recursive: true, force: true });
      await this.save(tmp, snap.weights);
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      this.onDisk.add(snap.epoch);
    }
    const keepEpochs = new Set(wanted.map(([, s]) => s.epoch));
    for (const epoch of [...this.onDisk]) {
      if (keepEpochs.has(epoch)) continue;
      rmSync(checkpointDir(this.modelsDir, this.operationId, epoch), { recursive: true, force: true });
      this.onDisk.delete(epoch);
    }
    const next = wanted.map(([kind, s]) => ({
      epoch: s.epoch,
      kind,
      path: checkpointDir(this.modelsDir, this.operationId, s.epoch),
    }));
    const changed = JSON.stringify(next) !== JSON.stringify(this.kept);
    this.kept = next;
    return { checkpoints: next, changed };
  }
}

/** The checkpoint folder as a tar of its three files; CHECKPOINT_NOT_FOUND when the folder (or a file) is not there. */
export function checkpointTar(dir: string, notFound: () => TrainwatchError): Uint8Array {
  if (!existsSync(dir)) throw notFound();
  try {
    const mtime = Math.floor(Date.now() / 1000);
    return tar(CHECKPOINT_FILES.map((name) => ({ name, data: readFileSync(join(dir, name)), mtime })));
  } catch (err) {
    // Removed between the check and the read: a newer best or last replaced it.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw notFound();
    throw err;
  }
}
