// The trend core's public surface: pure functions over plain epoch data, free of I/O (enforced by tests/trends_purity.test.ts).

export * from "./types.ts";
export * from "./history.ts";
export * from "./regression.ts";
export * from "./overfitting.ts";
export * from "./divergence.ts";
export * from "./summary.ts";
export * from "./smoothing.ts";
export * from "./downsample.ts";
export * from "./recommend.ts";
export * from "./early_stopping.ts";
export * from "./reduce_on_plateau.ts";
export * from "./noise.ts";
export * from "./stalled.ts";
export * from "./checkpoint.ts";
export * from "./format.ts";
export * from "./analysis.ts";
export * from "./ranking.ts";
