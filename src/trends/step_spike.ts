// Loss spike rule (step runs): a train_loss far outside the recent noise opens a spike; the spike is watched until the
// loss is back within its pre-spike band (recovered: reported, never an alarm) or until `recover_steps` have passed without
// that (divergence, naming the step the spike began, so the advice can name the last checkpoint before it).

import { cloneBaseline, emptyBaseline, pushBaseline, type Baseline } from "./step_baseline.ts";
import { median } from "./noise.ts";
import { isFiniteLoss } from "./history.ts";
import { DEFAULT_STEP_CONFIG, type StepConfig, type StepPoint } from "./step_types.ts";

/** The spikes a state keeps (the most recent); `count` counts them all. */
export const MAX_SPIKES = 100;

/** One spike as the analysis reports it. */
export interface SpikeEvent {
  /** The first step above the band. */
  step: number;
  /** The last step before it with a finite train_loss (the advice's "last checkpoint before step N" is before `step`). */
  before_step: number | null;
  peak_step: number;
  /** Peak train_loss ÷ the pre-spike level. */
  size: number;
  /** (log peak − log level) ÷ the pre-spike noise σ of log train_loss; null when the noise was 0. */
  noise_multiple: number | null;
  /** true: back within the pre-spike band; false: not within recover_steps (divergence); null: still watched. */
  recovered: boolean | null;
  /** The step it recovered at, or the step it was judged divergence; null while watched. */
  end_step: number | null;
}

export interface SpikeState {
  /** log train_loss outside spikes. */
  baseline: Baseline;
  /** The last step with a finite train_loss. */
  last_finite: number | null;
  /** The spike being watched: its pre-spike level, noise and band, and the values since it began (all log train_loss). */
  open: { level: number; sigma: number; band: number; post: number[]; high_since: number | null } | null;
  spikes: SpikeEvent[];
  count: number;
  /** The spike that did not recover (the rule stops judging after it). */
  diverged: SpikeEvent | null;
}

export const emptySpikeState = (): SpikeState => ({
  baseline: emptyBaseline(),
  last_finite: null,
  open: null,
  spikes: [],
  count: 0,
  diverged: null,
});

/**
 * Advances the spike rule over `rows` (ascending, each step once; non-finite, missing and non-positive train_loss are
 * skipped: the non-finite rule judges the first). On log train_loss, with the defaults (DEFAULT_STEP_CONFIG): a value
 * more than `spike_z` (6) σ and `spike_min_ratio` (1.1×) above the level (median of the last `spike_window` (64) values
 * outside spikes, σ the MAD of their step-to-step differences, judged once `spike_min_points` (20) are held) opens a spike; it recovers when the median of the
 * last `recover_run` (3) values after it is within level + `recover_z` (3) σ; when that has not happened `recover_steps`
 * (50) steps after it began, it is divergence, and so it is sooner when that median has stayed at least `explode_ratio`
 * (10×) the level for `explode_steps` (10) steps (a blow-up; the recovering spikes of the step corpus's tune half peaked
 * at 5× and fell back within 3 steps).
 */
export function advanceSpikes(
  prev: SpikeState,
  rows: readonly StepPoint[],
  cfg: StepConfig = DEFAULT_STEP_CONFIG,
): SpikeState {
  const s = cloneSpikeState(prev);
  for (const row of rows) spikeStep(s, row, cfg);
  return s;
}

/** A copy `spikeStep` may mutate. */
export const cloneSpikeState = (prev: SpikeState): SpikeState => ({
  ...prev,
  baseline: cloneBaseline(prev.baseline),
  open: prev.open && { ...prev.open, post: prev.open.post.slice() },
  spikes: prev.spikes.map((e) => ({ ...e })),
  diverged: prev.diverged && { ...prev.diverged },
});

/** The spike being watched judged divergence at `step` (step_judgement.ts: with a gradient explosion under way). */
export function declareSpikeDiverged(s: SpikeState, step: number): void {
  const current = s.open ? s.spikes[s.spikes.length - 1]! : null;
  if (!current) return;
  current.recovered = false;
  current.end_step = step;
  s.open = null;
  s.diverged = { ...current };
}

/** One row of advanceSpikes, mutating `s`. */
export function spikeStep(s: SpikeState, row: StepPoint, cfg: StepConfig = DEFAULT_STEP_CONFIG): void {
  if (s.diverged) return;
  const loss = row.train_loss;
  if (!isFiniteLoss(loss) || loss <= 0) return;
  // On log train_loss: small-batch noise is multiplicative (a right-skewed loss), and a spike's size is a ratio.
  const x = Math.log(loss);
  const current = s.open ? s.spikes[s.spikes.length - 1]! : null;
  if (s.open && current) {
    if (x - s.open.level > Math.log(current.size)) {
      current.size = Math.exp(x - s.open.level);
      current.peak_step = row.step;
      current.noise_multiple = s.open.sigma > 0 ? (x - s.open.level) / s.open.sigma : null;
    }
    s.open.post.push(x);
    if (s.open.post.length > cfg.recover_run) s.open.post.shift();
    const now = median(s.open.post);
    // Far above the level (explode_ratio ×) since high_since: a blow-up, not a spike on its way back.
    if (now - s.open.level < Math.log(cfg.explode_ratio)) s.open.high_since = null;
    else s.open.high_since ??= row.step;
    if (s.open.post.length >= cfg.recover_run && now <= s.open.band) {
      current.recovered = true;
      current.end_step = row.step;
      s.open = null;
    } else if (
      row.step - current.step >= cfg.recover_steps ||
      (s.open.high_since !== null && row.step - s.open.high_since >= cfg.explode_steps)
    )
      declareSpikeDiverged(s, row.step);
  } else {
    const { level, sigma } = s.baseline;
    if (
      level !== null &&
      sigma !== null &&
      x > level + cfg.spike_z * sigma &&
      x > level + Math.log(cfg.spike_min_ratio)
    ) {
      s.open = { level, sigma, band: level + cfg.recover_z * sigma, post: [], high_since: null };
      s.spikes.push({
        step: row.step,
        before_step: s.last_finite,
        peak_step: row.step,
        size: Math.exp(x - level),
        noise_multiple: sigma > 0 ? (x - level) / sigma : null,
        recovered: null,
        end_step: null,
      });
      s.count++;
      if (s.spikes.length > MAX_SPIKES) s.spikes.shift();
    } else pushBaseline(s.baseline, x, cfg.spike_window, cfg.spike_min_points);
  }
  s.last_finite = row.step;
}

/** What the spike rule says now: every spike kept, the one watched (if any) and the one that did not recover (if any). */
export function spikeVerdict(s: SpikeState): {
  spikes: SpikeEvent[];
  watching: SpikeEvent | null;
  diverged: SpikeEvent | null;
  count: number;
} {
  return {
    spikes: s.spikes,
    watching: s.open ? s.spikes[s.spikes.length - 1]! : null,
    diverged: s.diverged,
    count: s.count,
  };
}
