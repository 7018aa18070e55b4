// Keras 3 EarlyStopping (keras/src/callbacks/early_stopping.py) as a pure state machine, so the server can predict or replay
// exactly when a Keras-style run stops.

export interface EarlyStoppingConfig {
  monitor: string;
  patience: number;
  min_delta: number;
  mode: "min" | "max" | "auto";
  baseline: number | null;
  restore_best_weights: boolean;
  start_from_epoch: number;
}

/** `best` null stands for Keras's initial ±inf (nothing monitored has improved yet). */
export interface EarlyStoppingState {
  wait: number;
  best: number | null;
  best_epoch: number;
  stopped_epoch: number;
}

/** The comparison direction. "auto" → "max" when the monitor name contains "acc" or "auc", else "min" (a stand-in for Keras 3's lookup of the metric's direction, which needs the model). */
export function earlyStoppingMode(cfg: Pick<EarlyStoppingConfig, "monitor" | "mode">): "min" | "max" {
  if (cfg.mode === "min" || cfg.mode === "max") return cfg.mode;
  return cfg.monitor.includes("acc") || cfg.monitor.includes("auc") ? "max" : "min";
}

/**
 * Keras's `_is_improvement`: min mode a + |min_delta| < ref, max mode a − |min_delta| > ref; a null ref is Keras's ±inf.
 * NaN compares false, so a NaN never improves (nor does +inf in min mode).
 */
function isImprovement(mode: "min" | "max", minDelta: number, a: number, ref: number | null): boolean {
  const delta = Math.abs(minDelta);
  return mode === "min" ? a + delta < (ref ?? Infinity) : a - delta > (ref ?? -Infinity);
}

/** Fresh state, as after Keras's on_train_begin: wait 0, no best, best_epoch 0, stopped_epoch 0. */
export function earlyStoppingInit(): EarlyStoppingState {
  return { wait: 0, best: null, best_epoch: 0, stopped_epoch: 0 };
}

/**
 * One on_epoch_end. current null/undefined or epoch < start_from_epoch → unchanged. Else wait += 1; if current improves on
 * best (see min_delta rule above): best = current, best_epoch = epoch, and wait = 0 only if baseline is null or current also
 * improves on baseline; never stops on an improving epoch. Otherwise stop when wait ≥ patience and epoch > 0.
 */
export function earlyStoppingStep(
  cfg: EarlyStoppingConfig,
  state: EarlyStoppingState,
  epoch: number,
  current: number | null | undefined,
): { state: EarlyStoppingState; improved: boolean; stop: boolean } {
  if (current === null || current === undefined || epoch < cfg.start_from_epoch)
    return { state, improved: false, stop: false };
  const mode = earlyStoppingMode(cfg);
  const next: EarlyStoppingState = { ...state, wait: state.wait + 1 };
  // Keras snapshots weights (and best_epoch) at the first monitored epoch when restoring; best null with wait 0 marks that epoch.
  if (cfg.restore_best_weights && state.best === null && state.wait === 0) next.best_epoch = epoch;
  if (isImprovement(mode, cfg.min_delta, current, state.best)) {
    next.best = current;
    next.best_epoch = epoch;
    const baseline = cfg.baseline ?? null;
    if (baseline === null || isImprovement(mode, cfg.min_delta, current, baseline)) next.wait = 0;
    return { state: next, improved: true, stop: false };
  }
  if (next.wait >= cfg.patience && epoch > 0) {
    next.stopped_epoch = epoch;
    return { state: next, improved: false, stop: true };
  }
  return { state: next, improved: false, stop: false };
}

/** Replays the rule over `series` with epoch = index (null = metric missing that epoch); the epoch at which training stops, or null. */
export function earlyStoppingStopEpoch(cfg: EarlyStoppingConfig, series: (number | null)[]): number | null {
  let state = earlyStoppingInit();
  for (let epoch = 0; epoch < series.length; epoch++) {
    const step = earlyStoppingStep(cfg, state, epoch, series[epoch]);
    if (step.stop) return epoch;
    state = step.state;
  }
  return null;
}
