// Generated datasets, deterministic for their seed: spirals (learnable), overfit (built to overfit) and random_walk
// (a trading-flavoured series with indicator features).

import type { NormalizedDataset } from "../../schemas/spec.ts";
import type { Dataset } from "./dataset.ts";
import { Rng } from "./prng.ts";

type SyntheticSpec = Extract<NormalizedDataset, { kind: "synthetic" }>;

export function generateSynthetic(spec: SyntheticSpec): Dataset {
  const rng = new Rng(spec.seed);
  switch (spec.generator) {
    case "spirals":
      return spirals(spec.samples, spec.features, spec.classes, rng);
    case "overfit":
      return overfit(spec.samples, spec.features, rng);
    case "random_walk":
      return randomWalk(spec.samples, spec.features, rng);
  }
}

/**
 * `classes` interleaved arms (class = arm) of 3/4 turn each, radius growing from 0 to 1, with angular noise; columns
 * beyond the two coordinates are pure N(0, 1) noise.
 */
export function spirals(samples: number, features: number, classes: number, rng: Rng): Dataset {
  const x = new Float32Array(samples * features);
  const y = new Float32Array(samples);
  for (let i = 0; i < samples; i++) {
    const arm = i % classes;
    const r = rng.next();
    const angle = (2 * Math.PI * arm) / classes + 1.5 * Math.PI * r + 0.25 * rng.normal();
    x[i * features] = r * Math.cos(angle);
    x[i * features + 1] = r * Math.sin(angle);
    for (let j = 2; j < features; j++) x[i * features + j] = rng.normal();
    y[i] = arm;
  }
  const classNames = Array.from({ length: classes }, (_, k) => `arm_${k}`);
  return {
    x,
    y,
    rows: samples,
    featureNames: names("coord", features, ["x", "y"]),
    task: "classification",
    classes: classNames,
  };
}

/**
 * Binary labels from 3 of the `features` N(0, 1) columns (label = x0 + x1 − x2 > 0), then 20 % of labels flipped. Few rows
 * and many irrelevant columns: a 64-32 MLP memorises the noise, so its train loss keeps falling while its validation loss
 * turns up within ~30 epochs.
 */
export function overfit(samples: number, features: number, rng: Rng): Dataset {
  const x = new Float32Array(samples * features);
  const y = new Float32Array(samples);
  for (let i = 0; i < samples; i++) {
    for (let j = 0; j < features; j++) x[i * features + j] = rng.normal();
    const signal =
      x[i * features]! + (features > 1 ? x[i * features + 1]! : 0) - (features > 2 ? x[i * features + 2]! : 0);
    const label = signal > 0 ? 1 : 0;
    y[i] = rng.next() < 0.2 ? 1 - label : label;
  }
  return { x, y, rows: samples, featureNames: names("x", features), task: "classification", classes: ["0", "1"] };
}

const WARMUP = 20;

/**
 * A geometric random walk whose log returns have weak momentum (r = 0.08·r₋₁ + σ·ε) and slowly switching volatility
 * regimes. Features per day: the last `lags` returns, then gaps to the 5- and 20-day moving averages, a 14-day RSI,
 * 10-day volatility, 10-day momentum and the 20-day z-score. Label: the next day's move, up (1) or down (0).
 */
export function randomWalk(samples: number, lags: number, rng: Rng): Dataset {
  const days = samples + WARMUP + 1;
  const price = new Float64Array(days);
  const ret = new Float64Array(days);
  price[0] = 100;
  let sigma = 0.01;
  for (let t = 1; t < days; t++) {
    if (rng.next() < 0.02) sigma = rng.next() < 0.5 ? 0.006 : 0.02;
    ret[t] = 0.08 * ret[t - 1]! + sigma * rng.normal();
    price[t] = price[t - 1]! * Math.exp(ret[t]!);
  }
  const indicators = ["ma5_gap", "ma20_gap", "rsi14", "volatility10", "momentum10", "zscore20"];
  const featureNames = [...Array.from({ length: lags }, (_, k) => `return_lag${k}`), ...indicators];
  const f = featureNames.length;
  const x = new Float32Array(samples * f);
  const y = new Float32Array(samples);
  const mean = (from: number, to: number, a: Float64Array) => {
    let s = 0;
    for (let k = from; k <= to; k++) s += a[k]!;
    return s / (to - from + 1);
  };
  const std = (from: number, to: number, a: Float64Array) => {
    const m = mean(from, to, a);
    let s = 0;
    for (let k = from; k <= to; k++) s += (a[k]! - m) ** 2;
    return Math.sqrt(s / (to - from + 1));
  };
  for (let i = 0; i < samples; i++) {
    const t = i + WARMUP;
    const row = i * f;
    for (let k = 0; k < lags; k++) x[row + k] = t - k >= 1 ? ret[t - k]! : 0;
    let gains = 0;
    let losses = 0;
    for (let k = t - 13; k <= t; k++) ret[k]! > 0 ? (gains += ret[k]!) : (losses -= ret[k]!);
    const ma20 = mean(t - 19, t, price);
    x[row + lags] = price[t]! / mean(t - 4, t, price) - 1;
    x[row + lags + 1] = price[t]! / ma20 - 1;
    x[row + lags + 2] = gains + losses > 0 ? gains / (gains + losses) : 0.5;
    x[row + lags + 3] = std(t - 9, t, ret);
    x[row + lags + 4] = price[t]! / price[t - 10]! - 1;
    x[row + lags + 5] = (price[t]! - ma20) / (std(t - 19, t, price) || 1);
    y[i] = ret[t + 1]! > 0 ? 1 : 0;
  }
  return { x, y, rows: samples, featureNames, task: "classification", classes: ["down", "up"] };
}

function names(prefix: string, count: number, first: string[] = []): string[] {
  return Array.from({ length: count }, (_, j) => first[j] ?? `${prefix}_${j}`);
}
