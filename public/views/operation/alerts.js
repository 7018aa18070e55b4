// The operation page's alerts (issue 24): the run's alerts with their delivery log (GET /api/v1/alerts?operation_id=),
// new ones as its stream hears them, and a small rules editor over GET / PUT /operations/{id}/alerts: a box per event,
// checked when it alerts for this run; saving sends what differs from the server's defaults as `on` / `off`, and keeps
// the thresholds.

import { api } from "../../lib/api.js";
import { alertItem } from "../../lib/alerts.js";
import { ALERT_EVENTS as EVENTS } from "schemas/alert_events.js";
import { html, render } from "../../lib/html.js";
import { alertError } from "../../lib/widgets.js";

export function alertsPart(slot, id) {
  let alerts = [];
  let view = null;
  const show = () => {
    const rules = view
      ? html`<form id="alert-rules" class="row wrap small">
          ${EVENTS.map((e) => html`<label><input type="checkbox" name="event" value="${e}" ${view.events.includes(e) ? "checked" : ""}> ${e}</label>`)}
          <button type="submit">Save alerts</button>
          <span class="muted">${view.channels.length ? `sent to ${view.channels.join(", ")}` : "no channel configured: shown here only"}</span>
        </form>
        ${view.rules?.thresholds?.length ? html`<div class="small muted">thresholds: ${view.rules.thresholds.map((t) => `${t.metric} ${t.when} ${t.value}`).join("; ")}</div>` : null}`
      : null;
    render(
      slot,
      html`<h3>Alerts</h3>
      ${alerts.length ? html`<ul class="alert-list" id="op-alerts">${alerts.map(alertItem)}</ul>` : html`<p class="muted small" id="op-alerts">No alerts for this run.</p>`}
      ${rules}`,
    );
    const form = slot.querySelector("#alert-rules");
    if (form)
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        const checked = new Set(new FormData(form).getAll("event"));
        const on = EVENTS.filter((e) => checked.has(e) && !view.defaults.includes(e));
        const off = view.defaults.filter((e) => !checked.has(e));
        try {
          view = await api("PUT", `/operations/${encodeURIComponent(id)}/alerts`, {
            on,
            off,
            ...(view.rules?.thresholds ? { thresholds: view.rules.thresholds } : {}),
          });
          show();
        } catch (err) {
          alertError(err);
        }
      };
  };
  (async () => {
    try {
      [alerts, view] = await Promise.all([
        api("GET", `/alerts?operation_id=${encodeURIComponent(id)}&limit=50`),
        api("GET", `/operations/${encodeURIComponent(id)}/alerts`),
      ]);
      show();
    } catch (err) {
      render(slot, html`<p class="muted small">Alerts unavailable: ${err.message}</p>`);
    }
  })();
  return {
    /** An `alert` event of the run's stream. */
    heard(a) {
      if (alerts.some((x) => x.alert.id === a.alert.id)) return;
      alerts = [a, ...alerts];
      show();
    },
  };
}
