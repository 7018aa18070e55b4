// The search's filter language on the page (the server parses it: docs/api.md#search): the queries the page writes
// itself (a group chip, a tag chip, the sweep view's read), with values quoted as the server reads them, the list's
// address, and a refused query shown with a caret under the position the server's 400 names.

import { html } from "./html.js";
import { hashOf } from "./router.js";

/** A string value in the language: double-quoted, `"` and `\` escaped. */
export const quote = (s) => `"${String(s).replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** The query for a group's runs: `group = "sweep-7"`. */
export const groupQuery = (group) => `group = ${quote(group)}`;

/** The query for the runs with a tag: `tags has "bert"`. */
export const tagQuery = (tag) => `tags has ${quote(tag)}`;

/** The group a query asks for when it is exactly `group = "…"` (what a group chip writes), else null. */
export function groupOfQuery(q) {
  const m = /^\s*group\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/i.exec(q ?? "");
  return m ? m[1].replace(/\\(.)/g, "$1") : null;
}

/** The list's address for a search: `#/?q=…&sort=…&order=…` (`#/` with none). */
export const listHash = ({ q = "", sort = "", order = "" } = {}) => hashOf("", "", { q: q.trim(), sort, order });

/** The errors whose details name a position in the query (a 400 QUERY_SYNTAX or QUERY_FIELD). */
export const isQueryError = (err) => Number.isInteger(err?.details?.position);

/**
 * A refused query under the search box: the server's message, then the query with a caret under the character at
 * `details.position` (0-based; the query's length when the query ended too soon).
 */
export function queryErrorBox(err, q) {
  const pos = Math.max(0, Math.min(err.details.position, q.length));
  return html`<div class="query-error" data-code="${err.code}" data-position="${pos}">
    <div class="msg"><strong>${err.code}</strong> ${err.message}</div>
    <pre class="caret-line"><span class="q">${q}</span>
<span class="caret">${" ".repeat(pos)}^</span></pre>
  </div>`;
}
