// The operation page's stop control: the stop decision recorded on the run, its stop policy, and (while the run is
// live) a form to set or clear the policy through PUT / DELETE /operations/{id}/stop_policy.

import { api } from "../../lib/api.js";
import { live } from "../../lib/format.js";
import { html, render } from "../../lib/html.js";
import { alertError } from "../../lib/widgets.js";

/** The stop policy's flags, as the server names them (schemas/control.ts STOP_FLAGS). */
const STOP_FLAGS = ["diverging", "overfitting", "stalled", "plateau"];

/** The stop decision, the policy, and (while the run is live) a form to set or clear the policy. */
function controlBlock(op) {
  const c = op.control;
  const decision =
    c &&
    html`<div class="error-box small" data-control="${c.decided_by}">stop requested by ${c.decided_by}: ${c.reason}${c.checkpoint_epoch !== null ? ` (checkpoint epoch ${c.checkpoint_epoch})` : ""}</div>`;
  const p = op.stop_policy;
  const now = p
    ? html`stop on <b>${p.on.join(", ")}</b>${p.min_epochs ? html` from epoch <b>${p.min_epochs}</b>` : null}`
    : html`<span class="muted">no stop policy</span>`;
  const form =
    live(op) &&
    html`<form id="policy" class="row wrap small">
      ${STOP_FLAGS.map((f) => html`<label><input type="checkbox" name="on" value="${f}" ${p?.on.includes(f) ? "checked" : ""}> ${f}</label>`)}
      <label>min epochs <input type="number" name="min_epochs" min="0" step="1" value="${p?.min_epochs ?? 0}" style="width: 5em"></label>
      <button type="submit">Set policy</button>
      ${p && html`<button type="button" id="policy-clear">Clear</button>`}
    </form>`;
  return html`<div class="meta small" id="stop-policy">${now}</div>${form}${decision}`;
}

/**
 * The stop control of operation `id` in `slot`: render(op) shows it, again only when what it shows changed, so a status
 * event does not wipe a half-filled form. A set or a clear hands the operation the API returns to onChange(op).
 */
export function stopPolicyPart(slot, id, { onChange }) {
  let shownKey = null;
  function show(op) {
    const key = JSON.stringify([op.stop_policy, op.control, live(op)]);
    if (key === shownKey) return;
    shownKey = key;
    render(slot, controlBlock(op));
    const form = slot.querySelector("#policy");
    if (!form) return;
    const send = async (method, body) => {
      for (const b of form.querySelectorAll("button")) b.disabled = true;
      try {
        onChange(await api(method, `/operations/${encodeURIComponent(id)}/stop_policy`, body));
      } catch (err) {
        for (const b of form.querySelectorAll("button")) b.disabled = false;
        alertError(err);
      }
    };
    form.onsubmit = (e) => {
      e.preventDefault();
      const on = [...form.querySelectorAll("input[name=on]:checked")].map((i) => i.value);
      if (on.length === 0) return alertError(new Error("tick at least one flag to stop on, or clear the policy"));
      void send("PUT", { on, min_epochs: Number(form.elements.min_epochs.value || 0) });
    };
    const clear = form.querySelector("#policy-clear");
    if (clear) clear.onclick = () => void send("DELETE");
  }
  return { render: show };
}
