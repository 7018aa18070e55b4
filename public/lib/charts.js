// uPlot line charts over epochs or steps. The views hand over aligned columns; the chart draws them, marks the best
// epoch (and, over steps, where each epoch ended) and follows its container's width. A sparse series (evaluations
// taken every few hundred steps) is drawn as points, never as a line across the steps between them. Values that are not finite (NaN, ±Infinity, a diverged run) break the line and are
// marked with a red band, so a single NaN stays visible however many epochs share a pixel. Dragging across a chart
// selects an epoch range and hands it to the view (onZoom), which fetches it at full resolution; a double-click asks
// for the full view again (onReset). uPlot comes through the page's import map ("uplot" → its ESM build from node_modules).

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

/** How a non-finite value is named on its marker. */
const kindOf = (v) => (Number.isNaN(v) ? "NaN" : v > 0 ? "+∞" : "−∞");

/**
 * Epochs to ask the server for, for a chart whose plot is `width` CSS pixels wide: two per pixel column (a bucket's
 * lowest and highest), within 500 … 4,000. A range holding fewer epochs than that comes back whole.
 */
export const pointsFor = (width) => Math.max(500, Math.min(4000, Math.round(2 * width)));

/**
 * Runs a view change (a fetch, then a draw) counted in `state.loading` until it is drawn or failed: the page's test
 * hook (window.__trainwatch.loading) waits for none.
 */
export async function drawing(state, change) {
  state.loading++;
  try {
    return await change();
  } finally {
    state.loading--;
  }
}

/** Epochs and steps are whole numbers: the x axis steps by 1, 2, 5, 10, … and never labels "2.5". */
export const EPOCH_INCREMENTS = [
  1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 50_000, 100_000, 200_000,
  250_000, 500_000, 1_000_000, 2_000_000, 2_500_000, 5_000_000, 10_000_000, 20_000_000, 50_000_000, 100_000_000,
  200_000_000, 500_000_000, 1_000_000_000,
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

/**
 * Dotted grey lines at `getLines()` ([{ x, label }]: where each epoch of a step run ended), labelled at the top, left of
 * the line, where a label fits; lines closer than 3 px to the last drawn one are skipped (a 10,000-epoch run zoomed out).
 */
function boundaryMarker(getLines) {
  return {
    hooks: {
      draw: [
        (u) => {
          const lines = getLines();
          if (!lines.length) return;
          const [lo, hi] = [u.scales.x.min, u.scales.x.max];
          const { ctx } = u;
          const { top, height } = u.bbox;
          const px = devicePixelRatio;
          ctx.save();
          ctx.strokeStyle = "#94a3b8";
          ctx.fillStyle = "#64748b";
          ctx.lineWidth = px;
          ctx.setLineDash([2 * px, 3 * px]);
          ctx.font = `${10 * px}px system-ui, sans-serif`;
          ctx.textAlign = "right";
          let drawnAt = Number.NEGATIVE_INFINITY;
          let labelledTo = Number.NEGATIVE_INFINITY;
          for (const { x, label } of lines) {
            if (lo === undefined || x < lo || x > hi) continue;
            const at = Math.round(u.valToPos(x, "x", true));
            if (at - drawnAt < 3 * px) continue;
            drawnAt = at;
            ctx.beginPath();
            ctx.moveTo(at, top);
            ctx.lineTo(at, top + height);
            ctx.stroke();
            const w = ctx.measureText(label).width;
            if (at - w - 3 * px > labelledTo) {
              ctx.fillText(label, at - 3 * px, top + 10 * px);
              labelledTo = at;
            }
          }
          ctx.restore();
        },
      ],
    },
  };
}

/**
 * Red bands over the epochs where a shown series is not finite (consecutive ones joined), at least 2 px wide, with the
 * kind written at the top: a NaN between two finite epochs is a gap uPlot draws narrower than a pixel.
 */
function nonFiniteMarker(getMarks) {
  return {
    hooks: {
      draw: [
        (u) => {
          const marks = getMarks().filter((m) => u.series[m.series + 1]?.show !== false);
          if (!marks.length) return;
          const { ctx } = u;
          const { left, top, width, height } = u.bbox;
          const px = devicePixelRatio;
          ctx.save();
          ctx.beginPath();
          ctx.rect(left, top, width, height);
          ctx.clip();
          ctx.font = `${10 * px}px system-ui, sans-serif`;
          ctx.textAlign = "center";
          let labelledTo = Number.NEGATIVE_INFINITY;
          const drawn = new Set();
          for (const m of marks) {
            // A raw curve and its smoothed twin hold the same NaN: one band.
            const key = `${m.from}|${m.to}|${m.kind}`;
            if (drawn.has(key)) continue;
            drawn.add(key);
            const x0 = u.valToPos(m.from, "x", true);
            const x1 = u.valToPos(m.to, "x", true);
            const w = Math.max(2 * px, x1 - x0);
            ctx.fillStyle = "rgba(220, 38, 38, 0.35)";
            ctx.fillRect(x0 - (w - (x1 - x0)) / 2, top, w, height);
            if (x0 > labelledTo) {
              ctx.fillStyle = "#dc2626";
              ctx.fillText(m.kind, (x0 + x1) / 2, top + 22 * px);
              labelledTo = x1 + ctx.measureText(m.kind).width + 4 * px;
            }
          }
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
 * One chart. `series`: [{ label, color, faint?, sparse?, spanGaps? }] in column order after x; faint series are the raw
 * curves drawn under the smoothed ones and kept out of the legend; a sparse one is drawn as points only. `xLabel`: what
 * x counts ("epoch", "step"). `getBest()` returns the epoch to mark, or null; `getLines()` the epoch ends to mark
 * ([{ x, label }]). `onZoom(from, to)` gets the whole x values a drag selected; `onReset()` a double-click. Without
 * them, dragging zooms into the data held.
 */
export class EpochChart {
  constructor(
    container,
    {
      series,
      height = 240,
      xLabel = "epoch",
      getBest = () => null,
      getLines = () => [],
      yLabel = "",
      onZoom = null,
      onReset = null,
    },
  ) {
    this.container = container;
    this.series = series;
    this.getLines = getLines;
    /** The epoch range shown, [from, to], or null for the data's own extent. */
    this.range = null;
    /** The data as handed over (non-finite values kept), and the runs of non-finite values in it. */
    this.columns = [[], ...series.map(() => [])];
    this.marks = [];
    const opts = {
      width: Math.max(300, container.clientWidth),
      height,
      scales: { x: { time: false } },
      legend: { live: true },
      // The view fetches a selected range itself, so uPlot only draws the selection; its own double-click reset is off.
      cursor: {
        drag: { x: true, y: false, setScale: !onZoom },
        bind: onReset ? { dblclick: () => () => null } : {},
      },
      axes: [
        {
          label: xLabel,
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
        { label: xLabel },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.faint ? fade(s.color) : s.color,
          width: s.faint ? 1 : 2,
          spanGaps: s.spanGaps ?? false,
          ...(s.sparse
            ? { paths: () => null, points: { show: true, size: 6, fill: s.color } }
            : { points: { show: false } }),
          value: (_u, v) => (v === null || v === undefined ? "—" : tick(v)),
        })),
      ],
      hooks: onZoom ? { setSelect: [(u) => this.#selected(u, onZoom)] } : {},
      plugins: [bestMarker(getBest), boundaryMarker(getLines), nonFiniteMarker(() => this.marks), latestInLegend()],
    };
    this.u = new uPlot(opts, [[], ...series.map(() => [])], container);
    if (onReset) this.u.over.addEventListener("dblclick", () => onReset());
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

  /** A finished drag: the whole epochs inside the selection go to onZoom, and the selection box goes. */
  #selected(u, onZoom) {
    const { left, width } = u.select;
    if (width < 2) return;
    const from = Math.ceil(u.posToVal(left, "x"));
    const to = Math.floor(u.posToVal(left + width, "x"));
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (to > from) onZoom(from, to);
  }

  /** Columns: [x, ...one array per series], values numbers (NaN, ±Infinity included) or null. Shown over `range` when one is set. */
  setData(columns) {
    this.columns = columns;
    this.marks = nonFiniteRuns(columns);
    this.u.setData([columns[0], ...columns.slice(1).map(plottable)]);
    if (this.range) this.u.setScale("x", { min: this.range[0], max: this.range[1] });
  }

  /** Shows epochs `from` … `to` (a zoom), or with null the data's whole extent; the view brings the data. */
  setRange(range) {
    this.range = range;
    if (range) this.u.setScale("x", { min: range[0], max: range[1] });
    else this.u.setData(this.u.data);
  }

  /** Shows or hides a series (by index into `series`). */
  show(index, visible) {
    if (this.u.series[index + 1].show !== visible) this.u.setSeries(index + 1, { show: visible });
  }

  /** Redraws the marker when only the best epoch changed. */
  redraw() {
    this.u.redraw(false, false);
  }

  /** The plot's width in CSS pixels (what pointsFor reads). */
  plotWidth() {
    return this.u.bbox.width / devicePixelRatio || this.container.clientWidth;
  }

  /** The x axis labels drawn now (epochs); uPlot keeps them on the axis as `_values` (a test hook, not for the views). */
  xTicks() {
    return (this.u.axes[0]._values ?? []).map(String);
  }

  /** Number of x points drawn. */
  points() {
    return this.u.data[0].length;
  }

  /**
   * What the chart holds (a test hook): its x range, the epochs (or steps), each series' values as handed over
   * (non-finite ones as "NaN", "Infinity", "-Infinity", so they survive JSON), the non-finite bands and the epoch-end
   * lines drawn. A faint (raw) series is named "<label>:raw".
   */
  snapshot() {
    const wire = (v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v);
    const name = (s) => `${s.label}${s.faint ? ":raw" : ""}`;
    return {
      range: this.range,
      x: [...this.columns[0]],
      series: Object.fromEntries(this.series.map((s, i) => [name(s), this.columns[i + 1].map(wire)])),
      marks: this.marks.map((m) => ({ ...m, series: name(this.series[m.series]) })),
      lines: this.getLines(),
      scale: { min: this.u.scales.x.min, max: this.u.scales.x.max },
    };
  }

  destroy() {
    this.resize.disconnect();
    this.u.destroy();
  }
}

/** Runs of non-finite values per series over consecutive points: { series (index into `series`), from, to (epochs), kind }. */
function nonFiniteRuns(columns) {
  const x = columns[0];
  const marks = [];
  for (let s = 1; s < columns.length; s++) {
    const col = columns[s];
    let open = null;
    for (let i = 0; i < x.length; i++) {
      const v = col[i];
      const bad = typeof v === "number" && !Number.isFinite(v);
      if (bad && open && open.kind === kindOf(v)) open.to = x[i];
      else {
        if (open) marks.push(open);
        open = bad ? { series: s - 1, from: x[i], to: x[i], kind: kindOf(v) } : null;
      }
    }
    if (open) marks.push(open);
  }
  return marks;
}
