// The operation page's labels: the run's tags (each removable) and its group, changed through
// PATCH /operations/{id}/labels in any status (a finished run can be re-tagged): add tags, remove one, set or clear the
// group. Each tag and the group link to the list searched for them; the group also to its sweep view.

import { api } from "../../lib/api.js";
import { html, render } from "../../lib/html.js";
import { groupQuery, listHash, tagQuery } from "../../lib/query.js";
import { hashOf } from "../../lib/router.js";
import { errorBox } from "../../lib/widgets.js";

function labelsBlock(op) {
  const tags = op.tags.map(
    (t) =>
      html`<span class="chip tag" data-tag="${t}"><a href="${listHash({ q: tagQuery(t) })}" title="The runs tagged ${t}">${t}</a><button type="button" class="chip-x" data-remove-tag="${t}" title="Remove tag ${t}" aria-label="Remove tag ${t}">×</button></span>`,
  );
  const group = op.group
    ? html`<a class="chip group" data-group="${op.group}" href="${listHash({ q: groupQuery(op.group) })}" title="The runs of group ${op.group}">${op.group}</a>
        <a class="small" id="sweep-link" href="${hashOf("groups", op.group)}">sweep view</a>`
    : html`<span class="muted">none</span>`;
  return html`
    <div class="row wrap small labels">
      <span class="muted">tags</span> ${tags.length ? tags : html`<span class="muted">none</span>`}
      <form id="add-tag" class="row">
        <input name="tag" placeholder="tag(s) to add" aria-label="Tags to add" size="14" autocomplete="off">
        <button type="submit">Add</button>
      </form>
      <span class="spacer"></span>
      <span class="muted">group</span> <span id="group-now">${group}</span>
      <form id="set-group" class="row">
        <input name="group" value="${op.group ?? ""}" placeholder="e.g. sweep-7" aria-label="Group" size="16" autocomplete="off">
        <button type="submit">Set group</button>
        ${op.group && html`<button type="button" id="clear-group">Clear</button>`}
      </form>
    </div>
    <div id="labels-error"></div>`;
}

/**
 * The labels of operation `id` in `slot`: render(op) shows them, again only when they changed (a status event does not
 * wipe a tag being typed). A change hands the operation the API returns to onChange(op); a refusal (a tag with a
 * character tags cannot hold, too many tags) is said under the forms with the server's message naming the field.
 */
export function labelsPart(slot, id, { onChange }) {
  let shownKey = null;
  const path = `/operations/${encodeURIComponent(id)}/labels`;

  async function send(patch) {
    const buttons = slot.querySelectorAll("button");
    for (const b of buttons) b.disabled = true;
    try {
      const op = await api("PATCH", path, patch);
      slot.querySelector("#labels-error").replaceChildren();
      onChange(op);
    } catch (err) {
      for (const b of buttons) b.disabled = false;
      render(slot.querySelector("#labels-error"), errorBox(err));
    }
  }

  function show(op) {
    const key = JSON.stringify([op.tags, op.group]);
    if (key === shownKey) return;
    shownKey = key;
    render(slot, labelsBlock(op));
    slot.querySelector("#add-tag").onsubmit = (e) => {
      e.preventDefault();
      const add = e.target.elements.tag.value.split(/[\s,]+/).filter(Boolean);
      if (add.length) void send({ add_tags: add });
    };
    for (const b of slot.querySelectorAll("[data-remove-tag]"))
      b.onclick = () => void send({ remove_tags: [b.dataset.removeTag] });
    slot.querySelector("#set-group").onsubmit = (e) => {
      e.preventDefault();
      const group = e.target.elements.group.value.trim();
      void send({ group: group === "" ? null : group });
    };
    const clear = slot.querySelector("#clear-group");
    if (clear) clear.onclick = () => void send({ group: null });
  }

  return { render: show };
}
