// The operation page's header: name, status and liveness, progress, where and when it runs, its checkpoints, config and
// error, the downloads and the Cancel button. Progress between status events is counted with the server's own rule.

import { progressPercentage } from "operations/progress.js";
import { describeUtilisation } from "operations/utilisation.js";
import { api, download } from "../../lib/api.js";
import { ago, live, where } from "../../lib/format.js";
import { html, render } from "../../lib/html.js";
import { alertError, livenessBadges, progressBar, statusPill } from "../../lib/widgets.js";

/** The checkpoints the server lists for a run: its result's once it ended, else those written so far (as checkpointsOf). */
function checkpointsOf(op) {
  const list = Array.isArray(op.result?.checkpoints) ? op.result.checkpoints : op.metadata?.checkpoints;
  return Array.isArray(list) ? list : [];
}

/** One download button per kept checkpoint (a tar of the TF.js model and preprocessing.json); best and last may share an epoch. */
function checkpointLinks(op) {
  const byEpoch = new Map();
  for (const c of checkpointsOf(op)) byEpoch.set(c.epoch, [...(byEpoch.get(c.epoch) ?? []), c.kind]);
  if (byEpoch.size === 0) return null;
  const buttons = [...byEpoch].map(
    ([epoch, kinds]) =>
      html` <button type="button" data-checkpoint="${epoch}" title="TF.js layers model + preprocessing.json, as a tar">Checkpoint: ${kinds.join(" + ")}, epoch ${epoch}</button>`,
  );
  return html`<div class="row wrap meta"><span class="muted small">checkpoints</span>${buttons}</div>`;
}

/** The hyper-parameters the trainer registered, one `key value` pair each. */
function configBlock(op) {
  const entries = Object.entries(op.config ?? {});
  if (entries.length === 0) return null;
  const pairs = entries.map(
    ([k, v], i) => html`${i ? " · " : ""}${k} <b>${typeof v === "string" ? v : JSON.stringify(v)}</b>`,
  );
  return html`<div class="meta small" id="config"><span class="muted">config</span> ${pairs}</div>`;
}

/**
 * Why a pending operation waits, as its executor says (a full local queue, Slurm's Resources, Priority…), and its place
 * in the queue where the executor tells it: "pending (Resources), 3rd in the queue".
 */
function pendingChip(op) {
  if (op.status !== "pending" || (!op.pending_reason && !op.queue_position)) return null;
  const place = op.queue_position ? `${ordinal(op.queue_position)} in the queue` : null;
  const text = [op.pending_reason && `(${op.pending_reason})`, place].filter(Boolean).join(", ");
  return html`<span class="badge" data-badge="pending" title="Why it waits, as its executor (${op.executor ?? "?"}) says">${text}</span>`;
}

const ordinal = (n) =>
  `${n}${n % 10 === 1 && n % 100 !== 11 ? "st" : n % 10 === 2 && n % 100 !== 12 ? "nd" : n % 10 === 3 && n % 100 !== 13 ? "rd" : "th"}`;

/** Where and when: location, host, executor and its id there, a cluster job's node, backend, recipe, GPU, started, last heard (while live), finished. */
function metaBits(op) {
  const meta = op.metadata ?? {};
  return [
    html`location <b>${where(op)}</b>`,
    meta.host && html`host <b>${meta.host}</b>`,
    op.executor && html`executor <b data-executor>${op.executor}</b>`,
    // A host's id there is the host itself, shown above.
    op.external_id && op.external_id !== meta.host && html`external id <b data-external-id>${op.external_id}</b>`,
    // The node a cluster's job runs on, as its scheduler says.
    meta.node && html`node <b data-node>${meta.node}</b>`,
    meta.backend && html`backend <b>${meta.backend}</b>`,
    meta.recipe && html`recipe <b>${meta.recipe}</b>`,
    meta.gpu && html`GPU <b>${meta.gpu}</b>`,
    html`started <b>${ago(op.started_at)}</b>`,
    op.last_seen_at && live(op) && html`last heard <b data-last-seen>${ago(op.last_seen_at)}</b>`,
    op.completed_at && html`finished <b>${ago(op.completed_at)}</b>`,
  ]
    .filter(Boolean)
    .map((b, i) => (i ? html` · ${b}` : b));
}

/**
 * The header of operation `id` in `slot`: render(op) shows an operation, progress(op, trends) moves its bar with the
 * stream's trends and steps(op, rows) with its live steps, tick(op) refreshes "last heard … ago". A cancel hands the operation the API returns to onChange(op).
 */
export function headerPart(slot, id, { onChange, samples = () => [] }) {
  const path = `/operations/${encodeURIComponent(id)}`;

  function show(op) {
    if (!op) return;
    // Late heartbeats: the progress shown may be frozen (a host's: the server is asking the host; a client's: failed
    // `lost` once silent for TRAINWATCH_LOST_AFTER). Hung and lost are chips beside it.
    const stale = op.stale
      ? html`<span class="badge bad" data-badge="stale" title="No epoch, step or heartbeat for longer than the server's limit: the progress may be frozen">no heartbeat since ${ago(op.last_seen_at)}</span>`
      : null;
    const chips = livenessBadges(op, {
      stale: false,
      utilisation: op.hung ? describeUtilisation(samples().at(-1), Date.now()) : undefined,
    });
    render(
      slot,
      html`
      <div class="row wrap">
        <div>
          <h1>${op.name ?? op.operation_type} ${statusPill(op.status)} ${pendingChip(op)} ${stale} ${chips}</h1>
          <div class="id">${op.operation_id}</div>
        </div>
        <span class="spacer"></span>
        <button id="dl-csv" type="button">Download CSV</button>
        <button id="dl-json" type="button">Download JSON</button>
        <a class="button" href="#/compare/${encodeURIComponent(op.operation_id)}">Compare…</a>
        ${live(op) && html`<button id="cancel" type="button" class="danger">Cancel</button>`}
      </div>
      <div class="row wrap meta"><span id="head-progress">${progressBar(op)}</span> <span class="muted small">${metaBits(op)}</span></div>
      ${checkpointLinks(op)}
      ${configBlock(op)}
      ${op.error_message && html`<div class="error-box small">${op.error_message}</div>`}`,
    );
    slot.querySelector("#dl-csv").onclick = () =>
      download(`${path}/metrics.csv`, `${id}-metrics.csv`).catch(alertError);
    slot.querySelector("#dl-json").onclick = () =>
      download(`${path}/metrics.json`, `${id}-metrics.json`).catch(alertError);
    for (const b of slot.querySelectorAll("[data-checkpoint]")) {
      const epoch = b.dataset.checkpoint;
      b.onclick = () => download(`${path}/checkpoints/${epoch}`, `${id}-epoch-${epoch}.tar`).catch(alertError);
    }
    const cancel = slot.querySelector("#cancel");
    if (cancel) {
      cancel.onclick = async () => {
        if (!confirm(`Cancel ${op.name ?? id}?`)) return;
        cancel.disabled = true;
        try {
          onChange(await api("DELETE", path, { by: "dashboard" }));
        } catch (err) {
          cancel.disabled = false;
          alertError(err);
        }
      };
    }
  }

  /** The bar again, from the counts now on `op`, with the server's rule (in steps when it counts steps). */
  function showProgress(op) {
    const p = op.progress;
    const steps =
      p.steps_completed === undefined ? null : { completed: p.steps_completed, total: p.total_steps ?? null };
    p.percentage = progressPercentage(op.status, p.epochs_completed, p.total_epochs, p.batch, steps);
    const bar = slot.querySelector("#head-progress");
    if (bar) render(bar, progressBar(op));
  }

  /** Progress follows the epochs between status events: the stream's trends carry the counts, the server's rule the rest. */
  function progress(op, trends) {
    if (!op || !trends) return;
    op.progress.epochs_completed = trends.total_epochs_completed;
    op.progress.current_epoch = trends.latest_epoch;
    showProgress(op);
  }

  /** A step run's progress follows its live steps: completed is the highest stored step + 1, as the server counts. */
  function steps(op, rows) {
    if (!op || rows.length === 0) return;
    const p = op.progress;
    p.steps_completed = Math.max(p.steps_completed ?? 0, ...rows.map((r) => r.step + 1));
    showProgress(op);
  }

  /** With time alone move the "last heard … ago" text and, on a hung run, the utilisation its chip cites (a sample may come). */
  function tick(op) {
    if (op?.hung) return show(op);
    const cell = slot.querySelector("[data-last-seen]");
    if (cell && op?.last_seen_at) cell.textContent = ago(op.last_seen_at);
  }

  return { render: show, progress, steps, tick };
}
