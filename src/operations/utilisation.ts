/**
 * How busy a run's machine was, in words, from its latest system sample (src/schemas/system.ts): what a `hung` flag
 * cites, so a person tells a deadlocked collective (GPUs at 0 %) from a slow data loader (a core busy) at a glance.
 * Pure; the dashboard runs it too (src/routes/dashboard.ts BROWSER_MODULES), so page and server word it the same.
 */
import type { SystemSample } from "../schemas/system.ts";

const pct = (v: number) => `${Math.round(v * 10) / 10} %`;

/**
 * The utilisation a sample shows, as "GPU utilisation 0 % (GPU 0 0 %, GPU 1 0 %), sampled 12 s before": the GPUs' when
 * any reports one (their mean, then each), else the training process's CPU (% of one core), else the machine's;
 * undefined when the sample has none of them (or there is no sample). `nowMs`: for the sample's age.
 */
export function describeUtilisation(sample: SystemSample | null | undefined, nowMs: number): string | undefined {
  if (!sample) return undefined;
  const gpus = (sample.gpus ?? []).filter(
    (g): g is typeof g & { utilization_percent: number } => typeof g.utilization_percent === "number",
  );
  let what: string | undefined;
  if (gpus.length > 0) {
    const mean = gpus.reduce((a, g) => a + g.utilization_percent, 0) / gpus.length;
    what =
      gpus.length === 1
        ? `GPU ${gpus[0]!.index} utilisation ${pct(mean)}`
        : `GPU utilisation ${pct(mean)} (${gpus.map((g) => `GPU ${g.index} ${pct(g.utilization_percent)}`).join(", ")})`;
  } else if (typeof sample.process?.cpu_percent === "number") {
    what = `process CPU ${pct(sample.process.cpu_percent)} of one core`;
  } else if (typeof sample.machine?.cpu_percent === "number") {
    what = `machine CPU ${pct(sample.machine.cpu_percent)}`;
  }
  if (what === undefined) return undefined;
  const age = Math.max(0, Math.round((nowMs - Date.parse(sample.timestamp)) / 1000));
  return `${what}, sampled ${age} s before`;
}
