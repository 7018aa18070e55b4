// Keras 3 ReduceLROnPlateau (keras/src/callbacks/reduce_lr_on_plateau.py) as a pure state machine: given this epoch's
// metric and learning rate, the learning rate for the next epoch.

export interface ReduceOnPlateauConfig {
  monitor: string;
  factor: number;
  patience: number;
  min_delta: number;
  cooldown: number;
  min_lr: number;
  mode?: "min" | "max" | "auto";
}

export interface ReduceOnPlateauState {
  best: number;
  wait: number;
  cooldown_counter: number;
}

/** Keras's direction: "min", or "auto" with no "acc" in the monitor name, compares downwards; otherwise upwards (unlike EarlyStopping, "auc" is not recognised). */
function reduceMode(cfg: ReduceOnPlateauConfig): "min" | "max" {
  const mode = cfg.mode ?? "auto";
  return mode === "min" || (mode === "auto" && !cfg.monitor.includes("acc")) ? "min" : "max";
}

/** Fresh state: best = +Infinity (min) / −Infinity (max), wait 0, no cooldown. Throws RangeError for factor ≥ 1, as Keras does. */
export function reduceOnPlateauInit(cfg: ReduceOnPlateauConfig): ReduceOnPlateauState {
  if (cfg.factor >= 1)
    throw new RangeError(`ReduceOnPlateau does not support a factor >= 1.0; received factor=${cfg.factor}`);
  return { best: reduceMode(cfg) === "min" ? Infinity : -Infinity, wait: 0, cooldown_counter: 0 };
}

/**
 * One on_epoch_end; returns the lr for the NEXT epoch. current null/undefined → unchanged. In cooldown: cooldown_counter −= 1,
 * wait = 0. Improvement (min: current < best − min_delta; max: current > best + min_delta) → best = current, wait = 0. Otherwise,
 * if no longer in cooldown (checked after the decrement): wait += 1, and when wait ≥ patience and float32(lr) > float32(min_lr):
 * lr = max(lr·factor, min_lr), cooldown_counter = cooldown, wait = 0.
 */
export function reduceOnPlateauStep(
  cfg: ReduceOnPlateauConfig,
  state: ReduceOnPlateauState,
  lr: number,
  current: number | null | undefined,
): { state: ReduceOnPlateauState; lr: number; reduced: boolean } {
  if (current === null || current === undefined) return { state, lr, reduced: false };
  let { best, wait, cooldown_counter } = state;
  if (cooldown_counter > 0) {
    cooldown_counter -= 1;
    wait = 0;
  }
  const improved = reduceMode(cfg) === "min" ? current < best - cfg.min_delta : current > best + cfg.min_delta;
  let nextLr = lr;
  let reduced = false;
  if (improved) {
    best = current;
    wait = 0;
  } else if (cooldown_counter <= 0) {
    wait += 1;
    // Keras compares float32(lr), read back from the optimizer, with float32(min_lr); comparing in float32 on both sides keeps
    // an lr already clamped to min_lr from being "reduced" again (which would restart the cooldown).
    if (wait >= cfg.patience && Math.fround(lr) > Math.fround(cfg.min_lr)) {
      nextLr = Math.max(lr * cfg.factor, cfg.min_lr);
      cooldown_counter = cfg.cooldown;
      wait = 0;
      reduced = true;
    }
  }
  return { state: { best, wait, cooldown_counter }, lr: nextLr, reduced };
}
