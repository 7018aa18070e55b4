/**
 * The judgement benchmark: `bun bench/judgement.ts [--corpus=path] [--check] [--verbose]`.
 * Replays every real run of bench/corpus/judgement.json (built by bench/judgement_corpus.ts) through the API epoch by epoch
 * and prints how the server's judgement did against the held-out test loss it never saw, for the tune half (the runs the
 * rules were tuned on) and the report half (new seeds, nothing tuned on them) side by side: unjustified alarms, how soon
 * overfitting was caught, divergence, stalls, and the regret of following the final checkpoint advice. Every run counts
 * toward every goal. The server's thresholds come from the environment (TRAINWATCH_*), as for `bun run src/server.ts`.
 * --check exits 1 when a goal is missed in either half.
 */
import { parseArgs } from "node:util";
import { CORPUS_PATH, loadCorpus, type Half } from "./judgement_corpus_format.ts";
import { figures, goals, replayCorpus, type Figures, type RunOutcome } from "./judgement_replay.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    corpus: { type: "string", default: CORPUS_PATH },
    check: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
  },
});

const HALVES: Half[] = ["tune", "report"];
const corpus = loadCorpus(values.corpus);
const started = performance.now();
const outcomes = await replayCorpus(corpus, process.env);
const seconds = (performance.now() - started) / 1000;
const byHalf = Object.fromEntries(HALVES.map((h) => [h, outcomes.filter((o) => o.half === h)] as const)) as Record<
  Half,
  RunOutcome[]
>;
const fig = Object.fromEntries(HALVES.map((h) => [h, figures(byHalf[h])] as const)) as Record<Half, Figures>;

const kinds = (f: Figures) =>
  Object.entries(f.by_kind)
    .map(([k, n]) => `${n} ${k}`)
    .join(", ");
console.log(
  `Judgement benchmark: ${outcomes.length} real runs from ${values.corpus}, replayed through the API in ${seconds.toFixed(1)} s`,
);
for (const h of HALVES) console.log(`  ${h} half: ${fig[h].runs} runs (${kinds(fig[h])})`);

const rows = HALVES.map((h) => goals(fig[h]));
console.log(`\n| figure | goal | tune half | report half |\n| --- | --- | --- | --- |`);
rows[0]!.forEach((g, i) => {
  const cell = (row: (typeof rows)[number][number]) => `${row.value} ${row.met ? "MET" : "**MISSED**"}`;
  console.log(`| ${g.name} | ${g.goal} | ${cell(g)} | ${cell(rows[1]![i]!)} |`);
});

const rowsOf = (o: RunOutcome) => `${o.validation_rows} validation rows`;
for (const h of HALVES) {
  const f = fig[h];
  const group = byHalf[h];
  console.log(`\n${h} half:`);
  console.log(`  overfitting delays: ${f.overfit_delays.join(", ") || "-"}`);
  const named = (ids: string[]) => ids.map((id) => `${id} (${rowsOf(group.find((o) => o.id === id)!)})`).join(", ");
  if (f.overfit_missed.length) console.log(`  overfitting missed: ${named(f.overfit_missed)}`);
  if (f.divergence_missed.length) console.log(`  divergence missed: ${named(f.divergence_missed)}`);
  if (f.stalled_missed.length) console.log(`  stalls missed: ${named(f.stalled_missed)}`);
  if (f.regret_max) console.log(`  worst regret: ${f.regret_max.value.toFixed(3)} (${f.regret_max.run})`);
  for (const o of group.filter((o) => o.unjustified.length)) {
    const first = o.unjustified[0]!;
    console.log(
      `  unjustified: ${o.id} (${o.kind}, ${rowsOf(o)}) at ${o.unjustified.length} epoch(s), first ${first.epoch} [${first.flags}], held-out still gained ${(first.gain * 100).toFixed(1)}%`,
    );
  }
}
if (values.verbose) {
  console.log("");
  for (const o of outcomes) {
    console.log(
      `${o.id.padEnd(42)} ${o.half.padEnd(6)} ${o.kind.padEnd(9)} val ${String(o.validation_rows).padStart(4)} rows  overfit@${o.first_overfitting ?? "-"} diverge@${o.first_diverging ?? "-"} stalled ${o.stalled_flagged ? "yes" : "no"} ` +
        `held-out best ${o.held_out_best_epoch ?? "-"} blow-up ${o.blow_up_epoch ?? "-"} advised ${o.advised_epoch} regret ${o.regret?.toFixed(3) ?? "-"} (lowest val ${o.baseline_regret?.toFixed(3) ?? "-"})`,
    );
  }
}
if (values.check && rows.some((r) => r.some((g) => !g.met))) process.exit(1);
