// What the sweep view shows of a group's runs, as plain functions over list items (no DOM, no requests): each run's
// configuration flattened into dotted columns, its outcome, its verdict (diverged, pruned, overfit, stalled…), how a
// column sorts, and the axes of the parallel-coordinates chart (linear, log or ordered categories) with the colour of a
// best value. Everything comes from the list items: their config, trends summary, flags and result.

/** Nesting followed into a configuration (deeper objects show as one JSON cell). */
const MAX_DEPTH = 8;

/**
 * A configuration's leaves as [dotted path, value]: numbers, strings, booleans and null as they are, an array as its
 * JSON text, objects followed into (`{ model: { width: 64 } }` → ["model.width", 64]), depth first in key order.
 */
export function flattenConfig(config) {
  const out = [];
  const walk = (obj, prefix, depth) => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix + k;
      if (v !== null && typeof v === "object" && !Array.isArray(v) && depth < MAX_DEPTH) walk(v, `${path}.`, depth + 1);
      else out.push([path, v !== null && typeof v === "object" ? JSON.stringify(v) : v]);
    }
  };
  if (config && typeof config === "object") walk(config, "", 1);
  return out;
}

/**
 * Per list item, what the view reads of it many times (its flattened configuration, its verdicts), computed once: a live
 * change brings a new item, so a new entry, and a left one is collected with its item.
 */
const derived = new WeakMap();
function derivedOf(op) {
  let d = derived.get(op);
  if (!d) {
    d = { config: new Map(flattenConfig(op.config)), verdicts: judge(op) };
    derived.set(op, d);
  }
  return d;
}

/** A run's configuration as a Map from dotted path to value (flattenConfig). */
export const configOf = (op) => derivedOf(op).config;

/** The union of the runs' configuration paths, in the order they first appear (runs in the order given). */
export function configColumns(ops) {
  const seen = new Set();
  for (const op of ops) for (const path of configOf(op).keys()) seen.add(path);
  return [...seen];
}

/**
 * The verdicts a run can carry, most telling first: the key, the badge class, the chart's dash pattern (SVG
 * stroke-dasharray, "" for solid) and how it is read off a run (its flags: the trends summary's and, for a pruned
 * run, those its pruner recorded in the result).
 */
export const VERDICTS = [
  { key: "diverged", cls: "bad", dash: "7 4", test: (_op, flags) => flags.has("diverging") },
  { key: "pruned", cls: "info", dash: "4 4", test: (op) => op.result?.pruned === true },
  { key: "overfit", cls: "warn", dash: "10 3 2 3", test: (_op, flags) => flags.has("overfitting") },
  { key: "stalled", cls: "warn", dash: "1 3", test: (_op, flags) => flags.has("stalled") },
  { key: "plateaued", cls: "info", dash: "", test: (_op, flags) => flags.has("plateau") },
  { key: "stopped early", cls: "info", dash: "", test: (op) => op.result?.stopped_early === true },
  { key: "failed", cls: "bad", dash: "4 2", test: (op) => op.status === "failed" },
];

const TREND_FLAGS = [
  ["overfitting", "is_overfitting"],
  ["plateau", "is_plateaued"],
  ["diverging", "is_diverging"],
  ["stalled", "is_stalled"],
];

/** A run's raised flags: its trends summary's, and those a pruner recorded in its result (`result.flags`). */
export function flagsOf(op) {
  const flags = new Set(TREND_FLAGS.filter(([, key]) => op.trends?.[key]).map(([name]) => name));
  if (Array.isArray(op.result?.flags)) for (const f of op.result.flags) if (typeof f === "string") flags.add(f);
  return flags;
}

/**
 * A run's verdicts, most telling first: `{ key, cls, dash, why }`, `why` the reason a person reads (a pruned run's
 * "pruned by trainwatch: …", as its pruner wrote it in the result). Empty for a run the judgement has nothing against.
 */
export const verdictsOf = (op) => derivedOf(op).verdicts;

function judge(op) {
  const flags = flagsOf(op);
  return VERDICTS.filter((v) => v.test(op, flags)).map(({ key, cls, dash }) => ({
    key,
    cls,
    dash,
    why: whyOf(key, op),
  }));
}

function whyOf(key, op) {
  const r = op.result ?? {};
  if (key === "pruned") {
    const by = r.pruned_by ?? "its pruner";
    if (typeof r.reason !== "string") return `pruned by ${by}`;
    return r.reason.includes(by) ? r.reason : `pruned by ${by}: ${r.reason}`;
  }
  if (key === "stopped early") return r.reason ?? "stopped early";
  if (key === "failed") return op.error_message ?? op.failure_code ?? "failed";
  return key;
}

/** A number from the wire, or null ("NaN" and ±Infinity are not a value a run can be ranked by). */
const finite = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** The outcome columns, in table order: the key a column sorts by, its heading, and its value of a run. */
export const OUTCOMES = [
  { key: "status", label: "status", value: (op) => op.status },
  { key: "best_val_loss", label: "best", value: (op) => finite(op.trends?.best_val_loss) },
  { key: "best_epoch", label: "best epoch", value: (op) => op.trends?.best_epoch ?? null },
  { key: "epochs_completed", label: "epochs", value: (op) => op.progress?.epochs_completed ?? null },
  // The latest epoch's training loss: the server's search column, on the item as `final_loss`.
  { key: "final_loss", label: "final loss", value: (op) => finite(op.final_loss) },
  { key: "verdict", label: "verdict", value: (op) => verdictsOf(op)[0]?.key ?? null },
];

/** A run's value in column `key`: "name", an outcome's key, or "config.<path>". */
export function cellOf(op, key) {
  if (key === "name") return op.name ?? op.operation_id;
  if (key.startsWith("config.")) return configOf(op).get(key.slice("config.".length)) ?? null;
  return OUTCOMES.find((o) => o.key === key)?.value(op) ?? null;
}

/**
 * Orders two cell values: numbers numerically, everything else as text (numbers before text), booleans as text;
 * a missing value (null, undefined) after every value whatever the order, as the server's sort puts it.
 */
export function compareCells(a, b, order = "asc") {
  const missingA = a === null || a === undefined;
  const missingB = b === null || b === undefined;
  if (missingA || missingB) return missingA === missingB ? 0 : missingA ? 1 : -1;
  let c;
  if (typeof a === "number" && typeof b === "number") c = a - b;
  else if (typeof a === "number") c = -1;
  else if (typeof b === "number") c = 1;
  else c = String(a).localeCompare(String(b), "en", { numeric: true });
  return order === "desc" ? -c : c;
}

/** The runs sorted by column `key` in `order` (stable: runs with equal values keep their order). */
export const sortRuns = (ops, key, order) =>
  ops
    .map((op, i) => [op, cellOf(op, key), i])
    .sort((x, y) => compareCells(x[1], y[1], order) || x[2] - y[2])
    .map(([op]) => op);

/** Paths whose numbers are read on a log scale whenever they are all positive: learning rates, decays, epsilons. */
const LOG_NAMES = /(^|[._-])(lr|learning[_-]?rate|weight[_-]?decay|wd|eps|epsilon)$/i;
/** Positive numbers spanning at least this ratio are read on a log scale whatever their name. */
const LOG_SPAN = 100;

/**
 * The axis of a column over `values` (one per run, null when a run lacks it): `log` for positive numbers named like a
 * learning rate (or spanning LOG_SPAN), `linear` for other numbers, `category` otherwise, its categories ordered
 * (numbers numerically, then text); `missing` counts the runs without a value.
 */
export function axisOf(key, values) {
  const present = values.filter((v) => v !== null && v !== undefined);
  const missing = values.length - present.length;
  const numbers = present.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (present.length > 0 && numbers.length === present.length) {
    const min = Math.min(...numbers);
    const max = Math.max(...numbers);
    const log = min > 0 && (LOG_NAMES.test(key) || max / min >= LOG_SPAN);
    return { key, kind: log ? "log" : "linear", min, max, missing };
  }
  const categories = [...new Set(present.map(String))].sort((a, b) =>
    compareCells(Number.isNaN(Number(a)) ? a : Number(a), Number.isNaN(Number(b)) ? b : Number(b)),
  );
  return { key, kind: "category", categories, missing };
}

/** Where `v` lies on `axis`, 0 (bottom) … 1 (top); null when the run has no value there. */
export function positionOn(axis, v) {
  if (v === null || v === undefined) return null;
  if (axis.kind === "category") {
    const i = axis.categories.indexOf(String(v));
    if (i < 0) return null;
    return axis.categories.length === 1 ? 0.5 : i / (axis.categories.length - 1);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) return null;
  if (axis.max === axis.min) return 0.5;
  if (axis.kind === "log") return (Math.log(v) - Math.log(axis.min)) / (Math.log(axis.max) - Math.log(axis.min));
  return (v - axis.min) / (axis.max - axis.min);
}

/**
 * The values to label on a numeric axis: for a log axis the powers of ten inside it (with its ends when fewer than
 * two fit), for a linear one about five round steps.
 */
export function ticksOf(axis) {
  if (axis.kind === "category") return [...axis.categories];
  if (axis.max === axis.min) return [axis.min];
  if (axis.kind === "log") {
    const out = [];
    for (let p = Math.ceil(Math.log10(axis.min) - 1e-9); p <= Math.floor(Math.log10(axis.max) + 1e-9); p++)
      out.push(10 ** p);
    return out.length >= 2 ? out : [axis.min, ...out.filter((v) => v !== axis.min && v !== axis.max), axis.max];
  }
  const raw = (axis.max - axis.min) / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out = [];
  for (let v = Math.ceil(axis.min / step) * step; v <= axis.max + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/** The colour ramp of a best value: best (0) deep blue, through teal, to worst (1) amber. */
const RAMP = [
  [30, 58, 138],
  [13, 148, 136],
  [245, 158, 11],
];

/** The colour at `t` (0 … 1) of the ramp; grey for a run without a best value (null). */
export function rampColour(t) {
  if (t === null || t === undefined) return "#9ca3af";
  const x = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const c = RAMP[i].map((a, j) => Math.round(a + (RAMP[i + 1][j] - a) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}
