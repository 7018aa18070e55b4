// Small pieces every view shows: status pills, progress bars, trend badges, error boxes, the smoothing slider,
// the zoom's range and reset button, the live-connection light. Each returns an html`…` template (lib/html.js) or a DOM element.

import { api } from "./api.js";
import { html, render } from "./html.js";
import { groupQuery, listHash, tagQuery } from "./query.js";

const SMOOTHING_KEY = "trainwatch.smoothing";

/**
 * The four trend flags, in the order shown: the badge class, its title, and where a trends object (is_*) or a summary's
 * flags (bare name) say it.
 */
const FLAGS = [
  [
    "overfitting",
    "warn",
    "Validation loss above its best by more than noise while training loss falls",
    "is_overfitting",
  ],
  ["plateau", "info", "No improvement for the plateau patience", "is_plateaued"],
  ["diverging", "bad", "Loss not finite, exploded, or training and validation both rising", "is_diverging"],
  ["stalled", "warn", "Barely improving and never learned much: check the learning rate and the data", "is_stalled"],
];

/** The four trend flags as badges; `none` adds a quiet "no issues" badge when nothing is flagged. */
export function flagBadges(t, { none = false } = {}) {
  const out = FLAGS.filter(([flag, , , key]) => t[key] ?? t[flag]).map(
    ([flag, cls, title]) => html`<span class="badge ${cls}" data-badge="${flag}" title="${title}">${flag}</span>`,
  );
  if (!out.length && none) out.push(html`<span class="badge ok" data-badge="none">no issues</span>`);
  return out.map((b, i) => (i ? html` ${b}` : b));
}

/**
 * The liveness chips of an operation, as flag badges: `stale` (silent past its limit), `hung` (heartbeats but no row
 * for far longer than its usual interval, the reason in the title) and `lost` (failed after TRAINWATCH_LOST_AFTER of
 * silence). `stale: false` leaves it out: the operation page shows its own "no heartbeat since" badge for it.
 * `utilisation`: how busy the machine is (src/operations/utilisation.ts), shown on the hung chip when known.
 */
export function livenessBadges(op, { stale = true, utilisation } = {}) {
  const l = op.liveness;
  const chips = [
    stale &&
      op.stale && [
        "stale",
        "bad",
        "No heartbeat, epoch or step for longer than the server's limit: the trainer may be dead",
      ],
    op.hung && [
      "hung",
      "bad",
      `Heartbeats arrive but no epoch or step for ${Math.round(l?.rows_silent_s ?? 0)} s (usually every ${l?.median_interval_s ?? "?"} s)${utilisation ? `; ${utilisation}` : ""}`,
      utilisation && `hung · ${utilisation}`,
    ],
    op.status === "failed" &&
      op.failure_code === "lost" && [
        "lost",
        "bad",
        op.error_message ?? "No heartbeat, epoch or step: the trainer died",
      ],
  ].filter(Boolean);
  return chips.map(
    ([flag, cls, title, text], i) =>
      html`${i ? " " : ""}<span class="badge ${cls}" data-badge="${flag}" title="${title}">${text || flag}</span>`,
  );
}

/** A run's group and tags as chips, each a link to the list searched for it (`group = "…"`, `tags has "…"`). */
export function labelChips(op) {
  const group =
    op.group &&
    html`<a class="chip group" data-group="${op.group}" href="${listHash({ q: groupQuery(op.group) })}" title="The runs of group ${op.group}">${op.group}</a>`;
  const tags = (op.tags ?? []).map(
    (t) =>
      html` <a class="chip tag" data-tag="${t}" href="${listHash({ q: tagQuery(t) })}" title="The runs tagged ${t}">${t}</a>`,
  );
  return html`<span class="chips">${group}${tags}</span>`;
}

export const statusPill = (status) => html`<span class="status ${status}" data-status="${status}">${status}</span>`;

/** A count of a plan: "1,200 / 5,000 steps", or "1,200 steps" without one. */
const countOf = (done, planned, unit) =>
  planned
    ? `${done.toLocaleString("en")} / ${planned.toLocaleString("en")} ${unit}`
    : `${done.toLocaleString("en")} ${unit}`;

/** The progress bar and its count: in steps for a run that reports or plans steps (progress.steps_completed), else in epochs. */
export function progressBar(op) {
  const p = op.progress;
  const pct = Math.max(0, Math.min(100, p.percentage ?? 0));
  const label =
    p.steps_completed === undefined
      ? countOf(p.epochs_completed, p.total_epochs, "epochs")
      : countOf(p.steps_completed, p.total_steps, "steps");
  return html`<div class="progress" title="${pct.toFixed(1)} %"><div style="width:${pct}%"></div></div><span class="muted small">${label}</span>`;
}

export const errorBox = (err) =>
  html`<div class="card error-box"><strong>${err.code ?? "Error"}</strong> ${err.message ?? err}</div>`;

/**
 * Starts a training from `form` on submit: POST /trainings with `body()`, then opens the new operation's page;
 * on a refusal the error goes into `errorEl` and the button comes back.
 */
export function submitTraining(form, errorEl, body) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    errorEl.replaceChildren();
    try {
      const op = await api("POST", "/trainings", body());
      location.hash = `#/op/${encodeURIComponent(op.operation_id)}`;
    } catch (err) {
      render(errorEl, errorBox(err));
      button.disabled = false;
    }
  });
}

/** The top bar's live-updates light: idle, live, reconnecting, ended. */
export function setConn(state) {
  const conn = document.getElementById("conn");
  conn.className = `conn ${state}`;
  conn.textContent = state;
}

/** A failed action the user started (download, cancel): said in a dialog. */
export function alertError(err) {
  alert(`${err.code ?? "Error"}: ${err.message ?? err}`);
}

/** Runs `fn` at most once per `ms`, trailing. */
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  const run = () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
  /** Drops a call still waiting, so a page that is left sends nothing after. */
  run.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return run;
}

/** How long the smoothing slider rests before its new weight is handed on (each weight is a fetch). */
const SMOOTHING_REST_MS = 120;

/**
 * The EMA smoothing slider (0 to 0.99, default 0.6), remembered in localStorage across pages. A drag calls `onChange`
 * once it rests; `cancel()` drops a call still waiting, so a page that is left fetches nothing after.
 */
export function smoothingControl(onChange) {
  const initial = Number(localStorage.getItem(SMOOTHING_KEY) ?? 0.6);
  const wrap = document.createElement("label");
  wrap.className = "smoothing";
  render(
    wrap,
    html`Smoothing <input type="range" min="0" max="0.99" step="0.01" value="${initial}" data-testid="smoothing"> <output>${initial.toFixed(2)}</output>`,
  );
  const input = wrap.querySelector("input");
  let timer = null;
  input.addEventListener("input", () => {
    wrap.querySelector("output").textContent = Number(input.value).toFixed(2);
    localStorage.setItem(SMOOTHING_KEY, input.value);
    clearTimeout(timer);
    timer = setTimeout(() => onChange(Number(input.value)), SMOOTHING_REST_MS);
  });
  return { el: wrap, value: () => Number(input.value), cancel: () => clearTimeout(timer) };
}

/**
 * The zoomed range ("epochs 1,200 – 1,700", or in the `unit` given: "steps 41,000 – 42,000") and a Reset zoom button,
 * hidden while the chart shows the whole run.
 */
export function zoomControl(onReset, unit = "epochs") {
  const wrap = document.createElement("span");
  wrap.className = "zoom small";
  wrap.hidden = true;
  render(
    wrap,
    html`<span class="muted" data-testid="zoom-range"></span> <button type="button" id="reset-zoom" title="Or double-click a chart">Reset zoom</button>`,
  );
  wrap.querySelector("button").onclick = () => onReset();
  return {
    el: wrap,
    set(range) {
      wrap.hidden = range === null;
      if (range)
        wrap.querySelector("[data-testid=zoom-range]").textContent =
          `${unit} ${range[0].toLocaleString("en")} – ${range[1].toLocaleString("en")}`;
    },
  };
}
