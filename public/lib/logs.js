// The logs panel of a script training's page: the last lines, then each new batch live from
// /operations/{id}/logs/stream (fetch-based SSE, so the token travels), as plain text (never markup).

import { openStream } from "./api.js";
import { html, render } from "./html.js";
import { errorBox } from "./widgets.js";

/** Lines kept on the page; older ones scroll away (the server keeps the last ~10 MB). */
const KEEP = 2000;

/** Appends a Logs card to `root` and follows the log; returns { destroy }. */
export function logsPanel(root, id) {
  const card = document.createElement("section");
  card.className = "card";
  card.id = "logs";
  render(
    card,
    html`<div class="row"><h2>Logs</h2><span class="spacer"></span><span class="muted small" id="logs-state">connecting…</span></div><pre class="logs" id="logs-text"></pre>`,
  );
  root.append(card);
  const pre = card.querySelector("#logs-text");
  const state = card.querySelector("#logs-state");
  let lines = [];
  const show = (batch) => {
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    lines = lines.concat(batch).slice(-KEEP);
    pre.textContent = lines.join("\n");
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  };
  const stream = openStream(`/operations/${encodeURIComponent(id)}/logs/stream?tail=500`, {
    onState(s) {
      // Every connection opens with a replay of the tail: start over rather than repeat lines.
      if (s === "live") lines = [];
      state.textContent = s === "live" ? "live" : s === "ended" ? "ended" : "reconnecting…";
    },
    onEvent(type, data) {
      if (type === "lines") show(data.lines);
      else if (type === "error") render(card.querySelector("#logs-text"), errorBox(data));
    },
  });
  return { destroy: () => stream.close() };
}
