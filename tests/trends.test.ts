// Trend analysis on synthetic loss curves: the summary flags, best epoch, smoothing, downsampling and recommendations.
import { describe, expect, test } from "bun:test";
import {
  chooseMonitor,
  DEFAULT_TREND_CONFIG,
  downsample,
  emaSmooth,
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
// Val improves until epoch 10 (0.5), then hovers just above it.
const plateau = (count: number) =>
  run(0, count, (e) => ({ train_loss: 0.4, val_loss: e <= 10 ? 1 - 0.05 * e : 0.51 + 0.003 * Math.sin(e) }));

describe("summary flags", () => {
  test("an improving run is neither overfitting, plateaued nor diverging", () => {
    expect(summarizeTrends(improving)).toEqual({
      monitor: "val_loss",
      best_epoch: 29,
      best_val_loss: 1 / (1 + 0.2 * 29) + 0.05,
      epochs_since_improvement: 0,
      is_overfitting: false,
      is_plateaued: false,
      is_diverging: false,
      latest_epoch: 29,
      total_epochs_completed: 30,
    });
  });

  test("no epochs gives the empty summary", () => {
    expect(summarizeTrends([])).toEqual(EMPTY_SUMMARY);
  });

  test("training loss falling while validation loss rises is overfitting", () => {
    const s = summarizeTrends(overfit);
    expect(s.is_overfitting).toBe(true);
    expect(s.best_epoch).toBe(15);
    expect(s.best_val_loss).toBe(0.5);
    expect(s.epochs_since_improvement).toBe(14);
    expect(s.is_diverging).toBe(false);
  });

  test("overfitting needs a full window of finite train and val losses", () => {
    const gap = overfit.map((p) => (p.epoch === 25 ? { ...p, val_loss: null } : p));
    expect(summarizeTrends(gap).is_overfitting).toBe(false);
    expect(summarizeTrends(overfit.slice(-9)).is_overfitting).toBe(false);
    expect(summarizeTrends(overfit.slice(-10)).is_overfitting).toBe(true);
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

  describe("one noisy validation epoch does not flip is_overfitting", () => {
    // Train falls 5 % per epoch, so only the validation side can keep the flag off.
    const base = run(0, 30, (e) => ({ train_loss: 0.6 * 0.95 ** e, val_loss: 0.8 * 0.97 ** e }));
    const endpointsSayOverfit = (h: EpochPoint[]) => {
      const first = h[h.length - 10]!;
      const last = h[h.length - 1]!;
      return last.train_loss! <= first.train_loss! * 0.95 && last.val_loss! >= first.val_loss! * 1.05;
    };

    test("a 3× spike in the middle of the window", () => {
      const spiked = base.map((p) => (p.epoch === 25 ? { ...p, val_loss: p.val_loss! * 3 } : p));
      expect(summarizeTrends(base).is_overfitting).toBe(false);
      expect(summarizeTrends(spiked).is_overfitting).toBe(false);
    });

    test("a low outlier at the start of the window that fools a raw endpoint comparison", () => {
      const dipped = base.map((p) => (p.epoch === 20 ? { ...p, val_loss: 0.3 } : p));
      expect(endpointsSayOverfit(dipped)).toBe(true);
      expect(summarizeTrends(dipped).is_overfitting).toBe(false);
    });
  });

  test("a NaN or infinite loss at the latest epoch is diverging", () => {
    expect(summarizeTrends([...improving, { epoch: 30, train_loss: NaN, val_loss: NaN }]).is_diverging).toBe(true);
    expect(summarizeTrends([...improving, { epoch: 30, train_loss: 0.1, val_loss: Infinity }]).is_diverging).toBe(true);
    expect(summarizeTrends([...improving, { epoch: 30, train_loss: -Infinity }]).is_diverging).toBe(true);
  });

  test("a NaN in the past that recovered is not diverging and never becomes the best", () => {
    const h = improving.map((p) => (p.epoch === 12 ? { ...p, val_loss: NaN, train_loss: NaN } : p));
    const s = summarizeTrends(h);
    expect(s.is_diverging).toBe(false);
    expect(s.best_epoch).toBe(29);
  });

  test("an exploding training loss is diverging; a mild rise is not", () => {
    const exploding = run(0, 30, (e) => ({ train_loss: e < 25 ? 1 / (1 + e) : (1 / 25) * 1.5 ** (e - 24) }));
    expect(summarizeTrends(exploding).is_diverging).toBe(true);
    const mild = run(0, 30, (e) => ({ train_loss: e < 25 ? 1 / (1 + e) : (1 / 25) * 1.02 ** (e - 24) }));
    expect(summarizeTrends(mild).is_diverging).toBe(false);
  });

  test("the divergence fit needs at least 3 finite training losses in the window", () => {
    const sparse = run(0, 10, (e) => ({ train_loss: e < 5 || e === 7 || e === 9 ? 1 + e : null, val_loss: 1 }));
    // Epochs 5..9 hold only two finite train losses (8 and 10): a steep rise, but too little evidence.
    expect(summarizeTrends(sparse).is_diverging).toBe(false);
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
    return run(Math.floor(r() * 3) * 50, count, (e, i) => {
      const noisy = (v: number) => (r() < 0.05 ? NaN : r() < 0.05 ? null : v * (1 + 0.1 * (r() - 0.5)));
      const train = Math.exp(-i / 15) + (seed % 3 === 0 && i > 35 ? 1.6 ** (i - 35) : 0);
      const val = i < valFrom ? null : train + 0.05 + (i > turn ? 0.01 * (i - turn) : 0);
      return { train_loss: noisy(train), val_loss: val === null ? null : noisy(val), train_accuracy: r() };
    });
  }

  for (const [name, cfg] of [
    ["default config", DEFAULT_TREND_CONFIG],
    ["short windows", { ...DEFAULT_TREND_CONFIG, plateau_patience: 4, overfit_window: 4, diverge_window: 3, trajectory_window: 6 }],
  ] as [string, TrendConfig][]) {
    test(`summarizeFrom on (best, tail) equals summarizeTrends on the full history (${name})`, () => {
      for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
        const history = randomRun(seed, 45);
        let monitor: Monitor | null = null;
        let best: Best | null = null;
        for (let k = 1; k <= history.length; k++) {
          const stored = history.slice(0, k);
          const latest = stored[k - 1]!;
          // What the store does on each append: re-scan only when the monitor switches.
          const m = chooseMonitor(stored);
          if (m !== monitor) best = m === null ? null : findBest(stored, m);
          else if (m !== null) best = findBest([latest], m, best);
          monitor = m;
          const incremental = summarizeFrom({ monitor, best, tail: stored.slice(-tailSize(cfg)), count: k }, cfg);
          expect(incremental).toEqual(summarizeTrends(stored, cfg));
        }
      }
    });
  }

  test("tailSize covers every window and summarizeFrom accepts a newest-first tail", () => {
    expect(tailSize()).toBe(10);
    expect(tailSize({ ...DEFAULT_TREND_CONFIG, diverge_window: 25 })).toBe(25);
    const tail = overfit.slice(-tailSize()).reverse();
    const parts = { monitor: "val_loss" as const, best: { epoch: 15, value: 0.5 }, tail, count: overfit.length };
    expect(summarizeFrom(parts)).toEqual(summarizeTrends(overfit));
  });
});

describe("line fitting", () => {
  test("linearFit recovers an exact line, even at large epoch numbers", () => {
    const xs = [1000, 1001, 1002, 1003];
    const fit = linearFit(xs, xs.map((x) => 2 * x + 1));
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
});

describe("downsample", () => {
  const long = run(50, 1000, (e) => ({ val_loss: 1 / e }));

  test("keeps first, last and the best epoch, ascending, within maxPoints", () => {
    for (const keep of [51, 537, 1048, 500 + 50 + 1]) {
      const out = downsample(long, 50, keep);
      expect(out.length).toBeLessThanOrEqual(50);
      expect(out.length).toBeGreaterThanOrEqual(45);
      expect(out[0]!.epoch).toBe(50);
      expect(out[out.length - 1]!.epoch).toBe(1049);
      expect(out.map((p) => p.epoch)).toContain(keep);
      for (let i = 1; i < out.length; i++) expect(out[i]!.epoch).toBeGreaterThan(out[i - 1]!.epoch);
    }
  });

  test("short series come back as they are; tiny budgets still keep 3 points", () => {
    expect(downsample(long.slice(0, 20), 50, 55)).toEqual(long.slice(0, 20));
    const three = downsample(long, 1, 300);
    expect(three.map((p) => p.epoch)).toEqual([50, 300, 1049]);
    expect(downsample(long, 10, null)).toHaveLength(10);
    expect(downsample(long, 10, 123456)).toHaveLength(10);
  });
});

describe("trajectory and generalization gap", () => {
  test("trajectoryOf reads the fitted monitored line", () => {
    const up = improving.map((p) => ({ epoch: p.epoch, val_loss: 2 - p.val_loss! }));
    const flat = run(0, 12, () => ({ val_loss: 0.3 }));
    expect(trajectoryOf(improving, "val_loss").trajectory).toBe("improving");
    expect(trajectoryOf(improving, "val_loss").slope!).toBeLessThan(0);
    expect(trajectoryOf(up, "val_loss").trajectory).toBe("worsening");
    expect(trajectoryOf(flat, "val_loss")).toEqual({ trajectory: "flat", slope: 0, relative_change: 0 });
    expect(trajectoryOf(improving, null)).toEqual({ trajectory: "flat", slope: null, relative_change: null });
  });

  test("generalizationGap: widening when overfitting, stable with a constant gap, narrowing as val catches up", () => {
    expect(generalizationGap(overfit).trend).toBe("widening");
    const constant = generalizationGap(improving);
    expect(constant.trend).toBe("stable");
    expect(constant.latest).toBeCloseTo(0.05, 12);
    const catching = run(0, 20, (e) => ({ train_loss: 0.3, val_loss: 0.3 + 0.2 / (1 + e) }));
    expect(generalizationGap(catching).trend).toBe("narrowing");
    expect(generalizationGap([{ epoch: 0, train_loss: 1, val_loss: 1.2 }])).toEqual({ latest: 1.2 - 1, slope: null, trend: null });
  });
});

describe("recommend", () => {
  const rec = (status: "running" | "completed" | "failed" | "cancelled", epochs: EpochPoint[]) =>
    recommend({ status, epochs, summary: summarizeTrends(epochs) });
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

  test("an overfitting running run should stop, pointing at the best epoch", () => {
    const r = rec("running", overfit);
    expect(r).toMatchObject({ action: "stop", checkpoint_epoch: 15, trajectory: "worsening" });
    expect(r.reason).toMatch(
      /^Validation loss has risen \d+\.\d% over the last 10 epochs while training loss fell \d+\.\d%; best val_loss 0\.5000 at epoch 15, 14 epochs ago\.$/,
    );
  });

  test("a plateaued running run should stop at its best epoch", () => {
    const r = rec("running", plateau(22));
    expect(r).toMatchObject({ action: "stop", checkpoint_epoch: 10 });
    expect(r.reason).toContain("has not improved for 11 epochs (patience 10)");
    expect(oneSentence(r.reason)).toBe(true);
  });

  test("a diverging running run should stop and name the bad epoch", () => {
    const r = rec("running", [...improving, { epoch: 30, train_loss: NaN, val_loss: 0.3 }]);
    expect(r).toMatchObject({ action: "stop", checkpoint_epoch: 29 });
    expect(r.reason).toStartWith("Training loss became NaN at epoch 30;");
    const exploding = run(0, 30, (e) => ({ train_loss: e < 25 ? 1 / (1 + e) : (1 / 25) * 1.5 ** (e - 24) }));
    expect(rec("running", exploding).reason).toMatch(/^Training loss has risen \d+\.\d% over the last 5 epochs; best train_loss/);
  });

  test("a finished run recommends its best checkpoint", () => {
    for (const status of ["completed", "failed", "cancelled"] as const) {
      const r = rec(status, overfit);
      expect(r).toMatchObject({ action: "use_checkpoint", checkpoint_epoch: 15 });
      expect(r.reason).toContain("restore epoch 15 (best val_loss 0.5000, 14 epochs before the last)");
      expect(oneSentence(r.reason)).toBe(true);
    }
  });

  test("a finished run without any finite loss has no checkpoint to offer", () => {
    const r = rec("completed", run(0, 4, () => ({ train_loss: null })));
    expect(r).toMatchObject({ action: "insufficient_data", checkpoint_epoch: null });
  });
});
