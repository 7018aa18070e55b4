// The in-memory dataset every loader produces: flat row-major Float32Arrays on the host, so batches are cheap copies.

import type { NormalizedDataset } from "../../schemas/spec.ts";
import { readCsvDataset } from "./csv.ts";
import { generateSynthetic } from "./synthetic.ts";

export type Task = "classification" | "regression";

export interface Dataset {
  /** Features, row-major: rows × featureNames.length. */
  x: Float32Array;
  /** Per row: the class index (classification) or the target (regression). */
  y: Float32Array;
  rows: number;
  featureNames: string[];
  task: Task;
  /** Class names, index = class id (classification only). */
  classes: string[] | null;
}

/** Loads or generates the dataset a spec names. Throws TrainwatchError (TRAINING_FAILED) naming row and column for bad CSV data. */
export function loadDataset(spec: NormalizedDataset): Dataset {
  return spec.kind === "synthetic" ? generateSynthetic(spec) : readCsvDataset(spec);
}
