// Parameters and their update rule. The same formulas run in two places: on the host (JS over one flat Float32Array),
// for the WASM/CPU backends whose tensors already live in host memory, where a single JS loop beats ~15 tiny kernels per
// weight; and on the device (TF.js ops per variable), for TensorFlow backends, where host round trips would cost.

import * as tf from "@tensorflow/tfjs";
import { GC_AFTER_FLOATS } from "../schemas/memory.ts";
import type { OptimizerName } from "../schemas/spec.ts";

export interface OptimizerConfig {
  name: OptimizerName;
  /** Decoupled (AdamW-style) decay applied before the update: θ −= lr·wd·θ. */
  weightDecay: number;
}

/** Keras defaults: Adam β₁ 0.9, β₂ 0.999; RMSprop ρ 0.9; ε 1e-7 for both. */
const BETA1 = 0.9;
const BETA2 = 0.999;
const RHO = 0.9;
const EPS = 1e-7;

export type Placement = "host" | "device";

/** Trainable parameters plus optimizer state. */
export interface ParamStore {
  readonly placement: Placement;
  /** Current values as tensors in paramShapes order; replaced (old ones disposed) by apply and write. */
  readonly params: readonly tf.Tensor[];
  /** One update with learning rate `lr`. Does not dispose `grads`. */
  apply(grads: readonly tf.Tensor[], lr: number): void;
  /** A host copy of the current values. */
  read(): Float32Array[];
  /** Replaces the values (optimizer state is kept, as Keras does when restoring weights). */
  write(values: readonly Float32Array[]): void;
  dispose(): void;
}

/** Host placement for the backends that compute in host memory (wasm, cpu); device placement otherwise. */
export function placementFor(backend: string): Placement {
  return backend === "wasm" || backend === "cpu" ? "host" : "device";
}

export function createParamStore(
  placement: Placement,
  initial: readonly Float32Array[],
  shapes: readonly number[][],
  cfg: OptimizerConfig,
): ParamStore {
  return placement === "host" ? new HostParams(initial, shapes, cfg) : new DeviceParams(initial, shapes, cfg);
}

class HostParams implements ParamStore {
  readonly placement = "host";
  private readonly theta: Float32Array;
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private readonly offsets: number[];
  private step = 0;
  private garbage = 0;
  private tensors: tf.Tensor[] = [];

  constructor(
    initial: readonly Float32Array[],
    private readonly shapes: readonly number[][],
    private readonly cfg: OptimizerConfig,
  ) {
    this.offsets = [];
    let total = 0;
    for (const p of initial) {
      this.offsets.push(total);
      total += p.length;
    }
    this.theta = new Float32Array(total);
    initial.forEach((p, i) => this.theta.set(p, this.offsets[i]));
    this.m = new Float32Array(cfg.name === "adam" || cfg.name === "adamw" ? total : 0);
    this.v = new Float32Array(cfg.name === "sgd" ? 0 : total);
    this.upload();
  }

  get params(): readonly tf.Tensor[] {
    return this.tensors;
  }

  apply(grads: readonly tf.Tensor[], lr: number): void {
    this.step++;
    const { theta, m, v } = this;
    const decay = 1 - lr * this.cfg.weightDecay;
    const name = this.cfg.name;
    // Adam's bias corrections folded into the step size and ε: lr·m̂/(√v̂ + ε) = a·m/(√v + e).
    const c1 = 1 - BETA1 ** this.step;
    const c2 = Math.sqrt(1 - BETA2 ** this.step);
    const a = (lr * c2) / c1;
    const e = EPS * c2;
    grads.forEach((tensor, k) => {
      const g = tensor.dataSync() as Float32Array;
      const o = this.offsets[k]!;
      for (let j = 0; j < g.length; j++) {
        const i = o + j;
        const gi = g[j]!;
        const w = decay === 1 ? theta[i]! : theta[i]! * decay;
        if (name === "sgd") {
          theta[i] = w - lr * gi;
        } else if (name === "rmsprop") {
          const vi = (v[i] = RHO * v[i]! + (1 - RHO) * gi * gi);
          theta[i] = w - (lr * gi) / (Math.sqrt(vi) + EPS);
        } else {
          const mi = (m[i] = BETA1 * m[i]! + (1 - BETA1) * gi);
          const vi = (v[i] = BETA2 * v[i]! + (1 - BETA2) * gi * gi);
          theta[i] = w - (a * mi) / (Math.sqrt(vi) + e);
        }
      }
    });
    this.upload();
    this.collect(this.theta.length);
  }

  /**
   * Each step reads every gradient into a fresh JS copy (dataSync), garbage once the update is done, which the GC lets
   * pile up (see GC_AFTER_FLOATS). A full collection once that much is pending bounds it; for the default [64, 32]
   * model that is one collection every ~6,000 steps.
   */
  private collect(floats: number): void {
    this.garbage += floats;
    if (this.garbage < GC_AFTER_FLOATS) return;
    this.garbage = 0;
    Bun.gc(true);
  }

  read(): Float32Array[] {
    return this.shapes.map((_, k) => this.view(k).slice());
  }

  write(values: readonly Float32Array[]): void {
    values.forEach((p, k) => this.theta.set(p, this.offsets[k]));
    this.upload();
  }

  dispose(): void {
    tf.dispose(this.tensors);
    this.tensors = [];
  }

  private view(k: number): Float32Array {
    const o = this.offsets[k]!;
    return this.theta.subarray(o, o + this.shapes[k]!.reduce((a, b) => a * b, 1));
  }

  private upload(): void {
    tf.dispose(this.tensors);
    // The CPU backend keeps the array it is given, and theta changes in place, so it gets a copy. WASM copies into its
    // own heap at once: a JS copy there is only garbage, P floats a step waiting for the GC.
    const copy = tf.getBackend() !== "wasm";
    this.tensors = this.shapes.map((shape, k) => tf.tensor(copy ? this.view(k).slice() : this.view(k), shape));
  }
}

let deviceStores = 0;

class DeviceParams implements ParamStore {
  readonly placement = "device";
  private readonly vars: tf.Variable[];
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private step = 0;

  constructor(
    initial: readonly Float32Array[],
    shapes: readonly number[][],
    private readonly cfg: OptimizerConfig,
  ) {
    const id = `trainwatch_${++deviceStores}`;
    // tidy: tf.variable keeps its own reference to the initial value's data, so the initial tensor must go.
    this.vars = initial.map((p, k) => tf.tidy(() => tf.variable(tf.tensor(p, shapes[k]), true, `${id}/param_${k}`)));
    const slots = (used: boolean, slot: string) =>
      used ? this.vars.map((w, k) => tf.tidy(() => tf.variable(tf.zerosLike(w), false, `${id}/${slot}_${k}`))) : [];
    this.m = slots(cfg.name === "adam" || cfg.name === "adamw", "m");
    this.v = slots(cfg.name !== "sgd", "v");
  }

  get params(): readonly tf.Tensor[] {
    return this.vars;
  }

  apply(grads: readonly tf.Tensor[], lr: number): void {
    this.step++;
    const c1 = 1 - BETA1 ** this.step;
    const c2 = Math.sqrt(1 - BETA2 ** this.step);
    const name = this.cfg.name;
    tf.tidy(() => {
      grads.forEach((g, k) => {
        const theta = this.vars[k]!;
        const w = this.cfg.weightDecay > 0 ? tf.mul(theta, 1 - lr * this.cfg.weightDecay) : theta;
        if (name === "sgd") {
          theta.assign(tf.sub(w, tf.mul(g, lr)));
        } else if (name === "rmsprop") {
          const v = tf.add(tf.mul(this.v[k]!, RHO), tf.mul(tf.square(g), 1 - RHO));
          this.v[k]!.assign(v);
          theta.assign(tf.sub(w, tf.div(tf.mul(g, lr), tf.add(tf.sqrt(v), EPS))));
        } else {
          const m = tf.add(tf.mul(this.m[k]!, BETA1), tf.mul(g, 1 - BETA1));
          const v = tf.add(tf.mul(this.v[k]!, BETA2), tf.mul(tf.square(g), 1 - BETA2));
          this.m[k]!.assign(m);
          this.v[k]!.assign(v);
          theta.assign(tf.sub(w, tf.div(tf.mul(m, (lr * c2) / c1), tf.add(tf.sqrt(v), EPS * c2))));
        }
      });
    });
  }

  read(): Float32Array[] {
    return this.vars.map((w) => w.dataSync() as Float32Array).map((a) => a.slice());
  }

  write(values: readonly Float32Array[]): void {
    tf.tidy(() => values.forEach((p, k) => this.vars[k]!.assign(tf.tensor(p, this.vars[k]!.shape))));
  }

  dispose(): void {
    tf.dispose([...this.vars, ...this.m, ...this.v]);
  }
}
