// #/ — every operation with its status, progress, best loss and flags, live from /api/v1/stream: fetched once, then
// every registration, change and removal arrives as an event (the server emits every write), so nothing polls. A local
// timer only re-renders the relative ages ("12 s ago").

import { listOperations, openStream } from "../lib/api.js";
import { AGE_REFRESH_MS, ago, fmt, where } from "../lib/format.js";
import { html, render } from "../lib/html.js";
import { errorBox, flagBadges, livenessBadges, progressBar, setConn, statusPill } from "../lib/widgets.js";

export function listView(root) {
  const rows = new Map();
  const selected = new Set();
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
      <div class="table-wrap"><table class="ops">
        <thead><tr><th></th><th>Name</th><th>Status</th><th>Progress</th><th>Best loss</th><th>Flags</th><th>Location</th><th>Started</th></tr></thead>
        <tbody><tr><td colspan="8" class="muted">Loading…</td></tr></tbody>
      </table></div>
      <p class="muted small" id="total"></p>
    </section>`,
  );
  const tbody = root.querySelector("tbody");
  const compareBtn = root.querySelector("#compare-selected");
  compareBtn.onclick = () => (location.hash = `#/compare/${[...selected].join(",")}`);

  const row = (op) => {
    const t = op.trends;
    return html`<tr data-op="${op.operation_id}">
      <td><input type="checkbox" data-select="${op.operation_id}" ${selected.has(op.operation_id) ? "checked" : ""} aria-label="select for comparison"></td>
      <td><a href="#/op/${encodeURIComponent(op.operation_id)}">${op.name ?? op.operation_type}</a><div class="id">${op.operation_id}</div></td>
      <td>${statusPill(op.status)}</td>
      <td class="prog">${progressBar(op)}</td>
      <td>${t.best_val_loss === null ? "—" : html`${fmt(t.best_val_loss)} <span class="muted small">${t.monitor ?? ""} @ ${t.best_epoch}</span>`}</td>
      <td>${flagBadges(t)} ${livenessBadges(op)}</td>
      <td>${where(op)}${op.metadata?.backend ? html` <span class="muted small" data-backend="${op.metadata.backend}">${op.metadata.backend}${op.metadata.gpu ? ` · ${op.metadata.gpu}` : ""}</span>` : null}</td>
      <td class="muted small" data-age="${op.started_at ?? op.created_at}">${ago(op.started_at ?? op.created_at)}</td>
    </tr>`;
  };

  const draw = () => {
    const ops = [...rows.values()].sort((a, b) =>
      a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0,
    );
    render(
      tbody,
      ops.length
        ? html`${ops.map(row)}`
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
  const showTotal = () => {
    const shown = rows.size;
    root.querySelector("#total").textContent =
      `${total} operation${total === 1 ? "" : "s"}${total > shown ? `, newest ${shown} shown` : ""}`;
  };
  /** The oldest creation time shown, when the list holds only the newest page; older operations stay off it. */
  const pageStart = () =>
    total > rows.size
      ? [...rows.values()].reduce((min, op) => (op.created_at < min ? op.created_at : min), "\uffff")
      : "";
  const apply = (type, data) => {
    if (type === "operation") {
      if (!rows.has(data.operation_id)) {
        if (data.created_at < pageStart()) return;
        total++;
      }
      rows.set(data.operation_id, data);
    } else if (type === "removed") {
      if (rows.delete(data.operation_id)) total--;
    } else return;
    showTotal();
    scheduleDraw();
  };
  /** Events that arrive before the first list are applied on top of it, so no change falls between the two. */
  const early = [];
  const load = async () => {
    try {
      const { operations, total: count } = await listOperations(100);
      rows.clear();
      for (const op of operations) rows.set(op.operation_id, op);
      total = count;
      loaded = true;
      for (const [type, data] of early.splice(0)) apply(type, data);
      showTotal();
      draw();
    } catch (err) {
      render(tbody, html`<tr><td colspan="8">${errorBox(err)}</td></tr>`);
    }
  };

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
    destroy() {
      stream.close();
      clearInterval(ages);
    },
  };
}
