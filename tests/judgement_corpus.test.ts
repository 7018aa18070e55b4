// The judgement against real runs: the corpus of bench/corpus/judgement.json (trained by the project's own engine, each epoch
// with a held-out loss the judgement never sees) replayed through the API, as bench/judgement.ts does. This pins the figures
// the judgement reaches on runs with a usable validation set, so a rule change that makes it worse fails here.
import { describe, expect, test } from "bun:test";
import { loadCorpus } from "../bench/judgement_corpus_format.ts";
import { figures, MIN_VALIDATION_ROWS, replayCorpus } from "../bench/judgement_replay.ts";

describe("the judgement on the corpus of real runs", async () => {
  const outcomes = (await replayCorpus(loadCorpus(), {})).filter((o) => o.validation_rows >= MIN_VALIDATION_ROWS);
  const f = figures(outcomes);

  test("the corpus covers every kind of run", () => {
    for (const kind of ["healthy", "noisy", "overfit", "exploding", "stalled"])
      expect(f.by_kind[kind] ?? 0).toBeGreaterThanOrEqual(5);
  });

  test("every exploding run is called diverging within 3 epochs of its blow-up, NaN from the first epoch included", () => {
    expect(f.divergence_missed).toEqual([]);
  });

  test("every stalled run is called out", () => {
    expect(f.stalled_missed).toEqual([]);
  });

  test("overfitting is caught a median of at most 5 epochs after the held-out best", () => {
    expect(f.overfit_median_delay).not.toBeNull();
    expect(f.overfit_median_delay!).toBeLessThanOrEqual(5);
  });

  test("following the final checkpoint advice costs at most 3 % of held-out loss on average", () => {
    expect(f.regret_mean!).toBeLessThanOrEqual(1.03);
  });

  test("no healthy or noisy run gets an alarm while the held-out loss still had more than 2 % to gain", () => {
    const healthy = outcomes.filter((o) => (o.kind === "healthy" || o.kind === "noisy") && o.unjustified.length > 0);
    expect(healthy.map((o) => `${o.id}@${o.unjustified[0]!.epoch}`)).toEqual([]);
  });
});
