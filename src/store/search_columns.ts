/**
 * What a search reads without parsing a row's JSON: the summary figures and flags as columns, kept by every epoch write
 * in its own transaction (src/store/write_epochs.ts), and a run's configuration as one row per leaf value (table
 * operation_config), written with the operation. Pure: each store writes these values with its own SQL, and
 * src/store/search_sql.ts compiles a query over them.
 */
import { CONFIG_SEGMENT, MAX_CONFIG_DEPTH, type SearchFlagName } from "../schemas/search.ts";
import type { EpochPoint, TrendSummary } from "../trends/types.ts";

/**
 * The flags column: one bit per flag a query names (`flags.<name>`, src/schemas/search.ts SEARCH_FLAGS). The bits are
 * stored: written out, never derived from a list's order.
 */
export const FLAG_BITS: Readonly<Record<SearchFlagName, number>> = {
  overfitting: 1,
  plateau: 2,
  diverging: 4,
  stalled: 8,
};

/** The operation row's search columns after a write. */
export interface SummaryColumns {
  best_val_loss: number | null;
  best_epoch: number | null;
  epochs_completed: number;
  /** train_loss / val_loss of the latest stored epoch; null when absent or not finite (NaN, ±Infinity). */
  final_loss: number | null;
  final_val_loss: number | null;
  flags: number;
}

const finite = (v: number | null | undefined): number | null =>
  typeof v === "number" && Number.isFinite(v) ? v : null;

/** The search columns of a summary, with `last` the latest stored epoch's losses (null before any epoch). */
export function summaryColumns(s: TrendSummary, last: EpochPoint | null): SummaryColumns {
  return {
    best_val_loss: finite(s.best_val_loss),
    best_epoch: s.best_epoch,
    epochs_completed: s.total_epochs_completed,
    final_loss: finite(last?.train_loss),
    final_val_loss: finite(last?.val_loss),
    flags:
      (s.is_overfitting ? FLAG_BITS.overfitting : 0) |
      (s.is_plateaued ? FLAG_BITS.plateau : 0) |
      (s.is_diverging ? FLAG_BITS.diverging : 0) |
      (s.is_stalled ? FLAG_BITS.stalled : 0),
  };
}

/** A leaf of a run's configuration as table operation_config keeps it: booleans as kinds, numbers and strings by value. */
export interface ConfigLeaf {
  /** Dotted path of object keys, e.g. "model.width". */
  path: string;
  kind: "number" | "string" | "true" | "false" | "null" | "array";
  num: number | null;
  str: string | null;
}

/** Leaves kept per run: a configuration past it is stored whole but only its first leaves are searchable. */
export const MAX_CONFIG_LEAVES = 1000;

/**
 * The searchable leaves of `config`, depth first in key order: numbers (finite), strings, booleans, null and arrays
 * (an array matches only `!= null` / `= null`), at most MAX_CONFIG_LEAVES, objects followed MAX_CONFIG_DEPTH deep, keys
 * outside [A-Za-z0-9_-] skipped.
 */
export function configLeaves(config: Record<string, unknown> | null | undefined): ConfigLeaf[] {
  const out: ConfigLeaf[] = [];
  const walk = (obj: Record<string, unknown>, prefix: string, depth: number) => {
    for (const [k, v] of Object.entries(obj)) {
      if (out.length >= MAX_CONFIG_LEAVES) return;
      if (!CONFIG_SEGMENT.test(k)) continue;
      const path = prefix + k;
      if (typeof v === "number") {
        if (Number.isFinite(v)) out.push({ path, kind: "number", num: v, str: null });
      } else if (typeof v === "string") out.push({ path, kind: "string", num: null, str: v });
      else if (typeof v === "boolean") out.push({ path, kind: v ? "true" : "false", num: null, str: null });
      else if (v === null) out.push({ path, kind: "null", num: null, str: null });
      else if (Array.isArray(v)) out.push({ path, kind: "array", num: null, str: null });
      else if (typeof v === "object" && depth < MAX_CONFIG_DEPTH)
        walk(v as Record<string, unknown>, `${path}.`, depth + 1);
    }
  };
  if (config) walk(config, "", 1);
  return out;
}
