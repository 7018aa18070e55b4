// #/ — every operation with its status, progress, best loss, flags, tags and group, live from /api/v1/stream: fetched
// once, then every registration, change and removal arrives as an event (the server emits every write), so nothing
// polls. A local timer only re-renders the relative ages ("12 s ago").
// A search (`#/?q=…`, the filter language) and a sort by a column (`&sort=…&order=…`) live in the address, so a link
// shares them; the server searches and sorts, and the page keeps its order: events then update the rows shown in place,
// and a run first heard of while searching asks the server again (throttled), since only it can tell whether it matches.

import { listOperations, openStream } from "../lib/api.js";
import { AGE_REFRESH_MS, ago, fmt, where } from "../lib/format.js";
import { html, render } from "../lib/html.js";
import { groupOfQuery, isQueryError, listHash, queryErrorBox } from "../lib/query.js";
import { hashOf, navigate } from "../lib/router.js";
import {
  errorBox,
  flagBadges,
  labelChips,
  livenessBadges,
  progressBar,
  setConn,
  statusPill,
  throttle,
} from "../lib/widgets.js";

/** The sortable columns: heading → the server's sort field and the order a first click asks for. */
const SORTABLE = {
  Name: ["name", "asc"],
  Status: ["status", "asc"],
  Progress: ["epochs_completed", "desc"],
  "Best loss": ["best_val_loss", "asc"],
  Started: ["created_at", "desc"],
};
const COLUMNS = ["", "Name", "Status", "Progress", "Best loss", "Flags", "Location", "Started"];
/** Rows asked for. */
const PAGE = 100;
/** The least time between two searches that events asked for. */
const RESEARCH_MS = 2000;

export function listView(root, params = new URLSearchParams()) {
  const q = params.get("q") ?? "";
  const sort = params.get("sort") ?? "";
  const order = params.get("order") === "asc" ? "asc" : params.get("order") === "desc" ? "desc" : "";
  /** Without a search or a sort the page orders by creation itself and takes every new run in; else the server's order holds. */
  const serverOrder = Boolean(q.trim() || (sort && sort !== "created_at") || order === "asc");
  const rows = new Map();
  const selected = new Set();
  const group = groupOfQuery(q);
  const sortedBy = sort || "created_at";
  const sortedOrder = order || "desc";
  const header = COLUMNS.map((label) => {
    const s = SORTABLE[label];
    if (!s) return html`<th>${label}</th>`;
    const on = s[0] === sortedBy;
    const aria = on ? (sortedOrder === "asc" ? "ascending" : "descending") : "none";
    return html`<th class="sortable" data-sort="${s[0]}" aria-sort="${aria}" title="Sort by ${label.toLowerCase()}">${label}${on ? (sortedOrder === "asc" ? " ▲" : " ▼") : ""}</th>`;
  });
  render(
    root,
    html`
    <section class="card">
      <div class="row">
        <h1>Operations</h1>
        <span class="spacer"></span>
        <button id="compare-selected" class="primary" disabled>Compare selected</button>
        <a class="button" href="#/new">New training</a>
      </div>
      <form id="search" class="search row" autocomplete="off">
        <input id="q" name="q" type="search" spellcheck="false" value="${q}" aria-label="Search operations"
          placeholder='tags has "bert" and group = "sweep-7" and config.lr < 1e-3 and not flags.diverging'>
        <button type="submit">Search</button>
        ${q && html`<a class="button" href="${listHash({ sort, order })}" id="clear-search">Clear</a>`}
      </form>
      <div id="query-error"></div>
      ${group && html`<p class="small">Group <b>${group}</b>: <a id="sweep-link" href="${hashOf("groups", group)}">open its sweep view</a> (configuration against outcome, parallel coordinates).</p>`}
      <div class="table-wrap"><table class="ops">
        <thead><tr>${header}</tr></thead>
        <tbody><tr><td colspan="8" class="muted">Loading…</td></tr></tbody>
      </table></div>
      <p class="muted small" id="total"></p>
    </section>`,
  );
  const tbody = root.querySelector("tbody");
  const input = root.querySelector("#q");
  const compareBtn = root.querySelector("#compare-selected");
  compareBtn.onclick = () => (location.hash = `#/compare/${[...selected].join(",")}`);
  root.querySelector("#search").addEventListener("submit", (e) => {
    e.preventDefault();
    navigate(listHash({ q: input.value, sort, order }));
  });
  root.querySelector("thead").addEventListener("click", (e) => {
    const field = e.target.closest("[data-sort]")?.dataset.sort;
    if (!field) return;
    const first = Object.values(SORTABLE).find(([f]) => f === field)[1];
    const next = field === sortedBy ? (sortedOrder === "asc" ? "desc" : "asc") : first;
    navigate(listHash({ q, sort: field, order: next }));
  });

  const row = (op) => {
    const t = op.trends;
    return html`<tr data-op="${op.operation_id}">
      <td><input type="checkbox" data-select="${op.operation_id}" ${selected.has(op.operation_id) ? "checked" : ""} aria-label="select for comparison"></td>
      <td><a href="#/op/${encodeURIComponent(op.operation_id)}">${op.name ?? op.operation_type}</a> ${labelChips(op)}<div class="id">${op.operation_id}</div></td>
      <td>${statusPill(op.status)}</td>
      <td class="prog">${progressBar(op)}</td>
      <td>${t.best_val_loss === null ? "—" : html`${fmt(t.best_val_loss)} <span class="muted small">${t.monitor ?? ""} @ ${t.best_epoch}</span>`}</td>
      <td>${flagBadges(t)} ${livenessBadges(op)}</td>
      <td>${where(op)}${op.metadata?.backend ? html` <span class="muted small" data-backend="${op.metadata.backend}">${op.metadata.backend}${op.metadata.gpu ? ` · ${op.metadata.gpu}` : ""}</span>` : null}</td>
      <td class="muted small" data-age="${op.started_at ?? op.created_at}">${ago(op.started_at ?? op.created_at)}</td>
    </tr>`;
  };

  const draw = () => {
    const ops = serverOrder
      ? [...rows.values()]
      : [...rows.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
    render(
      tbody,
      ops.length
        ? html`${ops.map(row)}`
        : q.trim()
          ? html`<tr><td colspan="8" class="muted">No operation matches this search.</td></tr>`
          : html`<tr><td colspan="8" class="muted">No operations yet. <a href="#/new">Start a training</a> or POST /api/v1/operations.</td></tr>`,
    );
  };
  const scheduleDraw = (() => {
    let queued = false;
    return () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => ((queued = false), draw()));
    };
  })();

  tbody.addEventListener("change", (e) => {
    const id = e.target.dataset?.select;
    if (!id) return;
    e.target.checked ? selected.add(id) : selected.delete(id);
    compareBtn.disabled = selected.size < 1;
    compareBtn.textContent = selected.size ? `Compare selected (${selected.size})` : "Compare selected";
  });

  let total = 0;
  let loaded = false;
  let destroyed = false;
  /** Ids the page has heard of (listed or streamed): a search asks again only for one it has not. */
  const heard = new Set();
  const showTotal = () => {
    const shown = rows.size;
    const what = q.trim() ? `match${total === 1 ? "" : "es"}` : `operation${total === 1 ? "" : "s"}`;
    const first = serverOrder ? `first ${shown} shown` : `newest ${shown} shown`;
    root.querySelector("#total").textContent = `${total} ${what}${total > shown ? `, ${first}` : ""}`;
  };
  /** The oldest creation time shown, when the list holds only the newest page; older operations stay off it. */
  const pageStart = () =>
    total > rows.size
      ? [...rows.values()].reduce((min, op) => (op.created_at < min ? op.created_at : min), "\uffff")
      : "";
  const apply = (type, data) => {
    const id = data.operation_id;
    const known = heard.has(id);
    heard.add(id);
    if (serverOrder) {
      // The server's order: a shown row changes in place; only a run new to the page may change who matches.
      if (type === "operation" && rows.has(id)) rows.set(id, data);
      else if (type === "removed" && rows.delete(id)) total--;
      else if (type === "operation" && !known) research();
      else return;
    } else if (type === "operation") {
      if (!rows.has(id)) {
        if (data.created_at < pageStart()) return;
        total++;
      }
      rows.set(id, data);
    } else if (type === "removed") {
      if (rows.delete(id)) total--;
    } else return;
    showTotal();
    scheduleDraw();
  };
  /** Events that arrive before the first list are applied on top of it, so no change falls between the two. */
  const early = [];
  const load = async () => {
    try {
      const { operations, total: count } = await listOperations({ q, sort, order, limit: PAGE });
      if (destroyed) return;
      rows.clear();
      for (const op of operations) {
        rows.set(op.operation_id, op);
        heard.add(op.operation_id);
      }
      total = count;
      loaded = true;
      for (const [type, data] of early.splice(0)) apply(type, data);
      showTotal();
      draw();
    } catch (err) {
      if (destroyed) return;
      if (isQueryError(err)) {
        render(root.querySelector("#query-error"), queryErrorBox(err, q));
        render(tbody, html`<tr><td colspan="8" class="muted">The search above does not parse.</td></tr>`);
        input.focus();
        input.setSelectionRange(err.details.position, err.details.position);
      } else render(tbody, html`<tr><td colspan="8">${errorBox(err)}</td></tr>`);
    }
  };
  const research = throttle(() => void load(), RESEARCH_MS);

  // Stream first, then the list, so no change falls between the two.
  const stream = openStream("/stream", {
    onState: setConn,
    onEvent: (type, data) => (loaded ? apply(type, data) : early.push([type, data])),
  });
  void load();
  // Only the relative ages move with time alone: re-rendered here, from what the page has.
  const ages = setInterval(() => {
    for (const cell of tbody.querySelectorAll("[data-age]")) cell.textContent = ago(cell.dataset.age);
  }, AGE_REFRESH_MS);
  return {
    name: "list",
    state: {
      get rows() {
        return [...rows.values()];
      },
    },
    destroy() {
      destroyed = true;
      research.cancel();
      stream.close();
      clearInterval(ages);
    },
  };
}
