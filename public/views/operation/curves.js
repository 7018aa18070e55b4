// The operation page's curves: which views of the run the charts show and how they stay current, for a run charted by
// epoch or by step (series.js). Every view (the whole run, or a zoomed range) is one read (GET …/metrics or …/steps) with
// max_points from the charts' width, the range (from_epoch/to_epoch, from_step/to_step) for a zoom and smoothing=w, so
// the EMA runs over every stored row and a zoom into fewer rows than points is at full resolution. Live rows are added
// to the views that hold them (rows.js); draws are batched to animation frames.

import { reduceRows } from "trends/downsample.js";
import { api } from "../../lib/api.js";
import { drawing } from "../../lib/charts.js";
import { smoothingControl, throttle, zoomControl } from "../../lib/widgets.js";
import { addRow, decodeRow, inRange, makeView } from "./rows.js";

/**
 * The curves of the operation at `path`, charted by `series` (series.js: EPOCHS or STEPS): the charts in `grid`, the
 * zoom and smoothing controls in their slots. `state` is the page's: its `full` and `zoom` views are kept there (the
 * page's test hooks read them, and `loading`), its `trends` name the best epoch. Nothing is fetched or drawn once
 * `alive()` is false. Returns the charts by name, fetchFull() (the whole run's view, for the page to show),
 * liveRow(row, of) (a row of series `of`), zoomTo(from, to), resetZoom(), nextDraw() and destroy().
 */
export function curvesPart({ grid, zoomSlot, smoothingSlot }, { path, state, alive: pageAlive, series }) {
  const { key } = series;
  /** Set by destroy(): the page may go on with curves of another series (a run that turned out to report steps). */
  let destroyed = false;
  const alive = () => !destroyed && pageAlive();
  // A new weight is a new fetch (the EMA runs on the server over every row); a slider drag asks once it rests.
  const smoothing = smoothingControl(() => void refetch());
  smoothingSlot.append(smoothing.el);
  const zoomUi = zoomControl(() => void resetZoom(), series.unit);
  zoomSlot.append(zoomUi.el);
  // The best epoch marks an epoch chart; a step chart keeps its first and last step only.
  const best = () => (key === "epoch" ? (state.trends?.best_epoch ?? null) : null);
  /** The zoomed range asked for (shown at once, its full-resolution rows once fetched), or null. */
  let zoomRange = null;
  const set = series.charts(grid, {
    best,
    onZoom: (from, to) => void zoomTo(from, to),
    onReset: () => void resetZoom(),
  });

  /**
   * The read for a view: `range` null for the whole run. Live rows that arrive meanwhile are kept and added after, when
   * the reply does not hold them yet. Resolves to the view, or null when a later fetch of the same kind overtook it.
   */
  const seq = { full: 0, zoom: 0 };
  const arrived = new Set();
  async function fetchView(kind, range) {
    const mine = ++seq[kind];
    const weight = smoothing.value();
    const q = new URLSearchParams({ max_points: String(set.budget()) });
    if (range) q.set(`from_${key}`, String(range[0])), q.set(`to_${key}`, String(range[1]));
    if (weight > 0) q.set("smoothing", String(weight));
    const live = [];
    arrived.add(live);
    try {
      const reply = series.unpack(await api("GET", `${path}/${series.read}?${q}`));
      if (!alive() || mine !== seq[kind]) return null;
      if (reply.ends) set.setEpochEnds(reply.ends);
      if (reply.pruned) notePruned(reply.pruned);
      const view = makeView(range, reply, weight, key);
      const last = view.rows[view.rows.length - 1]?.[key] ?? -1;
      for (const e of live) if (e[key] > last && inRange(range, e[key])) addRow(view, decodeRow(e, key));
      set.addRows(view.rows, state.zoom?.range ?? null);
      return view;
    } finally {
      arrived.delete(live);
    }
  }

  /** Says once, beside the zoom, that the run's step rows are gone and what the charts draw instead (the blocks). */
  let prunedNote = null;
  function notePruned(at) {
    if (prunedNote) return;
    prunedNote = document.createElement("span");
    prunedNote.className = "muted pruned-note";
    prunedNote.textContent = `Step rows removed by retention on ${at.slice(0, 10)}: the charts show each metric's lowest and highest value per block of 128 steps.`;
    zoomSlot.append(prunedNote);
  }

  /** Shows from … to: at once from the rows held, then at full resolution once the server answers. */
  function zoomTo(from, to) {
    zoomRange = [from, to];
    set.setRange(zoomRange);
    zoomUi.set(zoomRange);
    return drawing(state, async () => {
      const view = await fetchView("zoom", zoomRange);
      if (!view) return;
      state.zoom = view;
      await nextDraw();
    });
  }

  /** Back to the whole run (a double-click, or the Reset zoom button). */
  async function resetZoom() {
    seq.zoom++;
    zoomRange = null;
    state.zoom = null;
    zoomUi.set(null);
    set.setRange(null);
    await nextDraw();
  }

  /** Fetches every view shown again: a new smoothing weight, or a re-post that changed the smoothed curve after it. */
  function refetch() {
    return drawing(state, async () => {
      const [full, zoomed] = await Promise.all([fetchView("full", null), zoomRange && fetchView("zoom", zoomRange)]);
      if (full) state.full = full;
      if (zoomed) state.zoom = zoomed;
      await nextDraw();
    });
  }
  const refetchSoon = throttle(() => void refetch(), 1000);

  /**
   * A live row from the stream, of series `of` ("epoch" or "step"), into every view whose range holds it; a row of the
   * other series is not charted here (a step run's derived epoch even carries a custom `step`, its last step).
   */
  function liveRow(e, of) {
    if (of !== key) return;
    for (const live of arrived) live.push(e);
    const r = decodeRow(e, key);
    set.addRows([r], state.zoom?.range ?? null);
    let stale = false;
    if (state.full) stale = addRow(state.full, r) || stale;
    if (state.zoom && inRange(state.zoom.range, e[key])) stale = addRow(state.zoom, decodeRow(e, key)) || stale;
    if (stale) refetchSoon();
    scheduleDraw();
  }

  let drawQueued = false;
  const drawn = [];
  function scheduleDraw() {
    if (drawQueued || !alive()) return;
    drawQueued = true;
    requestAnimationFrame(draw);
  }
  /** Resolves once the next draw has happened (a test and bench hook). */
  const nextDraw = () => new Promise((resolve) => (drawn.push(resolve), scheduleDraw()));

  function draw() {
    drawQueued = false;
    if (!alive()) return;
    const full = state.full;
    // Live rows grow the whole-run view; past twice the budget it is thinned again, smoothed curves' extremes kept.
    if (full && full.rows.length > 2 * set.budget())
      full.rows = reduceRows(full.rows, set.budget(), best(), undefined, key).rows;
    set.draw(state.zoom ?? full, full);
    // uPlot renders on a microtask after setData.
    for (const resolve of drawn.splice(0)) queueMicrotask(resolve);
  }

  return {
    charts: set.charts,
    /** The judgement's marks on the charts (a step run's spikes and slow-downs); nothing for an epoch run. */
    setJudgement: (a) => set.setJudgement?.(a),
    fetchFull: () => fetchView("full", null),
    liveRow,
    zoomTo,
    resetZoom,
    nextDraw,
    destroy() {
      destroyed = true;
      refetchSoon.cancel();
      smoothing.cancel();
      smoothing.el.remove();
      zoomUi.el.remove();
      prunedNote?.remove();
      set.destroy();
    },
  };
}
