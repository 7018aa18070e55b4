// The judgement against real runs: the corpus of bench/corpus/judgement.json (trained by the project's own engine, each epoch
// with a held-out loss the judgement never sees) replayed through the API, as bench/judgement.ts does, for the tune half
// and the report half. Every figure of every goal is pinned at its value today, for every run (no filter), so a rule
// change that moves a figure, better or worse, fails here: then update the pin and the table in docs/judgement.md from the
// bench's output together. Tuning on the report half defeats it: see docs/judgement.md.
import { describe, expect, test } from "bun:test";
import { loadCorpus, type Half } from "../bench/judgement_corpus_format.ts";
import { figures, goals, replayCorpus } from "../bench/judgement_replay.ts";

interface Pin {
  by_kind: Record<string, number>;
  /** Goal: none. */
  unjustified_runs: string[];
  /** Goal: none missed. */
  overfit_missed: string[];
  /** Goal: ≤ 5. */
  overfit_median_delay: number;
  /** Goal: none missed. */
  divergence_missed: string[];
  /** Goal: none missed. */
  stalled_missed: string[];
  /** Goal: ≤ 1.03, and no worse than choosing the lowest val_loss. */
  regret_mean: number;
  baseline_regret_mean: number;
  /** Which goals are met, in the order bench/judgement.ts prints them. */
  met: boolean[];
}

const PINNED: Record<Half, Pin> = {
  tune: {
    by_kind: { healthy: 11, noisy: 9, overfit: 12, exploding: 22, stalled: 10 },
    unjustified_runs: [
      "healthy-flowers",
      "healthy-houses-regression",
      "noisy-houses-b8",
      "exploding-houses-sgd3e-4-late",
      "exploding-houses-sgd1e-3",
      "exploding-flowers-sgd2-a",
      "exploding-flowers-sgd1.5-late",
    ],
    overfit_missed: ["overfit-houses-big", "exploding-random-walk-sgd10", "exploding-overfit-data-sgd10"],
    overfit_median_delay: 5,
    divergence_missed: [],
    stalled_missed: ["healthy-random-walk"],
    regret_mean: 1.4855,
    baseline_regret_mean: 1.4859,
    met: [false, false, true, true, false, false, true],
  },
  report: {
    by_kind: { healthy: 15, noisy: 9, overfit: 15, exploding: 15, stalled: 10 },
    unjustified_runs: [
      "healthy-spirals-lr3e-3-s1002",
      "healthy-spirals4-wide-s1003",
      "healthy-flowers-s1005",
      "noisy-spirals-wide-b4-s1013",
      "noisy-houses-b8-s1015",
      "noisy-spirals2-d0.7-s1017",
      "overfit-houses-big-s1030",
      "exploding-overfit-data-sgd10-s1003",
      "exploding-houses-sgd3e-4-late-s1003",
      "exploding-spirals4-sgd10-s1044",
      "exploding-spirals-elu-sgd1.4-c-s1003",
      "exploding-houses-sgd1e-3-s1001",
      "exploding-flowers-sgd5-s1001",
      "exploding-flowers-sgd1.5-late-s1001",
      "exploding-flowers-sgd1.5-early-s1002",
    ],
    overfit_missed: [
      "overfit-houses-big-s1030",
      "exploding-houses-sgd3e-4-late-s1003",
      "exploding-spirals4-sgd10-s1044",
      "exploding-flowers-sgd5-s1001",
    ],
    overfit_median_delay: 7,
    divergence_missed: [],
    stalled_missed: ["healthy-random-walk-s1010"],
    regret_mean: 1.1899,
    baseline_regret_mean: 1.1899,
    met: [false, false, false, true, false, false, true],
  },
};

describe("the judgement on the corpus of real runs", async () => {
  const outcomes = await replayCorpus(loadCorpus(), {});

  for (const half of ["tune", "report"] as const) {
    const pin = PINNED[half];
    const f = figures(outcomes.filter((o) => o.half === half));

    describe(`${half} half`, () => {
      test("every run counts, and the half holds every kind", () => {
        expect(f.runs).toBe(64);
        expect(f.by_kind).toEqual(pin.by_kind);
      });

      test("alarms while the held-out loss still had more than 2 % to gain: exactly the pinned runs", () => {
        expect(f.unjustified_runs).toEqual(pin.unjustified_runs);
      });

      test("overfitting caught on every overfit run but the pinned ones, a median delay after the held-out best as pinned", () => {
        expect(f.overfit_missed).toEqual(pin.overfit_missed);
        expect(f.overfit_caught).toBe(f.overfit_runs - pin.overfit_missed.length);
        expect(f.overfit_median_delay).toBe(pin.overfit_median_delay);
      });

      test("every exploding run is called diverging within 3 epochs of its held-out blow-up, NaN from the first epoch included", () => {
        expect(f.divergence_missed).toEqual(pin.divergence_missed);
        expect(f.divergence_caught).toBe(f.exploding_runs);
      });

      test("every stalled run but the pinned ones is called out", () => {
        expect(f.stalled_missed).toEqual(pin.stalled_missed);
      });

      test("the final checkpoint advice's regret is as pinned, and no worse than choosing the lowest val_loss", () => {
        expect(f.regret_mean!).toBeCloseTo(pin.regret_mean, 4);
        expect(f.baseline_regret_mean!).toBeCloseTo(pin.baseline_regret_mean, 4);
        expect(f.regret_mean!).toBeLessThanOrEqual(f.baseline_regret_mean!);
      });

      test("the goals met and missed are the ones docs/judgement.md states", () => {
        expect(goals(f).map((g) => g.met)).toEqual(pin.met);
      });
    });
  }
});
