// The header's alert bell and the toasts (issue 24): the recent alerts (GET /api/v1/alerts), a count of those recorded
// since this browser last opened the bell (the last seen `seq`, in localStorage), and a toast for each alert that
// arrives while the page is open (the `alert` event of the global stream, /api/v1/stream). A line per alert: the title,
// when, and each channel's delivery; a click opens the run's page.

import { api, openStream } from "./api.js";
import { ago } from "./format.js";
import { html, render } from "./html.js";

const SEEN_KEY = "trainwatch.alerts.seen";
const TOAST_MS = 8000;

const seenSeq = () => Number(localStorage.getItem(SEEN_KEY) ?? 0);

/** One alert as a list line: its title (a link to the run), the reason, when, and each channel's delivery. */
export function alertItem(a) {
  const sent = a.deliveries.map(
    (d) =>
      html`<span class="badge small ${d.state}" title="${d.last_error ?? ""}">${d.channel} ${d.state}${d.attempts > 1 ? ` ×${d.attempts}` : ""}</span>`,
  );
  return html`<li class="alert-item kind-${a.alert.kind}" data-alert="${a.alert.id}">
    <a href="#/op/${a.alert.operation.id}"><b>${a.alert.title}</b></a>
    <span class="muted small">${ago(a.alert.at)}</span> ${sent}
    ${a.alert.reason ? html`<div class="small muted">${a.alert.reason}</div>` : null}
  </li>`;
}

/** Starts the bell in `button` (its count) and `panel` (the list), and the toasts in `toasts`; returns stop(). */
export function startAlertBell({ button, panel, toasts }) {
  let alerts = [];
  const count = button.querySelector(".count");
  const show = () => {
    const fresh = alerts.filter((a) => a.seq > seenSeq()).length;
    count.textContent = fresh ? String(fresh) : "";
    button.classList.toggle("ringing", fresh > 0);
    render(
      panel,
      alerts.length
        ? html`<ul class="alert-list">${alerts.map(alertItem)}</ul>`
        : html`<p class="muted small">No alerts yet.</p>`,
    );
  };
  const load = async () => {
    try {
      alerts = await api("GET", "/alerts?limit=20");
      show();
    } catch {
      // No token yet, or the server away: the bell stays empty, the stream below retries.
    }
  };
  button.onclick = () => {
    panel.hidden = !panel.hidden;
    if (!panel.hidden && alerts[0]) localStorage.setItem(SEEN_KEY, String(alerts[0].seq));
    show();
  };
  const toast = (a) => {
    const el = document.createElement("div");
    el.className = `toast kind-${a.alert.kind}`; // not `status`: the status pill's class
    el.dataset.toast = a.alert.id;
    render(
      el,
      html`<a href="#/op/${a.alert.operation.id}"><b>${a.alert.title}</b></a>${a.alert.reason ? html`<div class="small">${a.alert.reason}</div>` : null}`,
    );
    el.onclick = () => el.remove();
    toasts.append(el);
    setTimeout(() => el.remove(), TOAST_MS);
  };
  const stream = openStream("/stream", {
    onEvent(type, data) {
      if (type !== "alert" || alerts.some((a) => a.alert.id === data.alert.id)) return;
      alerts = [data, ...alerts].slice(0, 20);
      show();
      toast(data);
    },
  });
  void load();
  return () => stream.close();
}
