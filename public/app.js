// The Trainwatch dashboard's entry: hash-routed views over the REST API and its event streams.
//   #/                 views/list.js       operations list, live from /api/v1/stream
//   #/op/<id>          views/operation.js  one operation: live curves, smoothing, badges, recommendation, cancel, downloads
//   #/compare/<a,b,…>  views/compare.js    runs overlaid on one chart, with their summaries
//   #/new              views/new.js        start a training from a spec
// lib/ holds what the views share: html (the escaping template), format, widgets, charts, api, router.
// "uplot" and "trends/…" (the server's own trend code, built for the browser) come through the page's import map.

import { askToken, getToken, setToken } from "./lib/api.js";
import { startRouter } from "./lib/router.js";
import { setConn } from "./lib/widgets.js";
import { compareView } from "./views/compare.js";
import { listView } from "./views/list.js";
import { newTrainingView } from "./views/new.js";
import { operationView } from "./views/operation.js";

const views = {
  op: (root, id) => (id ? operationView(root, id) : listView(root)),
  compare: (root, arg) => compareView(root, arg.split(",").filter(Boolean)),
  new: (root) => newTrainingView(root),
};

const router = startRouter(document.getElementById("view"), views, listView, {
  onRoute(_view, arg, current) {
    setConn("idle"); // the new view's streams light it again once connected
    for (const a of document.querySelectorAll("[data-nav]"))
      a.classList.toggle(
        "active",
        a.dataset.nav === current.name || (current.name === "operation" && a.dataset.nav === "list"),
      );
    document.title = `Trainwatch — ${current.name === "operation" ? arg : current.name}`;
  },
});

document.getElementById("token-btn").onclick = async () => {
  if (await askToken(getToken() ? "" : "No token saved.")) router.reload();
  else if (!getToken()) setToken(null);
};

/** Test and debugging hooks: points drawn per chart, x labels drawn, badges shown, the current view. */
window.__trainwatch = {
  view: () => router.current()?.name ?? null,
  chartPoints: (name = "loss") => router.current()?.charts?.[name]?.points() ?? 0,
  xTicks: (name = "loss") => router.current()?.charts?.[name]?.xTicks() ?? [],
  badges: () => [...document.querySelectorAll("[data-badge]")].map((b) => b.dataset.badge),
  rows: () => router.current()?.state?.rows.length ?? 0,
};
