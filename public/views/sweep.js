// #/groups/<group> — a group's runs (a sweep) side by side: a parallel-coordinates chart of their configuration against
// their best value, and a table of configuration columns (the union of the runs' config keys, as dotted paths) and
// outcome columns (status, best, best epoch, epochs, final loss, verdict), sorted by any column (`?sort=…&order=…`, kept
// in the address). Everything is read with the list: `GET /operations?q=group = "…"`, paged, no request per run (the
// items carry config, trends summary, flags and result). Live from /api/v1/stream: a run that joins, changes or leaves
// the group (its `group` field says) is redrawn.

import { listOperations, openStream } from "../lib/api.js";
import { fmt, tick } from "../lib/format.js";
import { html, render } from "../lib/html.js";
import { ParallelChart } from "../lib/parallel.js";
import { groupQuery, listHash } from "../lib/query.js";
import { hashOf } from "../lib/router.js";
import { OUTCOMES, axisOf, cellOf, configColumns, configOf, sortRuns, verdictsOf } from "../lib/sweep.js";
import { errorBox, setConn, statusPill, throttle } from "../lib/widgets.js";

/** Runs per list request (the API's largest page). */
const PAGE = 1000;
/** Runs read at most: a group past it shows its first MAX_RUNS by creation, and says so. */
const MAX_RUNS = 5000;
/** Configuration axes drawn at most (the columns that vary, in table order). */
const MAX_AXES = 16;
/** How often the live group is redrawn at most. */
const REDRAW_MS = 250;
/**
 * Rows drawn until "Show all" is pressed: a 1,000-row table took 0.3–0.5 s to lay out on the 2-vCPU VM at every
 * re-sort (bench/dashboard.ts (f)); the chart always draws every run.
 */
const ROWS_SHOWN = 200;
/** The verdicts whose reason is written under the badges (a flag's reason is its name). */
const EXPLAINED = new Set(["pruned", "stopped early", "failed"]);

/** The columns that hold a loss, shown in the server's loss format. */
const LOSSES = new Set(["best_val_loss", "final_loss"]);

/** What a cell of column `key` shows: a loss in the loss format, whole numbers whole, others short; "—" when missing. */
function cell(v, key) {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "number") return String(v);
  if (LOSSES.has(key)) return fmt(v);
  return Number.isInteger(v) ? v.toLocaleString("en") : tick(v);
}

export function sweepView(root, group, params = new URLSearchParams()) {
  const state = {
    /** The group's runs by id, as last heard. */
    ops: new Map(),
    /** The table's runs, in its order. */
    rows: [],
    /** Every row drawn, not only the first ROWS_SHOWN. */
    all: false,
    sort: params.get("sort") ?? "best_val_loss",
    order: params.get("order") === "desc" ? "desc" : "asc",
    loading: 1,
    total: 0,
  };
  let destroyed = false;

  render(
    root,
    html`
    <section class="card">
      <div class="row wrap">
        <h1>Sweep <span class="chip group" data-group="${group}">${group}</span></h1>
        <span class="spacer"></span>
        <a class="button" id="in-list" href="${listHash({ q: groupQuery(group) })}">In the list</a>
        <a class="button" id="compare-best" href="#/compare/">Compare the best 5</a>
      </div>
      <p class="small" id="sweep-summary"><span class="muted">Loading…</span></p>
    </section>
    <section class="card">
      <h2>Configuration against best value</h2>
      <div id="parallel"></div>
    </section>
    <section class="card">
      <div class="table-wrap"><table class="ops sweep"><thead></thead><tbody></tbody></table></div>
      <p class="small muted" id="sweep-more" hidden><span></span> <button type="button" id="show-all">Show all</button></p>
    </section>`,
  );
  const summary = root.querySelector("#sweep-summary");
  const thead = root.querySelector("thead");
  const tbody = root.querySelector("tbody");
  const more = root.querySelector("#sweep-more");
  more.querySelector("button").onclick = () => {
    state.all = true;
    drawTable(runs(), configColumns(runs()));
  };
  const chart = new ParallelChart(root.querySelector("#parallel"), {
    onOpen: (id) => (location.hash = `#/op/${encodeURIComponent(id)}`),
  });

  /** Runs in creation order: the table's columns and ties keep it. */
  const runs = () =>
    [...state.ops.values()].sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0));

  function drawTable(ops, columns) {
    // The final loss shows once the list items carry it (`final_loss`); a column of dashes says nothing.
    const outcomes = OUTCOMES.filter((o) => o.key !== "final_loss" || ops.some((op) => o.value(op) !== null));
    const keys = ["name", ...columns.map((c) => `config.${c}`), ...outcomes.map((o) => o.key)];
    const labels = ["run", ...columns, ...outcomes.map((o) => o.label)];
    render(
      thead,
      html`<tr>${keys.map((k, i) => {
        const on = k === state.sort;
        const aria = on ? (state.order === "asc" ? "ascending" : "descending") : "none";
        return html`<th class="sortable${i > 0 && i <= columns.length ? " config" : ""}" data-sort="${k}" aria-sort="${aria}">${labels[i]}${on ? (state.order === "asc" ? " ▲" : " ▼") : ""}</th>`;
      })}</tr>`,
    );
    state.rows = sortRuns(ops, state.sort, state.order);
    const shown = state.all ? state.rows : state.rows.slice(0, ROWS_SHOWN);
    more.hidden = shown.length === state.rows.length;
    more.querySelector("span").textContent = `The first ${shown.length} of ${state.rows.length} runs in this order.`;
    render(
      tbody,
      shown.length
        ? html`${shown.map((op) => {
            const config = configOf(op);
            const verdicts = verdictsOf(op);
            return html`<tr data-op="${op.operation_id}">
              <td><a href="#/op/${encodeURIComponent(op.operation_id)}">${op.name ?? op.operation_id}</a></td>
              ${columns.map((c) => html`<td class="num" data-col="config.${c}">${cell(config.get(c), c)}</td>`)}
              <td>${statusPill(op.status)}</td>
              ${outcomes.slice(1, -1).map((o) => html`<td class="num" data-col="${o.key}">${cell(o.value(op), o.key)}</td>`)}
              <td data-col="verdict">${verdicts.map((v, i) => html`${i ? " " : ""}<span class="badge ${v.cls}" data-verdict="${v.key}" title="${v.why}">${v.key}</span>`)}${verdicts
                .filter((v) => EXPLAINED.has(v.key))
                .slice(0, 1)
                .map((v) => html`<div class="muted small why">${v.why}</div>`)}</td>
            </tr>`;
          })}`
        : html`<tr><td colspan="${keys.length}" class="muted">No run in group ${group} yet.</td></tr>`,
    );
  }

  function drawChart(ops, columns) {
    // Axes worth drawing: the configuration that varies across the runs (all of it when none does).
    const all = columns.map((c) =>
      axisOf(
        c,
        ops.map((op) => cellOf(op, `config.${c}`)),
      ),
    );
    const varying = all.filter(
      (a) => a.missing > 0 || (a.kind === "category" ? a.categories.length > 1 : a.max > a.min),
    );
    const monitor = ops.find((op) => op.trends?.monitor)?.trends.monitor ?? "loss";
    const bestAxis = {
      ...axisOf(
        "best_val_loss",
        ops.map((op) => cellOf(op, "best_val_loss")),
      ),
      label: `best ${monitor}`,
    };
    // The best value is numeric even when no run has one yet (a fresh sweep): then every line crosses it at "—".
    if (bestAxis.kind === "category")
      Object.assign(bestAxis, { kind: "linear", min: 0, max: 0, categories: undefined });
    const shown = (varying.length ? varying : all).slice(0, MAX_AXES);
    const axes = [...shown.map((a) => ({ ...a, label: a.key })), bestAxis];
    chart.setData({
      axes,
      runs: ops.map((op) => ({
        id: op.operation_id,
        name: op.name ?? op.operation_id,
        values: axes.map((a) => cellOf(op, a === bestAxis ? "best_val_loss" : `config.${a.key}`)),
        verdict: verdictsOf(op)[0] ?? null,
      })),
    });
  }

  function drawSummary(ops) {
    const counts = new Map();
    for (const op of ops) for (const v of verdictsOf(op)) counts.set(v.key, (counts.get(v.key) ?? 0) + 1);
    const ranked = sortRuns(ops, "best_val_loss", "asc").filter((op) => cellOf(op, "best_val_loss") !== null);
    const best = ranked[0];
    root.querySelector("#compare-best").href = `#/compare/${ranked
      .slice(0, 5)
      .map((op) => op.operation_id)
      .join(",")}`;
    render(
      summary,
      html`<b>${ops.length}</b> run${ops.length === 1 ? "" : "s"}${state.total > ops.length ? html` <span class="muted">(the first ${ops.length} of ${state.total})</span>` : null}${[...counts].map(([k, n]) => html` · <span data-count="${k}">${n} ${k}</span>`)}${best ? html` · best <b>${fmt(cellOf(best, "best_val_loss"))}</b> by <a href="#/op/${encodeURIComponent(best.operation_id)}">${best.name ?? best.operation_id}</a>` : null}`,
    );
  }

  function draw() {
    if (destroyed) return;
    const ops = runs();
    const columns = configColumns(ops);
    drawSummary(ops);
    drawTable(ops, columns);
    drawChart(ops, columns);
  }
  const redraw = throttle(draw, REDRAW_MS);

  thead.addEventListener("click", (e) => {
    const key = e.target.closest("[data-sort]")?.dataset.sort;
    if (!key) return;
    state.order = key === state.sort && state.order === "asc" ? "desc" : "asc";
    state.sort = key;
    // Kept in the address (a link shows the same order) without rebuilding the view.
    history.replaceState(null, "", hashOf("groups", group, { sort: state.sort, order: state.order }));
    drawTable(runs(), configColumns(runs()));
  });
  // A row hovered shows its line.
  tbody.addEventListener("pointerover", (e) => chart.highlight(e.target.closest("tr[data-op]")?.dataset.op ?? null));
  tbody.addEventListener("pointerleave", () => chart.highlight(null));

  const apply = (type, data) => {
    const id = data.operation_id;
    if (type === "operation") {
      if (data.group === group) {
        if (!state.ops.has(id)) state.total++;
        state.ops.set(id, data);
      } else if (state.ops.delete(id)) state.total--;
      else return;
    } else if (type === "removed") {
      if (state.ops.delete(id)) state.total--;
      else return;
    } else return;
    redraw();
  };
  /** Events that arrive before the list are applied on top of it, so no change falls between the two. */
  const early = [];
  let loaded = false;
  async function load() {
    try {
      const q = groupQuery(group);
      const got = [];
      let total = 0;
      for (let offset = 0; got.length < MAX_RUNS; offset += PAGE) {
        const page = await listOperations({ q, sort: "created_at", order: "asc", limit: PAGE, offset });
        if (destroyed) return;
        got.push(...page.operations);
        total = page.total;
        if (page.operations.length < PAGE || got.length >= total) break;
      }
      for (const op of got.slice(0, MAX_RUNS)) state.ops.set(op.operation_id, op);
      state.total = total;
      loaded = true;
      for (const [type, data] of early.splice(0)) apply(type, data);
      draw();
    } catch (err) {
      if (!destroyed) render(summary, errorBox(err));
    } finally {
      state.loading--;
    }
  }
  const stream = openStream("/stream", {
    onState: setConn,
    onEvent: (type, data) => (loaded ? apply(type, data) : early.push([type, data])),
  });
  void load();

  return {
    name: "sweep",
    state,
    charts: { parallel: chart },
    destroy() {
      destroyed = true;
      redraw.cancel();
      stream.close();
      chart.destroy();
    },
  };
}
