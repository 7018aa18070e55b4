// A parallel-coordinates chart in SVG (no library): one vertical axis per column — configuration values on a linear,
// log or ordered-category scale (lib/sweep.js axisOf), the last axis the runs' best value — and one line per run across
// them, coloured by its best value (blue best … amber worst, grey without one). A run's verdict sets its dash, a
// diverged run's line is red. A run without a value on an axis crosses it at "—" under the axis. Hovering a line names
// its run (and its verdict), clicking it hands the run to onOpen. Like the uPlot charts (lib/charts.js) it follows its
// container's width, and snapshot() says what it holds (the test hook).

import { tick } from "./format.js";
import { html, render } from "./html.js";
import { positionOn, rampColour, ticksOf } from "./sweep.js";

/** Room around the axes (CSS pixels): names above, "—" for missing values below, tick labels left of each axis. */
const MARGIN = { top: 34, bottom: 30, left: 64, right: 40 };
/** The colour of a diverged run's line, whatever its best value. */
const DIVERGED = "#dc2626";
/** At most this many labels on a category axis; more are thinned evenly. */
const MAX_CATEGORY_LABELS = 12;

/** A number for an SVG attribute: short, never exponent notation. */
const px = (v) => (Math.round(v * 10) / 10).toString();

export class ParallelChart {
  /**
   * `container` holds the chart, its hover label and its legend; `onOpen(id)` is called when a line is clicked.
   * Data comes with setData.
   */
  constructor(container, { height = 340, onOpen = () => {} } = {}) {
    this.container = container;
    this.height = height;
    this.axes = [];
    this.runs = [];
    this.highlighted = null;
    container.classList.add("parallel");
    render(
      container,
      html`<div class="pc-plot"></div><div class="pc-tip" hidden></div><div class="pc-legend small muted"></div>`,
    );
    this.plot = container.querySelector(".pc-plot");
    this.tip = container.querySelector(".pc-tip");
    this.legend = container.querySelector(".pc-legend");
    this.plot.addEventListener("pointermove", (e) => this.#hover(e));
    this.plot.addEventListener("pointerleave", () => this.#hover(null));
    this.plot.addEventListener("click", (e) => {
      const id = e.target.closest?.("[data-op]")?.dataset.op;
      if (id) onOpen(id);
    });
    this.width = 0;
    this.resize = new ResizeObserver(() => {
      const w = Math.max(360, this.container.clientWidth);
      if (w !== this.width) this.#draw();
    });
    this.resize.observe(container);
  }

  /**
   * `axes`: [{ key, label, kind, min, max, categories }] (the last one the best value, which colours the lines);
   * `runs`: [{ id, name, values (one per axis, null when missing), verdict: { key, dash, why } | null }].
   */
  setData({ axes, runs }) {
    this.axes = axes;
    const best = axes.at(-1);
    this.runs = runs.map((r) => {
      const colourAt = best ? positionOn(best, r.values.at(-1)) : null;
      return {
        ...r,
        positions: r.values.map((v, i) => positionOn(axes[i], v)),
        colour: r.verdict?.key === "diverged" ? DIVERGED : rampColour(colourAt),
        rank: colourAt,
      };
    });
    this.#draw();
  }

  /** Puts run `id`'s line on top, thicker, the others faded (a table row hovered); null for none. */
  highlight(id) {
    // Restyling a thousand lines per pointer move is what a hover would cost: only when the line under it changes.
    if (id === this.highlighted) return;
    this.highlighted = id;
    this.#applyHighlight();
  }

  #applyHighlight() {
    const id = this.highlighted;
    const svg = this.plot.querySelector("svg");
    if (!svg) return;
    svg.classList.toggle("dim", id !== null);
    for (const el of svg.querySelectorAll(".line.hover")) el.classList.remove("hover");
    if (id !== null) {
      const line = svg.querySelector(`.line[data-op="${CSS.escape(id)}"]`);
      if (line) {
        line.classList.add("hover");
        line.parentNode.append(line); // drawn last: on top
      }
    }
  }

  #x(i) {
    const inner = this.width - MARGIN.left - MARGIN.right;
    return MARGIN.left + (this.axes.length === 1 ? inner / 2 : (inner * i) / (this.axes.length - 1));
  }

  /** y of a position (0 bottom … 1 top), or the "missing" row under the axes for null. */
  #y(p) {
    const bottom = this.height - MARGIN.bottom;
    return p === null ? this.height - 10 : bottom - p * (bottom - MARGIN.top);
  }

  #draw() {
    this.width = Math.max(360, this.container.clientWidth);
    const { axes, width, height } = this;
    if (!axes.length) {
      render(this.plot, html`<p class="muted">No runs to draw.</p>`);
      this.legend.replaceChildren();
      return;
    }
    const gap = axes.length > 1 ? this.#x(1) - this.#x(0) : width;
    const axisMarks = axes.map((a, i) => {
      const x = px(this.#x(i));
      const ticks = this.#ticks(a).map(
        ({ p, label }) =>
          html`<line x1="${px(this.#x(i) - 4)}" x2="${x}" y1="${px(this.#y(p))}" y2="${px(this.#y(p))}" class="tick"></line><text x="${px(this.#x(i) - 6)}" y="${px(this.#y(p) + 3.5)}" text-anchor="end">${label}</text>`,
      );
      const name =
        a.label.length * 6.5 > gap - 8 ? `${a.label.slice(0, Math.max(3, Math.floor((gap - 8) / 6.5) - 1))}…` : a.label;
      return html`<g class="axis" data-axis="${a.key}" data-kind="${a.kind}">
        <line x1="${x}" x2="${x}" y1="${MARGIN.top}" y2="${height - MARGIN.bottom}"></line>
        <text class="name" x="${x}" y="${MARGIN.top - 14}" text-anchor="middle"><title>${a.label} (${a.kind === "category" ? "categories" : `${a.kind} scale`})</title>${name}</text>
        ${ticks}
        ${a.missing ? html`<text x="${x}" y="${height - 6}" text-anchor="middle" class="missing">—</text>` : null}
      </g>`;
    });
    // Worst first, so the best lines are drawn over them; runs without a best value first of all. The axes go over the
    // lines, their labels haloed, so a crowded axis still reads.
    const order = [...this.runs].sort((a, b) => (b.rank ?? 2) - (a.rank ?? 2));
    const path = (r) => `M${r.positions.map((p, i) => `${px(this.#x(i))},${px(this.#y(p))}`).join("L")}`;
    const lines = order.map(
      (r) =>
        html`<path class="line" d="${path(r)}" stroke="${r.colour}" stroke-dasharray="${r.verdict?.dash ?? ""}" data-op="${r.id}" data-verdict="${r.verdict?.key ?? ""}"></path>`,
    );
    // Wide invisible twins catch the pointer along each line.
    const hits = order.map(
      (r) => html`<path class="hit" d="${path(r)}" data-op="${r.id}"><title>${r.name}</title></path>`,
    );
    render(
      this.plot,
      html`<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Parallel coordinates: configuration against best value, one line per run">
        <g class="lines">${lines}</g><g class="axes">${axisMarks}</g><g class="hits">${hits}</g>
      </svg>`,
    );
    if (this.highlighted !== null) this.#applyHighlight();
    this.#drawLegend();
  }

  /** The labelled points of an axis: [{ p (0 … 1), label }]. */
  #ticks(axis) {
    const values = ticksOf(axis);
    if (axis.kind === "category") {
      const every = Math.ceil(values.length / MAX_CATEGORY_LABELS);
      return values
        .filter((_, i) => i % every === 0)
        .map((c) => ({ p: positionOn(axis, c), label: c.length > 12 ? `${c.slice(0, 11)}…` : c }));
    }
    // A log axis labels its decades: "1e-4" reads better than tick()'s "1.0e-4".
    const label = (v) =>
      axis.kind === "log" && /^1(e|$)/.test(v.toExponential(0)) && tick(v).includes("e")
        ? v.toExponential(0).replace("e+", "e")
        : tick(v);
    return values.map((v) => ({ p: positionOn(axis, v), label: label(v) }));
  }

  #drawLegend() {
    const best = this.axes.at(-1);
    const shown = new Map();
    for (const r of this.runs) if (r.verdict && !shown.has(r.verdict.key)) shown.set(r.verdict.key, r.verdict);
    const sample = (stroke, dash) =>
      html`<svg width="26" height="8" aria-hidden="true"><line x1="1" x2="25" y1="4" y2="4" stroke="${stroke}" stroke-width="2" stroke-dasharray="${dash}"></line></svg>`;
    const verdicts = [...shown.values()].map(
      (v) =>
        html`<span class="pc-key" data-legend="${v.key}">${sample(v.key === "diverged" ? DIVERGED : "#475569", v.dash)} ${v.key}</span>`,
    );
    const ends =
      best && best.kind !== "category"
        ? html`<span class="pc-key"><span class="pc-ramp"></span> ${best.label}: ${tick(best.min)} (blue) … ${tick(best.max)} (amber)</span>`
        : null;
    render(this.legend, html`${ends}${verdicts}`);
  }

  #hover(e) {
    const id = e?.target.closest?.("[data-op]")?.dataset.op ?? null;
    const run = id === null ? null : this.runs.find((r) => r.id === id);
    this.highlight(run ? id : null);
    if (!run) {
      this.tip.hidden = true;
      return;
    }
    const best = run.values.at(-1);
    render(
      this.tip,
      html`<b>${run.name}</b> · ${this.axes.at(-1)?.label ?? "best"} ${typeof best === "number" ? tick(best) : "—"}${run.verdict ? html` · <span data-tip-verdict="${run.verdict.key}">${run.verdict.why}</span>` : null}`,
    );
    this.tip.dataset.op = id;
    this.tip.hidden = false;
    const box = this.container.getBoundingClientRect();
    this.tip.style.left = `${Math.min(e.clientX - box.left + 12, box.width - 220)}px`;
    this.tip.style.top = `${e.clientY - box.top + 12}px`;
  }

  /** Lines drawn: one per run. */
  points() {
    return this.runs.length;
  }

  /** What the chart holds (a test hook): its axes, and each run's line: position per axis (null: missing), colour, dash. */
  snapshot() {
    return {
      axes: this.axes.map(({ key, label, kind, min, max, categories, missing }) => ({
        key,
        label,
        kind,
        min,
        max,
        categories,
        missing,
      })),
      lines: this.runs.map((r) => ({
        id: r.id,
        name: r.name,
        positions: r.positions,
        colour: r.colour,
        verdict: r.verdict?.key ?? null,
        dash: r.verdict?.dash ?? "",
      })),
      drawn: this.plot.querySelectorAll("path.line").length,
    };
  }

  destroy() {
    this.resize.disconnect();
  }
}
