// Gradient-norm explosion rule (step runs): grad_norm far above its recent level. An early warning of its own: the loss
// decides divergence (step_judgement.ts raises it from the gradient only together with a loss spike).

import { cloneBaseline, emptyBaseline, pushBaseline, type Baseline } from "./step_baseline.ts";
import { median } from "./noise.ts";
import { DEFAULT_STEP_CONFIG, type StepConfig, type StepPoint } from "./step_types.ts";

/** The explosions a state keeps (the most recent); `count` counts them all. */
export const MAX_GRAD_EVENTS = 50;

export interface GradEvent {
  /** The first step above the band. */
  step: number;
  /** Peak grad_norm ÷ its level before. */
  size: number;
  /** The step grad_norm was back within its band; null while it is not. */
  end_step: number | null;
}

export interface GradState {
  /** log grad_norm outside explosions. */
  baseline: Baseline;
  /** The explosion under way: the level (log), its band (log), the values (log) since it began. */
  open: { level: number; band: number; post: number[] } | null;
  events: GradEvent[];
  count: number;
}

export const emptyGradState = (): GradState => ({ baseline: emptyBaseline(), open: null, events: [], count: 0 });

/**
 * Advances the gradient rule over `rows` (ascending, each step once; rows without a finite positive grad_norm are
 * skipped). On log grad_norm (a norm grows multiplicatively): a value more than `grad_z` (6) σ above the level (median of
 * the last `grad_window` (64) values outside explosions, σ from their step-to-step MAD) and `grad_min_ratio` (3×) the
 * level's grad_norm opens an explosion; it ends when the median of the last `recover_run` (3) values is back within
 * level + `recover_z` (3) σ.
 */
export function advanceGrad(
  prev: GradState,
  rows: readonly StepPoint[],
  cfg: StepConfig = DEFAULT_STEP_CONFIG,
): GradState {
  const s = cloneGradState(prev);
  for (const row of rows) gradStep(s, row, cfg);
  return s;
}

/** A copy `gradStep` may mutate. */
export const cloneGradState = (prev: GradState): GradState => ({
  ...prev,
  baseline: cloneBaseline(prev.baseline),
  open: prev.open && { ...prev.open, post: prev.open.post.slice() },
  events: prev.events.map((e) => ({ ...e })),
});

/** One row of advanceGrad, mutating `s`. */
export function gradStep(s: GradState, row: StepPoint, cfg: StepConfig = DEFAULT_STEP_CONFIG): void {
  const g = row.grad_norm;
  if (typeof g !== "number" || !Number.isFinite(g) || g <= 0) return;
  const x = Math.log(g);
  if (s.open) {
    const current = s.events[s.events.length - 1]!;
    current.size = Math.max(current.size, Math.exp(x - s.open.level));
    s.open.post.push(x);
    if (s.open.post.length > cfg.recover_run) s.open.post.shift();
    if (s.open.post.length >= cfg.recover_run && median(s.open.post) <= s.open.band) {
      current.end_step = row.step;
      s.open = null;
    }
    return;
  }
  const { level, sigma } = s.baseline;
  if (level !== null && sigma !== null && x > level + cfg.grad_z * sigma && x > level + Math.log(cfg.grad_min_ratio)) {
    s.open = { level, band: level + cfg.recover_z * sigma, post: [] };
    s.events.push({ step: row.step, size: Math.exp(x - level), end_step: null });
    s.count++;
    if (s.events.length > MAX_GRAD_EVENTS) s.events.shift();
  } else pushBaseline(s.baseline, x, cfg.grad_window, cfg.spike_min_points);
}

/** The explosion under way, or null. */
export function gradVerdict(s: GradState): { exploding: GradEvent | null; events: GradEvent[]; count: number } {
  return { exploding: s.open ? s.events[s.events.length - 1]! : null, events: s.events, count: s.count };
}
