// Trend analysis on synthetic loss curves: the summary flags, best epoch, smoothing and recommendations (the chart reducer: tests/downsample.test.ts).
import { describe, expect, test } from "bun:test";
import {
  advanceState,
  analyzeTrends,
  chooseCheckpoint,
  chooseMonitor,
  EMPTY_STATE,
  type CheckpointHolding,
  type RunStatus,
  type TrendState,
  DEFAULT_TREND_CONFIG,
  emaSmooth,
  emaWarmup,
  EMPTY_SUMMARY,
  findBest,
  fittedRelativeChange,
  generalizationGap,
  linearFit,
  recommend,
  summarizeFrom,
  summarizeTrends,
  tailSize,
  trajectoryOf,
  type Best,
  type EpochPoint,
  type Monitor,
  type TrendConfig,
} from "../src/trends/index.ts";

/** Epochs `from`, `from + 1`, … with losses from `f`. */
function run(from: number, count: number, f: (e: number, i: number) => Omit<EpochPoint, "epoch">): EpochPoint[] {
  return Array.from({ length: count }, (_, i) => ({ epoch: from + i, ...f(from + i, i) }));
}

/** Deterministic PRNG (mulberry32) so property tests are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Train and val both fall: the healthy run.
const improving = run(0, 30, (e) => ({ train_loss: 1 / (1 + 0.2 * e), val_loss: 1 / (1 + 0.2 * e) + 0.05 }));
// Train keeps falling; val bottoms out at epoch 15 (0.5) and climbs.
const overfit = run(0, 30, (e) => ({ train_loss: 0.95 ** e, val_loss: 0.5 + 0.002 * (e - 15) ** 2 }));
// The dashboard's default training as the built-in trainer ran it: [epoch, train_loss, val_loss].
const SPIRALS_FIRST_RUN: EpochPoint[] = (
  [
    [0, 0.80533, 0.60308],
    [1, 0.46919, 0.25052],
    [2, 0.31575, 0.1622],
    [3, 0.23003, 0.14918],
    [4, 0.17868, 0.11234],
    [5, 0.17766, 0.10331],
    [6, 0.15611, 0.10583],
    [7, 0.14262, 0.10357],
    [8, 0.12661, 0.11187],
    [9, 0.12866, 0.062873],
    [10, 0.088258, 0.064874],
    [11, 0.11568, 0.070922],
    [12, 0.10344, 0.051365],
    [13, 0.083252, 0.057005],
    [14, 0.087913, 0.045614],
    [15, 0.080994, 0.02831],
    [16, 0.069996, 0.044905],
    [17, 0.075386, 0.042511],
    [18, 0.088941, 0.075618],
    [19, 0.079244, 0.042793],
    [20, 0.07008, 0.031025],
    [21, 0.083763, 0.034258],
    [22, 0.075356, 0.046731],
    [23, 0.089881, 0.061465],
    [24, 0.053214, 0.041986],
    [25, 0.057009, 0.029628],
    [26, 0.059333, 0.045253],
    [27, 0.054087, 0.061308],
    [28, 0.081247, 0.027304],
    [29, 0.070489, 0.02554],
  ] as const
).map(([epoch, train_loss, val_loss]) => ({ epoch, train_loss, val_loss }));
// Val improves until epoch 10 (0.5), then hovers just above it.
const plateau = (count: number) =>
  run(0, count, (e) => ({ train_loss: 0.4, val_loss: e <= 10 ? 1 - 0.05 * e : 0.51 + 0.003 * Math.sin(e) }));

describe("summary flags", () => {
  test("an improving run is neither overfitting, plateaued, diverging nor stalled", () => {
    expect(summarizeTrends(improving)).toEqual({
      monitor: "val_loss",
      best_epoch: 29,
      best_val_loss: 1 / (1 + 0.2 * 29) + 0.05,
      epochs_since_improvement: 0,
      is_overfitting: false,
      is_plateaued: false,
      is_diverging: false,
      is_stalled: false,
      latest_epoch: 29,
      total_epochs_completed: 30,
    });
  });

  test("no epochs gives the empty summary", () => {
    expect(summarizeTrends([])).toEqual(EMPTY_SUMMARY);
  });

  test("validation above its best while training keeps falling is overfitting", () => {
    const s = summarizeTrends(overfit);
    expect(s.is_overfitting).toBe(true);
    expect(s.best_epoch).toBe(15);
    expect(s.best_val_loss).toBe(0.5);
    expect(s.epochs_since_improvement).toBe(14);
    expect(s.is_diverging).toBe(false);
  });

  test("overfitting is caught a few epochs after the best, not a window later", () => {
    // Val bottoms out at epoch 15 and climbs 0.002·k² above it; train keeps falling.
    const first = overfit.findIndex((_, i) => summarizeTrends(overfit.slice(0, i + 1)).is_overfitting);
    expect(overfit[first]!.epoch).toBeGreaterThan(15);
    expect(overfit[first]!.epoch).toBeLessThanOrEqual(20);
  });

  test("a slow climb after an early best is overfitting even when the recent window is flat", () => {
    // Best 0.5 at epoch 5, then val sits ~20 % higher and flat for 20 epochs: a 10-epoch line fit sees nothing.
    const h = run(0, 30, (e) => ({
      train_loss: 1 / (1 + e),
      val_loss: e <= 5 ? 1 - 0.1 * e : 0.6 + 0.001 * Math.sin(e),
    }));
    expect(summarizeTrends(h).is_overfitting).toBe(true);
  });

  test("validation rising while training also gets worse is not overfitting", () => {
    const h = run(0, 30, (e) => ({
      train_loss: e <= 15 ? 1 / (1 + e) : 1 / 16 + 0.01 * (e - 15),
      val_loss: 0.5 + 0.002 * (e - 15) ** 2,
    }));
    expect(summarizeTrends(h).is_overfitting).toBe(false);
  });

  test("a run that stops improving is plateaued once plateau_patience epochs pass", () => {
    const nine = summarizeTrends(plateau(20));
    expect(nine.best_epoch).toBe(10);
    expect(nine.epochs_since_improvement).toBe(9);
    expect(nine.is_plateaued).toBe(false);
    const ten = summarizeTrends(plateau(21));
    expect(ten.epochs_since_improvement).toBe(10);
    expect(ten.is_plateaued).toBe(true);
    expect(ten.is_overfitting).toBe(false);
  });

  describe("noise does not raise overfitting", () => {
    test("one 3× validation spike after the best", () => {
      const base = run(0, 30, (e) => ({ train_loss: 0.6 * 0.95 ** e, val_loss: 0.8 * 0.97 ** e }));
      const spiked = base.map((p) => (p.epoch === 28 ? { ...p, val_loss: p.val_loss! * 3 } : p));
      expect(summarizeTrends(base).is_overfitting).toBe(false);
      expect(summarizeTrends(spiked).is_overfitting).toBe(false);
    });

    test("a healthy run whose validation loss jitters ±20 % never flags, at any epoch", () => {
      const r = rng(11);
      const noisy = run(0, 60, (e) => ({
        train_loss: 1 / (1 + 0.2 * e),
        val_loss: (1 / (1 + 0.1 * e)) * (1 + 0.4 * (r() - 0.5)),
      }));
      for (let k = 1; k <= noisy.length; k++) expect(summarizeTrends(noisy.slice(0, k)).is_overfitting).toBe(false);
    });
  });

  test("the dashboard's default first run (spirals, 30 epochs, batch 32, lr 0.01) ends unflagged", () => {
    // Recorded from the built-in trainer: dropout makes train_loss drift up at the end while val_loss reaches its best.
    const s = summarizeTrends(SPIRALS_FIRST_RUN);
    expect(s.best_epoch).toBe(29);
    expect(s).toMatchObject({ is_overfitting: false, is_plateaued: false, is_diverging: false, is_stalled: false });
    // The old rule (fitted train_loss up > 20 % over 5 epochs, whatever validation does) fired here.
    const last5 = SPIRALS_FIRST_RUN.slice(-5);
    expect(
      fittedRelativeChange(
        last5.map((p) => p.epoch),
        last5.map((p) => p.train_loss!),
      )!,
    ).toBeGreaterThan(0.2);
  });

  test("a NaN or infinite loss at the latest epoch is diverging", () => {
    expect(summarizeTrends([...improving, { epoch: 30, train_loss: NaN, val_loss: NaN }]).is_diverging).toBe(true);
    expect(summarizeTrends([...improving, { epoch: 30, train_loss: 0.1, val_loss: Infinity }]).is_diverging).toBe(true);
    expect(summarizeTrends([...improving, { epoch: 30, train_loss: -Infinity }]).is_diverging).toBe(true);
  });

  test("NaN from the very first epoch is diverging", () => {
    const s = summarizeTrends([{ epoch: 0, train_loss: NaN, val_loss: NaN }]);
    expect(s.is_diverging).toBe(true);
    expect(s.best_epoch).toBeNull();
  });

  test("a NaN in the past that recovered is not diverging and never becomes the best", () => {
    const h = improving.map((p) => (p.epoch === 12 ? { ...p, val_loss: NaN, train_loss: NaN } : p));
    const s = summarizeTrends(h);
    expect(s.is_diverging).toBe(false);
    expect(s.best_epoch).toBe(29);
  });

  test("a training loss that explodes past 3× its lowest and above its start is diverging at once; a mild rise is not", () => {
    // Validation keeps improving, so only the explosion test can fire.
    const exploding = run(0, 27, (e) => ({
      train_loss: e < 25 ? 1 / (1 + e) : e === 25 ? 0.1 : 1.2,
      val_loss: 1.1 / (1 + e),
    }));
    expect(summarizeTrends(exploding.slice(0, 26)).is_diverging).toBe(false); // 0.1 = 2.5× the lowest 0.04
    expect(summarizeTrends(exploding).is_diverging).toBe(true); // 1.2 = 30×, above the first 1.0
    // A tiny loss that triples (0.015 → 0.047) while far below where it started is noise, not an explosion.
    const tiny = run(0, 24, (e) => ({ train_loss: e < 22 ? 1 / (1 + 3 * e) : 0.047, val_loss: 1.1 / (1 + e) }));
    expect(summarizeTrends(tiny).is_diverging).toBe(false);
    const mild = run(0, 30, (e) => ({ train_loss: e < 25 ? 1 / (1 + e) : (1 / 25) * 1.02 ** (e - 24) }));
    expect(summarizeTrends(mild).is_diverging).toBe(false);
  });

  test("a loss trained to near zero that swings by orders of magnitude, one batch spiking it to 5 % of its start, is not diverging; one that stays 100× up is", () => {
    // The README tour's run (overfit generator, batch_size 1, 1,000 epochs): train_loss 0.75 at first, ~1e-10 at best,
    // then 1e-6 … 1e-9 from epoch to epoch and one epoch at 0.036. Every one of those is over 100× the lowest.
    const memorised = run(0, 60, (e) => ({
      train_loss: e < 20 ? 0.75 * 0.3 ** e : e === 50 ? 0.036 : [4.6e-6, 9.4e-7, 5e-10, 1.5e-8, 2.5e-9][e % 5]!,
      val_loss: 0.72 + 0.05 * e,
    }));
    for (let n = 21; n <= 60; n++) expect(summarizeTrends(memorised.slice(0, n)).is_diverging).toBe(false);
    // A run that started huge (1e4), learned down to 1, then blew up to 500 and stayed: below its start, yet exploded.
    const hugeStart = run(0, 24, (e) => ({
      train_loss: e < 20 ? 1e4 * 0.6 ** e + 1 : 500,
      val_loss: 1e4 * 0.6 ** Math.min(e, 19) + 1,
    }));
    expect(summarizeTrends(hugeStart.slice(0, 21)).is_diverging).toBe(false); // one epoch up: maybe a spike
    expect(summarizeTrends(hugeStart.slice(0, 22)).is_diverging).toBe(true); // two: exploded
  });

  test("training and validation loss both climbing is diverging; training alone climbing while validation improves is not", () => {
    const both = run(0, 20, (e) => ({
      train_loss: e < 15 ? 1 / (1 + e) : (1 / 15) * 1.15 ** (e - 14),
      val_loss: e < 15 ? 1.1 / (1 + e) : (1.1 / 15) * 1.1 ** (e - 14),
    }));
    expect(summarizeTrends(both).is_diverging).toBe(true);
    const trainOnly = both.map((p) => ({ ...p, val_loss: 1.1 / (1 + p.epoch) }));
    expect(summarizeTrends(trainOnly).is_diverging).toBe(false);
  });

  test("the divergence fit needs at least 3 finite training losses in the window", () => {
    const sparse = run(0, 10, (e) => ({
      train_loss: e < 5 || e === 7 || e === 9 ? 1 + e * 0.1 : null,
      val_loss: 1 + e * 0.1,
    }));
    // Epochs 5..9 hold only two finite train losses: a rise, but too little evidence.
    expect(summarizeTrends(sparse).is_diverging).toBe(false);
  });

  describe("stalled", () => {
    // lr far too low: the loss creeps 0.1 % in 40 epochs.
    const crawling = run(0, 40, (e) => ({ train_loss: 0.7 * (1 - 0.000025 * e), val_loss: 0.71 * (1 - 0.000025 * e) }));

    test("a loss that barely moves over 20 epochs is stalled, from the 20th epoch on", () => {
      expect(summarizeTrends(crawling.slice(0, 19)).is_stalled).toBe(false);
      expect(summarizeTrends(crawling.slice(0, 20)).is_stalled).toBe(true);
      expect(summarizeTrends(crawling).is_stalled).toBe(true);
    });

    test("a converged run is plateaued, not stalled: it learned first", () => {
      const converged = run(0, 40, (e) => ({
        train_loss: 0.1 + 0.6 * Math.exp(-e / 3),
        val_loss: 0.12 + 0.6 * Math.exp(-e / 3),
      }));
      expect(summarizeTrends(converged).is_stalled).toBe(false);
    });

    test("validation that never improved much but climbs while training falls is overfitting, not a stall", () => {
      // The overfit dataset at batch size 1: best val 0.724 at epoch 1 (6 % below the first), then up 160 %.
      const h = run(0, 20, (e) => ({
        train_loss: 0.75 * 0.85 ** e,
        val_loss: e === 0 ? 0.768 : 0.724 * (1 + 0.09 * (e - 1)),
      }));
      const s = summarizeTrends(h);
      expect(s.is_overfitting).toBe(true);
      expect(s.is_stalled).toBe(false);
    });

    test("a slow but real learner is not stalled", () => {
      const slow = run(0, 40, (e) => ({ train_loss: 0.7 * 0.997 ** e, val_loss: 0.71 * 0.997 ** e }));
      expect(summarizeTrends(slow).is_stalled).toBe(false);
    });

    test("the window and threshold are configurable", () => {
      const cfg = { ...DEFAULT_TREND_CONFIG, stall_window: 30 };
      expect(summarizeTrends(crawling.slice(0, 25), cfg).is_stalled).toBe(false);
      expect(summarizeTrends(crawling.slice(0, 30), cfg).is_stalled).toBe(true);
    });
  });
});

describe("best epoch and monitor", () => {
  test("ties keep the earliest epoch", () => {
    const h = [0.5, 0.3, 0.4, 0.3, 0.35].map((v, epoch) => ({ epoch, val_loss: v }));
    expect(summarizeTrends(h).best_epoch).toBe(1);
    expect(findBest(h.slice(3), "val_loss", { epoch: 1, value: 0.3 })).toEqual({ epoch: 1, value: 0.3 });
  });

  test("without validation data the monitor is train_loss", () => {
    const h = run(0, 12, (e) => ({ train_loss: 1 / (1 + e), val_loss: e % 2 ? null : NaN }));
    expect(chooseMonitor(h)).toBe("train_loss");
    const s = summarizeTrends(h);
    expect(s.monitor).toBe("train_loss");
    expect(s.best_epoch).toBe(11);
    expect(s.best_val_loss).toBe(1 / 12);
  });

  test("with no finite loss at all there is no monitor and no best", () => {
    const h = run(0, 3, () => ({ train_loss: null }));
    expect(chooseMonitor(h)).toBeNull();
    expect(summarizeTrends(h)).toEqual({ ...EMPTY_SUMMARY, latest_epoch: 2, total_epochs_completed: 3 });
  });

  test("a resumed run starting at epoch 50 reports epoch numbers, not indexes", () => {
    const resumed = overfit.map((p) => ({ ...p, epoch: p.epoch + 50 }));
    const s = summarizeTrends(resumed);
    expect(s.best_epoch).toBe(65);
    expect(s.latest_epoch).toBe(79);
    expect(s.epochs_since_improvement).toBe(14);
    expect(s.total_epochs_completed).toBe(30);
    const { best_epoch, latest_epoch, ...flags } = s;
    const { best_epoch: _b, latest_epoch: _l, ...fromZero } = summarizeTrends(overfit);
    expect(flags).toEqual(fromZero);
  });

  test("epochs may arrive in any order, and a re-posted epoch replaces the old one", () => {
    const shuffled = [...improving].reverse();
    expect(summarizeTrends(shuffled)).toEqual(summarizeTrends(improving));
    const reposted = [...improving, { epoch: 5, train_loss: 0.01, val_loss: 0.01 }];
    const s = summarizeTrends(reposted);
    expect(s.best_epoch).toBe(5);
    expect(s.total_epochs_completed).toBe(30);
  });
});

describe("incremental summary", () => {
  function randomRun(seed: number, count: number): EpochPoint[] {
    const r = rng(seed);
    const valFrom = Math.floor(r() * 8); // validation starts late on some runs, switching the monitor
    const turn = 10 + Math.floor(r() * 20);
    return run(Math.floor(r() * 3) * 50, count, (_e, i) => {
      const noisy = (v: number) => (r() < 0.05 ? NaN : r() < 0.05 ? null : v * (1 + 0.1 * (r() - 0.5)));
      const train = Math.exp(-i / 15) + (seed % 3 === 0 && i > 35 ? 1.6 ** (i - 35) : 0);
      const val = i < valFrom ? null : train + 0.05 + (i > turn ? 0.01 * (i - turn) : 0);
      return { train_loss: noisy(train), val_loss: val === null ? null : noisy(val), train_accuracy: r() };
    });
  }

  for (const [name, cfg] of [
    ["default config", DEFAULT_TREND_CONFIG],
    [
      "short windows",
      {
        ...DEFAULT_TREND_CONFIG,
        plateau_patience: 4,
        overfit_window: 4,
        diverge_window: 3,
        trajectory_window: 6,
        stall_window: 5,
      },
    ],
  ] as [string, TrendConfig][]) {
    test(`summarizeFrom on (state, tail) equals summarizeTrends on the full history (${name})`, () => {
      for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
        const history = randomRun(seed, 45);
        let monitor: Monitor | null = null;
        let state: TrendState = EMPTY_STATE;
        for (let k = 1; k <= history.length; k++) {
          const stored = history.slice(0, k);
          const latest = stored[k - 1]!;
          // What the store does on each append: re-scan only when the monitor switches.
          const m = chooseMonitor(stored);
          state = m !== monitor ? advanceState(EMPTY_STATE, stored, m) : advanceState(state, [latest], m);
          monitor = m;
          const incremental = summarizeFrom({ monitor, state, tail: stored.slice(-tailSize(cfg)), count: k }, cfg);
          expect(incremental).toEqual(summarizeTrends(stored, cfg));
        }
      }
    });
  }

  test("tailSize covers every window and summarizeFrom accepts a newest-first tail", () => {
    expect(tailSize()).toBe(20);
    expect(tailSize({ ...DEFAULT_TREND_CONFIG, diverge_window: 25 })).toBe(25);
    const tail = overfit.slice(-tailSize()).reverse();
    const { state } = analyzeTrends(overfit);
    expect(summarizeFrom({ monitor: "val_loss", state, tail, count: overfit.length })).toEqual(
      summarizeTrends(overfit),
    );
  });

  test("findBest merges new epochs into a stored best", () => {
    const h = [0.5, 0.3, 0.4, 0.3, 0.35].map((v, epoch) => ({ epoch, val_loss: v }));
    expect(findBest(h.slice(3), "val_loss", { epoch: 1, value: 0.3 } as Best)).toEqual({ epoch: 1, value: 0.3 });
  });
});

describe("line fitting", () => {
  test("linearFit recovers an exact line, even at large epoch numbers", () => {
    const xs = [1000, 1001, 1002, 1003];
    const fit = linearFit(
      xs,
      xs.map((x) => 2 * x + 1),
    );
    expect(fit.slope).toBeCloseTo(2, 10);
    expect(fit.intercept).toBeCloseTo(1, 6);
    expect(linearFit([3, 3], [1, 2])).toEqual({ slope: 0, intercept: 1.5 });
  });

  test("fittedRelativeChange is relative to the fitted start, and null when undefined", () => {
    expect(fittedRelativeChange([0, 1, 2], [1, 0.9, 0.8])).toBeCloseTo(-0.2, 12);
    expect(fittedRelativeChange([0, 1, 2], [-1, -1.1, -1.2])).toBeCloseTo(-0.2, 12);
    expect(fittedRelativeChange([0], [1])).toBeNull();
    expect(fittedRelativeChange([0, 1], [0, 1])).toBeNull();
  });
});

describe("emaSmooth", () => {
  test("the bits of last / (1 − wⁿ) at every value, also once wⁿ is too small to change the debias (it is then skipped)", () => {
    const textbook = (values: (number | null)[], w: number, state: { last: number; n: number }) =>
      values.map((y) => {
        if (y === null || !Number.isFinite(y)) return y;
        state.last = state.last * w + (1 - w) * y;
        state.n += 1;
        return state.last / (w === 1 ? 1 : 1 - w ** state.n);
      });
    const values = Array.from({ length: 5000 }, (_, i) =>
      i % 97 === 0
        ? Number.NaN
        : i % 51 === 0
          ? null
          : i % 131 === 0
            ? Number.NEGATIVE_INFINITY
            : Math.sin(i * 1.7) * 3 + 1 / (i + 1),
    );
    for (const w of [0, 1e-9, 0.3, 0.6, 0.9, 0.99, 0.999, 1]) {
      const a = { last: 0.25, n: 3 };
      const b = { ...a };
      const got = emaSmooth(values, w, a);
      const want = textbook(values, w, b);
      expect(got.every((v, i) => Object.is(v, want[i]))).toBe(true);
      expect(a).toEqual(b);
    }
  });

  test("matches hand-computed debiased EMA, passing NaN and null through without advancing", () => {
    // w = 0.5: last = 0.5 → 1.25 → 2.625; debias 0.5, 0.75, 0.875.
    const out = emaSmooth([1, 2, NaN, null, undefined, 4], 0.5);
    expect(out[0]).toBeCloseTo(1, 12);
    expect(out[1]).toBeCloseTo(1.25 / 0.75, 12);
    expect(out[2]).toBeNaN();
    expect(out[3]).toBeNull();
    expect(out[4]).toBeNull();
    expect(out[5]).toBeCloseTo(3, 12);
  });

  test("defaults to weight 0.6; infinities pass through; weight 0 is the identity", () => {
    const out = emaSmooth([1, Infinity, 0]);
    expect(out[0]).toBeCloseTo(1, 12);
    expect(out[1]).toBe(Infinity);
    expect(out[2]).toBeCloseTo(0.24 / 0.64, 12);
    expect(emaSmooth([3, 1, 2], 0)).toEqual([3, 1, 2]);
    expect(emaSmooth([])).toEqual([]);
  });

  test("a state carried between calls smooths a curve in pieces exactly as in one go", () => {
    const r = rng(3);
    const ys = Array.from({ length: 500 }, (_, i) => (i === 100 ? NaN : i === 200 ? null : r()));
    const state = { last: 0, n: 0 };
    expect([...emaSmooth(ys.slice(0, 137), 0.9, state), ...emaSmooth(ys.slice(137), 0.9, state)]).toEqual(
      emaSmooth(ys, 0.9),
    );
    expect(state.n).toBe(498);
  });

  test("emaWarmup values are enough: starting that far back matches the full-history EMA within the tolerance", () => {
    expect(emaWarmup(0)).toBe(1);
    expect(emaWarmup(0.6)).toBe(55);
    expect(emaWarmup(0.99)).toBe(2750);
    const r = rng(4);
    const ys = Array.from({ length: 20_000 }, () => 10 * r());
    for (const w of [0.3, 0.6, 0.9, 0.99]) {
      const full = emaSmooth(ys, w);
      const k = emaWarmup(w);
      const tail = emaSmooth(ys.slice(ys.length - 100 - k), w).slice(-100);
      tail.forEach((v, i) => expect(Math.abs(v! - full[ys.length - 100 + i]!)).toBeLessThan(1e-10));
    }
  });
});

describe("trajectory and generalization gap", () => {
  test("trajectoryOf reads the fitted monitored line", () => {
    const up = improving.map((p) => ({ epoch: p.epoch, val_loss: 2 - p.val_loss! }));
    const flat = run(0, 12, () => ({ val_loss: 0.3 }));
    expect(trajectoryOf(improving, "val_loss").trajectory).toBe("improving");
    expect(trajectoryOf(improving, "val_loss").slope!).toBeLessThan(0);
    expect(trajectoryOf(up, "val_loss").trajectory).toBe("worsening");
    expect(trajectoryOf(flat, "val_loss")).toMatchObject({
      trajectory: "flat",
      slope: 0,
      relative_change: 0,
      basis: "recent",
    });
    expect(trajectoryOf(improving, null)).toMatchObject({ trajectory: "flat", slope: null, relative_change: null });
  });

  test("a loss well above its best is worsening since the best epoch, whatever the recent window does", () => {
    // The overfit run: val 0.72 at epoch 1 → 2.56 over 35 epochs, with a last few epochs that dip.
    const h = run(0, 36, (e) => ({
      train_loss: 1 / (1 + e),
      val_loss: e <= 1 ? 0.9 - 0.18 * e : e < 33 ? 0.72 + 0.06 * (e - 1) : 2.56 - 0.05 * (e - 33),
    }));
    const t = trajectoryOf(h, "val_loss");
    expect(t).toMatchObject({ trajectory: "worsening", basis: "since_best" });
    expect(t.since_best!.best_epoch).toBe(1);
    expect(generalizationGap(h, DEFAULT_TREND_CONFIG, 1).trend).toBe("widening");
    // An early-stopped run that ended 2.3× above its best, with a falling last window.
    const es = run(0, 20, (e) => ({
      val_loss: e <= 4 ? 1 - 0.1 * e : e < 16 ? 0.6 + 0.1 * (e - 4) : 1.38 - 0.01 * (e - 16),
    }));
    expect(trajectoryOf(es, "val_loss").trajectory).toBe("worsening");
  });

  test("generalizationGap: widening when overfitting, stable with a constant gap, narrowing as val catches up", () => {
    expect(generalizationGap(overfit).trend).toBe("widening");
    const constant = generalizationGap(improving);
    expect(constant.trend).toBe("stable");
    expect(constant.latest).toBeCloseTo(0.05, 12);
    const catching = run(0, 20, (e) => ({ train_loss: 0.3, val_loss: 0.3 + 0.2 / (1 + e) }));
    expect(generalizationGap(catching).trend).toBe("narrowing");
    expect(generalizationGap([{ epoch: 0, train_loss: 1, val_loss: 1.2 }])).toEqual({
      latest: 1.2 - 1,
      slope: null,
      trend: null,
    });
  });
});

describe("checkpoint choice", () => {
  test("one lucky epoch does not beat a consistently better region", () => {
    // Epoch 5 is a lucky 0.40 amid 0.60s; epochs 20..24 sit at 0.45.
    const h = run(0, 30, (e) => ({ val_loss: e === 5 ? 0.4 : e >= 20 && e <= 24 ? 0.45 : 0.6 }));
    expect(summarizeTrends(h).best_epoch).toBe(5);
    const c = chooseCheckpoint(h, "val_loss", null)!;
    expect(c).toBeGreaterThanOrEqual(20);
    expect(c).toBeLessThanOrEqual(24);
  });

  test("with held checkpoints only those epochs are chosen", () => {
    const h = run(0, 30, (e) => ({ val_loss: e === 5 ? 0.4 : e >= 20 && e <= 24 ? 0.45 : 0.6 }));
    expect(chooseCheckpoint(h, "val_loss", [5, 29])).toBe(5);
    expect(chooseCheckpoint(h, "val_loss", [])).toBeNull();
    expect(chooseCheckpoint(h, null, null)).toBeNull();
  });
});

describe("recommend", () => {
  const external: CheckpointHolding = { held_by: "trainer" };
  const rec = (
    status: RunStatus,
    epochs: EpochPoint[],
    checkpoints: CheckpointHolding = external,
    cfg = DEFAULT_TREND_CONFIG,
  ) => recommend({ status, epochs, summary: summarizeTrends(epochs, cfg), checkpoints }, cfg);
  const oneSentence = (s: string) => s.endsWith(".") && !/\.\s+[A-Z]/.test(s);

  test("fewer than 3 epochs is insufficient data", () => {
    const r = rec("running", improving.slice(0, 2));
    expect(r.action).toBe("insufficient_data");
    expect(r.checkpoint_epoch).toBeNull();
  });

  test("an improving running run should continue", () => {
    const r = rec("running", improving);
    expect(r).toMatchObject({ action: "continue", checkpoint_epoch: null, trajectory: "improving" });
    expect(r.reason).toContain("at epoch 29");
    expect(oneSentence(r.reason)).toBe(true);
  });

  test("an overfitting running run should stop, pointing at the best region, quoting the margin applied", () => {
    const r = rec("running", overfit);
    expect(r).toMatchObject({ action: "stop", trajectory: "worsening" });
    expect(r.checkpoint_epoch).toBeGreaterThanOrEqual(14);
    expect(r.checkpoint_epoch).toBeLessThanOrEqual(16);
    expect(r.reason).toMatch(
      /^Validation loss is \d+\.\d% above its best 0\.5000 at epoch 15 \(mean of the last 3 epochs; margin \d+\.\d%: at least 1\.0% and 3× its noise\)/,
    );
    expect(r.reason).toContain("if you kept one");
  });

  test("a plateaued running run should stop, quoting the configured patience", () => {
    const r = rec("running", plateau(22));
    expect(r.action).toBe("stop");
    // The robust choice may take the first plateau epoch over the sharp minimum just before it.
    expect([10, 11]).toContain(r.checkpoint_epoch!);
    expect(r.reason).toContain("has not improved for 11 epochs (patience 10)");
    expect(oneSentence(r.reason)).toBe(true);
    const three = rec("running", plateau(14), external, { ...DEFAULT_TREND_CONFIG, plateau_patience: 3 });
    expect(three.reason).toContain("(patience 3)");
  });

  test("a plateau whose level still falls after a lucky best is not a stop", () => {
    // A lucky 0.30 at epoch 10 on a noisy curve (±0.03), whose typical level keeps falling from 0.40 to 0.36 for 12 epochs.
    const h = run(0, 23, (e) => ({
      train_loss: 1 / (1 + e),
      val_loss: e < 10 ? 1 - 0.06 * e : e === 10 ? 0.3 : 0.4 - 0.003 * (e - 10) + (e % 2 ? 0.03 : -0.03),
    }));
    const s = summarizeTrends(h);
    expect(s.is_plateaued).toBe(true);
    const r = rec("running", h);
    expect(r.action).toBe("continue");
    expect(r.reason).toContain("the best was a lucky epoch and the run is still improving");
  });

  test("a diverging running run should stop and name the bad epoch", () => {
    const r = rec("running", [...improving, { epoch: 30, train_loss: NaN, val_loss: 0.3 }]);
    expect(r).toMatchObject({ action: "stop" });
    expect(r.reason).toStartWith("Training loss became NaN at epoch 30: the run is diverging");
    expect(r.checkpoint_epoch).toBeGreaterThanOrEqual(27);
    const exploding = run(0, 27, (e) => ({
      train_loss: e < 25 ? 1 / (1 + e) : e === 25 ? 0.1 : 1.2,
      val_loss: 1.1 / (1 + e),
    }));
    expect(rec("running", exploding).reason).toContain("exploded to 30× its lowest value (explode factor 3)");
  });

  test("NaN from the first epoch is a stop naming the epoch, never insufficient_data", () => {
    for (const n of [1, 2, 5]) {
      const r = rec(
        "running",
        run(0, n, () => ({ train_loss: NaN, val_loss: NaN })),
      );
      expect(r.action).toBe("stop");
      expect(r.reason).toContain(`became NaN at epoch ${n - 1}`);
      expect(r.checkpoint_epoch).toBeNull();
      expect(r.reason).toContain("lower the learning rate");
    }
  });

  test("a stalled run should stop with what to check", () => {
    const crawling = run(0, 25, (e) => ({ train_loss: 0.7 * (1 - 0.000025 * e), val_loss: 0.71 * (1 - 0.000025 * e) }));
    const r = rec("running", crawling);
    expect(r.action).toBe("stop");
    expect(r.reason).toContain("over the last 20 epochs (threshold 1.0%)");
    expect(r.reason).toContain("learning rate");
  });

  test("a finished run recommends the best region's checkpoint", () => {
    for (const status of ["completed", "failed", "cancelled"] as const) {
      const r = rec(status, overfit);
      expect(r.action).toBe("use_checkpoint");
      expect(Math.abs(r.checkpoint_epoch! - 15)).toBeLessThanOrEqual(1);
      expect(r.reason).toContain("worsening since the best epoch");
      expect(oneSentence(r.reason)).toBe(true);
    }
  });

  test("a training Trainwatch holds is only pointed at epochs with a checkpoint", () => {
    const r = rec("cancelled", overfit, { held_by: "trainwatch", epochs: [15, 29] });
    expect(r).toMatchObject({ action: "use_checkpoint", checkpoint_epoch: 15 });
    expect(r.reason).toContain("restore the checkpoint of epoch 15 (val_loss 0.5000)");
    // A cancel can refuse the epoch that was finishing while its checkpoint is still written.
    const unrecorded = rec("cancelled", overfit, { held_by: "trainwatch", epochs: [30] });
    expect(unrecorded).toMatchObject({ action: "use_checkpoint", checkpoint_epoch: 30 });
    expect(unrecorded.reason).toContain("restore the checkpoint of epoch 30 (its metrics were not recorded)");
    const none = rec("cancelled", overfit, { held_by: "trainwatch", epochs: [] });
    expect(none).toMatchObject({ action: "insufficient_data", checkpoint_epoch: null });
    expect(none.reason).toContain("no checkpoint was written");
  });

  test("an early-stopped run says so", () => {
    const r = recommend({
      status: "completed",
      epochs: overfit,
      summary: summarizeTrends(overfit),
      checkpoints: external,
      stop_reason: "early_stopping",
    });
    expect(r.reason).toStartWith("The run early-stopped after 30 epochs");
  });

  test("a finished run without any finite loss has no checkpoint to offer", () => {
    const r = rec(
      "completed",
      run(0, 4, () => ({ train_loss: null })),
    );
    expect(r).toMatchObject({ action: "insufficient_data", checkpoint_epoch: null });
  });
});
