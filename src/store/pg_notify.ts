/**
 * The NOTIFY change codec of the PostgreSQL store: how a change (src/store/store.ts StoreChange) travels to every
 * replica as a notification payload on the schema's channel, and back. Short keys: a payload holds at most 8,000 bytes.
 */
import { encodeEpoch, type EpochRecord, type WireEpoch } from "../schemas/epoch.ts";
import { encodeStep, type StepRecord, type WireStep } from "../schemas/step.ts";
import { encodeSystemSample, type SystemRecord, type SystemSample } from "../schemas/system.ts";
import type { TrendSummary } from "../trends/types.ts";
import type { BatchProgress, StoreChange, Versions } from "./store.ts";

/** The largest NOTIFY payload PostgreSQL takes is 8,000 bytes; room for the JSON around the epochs. */
const INLINE_BYTES = 7_000;

/** An epochs notification: the epochs themselves when the payload stays small, else the range to read. */
export function epochsNotice(
  operationId: string,
  version: number,
  trends: TrendSummary,
  epochs: readonly EpochRecord[],
  minEpoch: number,
): string {
  let max = -1;
  for (const e of epochs) if (e.epoch > max) max = e.epoch;
  const head = { k: "e", o: operationId, v: version, t: trends, r: [minEpoch, max] };
  // ~150 bytes an epoch of the standard fields: only a batch of a few dozen can go whole.
  if (epochs.length <= 40) {
    const inline = JSON.stringify({ ...head, w: epochs.map(encodeEpoch) });
    if (inline.length <= INLINE_BYTES) return inline;
  }
  return JSON.stringify(head);
}

/** A steps notification, as an epochs one: the steps themselves when the payload stays small, else the range to read. */
export function stepsNotice(
  operationId: string,
  version: number,
  steps: readonly StepRecord[],
  minStep: number,
): string {
  let max = -1;
  for (const s of steps) if (s.step > max) max = s.step;
  const head = { k: "st", o: operationId, v: version, r: [minStep, max] };
  if (steps.length <= 40) {
    const inline = JSON.stringify({ ...head, w: steps.map(encodeStep) });
    if (inline.length <= INLINE_BYTES) return inline;
  }
  return JSON.stringify(head);
}

/** A system write, as an epochs one: the samples themselves when the payload stays small, else the ms range to read. */
export function systemNotice(operationId: string, rows: readonly SystemRecord[]): string {
  let min = Number.MAX_SAFE_INTEGER;
  let max = -1;
  for (const r of rows) (min = Math.min(min, r.ts)), (max = Math.max(max, r.ts));
  const head = { k: "sy", o: operationId, r: [min, max] };
  if (rows.length <= 8) {
    const inline = JSON.stringify({ ...head, w: rows.map(encodeSystemSample) });
    if (inline.length <= INLINE_BYTES) return inline;
  }
  return JSON.stringify(head);
}

/** The operation's status changed (read it); `finished` when it is over, after the writes of `after` (a finish's). */
export const statusNotice = (operationId: string, finished: boolean, after?: Versions): string =>
  JSON.stringify(
    after
      ? { k: "s", o: operationId, f: finished ? 1 : 0, e: after.epochs, s: after.steps }
      : { k: "s", o: operationId, f: finished ? 1 : 0 },
  );

/** A change lists show that is no status change (a heartbeat's liveness, a late result). */
export const changedNotice = (operationId: string): string => JSON.stringify({ k: "c", o: operationId });

/** The operation was discarded. */
export const removedNotice = (operationId: string): string => JSON.stringify({ k: "r", o: operationId });

/** A training's batch progress, kept in memory by every replica. */
export const progressNotice = (operationId: string, progress: BatchProgress | null): string =>
  JSON.stringify({ k: "p", o: operationId, p: progress });

/** An alert was recorded (read it by its id). */
export const alertNotice = (operationId: string, alertId: string): string =>
  JSON.stringify({ k: "a", o: operationId, i: alertId });

/** A payload back as the change it tells. */
export function decodeChange(payload: string): StoreChange {
  const m = JSON.parse(payload) as {
    k: string;
    o: string;
    v: number;
    t: TrendSummary;
    r: [number, number];
    w?: WireEpoch[] & WireStep[] & SystemSample[];
    f: number;
    p: BatchProgress | null;
    i: string;
    e?: number;
    s?: number;
  };
  if (m.k === "e")
    return { kind: "epochs", operation_id: m.o, version: m.v, trends: m.t, epochs: m.w ?? null, range: m.r };
  if (m.k === "st") return { kind: "steps", operation_id: m.o, version: m.v, steps: m.w ?? null, range: m.r };
  if (m.k === "sy") return { kind: "system", operation_id: m.o, samples: m.w ?? null, range: m.r };
  if (m.k === "p") return { kind: "progress", operation_id: m.o, progress: m.p };
  if (m.k === "c") return { kind: "changed", operation_id: m.o };
  if (m.k === "r") return { kind: "removed", operation_id: m.o };
  if (m.k === "a") return { kind: "alert", operation_id: m.o, alert_id: m.i };
  const status: StoreChange = { kind: "status", operation_id: m.o, finished: m.f === 1 };
  return m.e === undefined ? status : { ...status, after: { epochs: m.e, steps: m.s ?? 0 } };
}
