/**
 * The step baselines' scores: `bun bench/step_baselines_report.ts [--corpus=path] [--verbose]`.
 * Replays Keras EarlyStopping(val_loss, patience 5 evaluations, restore_best_weights) + TerminateOnNaN and a W&B-style
 * z-score alert (window 30, |z| > 3) over every run of bench/corpus/steps.json and prints the figures of the issue
 * "Judge steps, on write" for the tune half and the report half side by side: what the step judgement is compared with.
 */
import { parseArgs } from "node:util";
import {
  kerasBaseline,
  scoreRun,
  summarise,
  zScoreBaseline,
  type HalfFigures,
  type RunScore,
} from "./step_baselines.ts";
import { loadStepCorpus, STEP_CORPUS_PATH, type Half } from "./step_corpus_format.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { corpus: { type: "string", default: STEP_CORPUS_PATH }, verbose: { type: "boolean", default: false } },
});

const corpus = loadStepCorpus(values.corpus);
const HALVES: Half[] = ["tune", "report"];
const WATCHERS = [
  { name: "Keras EarlyStopping(patience=5 evals) + TerminateOnNaN", verdict: kerasBaseline },
  { name: "W&B-style z-score alert (train_loss, window 30, |z| > 3)", verdict: zScoreBaseline },
];

const fmt = (x: number | null, digits = 3) =>
  x === null ? "n/a" : Number.isFinite(x) ? x.toFixed(digits) : x > 0 ? "inf" : "-inf";
const rows = (f: HalfFigures): [string, string][] => [
  ["runs", `${f.runs}`],
  ["unjustified alarms (held-out still improves > 2 %)", `${f.unjustified.length} runs`],
  ["divergence caught within one eval interval", `${f.divergence.caught}/${f.divergence.runs}`],
  ["NaN caught at its step", `${f.nan.caught}/${f.nan.runs}`],
  ["recovering spikes reported / stopped", `${f.spikes.reported}/${f.spikes.recovered} / ${f.spikes.stopped}`],
  [
    "overfitting caught (median delay, evals)",
    `${f.overfit.caught}/${f.overfit.runs} (${fmt(f.overfit.median_delay, 1)})`,
  ],
  ["stalled called out by step 300", `${f.stalled.caught}/${f.stalled.runs}`],
  ["checkpoint regret median / max", `${fmt(f.regret_median)} / ${fmt(f.regret_max)}`],
  ["lowest-val_loss checkpoint regret median", fmt(f.lowest_val_regret_median)],
];

const counts = new Map<string, number>();
for (const r of corpus.runs) counts.set(r.kind, (counts.get(r.kind) ?? 0) + 1);
const kinds = [...counts].map(([k, n]) => `${n} ${k}`).join(", ");
console.log(`Step baselines over ${corpus.runs.length} runs of ${values.corpus} (${kinds})`);
for (const w of WATCHERS) {
  const scores: Record<Half, RunScore[]> = { tune: [], report: [] };
  for (const run of corpus.runs) scores[run.half].push(scoreRun(run, w.verdict(run), corpus.thresholds));
  const figs = HALVES.map((h) => rows(summarise(scores[h])));
  console.log(`\n${w.name}`);
  console.log(`| figure | tune | report |\n| --- | --- | --- |`);
  figs[0]!.forEach(([label, tune], i) => console.log(`| ${label} | ${tune} | ${figs[1]![i]![1]} |`));
  if (values.verbose) {
    for (const h of HALVES) {
      const f = summarise(scores[h]);
      console.log(
        `  ${h}: unjustified ${f.unjustified.join(", ") || "none"}; divergence missed ${f.divergence.missed.join(", ") || "none"}`,
      );
    }
  }
}
