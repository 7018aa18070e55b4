// uPlot line charts over epochs. The views hand over aligned columns; the chart draws them, marks the best epoch and
// follows its container's width. Values that are not finite (NaN, ±Infinity, a diverged run) are drawn as gaps.
// uPlot comes through the page's import map ("uplot" → its ESM build from node_modules).

import uPlot from "uplot";
import { tick } from "./format.js";

export const PALETTE = [
  "#2563eb",
  "#dc2626",
  "#059669",
  "#d97706",
  "#7c3aed",
  "#0891b2",
  "#db2777",
  "#65a30d",
  "#475569",
  "#ea580c",
];

/** Colour with alpha, for the faint raw curve under its smoothed one. */
export function fade(hex, alpha = 0.28) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** Non-finite values become null so uPlot leaves a gap instead of breaking its scale. */
export const plottable = (values) => values.map((v) => (typeof v === "number" && Number.isFinite(v) ? v : null));

/** Epochs are whole numbers: the x axis steps by 1, 2, 5, 10, … and never labels "2.5". */
export const EPOCH_INCREMENTS = [
  1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 50_000, 100_000,
];

/** Joins runs sampled at different epochs onto one x axis (for the comparison chart). */
export const joinRuns = (tables) => (tables.length === 1 ? tables[0] : uPlot.join(tables));

/** Dashed vertical line at the best epoch, labelled. */
function bestMarker(getBest) {
  return {
    hooks: {
      draw: [
        (u) => {
          const best = getBest();
          if (best === null || best === undefined) return;
          const [lo, hi] = [u.scales.x.min, u.scales.x.max];
          if (lo === undefined || best < lo || best > hi) return;
          const x = Math.round(u.valToPos(best, "x", true));
          const { ctx } = u;
          const { top, height } = u.bbox;
          ctx.save();
          ctx.strokeStyle = "#059669";
          ctx.lineWidth = 1.5 * devicePixelRatio;
          ctx.setLineDash([5 * devicePixelRatio, 4 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = "#059669";
          ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
          const label = `best ${best}`;
          const w = ctx.measureText(label).width;
          const right = x + 4 * devicePixelRatio + w < u.bbox.left + u.bbox.width;
          ctx.textAlign = right ? "left" : "right";
          ctx.fillText(label, right ? x + 4 * devicePixelRatio : x - 4 * devicePixelRatio, top + 12 * devicePixelRatio);
          ctx.restore();
        },
      ],
    },
  };
}

/** With the cursor off the plot, the legend shows the latest values instead of dashes. */
function latestInLegend() {
  const showLatest = (u) => {
    const last = u.data[0].length - 1;
    if (u.cursor.idx == null && last >= 0) u.setLegend({ idx: last }, false);
  };
  return { hooks: { setData: [showLatest], setCursor: [showLatest] } };
}

/**
 * One chart. `series`: [{ label, color, faint?, legend? }] in column order after x; faint series are the raw curves drawn
 * under the smoothed ones and kept out of the legend. `getBest()` returns the epoch to mark, or null.
 */
export class EpochChart {
  constructor(container, { series, height = 240, getBest = () => null, yLabel = "" }) {
    this.container = container;
    this.series = series;
    const opts = {
      width: Math.max(300, container.clientWidth),
      height,
      scales: { x: { time: false } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      axes: [
        {
          label: "epoch",
          labelSize: 18,
          size: 36,
          stroke: "#475569",
          grid: { stroke: "#e5e7eb" },
          incrs: EPOCH_INCREMENTS,
          values: (_u, vals) => vals.map(String),
        },
        {
          label: yLabel,
          labelSize: yLabel ? 18 : 0,
          size: 56,
          stroke: "#475569",
          grid: { stroke: "#e5e7eb" },
          values: (_u, vals) => vals.map(tick),
        },
      ],
      series: [
        { label: "epoch" },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.faint ? fade(s.color) : s.color,
          width: s.faint ? 1 : 2,
          spanGaps: s.spanGaps ?? false,
          points: { show: false },
          value: (_u, v) => (v === null || v === undefined ? "—" : tick(v)),
        })),
      ],
      plugins: [bestMarker(getBest), latestInLegend()],
    };
    this.u = new uPlot(opts, [[], ...series.map(() => [])], container);
    // Raw curves share their smoothed twin's name; keep them out of the legend.
    const rows = this.u.root.querySelectorAll(".u-legend .u-series");
    series.forEach((s, i) => {
      if (s.faint && rows[i + 1]) rows[i + 1].style.display = "none";
    });
    this.resize = new ResizeObserver(() => {
      const w = Math.max(300, this.container.clientWidth);
      if (w !== this.u.width) this.u.setSize({ width: w, height: this.u.height });
    });
    this.resize.observe(container);
  }

  /** Columns: [x, ...one array per series]. Keeps the zoom when the user has zoomed in. */
  setData(columns) {
    this.u.setData(columns);
  }

  /** Shows or hides a series (by index into `series`). */
  show(index, visible) {
    if (this.u.series[index + 1].show !== visible) this.u.setSeries(index + 1, { show: visible });
  }

  /** Redraws the marker when only the best epoch changed. */
  redraw() {
    this.u.redraw(false, false);
  }

  /** The x axis labels drawn now (epochs); uPlot keeps them on the axis as `_values` (a test hook, not for the views). */
  xTicks() {
    return (this.u.axes[0]._values ?? []).map(String);
  }

  /** Number of x points drawn. */
  points() {
    return this.u.data[0].length;
  }

  destroy() {
    this.resize.disconnect();
    this.u.destroy();
  }
}
