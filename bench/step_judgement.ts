/**
 * The step judgement scored on the step corpus: `bun bench/step_judgement.ts [--corpus=path] [--verbose] [--check]`.
 * Replays every run of bench/corpus/steps.json step by step through the step rules (src/trends/step_judgement.ts: the
 * state the step write keeps, advanced as each step is stored), with a stop policy on `diverging` (the decision is taken in
 * the write of the step that raised it, so the run stops there), and prints the figures of the issue "Judge steps, on
 * write" for the tune half and the report half, each beside its goal with MET/MISSED, and beside the baselines of
 * bench/step_baselines.ts (Keras EarlyStopping(patience=5 evaluations) + TerminateOnNaN, a W&B-style z-score alert).
 * Scoring is step_baselines.ts's (labels from the held-out loss alone): an alarm is a step where diverging, overfitting,
 * stalled or plateau turns on; a recovering spike is reported when the judgement lists a spike in [from, to + one
 * evaluation interval]; the advice is recommendation.checkpoint_step when the run stops, else at its end.
 * --check exits 1 when a goal is missed on either half.
 */
import { parseArgs } from "node:util";
import { advanceStepJudgement, emptyStepJudgement, stepVerdict } from "../src/trends/step_judgement.ts";
import { recommendSteps } from "../src/trends/step_recommend.ts";
import type { StepPoint } from "../src/trends/step_types.ts";
import {
  kerasBaseline,
  scoreRun,
  summarise,
  zScoreBaseline,
  type HalfFigures,
  type RunScore,
  type WatcherVerdict,
} from "./step_baselines.ts";
import { cellValue, loadStepCorpus, STEP_CORPUS_PATH, type Half, type StepRun } from "./step_corpus_format.ts";

/** The flags that are alarms (a stop policy may name them; the recommendation says stop on each). */
const ALARMS = ["diverging", "overfitting", "stalled", "plateau"] as const;

/** A run's steps as a trainer posts them: every step's train_loss, grad_norm and step time, val_loss at its evaluations. */
export function stepPoints(run: StepRun): StepPoint[] {
  const evals = new Map(run.evals.step.map((s, i) => [s, cellValue(run.evals.val_loss[i]!)]));
  return run.curves.train_loss.map((c, step) => ({
    step,
    train_loss: cellValue(c),
    grad_norm: cellValue(run.curves.grad_norm[step]!),
    duration: cellValue(run.curves.step_time[step]!),
    ...(evals.has(step) && { val_loss: evals.get(step)! }),
  }));
}

/** What the step judgement did over a run, and the spikes it listed (for "reported"). */
export function judgementVerdict(run: StepRun): {
  verdict: WatcherVerdict;
  spikes: number[];
  slowdowns: number[];
  decided: number | null;
} {
  let state = emptyStepJudgement();
  const alarms: number[] = [];
  const on = new Set<string>();
  let stopped: number | null = null;
  let advised: number | null = null;
  for (const row of stepPoints(run)) {
    state = advanceStepJudgement(state, [row]);
    const v = stepVerdict(state);
    for (const f of ALARMS) {
      if (v.flags[f] && !on.has(f)) alarms.push(row.step);
      if (v.flags[f]) on.add(f);
      else on.delete(f);
    }
    if (v.flags.diverging) {
      // The stop policy's decision, in the reply to this step: the trainer stops here.
      stopped = row.step;
      advised = recommendSteps(v, "running", "worsening").checkpoint_step;
      break;
    }
  }
  const v = stepVerdict(state);
  if (stopped === null) advised = recommendSteps(v, "completed", "flat").checkpoint_step;
  return {
    verdict: { name: "step judgement", alarms: [...new Set(alarms)], stopped_at: stopped, advised_step: advised },
    spikes: v.spikes.map((s) => s.step),
    slowdowns: v.slowdowns.map((s) => s.step),
    decided: stopped,
  };
}

/** The judgement's score: step_baselines.ts's, with a recovering spike reported when the judgement listed it. */
export function judgementScore(run: StepRun, thresholds: Parameters<typeof scoreRun>[2]): RunScore {
  const { verdict, spikes } = judgementVerdict(run);
  const score = scoreRun(run, verdict, thresholds);
  return {
    ...score,
    spikes: score.spikes.map((s) => {
      const label = run.labels.spikes.find((l) => l.from === s.from)!;
      return { ...s, reported: spikes.some((at) => at >= label.from && at <= label.to + run.eval_every) };
    }),
  };
}

type Row = { label: string; goal: string; value: (f: HalfFigures) => string; met: (f: HalfFigures) => boolean };

const fmt = (x: number | null, digits = 3) =>
  x === null ? "n/a" : Number.isFinite(x) ? x.toFixed(digits) : x > 0 ? "inf" : "-inf";

/** The issue's table: each figure, its goal, and whether a half's figures meet it. */
export const ROWS: Row[] = [
  {
    label: "unjustified alarms (held-out still improves > 2 % after)",
    goal: "0 runs",
    value: (f) => `${f.unjustified.length} runs`,
    met: (f) => f.unjustified.length === 0,
  },
  {
    label: "non-recovering divergence caught within one eval interval",
    goal: "every run",
    value: (f) => `${f.divergence.caught}/${f.divergence.runs}`,
    met: (f) => f.divergence.caught === f.divergence.runs,
  },
  {
    label: "NaN caught at its step",
    goal: "every run",
    value: (f) => `${f.nan.caught}/${f.nan.runs}`,
    met: (f) => f.nan.caught === f.nan.runs,
  },
  {
    label: "recovering spikes reported / stopped",
    goal: "every one / none",
    value: (f) => `${f.spikes.reported}/${f.spikes.recovered} / ${f.spikes.stopped}`,
    met: (f) => f.spikes.reported === f.spikes.recovered && f.spikes.stopped === 0,
  },
  {
    label: "overfitting caught (median delay, evaluations)",
    goal: "every run, ≤ 2",
    value: (f) => `${f.overfit.caught}/${f.overfit.runs} (${fmt(f.overfit.median_delay, 1)})`,
    met: (f) => f.overfit.caught === f.overfit.runs && (f.overfit.median_delay ?? 0) <= 2,
  },
  {
    label: "stalled runs called out by step 300",
    goal: "every run",
    value: (f) => `${f.stalled.caught}/${f.stalled.runs}`,
    met: (f) => f.stalled.caught === f.stalled.runs,
  },
  {
    label: "checkpoint regret median (max) vs lowest val_loss median",
    goal: "≤ lowest val_loss",
    value: (f) => `${fmt(f.regret_median)} (${fmt(f.regret_max)}) vs ${fmt(f.lowest_val_regret_median)}`,
    met: (f) => f.regret_median === null || f.regret_median <= (f.lowest_val_regret_median ?? 0) + 1e-9,
  },
];

if (import.meta.main) {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      corpus: { type: "string", default: STEP_CORPUS_PATH },
      verbose: { type: "boolean", default: false },
      check: { type: "boolean", default: false },
    },
  });
  const corpus = loadStepCorpus(values.corpus);
  const HALVES: Half[] = ["tune", "report"];
  const watchers: { name: string; score: (run: StepRun) => RunScore }[] = [
    { name: "step judgement", score: (run) => judgementScore(run, corpus.thresholds) },
    { name: "Keras ES(5)+NaN", score: (run) => scoreRun(run, kerasBaseline(run), corpus.thresholds) },
    { name: "z-score alert", score: (run) => scoreRun(run, zScoreBaseline(run), corpus.thresholds) },
  ];
  const figures = watchers.map((w) => {
    const scores: Record<Half, RunScore[]> = { tune: [], report: [] };
    for (const run of corpus.runs) scores[run.half].push(w.score(run));
    return { name: w.name, scores, halves: { tune: summarise(scores.tune), report: summarise(scores.report) } };
  });
  const counts = (h: Half) => corpus.runs.filter((r) => r.half === h).length;
  console.log(
    `Step judgement over ${corpus.runs.length} runs of ${values.corpus} (tune ${counts("tune")}, report ${counts("report")})\n`,
  );
  const mark = (ok: boolean) => (ok ? "MET" : "**MISSED**");
  let missed = false;
  console.log(
    `| figure | goal | ${HALVES.map((h) => `judgement (${h})`).join(" | ")} | ${HALVES.map((h) => `Keras (${h}) | z-score (${h})`).join(" | ")} |`,
  );
  console.log(
    `| --- | --- | ${Array(HALVES.length * 3)
      .fill("---")
      .join(" | ")} |`,
  );
  for (const row of ROWS) {
    const ours = HALVES.map((h) => {
      const f = figures[0]!.halves[h];
      const ok = row.met(f);
      if (!ok) missed = true;
      return `${row.value(f)} ${mark(ok)}`;
    });
    const base = HALVES.map((h) => `${row.value(figures[1]!.halves[h])} | ${row.value(figures[2]!.halves[h])}`);
    console.log(`| ${row.label} | ${row.goal} | ${ours.join(" | ")} | ${base.join(" | ")} |`);
  }
  if (values.verbose) {
    for (const h of HALVES) {
      const f = figures[0]!.halves[h];
      console.log(
        `\n${h}: unjustified ${f.unjustified.join(", ") || "none"}; divergence missed ${f.divergence.missed.join(", ") || "none"}`,
      );
      for (const s of figures[0]!.scores[h]) {
        const run = corpus.runs.find((r) => r.id === s.id)!;
        const j = judgementVerdict(run);
        console.log(
          `  ${s.id} (${s.kind}): alarms ${j.verdict.alarms.join(",") || "-"} stopped ${j.verdict.stopped_at ?? "-"} advised ${j.verdict.advised_step ?? "-"} spikes ${j.spikes.join(",") || "-"} slow-downs ${j.slowdowns.join(",") || "-"}; labels onset ${run.labels.diverged_onset_step ?? "-"} nan ${run.labels.nan_step ?? "-"} best ${run.labels.held_out_best_step ?? "-"} spikes ${run.labels.spikes.map((l) => `${l.from}-${l.to}${l.recovered ? "r" : ""}`).join(",") || "-"} slow-downs ${run.events.slowdowns.map(([a, b]) => `${a}-${b}`).join(",") || "-"}; unjustified ${s.unjustified ? `${s.unjustified.step} (+${(s.unjustified.gain * 100).toFixed(1)}%)` : "-"} regret ${fmt(s.regret)}`,
        );
      }
    }
  }
  if (values.check && missed) process.exit(1);
}
