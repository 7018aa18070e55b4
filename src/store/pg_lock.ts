/**
 * The first I/O step of a PostgreSQL write (epochs or steps): the operation's row locked FOR UPDATE, with the stored
 * chart blocks the batch touches, so the epoch and the step writers take their lock the same way.
 */
import type { TransactionSQL } from "bun";
import { notFound } from "../errors.ts";
import type { SpanSummary } from "../trends/downsample.ts";

/** Locks `operationId`'s row and reads the `touched` blocks of `table`; OPERATION_NOT_FOUND when there is no row. */
export async function lockWithBlocks<R>(
  tx: TransactionSQL,
  operationId: string,
  touched: readonly number[],
  table: "epoch_blocks" | "step_blocks",
): Promise<{ op: R; blocks: Map<number, SpanSummary> }> {
  // Pipelined: the block read runs once the lock is granted, so it sees the last writer's blocks.
  const [ops, stored] = await Promise.all([
    tx<R[]>`SELECT * FROM operations WHERE operation_id = ${operationId} FOR UPDATE`,
    tx<{ block: number; summary: string }[]>`
      SELECT block, summary FROM ${tx.unsafe(table)}
      WHERE op = (SELECT id FROM operations WHERE operation_id = ${operationId}) AND block = ANY(${tx.array([...touched], "INT4")})`,
  ]);
  const op = ops[0];
  if (!op) throw notFound(operationId);
  return { op, blocks: new Map(stored.map((b) => [b.block, JSON.parse(b.summary) as SpanSummary])) };
}
