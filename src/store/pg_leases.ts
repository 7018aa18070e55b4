/**
 * Leases on local trainings, for replicas sharing a PostgreSQL database: each replica owns the operations it created
 * with `owned` (columns owner, lease_until) and extends its lease on them a few times per lease; an unfinished
 * operation whose lease ran out belongs to a replica that was stopped, killed or cut off (src/operations/replicas.ts).
 */
import type { SQL } from "bun";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/** This process as one replica: its id (the owner of the operations it creates with `owned`) and its lease length. */
export interface ReplicaLease {
  id: string;
  leaseMs: number;
}

/** A replica id for a process that names none: unique, and readable in an operation's error message. */
export const randomReplicaId = () => `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;

/** When a lease taken or renewed at `nowMs` runs out. */
export const leaseUntil = (replica: ReplicaLease, nowMs: number) => nowMs + replica.leaseMs;

/** Extends `replica`'s lease on the unfinished operations it owns; returns how many. */
export async function renewLeases(sql: SQL, replica: ReplicaLease, nowMs: number): Promise<number> {
  const r = await sql`
    UPDATE operations SET lease_until = ${leaseUntil(replica, nowMs)}
      WHERE owner = ${replica.id} AND status IN ('pending', 'running')`;
  return r.count;
}

/** Unfinished operations whose owner let its lease run out by `nowMs` (another replica, dead or cut off), oldest first. */
export function expiredLeases(sql: SQL, nowMs: number): Promise<{ operation_id: string; owner: string }[]> {
  return sql<{ operation_id: string; owner: string }[]>`
    SELECT operation_id, owner FROM operations
      WHERE owner IS NOT NULL AND status IN ('pending', 'running') AND lease_until < ${nowMs}
      ORDER BY id`;
}

/** Unfinished operations `replicaId` owns: after a restart under the same id, what its previous life left running. */
export async function ownedUnfinished(sql: SQL, replicaId: string): Promise<string[]> {
  const rows = await sql<{ operation_id: string }[]>`
    SELECT operation_id FROM operations WHERE owner = ${replicaId} AND status IN ('pending', 'running') ORDER BY id`;
  return rows.map((r) => r.operation_id);
}
