/**
 * "Load or 404" on the store's read-only view: what every route that acts on one operation does first, so an unknown
 * id is the same OPERATION_NOT_FOUND everywhere.
 */
import { notFound } from "../errors.ts";
import type { Operation } from "../schemas/operation.ts";
import type { StoreReader } from "./store.ts";

/** The operation, or OPERATION_NOT_FOUND (404) naming the id. */
export async function loadOperation(store: StoreReader, id: string): Promise<Operation> {
  const op = await store.getOperation(id);
  if (!op) throw notFound(id);
  return op;
}
