// Picks the TF.js backend a training runs on: TensorFlow with a GPU, TensorFlow on the CPU, WASM (SIMD), then plain JS.
// The native packages are optional dependencies whose install can fail, so they are only ever imported dynamically.

import * as tf from "@tensorflow/tfjs";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { TrainwatchError } from "../errors.ts";
import { BACKEND_NAMES, type BackendName } from "./types.ts";
import type { BackendReport } from "../schemas/host.ts";

export { BACKEND_NAMES, type BackendName };

/** The backend report (schemas/host.ts BackendReport, the one declaration of these names) for a backend this code loads. */
export type BackendInfo = BackendReport & { backend: BackendName };

const NATIVE_PACKAGE = { "tensorflow-gpu": "@tensorflow/tfjs-node-gpu", tensorflow: "@tensorflow/tfjs-node" } as const;

let selected: { key: string; info: Promise<BackendInfo> } | null = null;

/**
 * Activates the best loadable backend, in order tensorflow-gpu (needs a visible NVIDIA GPU) → tensorflow → wasm → cpu,
 * logging one console.warn line per backend skipped. TRAINWATCH_BACKEND (one of BACKEND_NAMES) forces one and throws
 * TRAINING_FAILED when it cannot load. The choice is made once per process (a worker is one process for TF.js).
 */
export function selectBackend(env: Record<string, string | undefined> = process.env): Promise<BackendInfo> {
  const key = env.TRAINWATCH_BACKEND?.trim() ?? "";
  if (selected?.key !== key) selected = { key, info: choose(key, env) };
  return selected.info;
}

async function choose(forced: string, env: Record<string, string | undefined>): Promise<BackendInfo> {
  if (forced !== "") {
    if (!(BACKEND_NAMES as readonly string[]).includes(forced)) {
      throw new TrainwatchError(
        "TRAINING_FAILED",
        `TRAINWATCH_BACKEND=${forced} is not one of ${BACKEND_NAMES.join(", ")}`,
      );
    }
    try {
      return { ...(await activateBackend(forced as BackendName, env)), backend_fallback_reason: null };
    } catch (err) {
      throw new TrainwatchError("TRAINING_FAILED", `TRAINWATCH_BACKEND=${forced} cannot be used: ${messageOf(err)}`, {
        backend: forced,
      });
    }
  }
  const reasons: string[] = [];
  for (const name of BACKEND_NAMES) {
    try {
      const info = await activateBackend(name, env);
      return { ...info, backend_fallback_reason: reasons.length > 0 ? reasons.join("; ") : null };
    } catch (err) {
      const reason = `${name}: ${messageOf(err)}`;
      console.warn(`[trainwatch] backend ${reason} (falling back)`);
      reasons.push(reason);
    }
  }
  throw new TrainwatchError("TRAINING_FAILED", `no TF.js backend could be loaded: ${reasons.join("; ")}`);
}

/** Loads and activates one backend, or throws an Error saying why it cannot run here. */
export async function activateBackend(
  name: BackendName,
  env: Record<string, string | undefined> = process.env,
): Promise<BackendInfo> {
  let gpu: string | null = null;
  let tfName: string = name;
  switch (name) {
    case "tensorflow-gpu":
      gpu = visibleGpu(env);
      if (gpu === null)
        throw new Error("no NVIDIA GPU visible (no /proc/driver/nvidia/gpus entry, or CUDA_VISIBLE_DEVICES hides it)");
      await importOptional(NATIVE_PACKAGE[name]);
      tfName = "tensorflow";
      break;
    case "tensorflow":
      await importOptional(NATIVE_PACKAGE[name]);
      break;
    case "wasm": {
      const wasm = await import("@tensorflow/tfjs-backend-wasm");
      // The .wasm binaries ship in the package's dist/; in Bun and Node they are read from disk, not fetched.
      const require = createRequire(import.meta.url);
      wasm.setWasmPaths(`${join(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "dist")}/`);
      break;
    }
    case "cpu":
      break;
  }
  if (tf.findBackendFactory(tfName) === null && tf.findBackend(tfName) === null) {
    throw new Error(`the package loaded but registered no "${tfName}" backend`);
  }
  // setBackend resolves false (after logging the cause itself) when the backend's initialisation fails.
  if (!(await tf.setBackend(tfName)))
    throw new Error(`initialising the "${tfName}" backend failed (see the error logged above)`);
  await tf.ready();
  return { backend: name, backend_fallback_reason: null, gpu, gpu_visible: gpu ?? visibleGpu(env) };
}

async function importOptional(pkg: string): Promise<void> {
  try {
    await import(pkg);
  } catch (err) {
    throw new Error(`${pkg} cannot be loaded: ${messageOf(err)}`);
  }
}

/**
 * Model name of the first NVIDIA GPU the driver exposes ("NVIDIA H100 80GB HBM3", "… (×2)" for several), else null.
 * Reads `root`/<bus id>/information, whose "Model:" line names the card.
 */
export function visibleGpu(
  env: Record<string, string | undefined> = process.env,
  root = "/proc/driver/nvidia/gpus",
): string | null {
  const visible = env.CUDA_VISIBLE_DEVICES?.trim();
  if (visible === "" || visible === "-1" || visible === "none") return null;
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return null; // No NVIDIA driver on this machine: not an error, just no GPU.
  }
  const models = entries.map((entry) => {
    try {
      return (
        /^Model:\s*(.+)$/m.exec(readFileSync(join(root, entry, "information"), "utf8"))?.[1]?.trim() ?? "NVIDIA GPU"
      );
    } catch {
      return "NVIDIA GPU";
    }
  });
  if (models.length === 0) return null;
  return models.length === 1 ? models[0]! : `${models[0]} (×${models.length})`;
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
}
