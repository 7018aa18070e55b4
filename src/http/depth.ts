/**
 * How deep a JSON text nests, found by one linear scan of the raw text, before JSON.parse or a validator walks it:
 * their cost (and Elysia's error formatting, and JSON.stringify in the store) grows with depth faster than with size,
 * so depth is refused while it still costs only the bytes read. Pure: no I/O.
 */

/**
 * The deepest nesting a JSON body may have: 64 levels of `[` and `{`. The deepest legitimate body is far below it (an
 * MCP `tools/call` of a training spec: message → params → arguments → spec → model → layers → layer, about 8 levels;
 * metadata and recipe params a client nests itself add their own, and 64 leaves them room).
 */
export const MAX_JSON_DEPTH = 64;

/**
 * True when `text` opens more than `limit` arrays and objects inside one another. Brackets inside strings do not count
 * (a `\"` does not end a string); the text need not be valid JSON, since JSON.parse judges that afterwards.
 */
export function depthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i + 1);
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;

/** The index of the quote that closes the string whose content starts at `from` (the text's length when none does). */
function stringEnd(text: string, from: number): number {
  for (let q = text.indexOf('"', from); q !== -1; q = text.indexOf('"', q + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(q - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return q;
  }
  return text.length;
}
