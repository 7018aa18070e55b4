// Non-finite loss rule (step runs): NaN or ±Infinity in train_loss (or in an evaluation's val_loss) is divergence at the
// step it appears. A run that reported nothing but non-finite losses diverged; it is not short of data.

import { encodeMetric, type WireMetric } from "./wire.ts";
import type { StepPoint } from "./step_types.ts";

export interface NonFiniteState {
  /** The first non-finite loss: its step, field and value (wire form: JSON has no NaN). */
  first: { step: number; field: "train_loss" | "val_loss"; value: WireMetric; before_step: number | null } | null;
  /** The last step with a finite train_loss. */
  last_finite: number | null;
  /** Finite train_loss values seen. */
  finite: number;
  /** Non-finite losses seen. */
  non_finite: number;
}

export const emptyNonFiniteState = (): NonFiniteState => ({ first: null, last_finite: null, finite: 0, non_finite: 0 });

/** Advances the rule over `rows` (ascending, each step once). */
export function advanceNonFinite(prev: NonFiniteState, rows: readonly StepPoint[]): NonFiniteState {
  const s = { ...prev };
  for (const row of rows) {
    const before = s.last_finite;
    for (const field of ["train_loss", "val_loss"] as const) {
      const v = row[field];
      if (typeof v !== "number") continue;
      if (Number.isFinite(v)) {
        if (field === "train_loss") s.finite++, (s.last_finite = row.step);
        continue;
      }
      s.non_finite++;
      if (s.first === null) {
        s.first = { step: row.step, field, value: encodeMetric(v)!, before_step: before };
      }
    }
  }
  return s;
}

/** Divergence at the first non-finite loss (null when none); `only_non_finite` when no train_loss was ever finite. */
export function nonFiniteVerdict(s: NonFiniteState): {
  diverged: NonFiniteState["first"];
  only_non_finite: boolean;
} {
  return { diverged: s.first, only_non_finite: s.first !== null && s.finite === 0 };
}
