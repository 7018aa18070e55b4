// #/op/<id> — one operation: curves live from its metrics stream, smoothing, drag-to-zoom, badges, recommendation,
// checkpoint downloads, cancel, CSV/JSON download, its config, stop policy (set/clear) and the stop decision recorded on it.
// The view composes its parts, each in views/operation/ and changed on its own:
//   header.js       name, status, liveness, progress, downloads, checkpoints, config, Cancel
//   labels.js       the run's tags and group, editable
//   stop_policy.js  the stop decision and the stop policy form
//   analysis.js     trend badges, best epoch, the recommendation
//   series.js       what the run is charted by: its epochs, or its steps when it reports steps
//   curves.js       the views of the run the charts show (whole run, zoom), smoothing, live rows, draws
//   charts.js       the epoch chart cards and how a view is drawn on them (and what both chart sets share)
//   step_charts.js  the step chart cards: evaluations as points, epoch ends marked
//   rows.js         the chart view model: rows, smoothed curves, live rows added in place
//   stream.js       the live feed, event by event
//   system.js       the system metrics chart (CPU, memory, GPUs), hidden while the run has none
// This file lays the page out, loads the operation and its whole-run view, and routes each stream event to the parts.
// A step run is charted by step once the page knows it is one: its operation says so (progress.steps_completed), or
// its first steps arrive live.

import { api } from "../lib/api.js";
import { drawing } from "../lib/charts.js";
import { AGE_REFRESH_MS } from "../lib/format.js";
import { append, html, render } from "../lib/html.js";
import { logsPanel } from "../lib/logs.js";
import { errorBox } from "../lib/widgets.js";
import { analysisPart } from "./operation/analysis.js";
import { curvesPart } from "./operation/curves.js";
import { headerPart } from "./operation/header.js";
import { EPOCHS, STEPS, seriesOf } from "./operation/series.js";
import { followOperation, heardFrom } from "./operation/stream.js";
import { alertsPart } from "./operation/alerts.js";
import { labelsPart } from "./operation/labels.js";
import { stopPolicyPart } from "./operation/stop_policy.js";
import { systemPart } from "./operation/system.js";

export function operationView(root, id) {
  const state = {
    op: null,
    trends: null,
    /** The whole run (reduced), and the zoomed range when there is one; the charts show zoom ?? full. */
    full: null,
    zoom: null,
    /** View changes under way, from the request to the draw (a test hook waits for none). */
    loading: 0,
    get rows() {
      return (state.zoom ?? state.full)?.rows ?? [];
    },
  };
  const path = `/operations/${encodeURIComponent(id)}`;
  let stream = null;
  let logs = null;
  let destroyed = false;
  const alive = () => !destroyed;

  render(
    root,
    html`
    <section class="card" id="head"><p class="muted">Loading ${id}…</p></section>
    <section class="card" id="labels"></section>
    <section class="card" id="control"></section>
    <section class="card" id="alerts"></section>
    <section class="card">
      <div class="row wrap">
        <div id="badges" class="badges"></div>
        <span class="spacer"></span>
        <span id="zoom-slot"></span>
        <span id="smoothing-slot"></span>
      </div>
      <div id="recommendation" class="recommendation muted">Analysing…</div>
    </section>
    <section class="grid" id="charts"></section>`,
  );
  const headSlot = root.querySelector("#head");

  /** Shows the operation: the header, and the stop control when what it shows changed. */
  const showOp = () => {
    if (!state.op) return;
    header.render(state.op);
    labels.render(state.op);
    stopPolicy.render(state.op);
  };
  /** An operation the API returned after a write of this page (a cancel, a stop policy set or cleared). */
  const onChange = (op) => {
    state.op = op;
    showOp();
  };
  // Before the header: a hung chip cites the utilisation of the latest system sample the page holds.
  const system = systemPart(root, path, alive);
  const header = headerPart(headSlot, id, { onChange, samples: () => system.samples() });
  const labels = labelsPart(root.querySelector("#labels"), id, { onChange });
  const stopPolicy = stopPolicyPart(root.querySelector("#control"), id, { onChange });
  const alertsPanel = alertsPart(root.querySelector("#alerts"), id);
  const analysis = analysisPart(
    { badges: root.querySelector("#badges"), recommendation: root.querySelector("#recommendation") },
    id,
    { trends: () => state.trends, op: () => state.op, alive, onAnalysis: (a) => curves.setJudgement(a) },
  );
  const slots = {
    grid: root.querySelector("#charts"),
    zoomSlot: root.querySelector("#zoom-slot"),
    smoothingSlot: root.querySelector("#smoothing-slot"),
  };
  let curves = curvesPart(slots, { path, state, alive, series: EPOCHS });

  /**
   * Charts the run by step from now on: the step curves in place of the epoch ones, the whole run read once the stream
   * has joined (steps are not replayed: a step stored after the read arrives live, none falls between).
   */
  async function chartBySteps() {
    curves.destroy();
    state.full = state.zoom = null;
    curves = curvesPart(slots, { path, state, alive, series: STEPS });
    const mine = curves;
    await drawing(state, async () => {
      await stream.joined;
      const full = await mine.fetchFull();
      if (!full || mine !== curves) return;
      state.full = full;
      await mine.nextDraw();
    });
  }

  (async () => {
    try {
      // The epochs are read beside the operation: a step run's are its few derived epochs, and the stream starts after them.
      const [op, epochs] = await drawing(state, async () => {
        const got = await Promise.all([api("GET", path), curves.fetchFull()]);
        if (destroyed || !got[1]) return got;
        state.op = got[0];
        state.trends = got[0].trends;
        showOp();
        analysis.showTrends(state.trends);
        if (seriesOf(state.op) === EPOCHS) {
          state.full = got[1];
          await curves.nextDraw();
        }
        return got;
      });
      if (destroyed || !epochs) return;
      // The recommendation after the first draw: the server judges the run on the thread that would read the charts.
      const bySteps = seriesOf(op) === STEPS;
      if (!bySteps) analysis.analyse();
      // A script training's output, live under the charts.
      if (op.metadata?.kind === "script") logs = logsPanel(root, id);
      // Everything after the last fetched epoch comes from the stream, then every new one as it is stored.
      const since = epochs.rows.length ? epochs.rows[epochs.rows.length - 1].epoch : -1;
      stream = followOperation(path, since, alive, {
        epoch(e) {
          state.op = heardFrom(state.op, new Date().toISOString());
          curves.liveRow(e, "epoch");
        },
        steps({ steps }) {
          state.op = heardFrom(state.op, new Date().toISOString());
          header.steps(state.op, steps);
          // The first steps of a run the page charted by epoch: the step read holds them.
          if (!state.full || state.full.key === "step") for (const s of steps) curves.liveRow(s, "step");
          else void chartBySteps();
          // The step judgement moves with every step (kept on write, one row to read): asked again, throttled.
          if (state.full) analysis.analyse();
        },
        trends(t) {
          state.trends = t;
          analysis.showTrends(t);
          header.progress(state.op, t);
          curves.charts.loss.redraw();
          // The replay's trends repeat what the page loaded: only new ones make the analysis worth asking again, and
          // only once the run is drawn (a step run's first read is still under way when the replay's trends come).
          if (state.full) analysis.analyseIfNew(t);
        },
        status(op) {
          // A trainer that turned stale or hung (or spoke again) changes the advice: asked again.
          const quiet = (o) => Boolean(o?.stale || o?.hung);
          const turned = quiet(op) !== quiet(state.op);
          state.op = op;
          state.trends = op.trends;
          showOp();
          analysis.showTrends(state.trends);
          if (turned && state.full) analysis.analyse();
        },
        system({ samples }) {
          system.add(samples);
          if (state.op?.hung) header.render(state.op); // the hung chip cites the latest sample
        },
        end() {
          if (state.full) analysis.analyse();
        },
        alert(a) {
          alertsPanel.heard(a);
        },
        error(err) {
          append(headSlot, errorBox(err));
        },
      });
      // Read once the stream listens: a sample posted meanwhile arrives live, none falls between. A run already hung
      // when the page opened was shown before its samples were read: its chip cites them once they are.
      stream.joined
        .then(() => system.load())
        .then(() => state.op?.hung && header.render(state.op))
        .catch((err) => append(headSlot, errorBox(err)));
      if (bySteps) {
        await chartBySteps();
        analysis.analyse();
      }
    } catch (err) {
      render(headSlot, errorBox(err));
    }
  })();

  // Liveness arrives on the stream: only the "last heard … ago" text moves with time alone.
  const ages = setInterval(() => header.tick(state.op), AGE_REFRESH_MS);

  return {
    name: "operation",
    get charts() {
      return curves.charts;
    },
    state,
    system,
    zoomTo: (from, to) => curves.zoomTo(from, to),
    resetZoom: () => curves.resetZoom(),
    nextDraw: () => curves.nextDraw(),
    destroy() {
      destroyed = true;
      analysis.cancel();
      clearInterval(ages);
      stream?.close();
      logs?.destroy();
      curves.destroy();
      system.destroy();
    },
  };
}
