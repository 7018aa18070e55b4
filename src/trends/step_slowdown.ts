// Slow-down rule (step runs): the step time rising well above the run's own typical step time (a throttled GPU, a
// starving data loader). A flag of its own: a slow run is not a failing run. The median of the recent durations ignores
// the odd slow step (an evaluation, a checkpoint save); the typical time is the lowest such median seen, so a long
// slow-down does not become the new normal.

import { medianInPlace } from "./step_baseline.ts";

/** The recent median is taken every this many durations (a fifth of the work; the onset is still found in the window). */
export const SLOWDOWN_REFRESH = 4;
import { DEFAULT_STEP_CONFIG, type StepConfig, type StepPoint } from "./step_types.ts";

/** The slow-downs a state keeps (the most recent); `count` counts them all. */
export const MAX_SLOWDOWNS = 50;

export interface SlowdownEvent {
  /** The first step of the recent window that took `slowdown_factor` × the typical time. */
  step: number;
  /** The highest recent median ÷ the typical step time during it. */
  ratio: number;
  /** The step it was over; null while it lasts. */
  end_step: number | null;
}

export interface SlowdownState {
  /** The last `slowdown_window` finite durations: [step, seconds]. */
  recent: [number, number][];
  /** The typical step time: the lowest median of a full recent window outside slow-downs; null before one. */
  typical: number | null;
  /** Durations seen: the refresh schedule counts these, so batching does not change the result. */
  seen: number;
  open: boolean;
  events: SlowdownEvent[];
  count: number;
}

export const emptySlowdownState = (): SlowdownState => ({
  recent: [],
  typical: null,
  seen: 0,
  open: false,
  events: [],
  count: 0,
});

/**
 * Advances the rule over `rows` (ascending, each step once; rows without a finite duration are skipped). Defaults: once
 * `slowdown_window` (50) durations are held, their median (taken every SLOWDOWN_REFRESH (4) durations) above `slowdown_factor` (2) × the typical step time opens a
 * slow-down, which is over when the median is back below `slowdown_clear` (1.5) × it.
 */
export function advanceSlowdown(
  prev: SlowdownState,
  rows: readonly StepPoint[],
  cfg: StepConfig = DEFAULT_STEP_CONFIG,
): SlowdownState {
  const s: SlowdownState = { ...prev, recent: prev.recent.slice(), events: prev.events.map((e) => ({ ...e })) };
  for (const row of rows) {
    const d = row.duration;
    if (typeof d !== "number" || !Number.isFinite(d) || d < 0) continue;
    s.recent.push([row.step, d]);
    s.seen++;
    if (s.recent.length > cfg.slowdown_window) s.recent.shift();
    if (s.recent.length < cfg.slowdown_window || s.seen % SLOWDOWN_REFRESH !== 0) continue;
    const m = medianInPlace(Float64Array.from(s.recent, ([, v]) => v));
    const typical = s.typical;
    if (s.open && typical !== null) {
      const current = s.events[s.events.length - 1]!;
      current.ratio = Math.max(current.ratio, m / typical);
      if (m <= cfg.slowdown_clear * typical) (current.end_step = row.step), (s.open = false);
    } else if (typical !== null && typical > 0 && m > cfg.slowdown_factor * typical) {
      const onset = s.recent.find(([, v]) => v > cfg.slowdown_factor * typical)?.[0] ?? row.step;
      s.open = true;
      s.events.push({ step: onset, ratio: m / typical, end_step: null });
      s.count++;
      if (s.events.length > MAX_SLOWDOWNS) s.events.shift();
    } else if (typical === null || m < typical) s.typical = m;
  }
  return s;
}

/** The slow-down under way (null when none), every one kept, and the typical step time. */
export function slowdownVerdict(s: SlowdownState): {
  slowing: SlowdownEvent | null;
  events: SlowdownEvent[];
  typical: number | null;
  count: number;
} {
  return {
    slowing: s.open ? s.events[s.events.length - 1]! : null,
    events: s.events,
    typical: s.typical,
    count: s.count,
  };
}
