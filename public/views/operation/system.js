// The operation page's system metrics (issue 24): one chart with a selector (CPU %, memory, GPU utilisation, GPU
// memory, temperature, power) over the minutes since the run's first sample, read once (GET …/system, at most 500
// samples spread over the run) and then live from the stream's `system` events. Hidden while the run has no samples.

import { api } from "../../lib/api.js";
import { EpochChart, PALETTE } from "../../lib/charts.js";
import { html, render } from "../../lib/html.js";

/** Samples the page keeps: the first read's 500, and then what arrives live (a day at 15 s), the oldest dropped. */
const MAX_KEPT = 6_000;

/** What the selector offers: its label, the y axis, and the series a sample gives ([label, value of a sample]). */
const VIEWS = {
  cpu: {
    label: "CPU %",
    yLabel: "%",
    series: () => [
      ["process", (s) => s.process?.cpu_percent],
      ["machine", (s) => s.machine?.cpu_percent],
    ],
  },
  memory: {
    label: "Memory",
    yLabel: "MB",
    series: () => [
      ["process RSS", (s) => s.process?.rss_mb],
      ["machine used", (s) => s.machine?.memory_used_mb],
      ["machine total", (s) => s.machine?.memory_total_mb],
    ],
  },
  gpu_util: { label: "GPU utilisation %", yLabel: "%", gpu: "utilization_percent" },
  gpu_memory: { label: "GPU memory", yLabel: "MB", gpu: "memory_used_mb" },
  temperature: { label: "GPU temperature", yLabel: "°C", gpu: "temperature_c" },
  power: { label: "GPU power", yLabel: "W", gpu: "power_w" },
};

/** The GPU indices the samples name, ascending. */
const gpuIndices = (samples) =>
  [...new Set(samples.flatMap((s) => (s.gpus ?? []).map((g) => g.index)))].sort((a, b) => a - b);

/** A view's series over `samples`: one per GPU for a GPU reading. */
function seriesOf(view, samples) {
  const v = VIEWS[view];
  if (!v.gpu) return v.series();
  return gpuIndices(samples).map((i) => [`GPU ${i}`, (s) => s.gpus?.find((g) => g.index === i)?.[v.gpu]]);
}

/**
 * The system card, appended to `root`; reads `path`/system once `load()` is called, `add(samples)` takes live ones.
 * `samples()` and `view` are there for tests; `destroy()` ends it.
 */
export function systemPart(root, path, alive) {
  const card = document.createElement("section");
  card.className = "card chart-card";
  card.id = "system";
  card.hidden = true;
  root.append(card);
  render(
    card,
    html`<div class="row wrap"><h2>System</h2><span class="spacer"></span>
      <select id="system-view" aria-label="System metric">${Object.entries(VIEWS).map(([k, v]) => html`<option value="${k}">${v.label}</option>`)}</select></div>
      <div class="chart" id="chart-system"></div>`,
  );
  const select = card.querySelector("#system-view");
  const el = card.querySelector("#chart-system");
  let samples = [];
  let chart = null;
  let shape = "";

  function draw() {
    if (!alive()) return;
    card.hidden = samples.length === 0;
    if (card.hidden) return;
    const series = seriesOf(select.value, samples);
    // A new view, or a GPU the chart has no series for yet: the chart is made again.
    const want = `${select.value}:${series.map(([l]) => l).join(",")}`;
    if (want !== shape || !chart) {
      chart?.destroy();
      el.replaceChildren();
      chart = new EpochChart(el, {
        series: series.map(([label], i) => ({ label, color: PALETTE[i % PALETTE.length], spanGaps: true })),
        xLabel: "minutes",
        yLabel: VIEWS[select.value].yLabel,
        height: 220,
      });
      shape = want;
    }
    const t0 = Date.parse(samples[0].timestamp);
    const x = samples.map((s) => Math.round((Date.parse(s.timestamp) - t0) / 600) / 100);
    chart.setData([x, ...series.map(([, get]) => samples.map((s) => get(s) ?? null))]);
  }
  select.addEventListener("change", draw);

  return {
    async load() {
      const reply = await api("GET", `${path}/system`);
      // Live samples that came while the read was on its way are newer than the read's last.
      const last = reply.samples.length ? reply.samples[reply.samples.length - 1].timestamp : "";
      samples = [...reply.samples, ...samples.filter((s) => s.timestamp > last)];
      draw();
    },
    add(live) {
      const last = samples.length ? samples[samples.length - 1].timestamp : "";
      samples.push(...live.filter((s) => s.timestamp > last));
      if (samples.length > MAX_KEPT) samples = samples.slice(-MAX_KEPT);
      draw();
    },
    samples: () => samples,
    select(view) {
      select.value = view;
      draw();
    },
    get chart() {
      return chart;
    },
    destroy() {
      chart?.destroy();
    },
  };
}
