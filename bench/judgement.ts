/**
 * The judgement benchmark: `bun bench/judgement.ts [--corpus=path] [--check] [--verbose]`.
 * Replays every real run of bench/corpus/judgement.json (built by bench/judgement_corpus.ts) through the API epoch by epoch
 * and prints how the server's judgement did against the held-out test loss it never saw: unjustified alarms, how soon
 * overfitting was caught, divergence, stalls, and the regret of following the final checkpoint advice. The server's
 * thresholds come from the environment (TRAINWATCH_*), as for `bun run src/server.ts`. --check exits 1 when a goal is missed.
 */
import { parseArgs } from "node:util";
import { loadCorpus, CORPUS_PATH } from "./judgement_corpus_format.ts";
import { figures, goals, MIN_VALIDATION_ROWS, replayCorpus, type RunOutcome } from "./judgement_replay.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    corpus: { type: "string", default: CORPUS_PATH },
    check: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
  },
});

const corpus = loadCorpus(values.corpus);
const started = performance.now();
const outcomes = await replayCorpus(corpus, process.env);
const seconds = (performance.now() - started) / 1000;

const judged = outcomes.filter((o) => o.validation_rows >= MIN_VALIDATION_ROWS);
const small = outcomes.filter((o) => o.validation_rows < MIN_VALIDATION_ROWS);

function table(title: string, group: RunOutcome[]): boolean {
  const f = figures(group);
  const g = goals(f);
  console.log(
    `\n${title}: ${f.runs} runs (${Object.entries(f.by_kind)
      .map(([k, n]) => `${n} ${k}`)
      .join(", ")})`,
  );
  console.log(`| figure | value | goal | |\n| --- | --- | --- | --- |`);
  for (const row of g) console.log(`| ${row.name} | ${row.value} | ${row.goal} | ${row.pass ? "PASS" : "MISS"} |`);
  console.log(
    `  overfitting delays: ${f.overfit_delays.join(", ") || "-"}${f.overfit_missed.length ? `; missed: ${f.overfit_missed.join(", ")}` : ""}`,
  );
  if (f.divergence_missed.length) console.log(`  divergence missed: ${f.divergence_missed.join(", ")}`);
  if (f.stalled_missed.length) console.log(`  stalls missed: ${f.stalled_missed.join(", ")}`);
  if (f.regret_max) console.log(`  worst regret: ${f.regret_max.value.toFixed(3)} (${f.regret_max.run})`);
  for (const o of group.filter((o) => o.unjustified.length)) {
    const first = o.unjustified[0]!;
    console.log(
      `  unjustified: ${o.id} (${o.kind}) at ${o.unjustified.length} epoch(s), first ${first.epoch} [${first.flags}], held-out still gained ${(first.gain * 100).toFixed(1)}%`,
    );
  }
  return g.every((row) => row.pass);
}

console.log(
  `Judgement benchmark: ${outcomes.length} real runs from ${values.corpus}, replayed through the API in ${seconds.toFixed(1)} s`,
);
const ok = table(`Runs with a validation set of ${MIN_VALIDATION_ROWS}+ rows (held to the goals)`, judged);
if (small.length)
  table(
    `Runs with fewer than ${MIN_VALIDATION_ROWS} validation rows (CSV fixtures; reported, not held to the goals)`,
    small,
  );
if (values.verbose) {
  for (const o of outcomes) {
    console.log(
      `${o.id.padEnd(36)} ${o.kind.padEnd(9)} val ${String(o.validation_rows).padStart(4)} rows  overfit@${o.first_overfitting ?? "-"} diverge@${o.first_diverging ?? "-"} ` +
        `held-out best ${o.held_out_best_epoch ?? "-"} advised ${o.advised_epoch} regret ${o.regret?.toFixed(3) ?? "-"}`,
    );
  }
}
if (values.check && !ok) process.exit(1);
