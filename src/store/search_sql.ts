/**
 * A parsed search (src/schemas/search.ts) as SQL for each store: a WHERE clause over `operations o` and an ORDER BY,
 * with every value a bound parameter. The SQL text is made only of fixed fragments chosen by the tree's shape: column
 * names come from the field list below, never from the query, and a configuration path is bound like a value. Pure:
 * each store runs the statement (src/store/sqlite.ts, src/store/postgres.ts).
 *
 * Semantics, the same on both stores: a comparison with a missing value (a NULL column, a configuration without the
 * key, a key of another type) is false, and `not` negates that (`not config.lr < 1` matches a run without lr).
 * Numbers compare numerically, strings by code point; `~` is a case-insensitive substring.
 */
import type { FieldRef, Op, QueryNode, SearchField, SortField, Value } from "../schemas/search.ts";
import { FLAG_BITS } from "./search_columns.ts";
import type { ListFilter } from "./store.ts";

export type Dialect = "sqlite" | "postgres";

/**
 * A compiled search: `where` (always a condition, TRUE when none) and `orderBy`, with their parameters in order: the
 * first `whereParams` are the WHERE's alone (a count binds only those), the rest the ORDER BY's.
 */
export interface CompiledSearch {
  /** What the count reads: `operations o WHERE …`, or for a search of one side-table term, that table's range. */
  countFrom: string;
  /** The search is one side-table term (a tag, a configuration value): a few matches are best looked up (`lookup`). */
  lone: boolean;
  where: string;
  orderBy: string;
  params: (string | number)[];
  whereParams: number;
}

/** The column of each plain field. */
const COLUMNS: Record<SearchField, string> = {
  name: "o.name",
  status: "o.status",
  operation_type: "o.operation_type",
  group: "o.group_name",
  tags: "o.tags",
  created_at: "o.created_at",
  started_at: "o.started_at",
  completed_at: "o.completed_at",
  best_val_loss: "o.best_val_loss",
  best_epoch: "o.best_epoch",
  epochs_completed: "o.epochs_completed",
  steps_completed: "o.steps_completed",
  final_loss: "o.final_loss",
  final_val_loss: "o.final_val_loss",
};

const SQL_OPS: Record<Exclude<Op, "~" | "has">, string> = {
  "=": "=",
  "!=": "<>",
  "<": "<",
  "<=": "<=",
  ">": ">",
  ">=": ">=",
};

class Builder {
  readonly params: (string | number)[] = [];
  /**
   * `lists`: configuration comparisons as lists of the runs they pick (membership), not a probe per run: a count over
   * every run of `config.optimizer = "sgd" and config.model.width >= 512` (100,000 runs) took 41 ms so, 86 ms probing.
   */
  constructor(
    readonly dialect: Dialect,
    readonly lists = false,
  ) {}

  /** A placeholder for `v`, cast on PostgreSQL so the value's type never depends on what it is compared with. */
  /**
   * `o.id IN (<ids from a side table>)`. On SQLite as a membership test (`+o.id` keeps the planner from looking each id
   * up in the ~1.7 KB-wide table, which cost 4 µs an id): the scan of a covering index with a Bloom filter counted
   * `tags has "bert"` over 20,000 runs (2,000 matches) in 1.8 ms, 25 ms by lookups, 8 ms by a probe per run.
   */
  idIn(subquery: string): string {
    return `${this.dialect === "sqlite" ? "+o.id" : "o.id"} IN (${subquery})`;
  }

  bind(v: string | number, type: "text" | "float8" | "timestamptz" = typeof v === "number" ? "float8" : "text") {
    this.params.push(v);
    return this.dialect === "sqlite" ? `?${this.params.length}` : `$${this.params.length}::${type}`;
  }

  /** Text compared by code point on both stores (PostgreSQL's default collation may be a locale's). */
  text(expr: string): string {
    return this.dialect === "sqlite" ? expr : `${expr} COLLATE "C"`;
  }

  /** `expr` contains the lower-cased `needle`. */
  contains(expr: string, needle: string): string {
    if (this.dialect === "postgres") return `strpos(lower(${expr}), ${this.bind(needle.toLowerCase())}) > 0`;
    // SQLite's LIKE folds ASCII case as its lower() does, and scanned 100,000 names 3.5× faster than instr(lower()).
    return `${expr} LIKE ${this.bind(`%${needle.replace(/[\\%_]/g, "\\$&")}%`)} ESCAPE '\\'`;
  }
}

function condition(b: Builder, n: QueryNode): string {
  switch (n.kind) {
    case "and":
      return `(${condition(b, n.left)} AND ${condition(b, n.right)})`;
    case "or":
      return `(${condition(b, n.left)} OR ${condition(b, n.right)})`;
    case "not":
      // Two-valued: a comparison that is unknown (NULL) is false, so its negation is true.
      return `(NOT coalesce(${condition(b, n.expr)}, FALSE))`;
    case "cmp":
      return comparison(b, n.field, n.op, n.value);
  }
}

function comparison(b: Builder, f: FieldRef, op: Op, value: Value): string {
  if (f.kind === "flag") {
    const set = `(o.flags & ${FLAG_BITS[f.name]}) <> 0`;
    const want = value.type === "bool" && value.v === (op === "=");
    return want ? set : `(o.flags & ${FLAG_BITS[f.name]}) = 0`;
  }
  if (f.kind === "config") return configComparison(b, f.path, op, value);
  if (f.kind === "tags")
    return b.idIn(`SELECT op FROM operation_tags WHERE tag = ${b.bind((value as { v: string }).v)}`);
  // status and operation_type on SQLite as a test on the covering index's scan, not a probe of their own indexes:
  // `status = completed` picked 16,000 of 20,000 runs through operations_status and read each one's wide row (100 ms).
  const col =
    b.dialect === "sqlite" && (f.name === "status" || f.name === "operation_type")
      ? `+${COLUMNS[f.name]}`
      : COLUMNS[f.name];
  if (value.type === "null") return `${col} ${op === "=" ? "IS NULL" : "IS NOT NULL"}`;
  if (op === "~") return b.contains(col, (value as { v: string }).v);
  const sqlOp = SQL_OPS[op as keyof typeof SQL_OPS];
  switch (value.type) {
    case "number":
      return `${col} ${sqlOp} ${b.bind(value.v)}`;
    case "date":
      return `${col} ${sqlOp} ${b.bind(value.v, "timestamptz")}`;
    case "string":
      return `${b.text(col)} ${sqlOp} ${b.bind(value.v)}`;
    default:
      throw new Error(`search: no comparison of ${f.name} with a ${value.type}`);
  }
}

/**
 * A comparison of a configuration leaf (table operation_config: kind, num for numbers, str for strings): a condition
 * on the run's leaf `c` of that path, which the run matches by having such a leaf, or (`absent`) by having none.
 */
function configLeaf(b: Builder, path: string, op: Op, value: Value): { cond: string; absent: boolean } {
  const on = (cond: string) => `c.path = ${b.bind(path)} AND ${cond}`;
  if (value.type === "null") return { cond: on("c.kind <> 'null'"), absent: op === "=" };
  if (value.type === "bool")
    return { cond: on(`c.kind = '${value.v === (op === "=") ? "true" : "false"}'`), absent: false };
  if (op === "~") return { cond: on(b.contains("c.str", (value as { v: string }).v)), absent: false };
  const sqlOp = SQL_OPS[op as keyof typeof SQL_OPS];
  if (value.type === "number") return { cond: on(`c.num ${sqlOp} ${b.bind(value.v)}`), absent: false };
  return { cond: on(`${b.text("c.str")} ${sqlOp} ${b.bind((value as { v: string }).v)}`), absent: false };
}

/**
 * A configuration comparison as a probe of the run's own leaf (key (op, path)) per candidate run, not a list of every
 * run with the key: a query usually narrows first (a group, a tag), and `group = … and config.lr < …` over 20,000 runs
 * took 0.3 ms so, 9.7 ms with the list (built whole for 50 candidates).
 */
function configComparison(b: Builder, path: string, op: Op, value: Value): string {
  const { cond, absent } = configLeaf(b, path, op, value);
  const picks = b.lists
    ? b.idIn(`SELECT c.op FROM operation_config c WHERE ${cond}`)
    : `EXISTS (SELECT 1 FROM operation_config c WHERE c.op = o.id AND ${cond})`;
  return `${absent ? "NOT " : ""}${picks}`;
}

/** Whether one of the search's top-level `and` terms picks a few runs through an index: a group or a name. */
function anchored(n: QueryNode): boolean {
  if (n.kind === "and") return anchored(n.left) || anchored(n.right);
  return (
    n.kind === "cmp" &&
    n.op === "=" &&
    n.value.type === "string" &&
    n.field.kind === "text" &&
    (n.field.name === "group" || n.field.name === "name")
  );
}

/**
 * The count of a search that is one comparison of a configuration value or one tag, read from its side table alone
 * (a run has one leaf per path and one row per tag, and none without its operation): an index range, where counting
 * `config.lr < 1e-3` through the runs probed 20,000 of them for 10,000 matches (23 ms). Null for any other search.
 * Binds the same parameters, in the same order, as the WHERE it stands for; `ids` selects the runs it picks.
 */
function loneTerm(b: Builder, n: QueryNode): { count: string; ids: string } | null {
  if (n.kind !== "cmp") return null;
  if (n.field.kind === "tags") {
    const from = `operation_tags WHERE tag = ${b.bind((n.value as { v: string }).v)}`;
    return { count: from, ids: `SELECT op FROM ${from}` };
  }
  if (n.field.kind !== "config") return null;
  const { cond, absent } = configLeaf(b, n.field.path, n.op, n.value);
  return absent
    ? null
    : { count: `operation_config c WHERE ${cond}`, ids: `SELECT c.op FROM operation_config c WHERE ${cond}` };
}

/** The ORDER BY of a sort key: missing values last either way, then the row id the same way (a stable page). */
function orderBy(b: Builder, f: SortField, order: "asc" | "desc"): string {
  const dir = order === "asc" ? "ASC" : "DESC";
  const by = (expr: string) => `${expr} ${dir} NULLS LAST`;
  let keys: string[];
  if (f.kind === "flag") keys = [by(`(o.flags & ${FLAG_BITS[f.name]})`)];
  else if (f.kind === "config") {
    const p = b.bind(f.path);
    const leaf = (col: string) => `(SELECT ${col} FROM operation_config c WHERE c.op = o.id AND c.path = ${p})`;
    // Numbers before strings, each in its own order; other kinds last.
    keys = [by(leaf("num")), by(b.text(leaf("str")))];
  } else if (f.kind === "text" || f.kind === "status") keys = [by(b.text(COLUMNS[f.name]))];
  else keys = [by(COLUMNS[f.name])];
  return [...keys, `o.id ${dir}`].join(", ");
}

/**
 * The WHERE and ORDER BY of a listing for `dialect`: its search and its status and type filters, all of them (TRUE
 * when none), in its order (default created_at, newest first).
 */
export function compileSearch(
  dialect: Dialect,
  f: Omit<ListFilter, "limit" | "offset">,
  /**
   * A lone side-table term as the ids it picks, each looked up (a tag on 14 runs of 100,000: a scan of every run's
   * index entry took 6–45 ms, the lookups a few µs); for a search whose count said it picks few runs (default false).
   */
  lookup = false,
): CompiledSearch {
  const b = new Builder(dialect);
  // Built by a builder of its own that binds what the WHERE binds first, in its order: the count takes its parameters.
  const lone = f.query && !f.status && !f.operation_type ? loneTerm(new Builder(dialect), f.query) : null;
  const where = lone && lookup ? `o.id IN (${loneTerm(b, f.query!)!.ids})` : whereOf(b, f);
  const whereParams = b.params.length;
  // The page stops at its limit, and probes only the runs it reaches; a count reaches every run, which a few lists
  // serve better unless a group or a name narrows it first (SQLite; PostgreSQL's planner makes that choice itself).
  const lists = dialect === "sqlite" && f.query && !anchored(f.query) ? whereOf(new Builder(dialect, true), f) : where;
  const sort: SortField = f.sort ?? { kind: "date", name: "created_at" };
  return {
    countFrom: lone?.count ?? `operations o WHERE ${lists}`,
    lone: lone !== null,
    where,
    orderBy: orderBy(b, sort, f.order ?? "desc"),
    params: b.params,
    whereParams,
  };
}

/** The search and the status and type filters as one condition over `o`, TRUE when none. */
function whereOf(b: Builder, f: Omit<ListFilter, "limit" | "offset">): string {
  const parts: string[] = [];
  if (f.query) parts.push(condition(b, f.query));
  if (f.status) parts.push(comparison(b, { kind: "status", name: "status" }, "=", { type: "string", v: f.status }));
  if (f.operation_type)
    parts.push(comparison(b, { kind: "text", name: "operation_type" }, "=", { type: "string", v: f.operation_type }));
  return parts.length === 0 ? "TRUE" : parts.join(" AND ");
}

/**
 * The statement of one page (`limit` and `offset` are the placeholders of their parameters, after the search's): the
 * page's ids picked and sorted first, narrow rows only, then their whole rows read and sorted again. Sorting whole
 * rows made `config.lr < 1e-3` over 2,000 runs (a thousand matches) cost 16 ms at p50; sorting ids, a fraction.
 */
export const pageSql = (c: CompiledSearch, limit: string, offset: string): string =>
  `SELECT o.* FROM operations o WHERE o.id IN (
     SELECT o.id FROM operations o WHERE ${c.where} ORDER BY ${c.orderBy} LIMIT ${limit} OFFSET ${offset}
   ) ORDER BY ${c.orderBy}`;
