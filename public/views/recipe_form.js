// The New training page's script part: a picker of the recipes GET /recipes lists (this server's and its GPU hosts'),
// with a form generated from the chosen recipe's params schema; it sends {recipe, params, name, target} to
// POST /api/v1/trainings and opens the new operation. Nothing here can name a command: only a declared recipe.

import { api } from "../lib/api.js";
import { html, render } from "../lib/html.js";
import { errorBox, submitTraining } from "../lib/widgets.js";

/** One input per param, from its JSON Schema: a select for an enum, a checkbox for a boolean, a number or text field otherwise. */
function field(name, p) {
  const title = p.description ?? "";
  const label = p.title ?? name;
  if (Array.isArray(p.enum)) {
    const options = p.enum.map((v) => html`<option value="${v}" ${v === p.default ? "selected" : ""}>${v}</option>`);
    return html`<label title="${title}">${label} <select name="${name}" data-type="${p.type}">${options}</select></label>`;
  }
  if (p.type === "boolean")
    return html`<label class="check" title="${title}"><input type="checkbox" name="${name}" data-type="boolean" ${p.default ? "checked" : ""}> ${label}</label>`;
  if (p.type === "integer" || p.type === "number") {
    const min = p.minimum ?? p.exclusiveMinimum;
    const max = p.maximum ?? p.exclusiveMaximum;
    return html`<label title="${title}">${label} <input name="${name}" type="number" data-type="${p.type}" step="${p.type === "integer" ? 1 : "any"}" ${min !== undefined ? html`min="${min}"` : ""} ${max !== undefined ? html`max="${max}"` : ""} value="${p.default ?? ""}" placeholder="${p.default === undefined ? "required" : ""}"></label>`;
  }
  return html`<label title="${title}">${label} <input name="${name}" data-type="string" value="${p.default ?? ""}" ${p.maxLength ? html`maxlength="${p.maxLength}"` : ""}></label>`;
}

/** The params the form holds, typed by the schema; empty fields are left out (the recipe's defaults apply). */
function paramsOf(form) {
  const params = {};
  for (const el of form.querySelectorAll("[data-type]")) {
    const type = el.dataset.type;
    if (type === "boolean") params[el.name] = el.checked;
    else if (el.value === "") continue;
    else params[el.name] = type === "integer" || type === "number" ? Number(el.value) : el.value;
  }
  return params;
}

/** How the form names each target. */
const TARGET_NAMES = { local: "this server", host: "GPU host", slurm: "Slurm cluster" };

/** Renders the recipe card into `card`. */
export async function recipeSection(card) {
  let list;
  try {
    list = await api("GET", "/recipes");
  } catch (err) {
    render(card, html`<h2>Your script (recipe)</h2>${errorBox(err)}`);
    return;
  }
  const recipes = list.recipes;
  const unreachable = list.hosts
    .filter((h) => h.error)
    .map((h) => html`<p class="muted small">GPU host ${h.host}: ${h.error}</p>`);
  if (recipes.length === 0) {
    render(
      card,
      html`<h2>Your script (recipe)</h2><p class="muted">No recipe is declared. Declare your training scripts in <code>trainwatch.recipes.json</code> (or the file <code>TRAINWATCH_RECIPES</code> names) on this server or its GPU host, then restart it.</p>${unreachable}`,
    );
    return;
  }
  const key = (r) => `${r.target}|${r.host ?? ""}|${r.name}`;
  render(
    card,
    html`
    <h2>Your script (recipe)</h2>
    <p class="muted">A training script the operator declared; it runs as a child process and reports its epochs with the Python client. Its output shows on the operation's page.</p>
    <form id="recipe-form" class="form">
      <label>Recipe <select name="recipe">${recipes.map((r) => html`<option value="${key(r)}">${r.name} — ${r.target === "host" ? `GPU host ${r.host}` : (r.targets ?? [r.target]).map((t) => TARGET_NAMES[t] ?? t).join(" or ")}${r.gpus ? `, ${r.gpus} GPU` : ""}</option>`)}</select></label>
      <p class="muted small" id="recipe-description"></p>
      <label id="recipe-target-label">Run on <select name="target"></select></label>
      <label>Name <input name="name" placeholder="default: the recipe's name"></label>
      <div class="cols" id="recipe-params"></div>
      <details><summary>Request (JSON sent to POST /api/v1/trainings)</summary><pre id="recipe-preview"></pre></details>
      <div class="row"><span class="spacer"></span><button class="primary" type="submit">Start script</button></div>
      <div id="recipe-error"></div>
    </form>
    ${unreachable}`,
  );
  const form = card.querySelector("#recipe-form");
  const chosen = () => recipes.find((r) => key(r) === form.elements.recipe.value);
  const body = () => {
    const r = chosen();
    const name = form.elements.name.value.trim();
    return {
      recipe: r.name,
      params: paramsOf(card.querySelector("#recipe-params")),
      ...(name ? { name } : {}),
      // One of the recipe's targets (a GPU host's recipe runs on its host).
      target: form.elements.target.value || r.target,
    };
  };
  const preview = () => (card.querySelector("#recipe-preview").textContent = JSON.stringify(body(), null, 2));
  const pick = () => {
    const r = chosen();
    card.querySelector("#recipe-description").textContent = r.description ?? "";
    // A choice only where the recipe allows more than one target; its first is the default.
    const targets = r.targets ?? [r.target];
    render(
      form.elements.target,
      html`${targets.map((t) => html`<option value="${t}">${TARGET_NAMES[t] ?? t}</option>`)}`,
    );
    card.querySelector("#recipe-target-label").hidden = targets.length < 2;
    render(
      card.querySelector("#recipe-params"),
      html`${Object.entries(r.params.properties ?? {}).map(([n, p]) => field(n, p))}`,
    );
    preview();
  };
  form.elements.recipe.addEventListener("change", pick);
  form.addEventListener("input", preview);
  pick();
  submitTraining(form, card.querySelector("#recipe-error"), body);
}
