/**
 * What each change of an operation row writes, for both stores: a new operation's columns, a finish, a stop policy, a
 * metadata patch. Each checks the lifecycle where the change needs it (OPERATION_FINISHED) and returns the column values;
 * each store locks its row, and writes and announces them with its own SQL. Pure: the clock is a parameter.
 */
import { canFinish, operationFinished, refinesTermination } from "../operations/lifecycle.ts";
import { placementOf, type Location } from "../operations/ownership.ts";
import { FINISHED, type StopControl, type StopPolicy } from "../schemas/operation.ts";
import { EMPTY_SUMMARY } from "../trends/types.ts";
import { newOperationId } from "./ids.ts";
import { invalid } from "../errors.ts";
import { applyLabels, MAX_TAGS, normalizeTags, type Labels, type LabelsInput } from "../schemas/labels.ts";
import { parseJson, type OperationColumns } from "./rows.ts";
import type { ExecutionPatch, FinishOptions, NewOperation } from "./store.ts";

/** The row a change reads: its status (and failure code, for a revivable failure), decision and placement. */
type Locked = Pick<OperationColumns, "status" | "failure_code" | "control" | "metadata" | "location" | "host"> & {
  /** An ISO string on SQLite, a Date from PostgreSQL. */
  completed_at: string | Date | null;
};

/** A new operation's columns: an id of its type and time, `running` unless asked pending (then no started_at). */
export function newOperationRow(input: NewOperation, now: Date) {
  const status = input.status ?? "running";
  const at = now.toISOString();
  const placement = placementOf(input.metadata ?? {});
  return {
    operation_id: newOperationId(input.operation_type, now),
    operation_type: input.operation_type,
    name: input.name ?? null,
    status,
    created_at: at,
    started_at: status === "running" ? at : null,
    total_epochs_planned: input.total_epochs_planned ?? null,
    total_steps_planned: input.total_steps_planned ?? null,
    metadata: JSON.stringify(input.metadata ?? {}),
    summary: JSON.stringify(EMPTY_SUMMARY),
    config: input.config ? JSON.stringify(input.config) : null,
    stop_policy: input.stop_policy ? JSON.stringify(input.stop_policy) : null,
    alert_rules: input.alert_rules ? JSON.stringify(input.alert_rules) : null,
    location: placement.location,
    host: placement.host,
    executor: input.executor ?? null,
    tags: JSON.stringify(normalizeTags(input.tags ?? [])),
    group_name: input.group ?? null,
  };
}

/**
 * The labels after `patch` over the stored ones (src/schemas/labels.ts applyLabels); VALIDATION_ERROR naming the field
 * when the run would hold more than MAX_TAGS tags.
 */
export function labelsRow(op: Pick<OperationColumns, "tags" | "group_name">, patch: LabelsInput): Labels {
  const next = applyLabels({ tags: JSON.parse(op.tags) as string[], group: op.group_name }, patch);
  if (next === null)
    throw invalid(patch.add_tags ? "body.add_tags" : "body.tags", `a run holds at most ${MAX_TAGS} tags`);
  return next;
}

/** The executor's columns after `patch` over the stored ones (a key left out keeps its value). */
export function executionRow(
  op: Pick<OperationColumns, "external_id" | "pending_reason" | "queue_position">,
  patch: ExecutionPatch,
): Required<ExecutionPatch> {
  const pick = <K extends keyof ExecutionPatch>(k: K) => (k in patch ? (patch[k] ?? null) : op[k]);
  return {
    external_id: pick("external_id"),
    pending_reason: pick("pending_reason"),
    queue_position: pick("queue_position"),
  };
}

/**
 * A finish of `op` at `now` (OPERATION_FINISHED once finished, a revivable failure aside): the columns to set.
 * `result` and `control` keep the stored ones when null; `started_at` is the one to set when the row has none.
 */
export function finishRow(
  op: Locked,
  operationId: string,
  status: "completed" | "failed" | "cancelled",
  opts: FinishOptions,
  now: Date,
) {
  // A scheduler's cause refining a client's `terminated` goodbye keeps the moment the run ended.
  const refines = refinesTermination(op, status, opts.failure_code);
  if (!refines && !canFinish(op)) throw operationFinished(operationId, op.status, parseJson<StopControl>(op.control));
  const at = now.toISOString();
  return {
    status,
    completed_at: refines && op.completed_at ? new Date(op.completed_at).toISOString() : at,
    error_message: opts.error_message ?? null,
    failure_code: status === "failed" ? (opts.failure_code ?? null) : null,
    result: opts.result ? JSON.stringify(opts.result) : null,
    started_at: at,
    control: opts.control ? JSON.stringify(opts.control) : null,
  };
}

/** The stop_policy column for `policy` (null clears it); OPERATION_FINISHED on a finished operation. */
export function stopPolicyColumn(op: Locked, operationId: string, policy: StopPolicy | null): string | null {
  if (FINISHED.has(op.status)) throw operationFinished(operationId, op.status, parseJson<StopControl>(op.control));
  return policy ? JSON.stringify(policy) : null;
}

/**
 * The metadata after `patch`, merged here (not with jsonb ||) so keys keep the order they were written in, and the
 * placement columns it sets (src/operations/ownership.ts).
 */
export function metadataRow(
  op: Locked,
  patch: Record<string, unknown>,
): { metadata: string; location: Location | null; host: string | null } {
  const merged = { ...(JSON.parse(op.metadata) as Record<string, unknown>), ...patch };
  const p = placementOf(patch, op);
  return { metadata: JSON.stringify(merged), location: p.location, host: p.host };
}
