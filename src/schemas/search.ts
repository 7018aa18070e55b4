/**
 * The search language over runs (GET /operations?q=…, MCP list_operations, the dashboard's search box): a pure parser
 * from the query text to a tree whose every comparison names a field of a fixed list, with the character positions
 * errors cite. No I/O, so the browser can run it as is; each store compiles the tree to SQL with bound values
 * (src/store/search_sql.ts).
 *
 *   query  := or
 *   or     := and ("or" and)*
 *   and    := not ("and" not)*
 *   not    := "not" not | "(" or ")" | term
 *   term   := field op value | flags.<name>
 *   op     := = | != | < | <= | > | >= | ~ | has
 *   value  := "string" | number | true | false | null | word
 *
 * Keywords (and, or, not, has, true, false, null) are case-insensitive; `not` binds tighter than `and`, `and` than `or`.
 */
import { Type } from "@sinclair/typebox";
import { TrainwatchError } from "../errors.ts";

/** What a field holds, which decides its operators and values. */
export type FieldKind = "text" | "status" | "tags" | "date" | "number" | "flag" | "config";

/** The fields a query may name (besides `config.<path>` and `flags.<name>`), and what each holds. */
export const SEARCH_FIELDS = {
  name: "text",
  status: "status",
  operation_type: "text",
  group: "text",
  tags: "tags",
  created_at: "date",
  started_at: "date",
  completed_at: "date",
  best_val_loss: "number",
  best_epoch: "number",
  epochs_completed: "number",
  steps_completed: "number",
  final_loss: "number",
  final_val_loss: "number",
} as const satisfies Record<string, Exclude<FieldKind, "flag" | "config">>;
export type SearchField = keyof typeof SEARCH_FIELDS;

/** The flags a query may name as `flags.<name>` (the trend summary's). */
export const SEARCH_FLAGS = ["overfitting", "plateau", "diverging", "stalled"] as const;
export type SearchFlagName = (typeof SEARCH_FLAGS)[number];

const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];

/** A key of a `config.<path>` (one segment between dots). */
export const CONFIG_SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
/** Deepest `config.<path>` a query may name (as deep as src/store/search_columns.ts follows a configuration). */
export const MAX_CONFIG_DEPTH = 8;

/** A field a comparison names, resolved against the fixed list. */
export type FieldRef =
  | { kind: Exclude<FieldKind, "flag" | "config">; name: SearchField }
  | { kind: "flag"; name: SearchFlagName }
  | { kind: "config"; path: string };

export type Op = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "has";

/** A value as the query wrote it; a date is normalised to its ISO instant. */
export type Value =
  | { type: "string"; v: string }
  | { type: "number"; v: number }
  | { type: "bool"; v: boolean }
  | { type: "null" }
  | { type: "date"; v: string };

/** A parsed query: `pos` is the 0-based offset of the node's first character in the query text. */
export type QueryNode =
  | { kind: "and" | "or"; left: QueryNode; right: QueryNode; pos: number }
  | { kind: "not"; expr: QueryNode; pos: number }
  | { kind: "cmp"; field: FieldRef; op: Op; value: Value; pos: number };

/** The longest query text accepted (GET /operations' `q`). */
export const MAX_QUERY_LENGTH = 2000;
/** Deepest nesting of parentheses and `not`s: a query is a filter, not a program. */
const MAX_DEPTH = 32;

type Token =
  | { t: "word"; text: string; pos: number }
  | { t: "string"; v: string; pos: number }
  | { t: "number"; v: number; text: string; pos: number }
  | { t: "op"; op: Op; pos: number }
  | { t: "(" | ")" | "end"; pos: number };

/** A 400 for a query: QUERY_SYNTAX (or QUERY_FIELD for a field it does not know) naming `field` and the position. */
export function queryError(code: "QUERY_SYNTAX" | "QUERY_FIELD", field: string, pos: number, what: string) {
  return new TrainwatchError(code, `${field} at ${pos}: ${what}`, { field, position: pos });
}

const WORD = /[A-Za-z_][A-Za-z0-9_.:-]*/y;
const NUMBER = /-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/y;
const OPS: readonly Op[] = ["!=", "<=", ">=", "=", "<", ">", "~"];

function tokenize(q: string, field: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    const pos = i;
    if (c === "(" || c === ")") {
      out.push({ t: c, pos });
      i++;
      continue;
    }
    if (c === '"') {
      let v = "";
      i++;
      for (;;) {
        if (i >= q.length) throw queryError("QUERY_SYNTAX", field, pos, "unterminated string");
        const d = q[i]!;
        if (d === "\\") {
          const e = q[i + 1];
          if (e !== '"' && e !== "\\")
            throw queryError("QUERY_SYNTAX", field, i, 'only \\" and \\\\ escape in a string');
          v += e;
          i += 2;
        } else if (d === '"') {
          i++;
          break;
        } else {
          v += d;
          i++;
        }
      }
      out.push({ t: "string", v, pos });
      continue;
    }
    const op = OPS.find((o) => q.startsWith(o, i));
    if (op) {
      out.push({ t: "op", op, pos });
      i += op.length;
      continue;
    }
    NUMBER.lastIndex = i;
    const n = NUMBER.exec(q);
    if (n) {
      const v = Number(n[0]);
      if (!Number.isFinite(v)) throw queryError("QUERY_SYNTAX", field, pos, `number out of range: ${n[0]}`);
      out.push({ t: "number", v, text: n[0], pos });
      i += n[0].length;
      continue;
    }
    WORD.lastIndex = i;
    const w = WORD.exec(q);
    if (w) {
      out.push({ t: "word", text: w[0], pos });
      i += w[0].length;
      continue;
    }
    throw queryError("QUERY_SYNTAX", field, pos, `unexpected character ${JSON.stringify(c)}`);
  }
  out.push({ t: "end", pos: q.length });
  return out;
}

const isKeyword = (tok: Token, kw: string) => tok.t === "word" && tok.text.toLowerCase() === kw;
const KEYWORDS = new Set(["and", "or", "not", "has", "true", "false", "null"]);

/** How a token reads in a message. */
function show(tok: Token): string {
  switch (tok.t) {
    case "word":
      return `'${tok.text}'`;
    case "string":
      return JSON.stringify(tok.v);
    case "number":
      return tok.text;
    case "op":
      return `'${tok.op}'`;
    case "end":
      return "the end of the query";
    default:
      return `'${tok.t}'`;
  }
}

/** Resolves a field's name against the fixed list (QUERY_FIELD naming it otherwise). */
export function resolveField(text: string, pos: number, field: string): FieldRef {
  if (text in SEARCH_FIELDS) {
    const name = text as SearchField;
    return { kind: SEARCH_FIELDS[name], name } as FieldRef;
  }
  if (text.startsWith("flags.")) {
    const name = text.slice(6);
    if ((SEARCH_FLAGS as readonly string[]).includes(name)) return { kind: "flag", name: name as SearchFlagName };
    throw queryError("QUERY_FIELD", field, pos, `unknown flag '${text}'; flags are ${SEARCH_FLAGS.join(", ")}`);
  }
  if (text.startsWith("config.")) {
    const segments = text.slice(7).split(".");
    if (segments.length > MAX_CONFIG_DEPTH || !segments.every((s) => CONFIG_SEGMENT.test(s)))
      throw queryError(
        "QUERY_FIELD",
        field,
        pos,
        `bad configuration path '${text}': up to ${MAX_CONFIG_DEPTH} keys of [A-Za-z0-9_-] joined by dots`,
      );
    return { kind: "config", path: segments.join(".") };
  }
  throw queryError(
    "QUERY_FIELD",
    field,
    pos,
    `unknown field '${text}'; fields are ${Object.keys(SEARCH_FIELDS).join(", ")}, config.<key>, flags.<name>`,
  );
}

/** The operators each kind of field takes. */
const OPERATORS: Record<FieldKind, readonly Op[]> = {
  text: ["=", "!=", "~"],
  status: ["=", "!="],
  tags: ["has"],
  date: ["=", "!=", "<", "<=", ">", ">="],
  number: ["=", "!=", "<", "<=", ">", ">="],
  flag: ["=", "!="],
  config: ["=", "!=", "<", "<=", ">", ">=", "~"],
};

/** Fields that may be null (`= null`, `!= null`). */
const NULLABLE = new Set<string>([
  "name",
  "group",
  "started_at",
  "completed_at",
  "best_val_loss",
  "best_epoch",
  "final_loss",
  "final_val_loss",
]);

const DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** A date value as its ISO instant; a date or time without a zone is UTC. */
function isoDate(text: string, pos: number, field: string): string {
  const m = DATE.exec(text);
  const ms = m ? Date.parse(text.includes(":") && !m[1] ? `${text.replace(" ", "T")}Z` : text.replace(" ", "T")) : NaN;
  if (Number.isNaN(ms))
    throw queryError("QUERY_SYNTAX", field, pos, `expected a date like "2026-12-01" or "2026-12-07T10:00:00Z"`);
  return new Date(ms).toISOString();
}

/** Checks a comparison's operator and value against its field, and normalises the value (dates, lower-case status). */
function checkTerm(f: FieldRef, fieldText: string, op: Op, opPos: number, tok: Token, field: string): Value {
  const kind = f.kind;
  if (!OPERATORS[kind].includes(op)) {
    const hint = kind === "tags" ? " (use has)" : "";
    throw queryError(
      "QUERY_SYNTAX",
      field,
      opPos,
      `'${op}' does not apply to ${fieldText}${hint}; it takes ${OPERATORS[kind].join(" ")}`,
    );
  }
  const bad = (what: string) => queryError("QUERY_SYNTAX", field, tok.pos, `expected ${what} after '${op}'`);
  if (tok.t === "word" && isKeyword(tok, "null")) {
    if (op !== "=" && op !== "!=") throw bad("a value other than null");
    if (kind === "config" || (f.kind !== "flag" && NULLABLE.has(f.name))) return { type: "null" };
    throw queryError("QUERY_SYNTAX", field, tok.pos, `${fieldText} is never null`);
  }
  switch (kind) {
    case "text":
      if (tok.t === "string") return { type: "string", v: tok.v };
      if (tok.t === "word" && !KEYWORDS.has(tok.text.toLowerCase()) && f.name === "operation_type")
        return { type: "string", v: tok.text };
      throw bad("a quoted string");
    case "status": {
      const v = tok.t === "string" ? tok.v : tok.t === "word" ? tok.text.toLowerCase() : null;
      if (v !== null && STATUSES.includes(v)) return { type: "string", v };
      throw bad(`a status (${STATUSES.join(", ")})`);
    }
    case "tags":
      if (tok.t === "string") return { type: "string", v: tok.v };
      if (tok.t === "word" && !KEYWORDS.has(tok.text.toLowerCase())) return { type: "string", v: tok.text };
      throw bad("a tag");
    case "date":
      if (tok.t === "string") return { type: "date", v: isoDate(tok.v, tok.pos, field) };
      throw bad('a quoted date, e.g. "2026-12-01"');
    case "number":
      if (tok.t === "number") return { type: "number", v: tok.v };
      throw bad("a number");
    case "flag":
      if (isKeyword(tok, "true") || isKeyword(tok, "false")) return { type: "bool", v: isKeyword(tok, "true") };
      throw bad("true or false");
    case "config":
      if (op === "~") {
        if (tok.t === "string") return { type: "string", v: tok.v };
        throw bad("a quoted string");
      }
      if (tok.t === "string") return { type: "string", v: tok.v };
      if (tok.t === "number") return { type: "number", v: tok.v };
      if ((isKeyword(tok, "true") || isKeyword(tok, "false")) && (op === "=" || op === "!="))
        return { type: "bool", v: isKeyword(tok, "true") };
      throw bad("a number, a quoted string, true, false or null");
  }
}

/**
 * Parses a query; null for an empty (or blank) one, which matches every run. `field` names the parameter in errors
 * ("query.q", "arguments.q"). Throws QUERY_SYNTAX or QUERY_FIELD (a TrainwatchError, 400) with the 0-based position.
 */
export function parseQuery(q: string, field = "query.q"): QueryNode | null {
  if (q.length > MAX_QUERY_LENGTH)
    throw queryError("QUERY_SYNTAX", field, MAX_QUERY_LENGTH, `a query is at most ${MAX_QUERY_LENGTH} characters`);
  const toks = tokenize(q, field);
  let i = 0;
  const peek = () => toks[i]!;
  const next = () => toks[i++]!;
  const expected = (what: string): never => {
    const tok = peek();
    throw queryError("QUERY_SYNTAX", field, tok.pos, `expected ${what}, found ${show(tok)}`);
  };

  // `or` of `and`s of `not`s: each a left-leaning chain of the next tighter one.
  const chain =
    (kind: "or" | "and", operand: (depth: number) => QueryNode) =>
    (depth: number): QueryNode => {
      let left = operand(depth);
      while (isKeyword(peek(), kind)) {
        next();
        left = { kind, left, right: operand(depth), pos: left.pos };
      }
      return left;
    };
  const and = chain("and", (depth) => not(depth));
  const or = chain("or", and);
  const not = (depth: number): QueryNode => {
    const tok = peek();
    if (depth > MAX_DEPTH) throw queryError("QUERY_SYNTAX", field, tok.pos, `nested more than ${MAX_DEPTH} deep`);
    if (isKeyword(tok, "not")) {
      next();
      return { kind: "not", expr: not(depth + 1), pos: tok.pos };
    }
    if (tok.t === "(") {
      next();
      const inner = or(depth + 1);
      if (peek().t !== ")") expected(`')' to close the '(' at ${tok.pos}`);
      next();
      return inner;
    }
    return term();
  };
  const term = (): QueryNode => {
    const tok = peek();
    if (tok.t !== "word" || KEYWORDS.has(tok.text.toLowerCase())) return expected("a field");
    next();
    const f = resolveField(tok.text, tok.pos, field);
    const after = peek();
    const op: Op | null = after.t === "op" ? after.op : isKeyword(after, "has") ? "has" : null;
    if (op === null) {
      // A bare flag reads `= true`; any other field needs an operator.
      if (f.kind === "flag") return { kind: "cmp", field: f, op: "=", value: { type: "bool", v: true }, pos: tok.pos };
      return expected(`an operator after '${tok.text}' (${OPERATORS[f.kind].join(" ")})`);
    }
    next();
    const valueTok = peek();
    const connective = ["and", "or", "not", "has"].some((kw) => isKeyword(valueTok, kw));
    if (valueTok.t === "end" || valueTok.t === "(" || valueTok.t === ")" || valueTok.t === "op" || connective)
      throw queryError("QUERY_SYNTAX", field, valueTok.pos, `expected a value after '${op}'`);
    const value = checkTerm(f, tok.text, op, after.pos, valueTok, field);
    next();
    return { kind: "cmp", field: f, op, value, pos: tok.pos };
  };

  if (peek().t === "end") return null;
  const tree = or(0);
  if (peek().t !== "end") expected("'and', 'or' or the end of the query");
  return tree;
}

/** A sort key: any field but tags (config.<path> and flags.<name> included). */
export type SortField = Exclude<FieldRef, { kind: "tags" }>;

/** Parses GET /operations' `sort` (default created_at); QUERY_FIELD naming `field` for one it cannot sort by. */
export function parseSort(sort: string | undefined, field = "query.sort"): SortField {
  const f = resolveField(sort ?? "created_at", 0, field);
  if (f.kind === "tags") throw queryError("QUERY_FIELD", field, 0, "runs cannot be sorted by tags");
  return f;
}

/** The search's parameters of a listing (GET /operations' query, MCP list_operations' arguments): one source. */
export const SearchParams = {
  q: Type.Optional(
    Type.String({
      maxLength: MAX_QUERY_LENGTH,
      description:
        'A search (docs/api.md "Searching runs"), e.g. `tags has "bert" and group = "sweep-7" and config.lr < 1e-3 and not flags.diverging`. ' +
        "Fields: name, status, operation_type, group, tags (has), created_at/started_at/completed_at (quoted dates), best_val_loss, best_epoch, " +
        "epochs_completed, steps_completed, final_loss, final_val_loss, config.<path>, flags.overfitting|plateau|diverging|stalled; operators = != < <= > >= ~ (substring) has; " +
        "and, or, not, parentheses. 400 QUERY_SYNTAX / QUERY_FIELD with the 0-based position of the error.",
    }),
  ),
  sort: Type.Optional(
    Type.String({
      maxLength: 200,
      description:
        "Sort key: any search field but tags, config.<path> included (default created_at). Runs without a value come last.",
    }),
  ),
  order: Type.Optional(
    Type.Union([Type.Literal("asc"), Type.Literal("desc")], { description: "Sort direction (default desc)." }),
  ),
};
