// The step judgement's figures on the step corpus (bench/step_judgement.ts), pinned for both halves: a change to a step
// rule that moves any of them shows here, and docs/judgement.md must then be re-scored. The report half was scored once,
// after the rules were tuned on the tune half; its misses are pinned as they are, not tuned away.
import { describe, expect, test } from "bun:test";
import { summarise } from "../bench/step_baselines.ts";
import { loadStepCorpus } from "../bench/step_corpus_format.ts";
import { judgementScore, judgementVerdict } from "../bench/step_judgement.ts";

const corpus = loadStepCorpus();
const figures = (half: "tune" | "report") =>
  summarise(corpus.runs.filter((r) => r.half === half).map((r) => judgementScore(r, corpus.thresholds)));

describe("the step judgement on the step corpus", () => {
  test("tune half: no unjustified alarm, every divergence, NaN, recovering spike and stall, overfitting 3 evaluations late", () => {
    const f = figures("tune");
    expect(f.unjustified).toEqual([]);
    expect(f.divergence).toEqual({ runs: 8, caught: 8, missed: [] });
    expect(f.nan).toEqual({ runs: 4, caught: 4 });
    expect(f.spikes).toEqual({ recovered: 6, reported: 6, stopped: 0 });
    expect(f.overfit).toEqual({ runs: 4, caught: 4, median_delay: 3 });
    expect(f.stalled).toEqual({ runs: 4, caught: 4 });
    expect(f.regret_median).toBe(f.lowest_val_regret_median!);
  });

  test("report half, as scored once: one unseen spike (spike-lr-s101) unreported and then called overfitting", () => {
    const f = figures("report");
    expect(f.unjustified).toEqual(["spike-lr-s101"]);
    expect(f.divergence).toEqual({ runs: 8, caught: 8, missed: [] });
    expect(f.nan).toEqual({ runs: 4, caught: 4 });
    expect(f.spikes).toEqual({ recovered: 6, reported: 5, stopped: 0 });
    expect(f.overfit).toEqual({ runs: 4, caught: 4, median_delay: 4 });
    expect(f.stalled).toEqual({ runs: 4, caught: 4 });
    expect(f.regret_median).toBe(f.lowest_val_regret_median!);
  });

  test("a NaN run stops at its NaN step with the best evaluation before it; a blow-up stops within one interval of its onset", () => {
    for (const run of corpus.runs) {
      const { verdict } = judgementVerdict(run);
      if (run.kind === "nan") {
        expect(verdict.stopped_at).toBe(run.labels.nan_step);
        expect(verdict.advised_step!).toBeLessThan(run.labels.nan_step!);
      }
      if (run.kind === "diverged")
        expect(Math.abs(verdict.stopped_at! - run.labels.diverged_onset_step!)).toBeLessThanOrEqual(run.eval_every);
      if (run.kind === "healthy" || run.kind === "noisy" || run.kind === "slowdown") expect(verdict.alarms).toEqual([]);
    }
  });
});
