// The page's only way to write markup: an `html` tagged template that escapes every interpolated value, so a run named
// `<img src=x onerror=…>` shows as text. Templates nest (a template inside a template is kept as markup), arrays are
// joined, null/undefined/false render as nothing, and `raw()` marks a string the code itself built as safe.

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Markup that is already safe: the result of `html` or of `raw`. Only this reaches innerHTML. */
export class Html {
  constructor(markup) {
    this.markup = markup;
  }
  toString() {
    return this.markup;
  }
}

/** Text → the same text as HTML, safe in element content and in quoted attribute values. */
export const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ENTITIES[c]);

/** Marks trusted markup (never user or server data) as safe to insert unescaped. */
export const raw = (markup) => new Html(String(markup));

function part(value) {
  if (value instanceof Html) return value.markup;
  if (value === null || value === undefined || value === false) return "";
  if (Array.isArray(value)) return value.map(part).join("");
  return escapeHtml(value);
}

/** The tagged template: `html\`<b>${name}</b>\`` → Html with `name` escaped. */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Replaces `el`'s content with a template. Refuses plain strings, so unescaped text cannot slip in by mistake. */
export function render(el, template) {
  if (!(template instanceof Html)) throw new TypeError("render() takes an html`…` template");
  el.innerHTML = template.markup;
  return el;
}

/** Appends a template after `el`'s current content. */
export function append(el, template) {
  if (!(template instanceof Html)) throw new TypeError("append() takes an html`…` template");
  el.insertAdjacentHTML("beforeend", template.markup);
  return el;
}
