// The Trainwatch dashboard's entry: hash-routed views over the REST API and its event streams.
//   #/?q=…&sort=…      views/list.js       operations list (searched with the filter language, sorted), live from /api/v1/stream
//   #/op/<id>          views/operation.js  one operation: live curves, smoothing, badges, recommendation, cancel, downloads
//   #/compare/<a,b,…>  views/compare.js    runs overlaid on one chart (by epoch, or by step with ?x=step), with their summaries
//   #/new              views/new.js        start a training from a spec
//   #/groups/<group>   views/sweep.js      a group's runs (a sweep): configuration and outcome table, parallel coordinates
// lib/ holds what the views share: html (the escaping template), format, widgets, charts, api, router, and the header's
// alert bell and toasts (alerts.js).
// "uplot" and "trends/…" (the server's own trend code, built for the browser) come through the page's import map.

import { askToken, getToken, setToken } from "./lib/api.js";
import { startAlertBell } from "./lib/alerts.js";
import { startRouter } from "./lib/router.js";
import { setConn } from "./lib/widgets.js";
import { compareView } from "./views/compare.js";
import { listView } from "./views/list.js";
import { newTrainingView } from "./views/new.js";
import { operationView } from "./views/operation.js";
import { sweepView } from "./views/sweep.js";

const views = {
  op: (root, id, params) => (id ? operationView(root, id) : listView(root, params)),
  // "a,b" or "a,b?x=step" (overlaid by step).
  compare: (root, arg, params) =>
    compareView(root, arg.split(",").filter(Boolean), params.get("x") === "step" ? "step" : "epoch"),
  new: (root) => newTrainingView(root),
  groups: (root, group, params) => (group ? sweepView(root, group, params) : listView(root, params)),
};

const router = startRouter(document.getElementById("view"), views, (root, _arg, params) => listView(root, params), {
  onRoute(_view, arg, current) {
    setConn("idle"); // the new view's streams light it again once connected
    for (const a of document.querySelectorAll("[data-nav]"))
      a.classList.toggle(
        "active",
        a.dataset.nav === current.name ||
          ((current.name === "operation" || current.name === "sweep") && a.dataset.nav === "list"),
      );
    document.title = `Trainwatch — ${current.name === "operation" || current.name === "sweep" ? arg : current.name}`;
  },
});

// The bell and the toasts live as long as the page: every run's alerts, from the global stream.
startAlertBell({
  button: document.getElementById("bell"),
  panel: document.getElementById("bell-panel"),
  toasts: document.getElementById("toasts"),
});

document.getElementById("token-btn").onclick = async () => {
  if (await askToken(getToken() ? "" : "No token saved.")) router.reload();
  else if (!getToken()) setToken(null);
};

/**
 * Test and debugging hooks: points drawn per chart, what a chart holds (its epochs, values with NaN kept, non-finite
 * bands, range), x labels drawn, badges shown, the current view, view fetches in flight; zoom(from, to) and resetZoom()
 * do what a drag and a double-click do and resolve, with the milliseconds taken, once the result is drawn.
 */
window.__trainwatch = {
  view: () => router.current()?.name ?? null,
  chartPoints: (name = "loss") => router.current()?.charts?.[name]?.points() ?? 0,
  chart: (name = "loss") => router.current()?.charts?.[name]?.snapshot() ?? null,
  xTicks: (name = "loss") => router.current()?.charts?.[name]?.xTicks() ?? [],
  badges: () => [...document.querySelectorAll("[data-badge]")].map((b) => b.dataset.badge),
  rows: () => router.current()?.state?.rows?.length ?? 0,
  /** The operation page's operation, as it last heard it. */
  op: () => router.current()?.state?.op ?? null,
  /** The operation page's system chart: hidden or not, the samples it holds, and the chart's snapshot. */
  system: () => {
    const sys = router.current()?.system;
    return sys
      ? {
          hidden: document.querySelector("#system")?.hidden ?? true,
          samples: sys.samples().length,
          chart: sys.chart?.snapshot() ?? null,
        }
      : null;
  },
  loading: () => router.current()?.state?.loading ?? 0,
  /** The operation page's views: what they are keyed by (epoch, step), the whole run's and the zoom's range, row count, first and last key. */
  views() {
    const extent = (v) =>
      v && {
        key: v.key,
        range: v.range,
        count: v.rows.length,
        first: v.rows[0]?.[v.key] ?? null,
        last: v.rows.at(-1)?.[v.key] ?? null,
      };
    const s = router.current()?.state;
    return { full: extent(s?.full), zoom: extent(s?.zoom) };
  },
  async zoom(from, to) {
    const start = performance.now();
    await router.current().zoomTo(from, to);
    return performance.now() - start;
  },
  async resetZoom() {
    const start = performance.now();
    await router.current().resetZoom();
    return performance.now() - start;
  },
};
