// Model export: the trained weights as a standard TF.js layers model (model.json + weights.bin, what tf.loadLayersModel
// reads) beside preprocessing.json (what inference must do to raw features). The final model and every checkpoint folder
// (checkpoints.ts) are written here, each file through a temporary and a rename.

import * as tf from "@tensorflow/tfjs";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NormalizedSpec } from "../schemas/spec.ts";
import type { SplitDataset } from "./datasets/split.ts";
import { paramShapes, type MlpArch } from "./model.ts";

/** The same network as a standard TF.js layers model (Dense + Dropout, softmax/sigmoid/linear output) holding `params`. */
export function toLayersModel(arch: MlpArch, params: readonly Float32Array[]): tf.Sequential {
  const model = tf.sequential();
  arch.hidden.forEach((units, l) => {
    model.add(
      tf.layers.dense({
        units,
        activation: arch.activation,
        name: `dense_${l}`,
        ...(l === 0 ? { inputShape: [arch.inputs] } : {}),
      }),
    );
    if (arch.dropout > 0) model.add(tf.layers.dropout({ rate: arch.dropout, name: `dropout_${l}` }));
  });
  model.add(
    tf.layers.dense({
      units: arch.outputs,
      activation: arch.head,
      name: "output",
      ...(arch.hidden.length === 0 ? { inputShape: [arch.inputs] } : {}),
    }),
  );
  const shapes = paramShapes(arch);
  const tensors = params.map((v, i) => tf.tensor(v, shapes[i]));
  model.setWeights(tensors);
  tf.dispose(tensors);
  return model;
}

/**
 * Writes `dir`/model.json + weights.bin (the format tf.loadLayersModel reads) through a custom save handler, since
 * TF.js's file:// handler needs tfjs-node. Files are written to temporaries and renamed, so a reader never sees half a model.
 */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights =
        artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const json = {
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs ?? [] }],
      };
      writeAtomic(join(dir, "weights.bin"), new Uint8Array(weights));
      writeAtomic(join(dir, "model.json"), JSON.stringify(json));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: "JSON",
          weightDataBytes: weights.byteLength,
        },
      };
    }),
  );
}

export function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** model.json + weights.bin (a TF.js layers model) and preprocessing.json (what inference must do to raw features). */
export async function saveModel(
  dir: string,
  arch: MlpArch,
  params: Float32Array[],
  data: SplitDataset,
  spec: NormalizedSpec,
): Promise<void> {
  const model = toLayersModel(arch, params);
  try {
    await saveLayersModel(model, dir);
  } finally {
    model.dispose();
  }
  const preprocessing = {
    features: data.featureNames,
    standardize: { mean: Array.from(data.mean), std: Array.from(data.std) },
    task: data.task,
    classes: data.classes,
    output: arch.head,
    label: spec.dataset.kind === "csv" ? spec.dataset.label : null,
  };
  writeAtomic(join(dir, "preprocessing.json"), JSON.stringify(preprocessing, null, 2));
}
