/** Operation ids, minted by whichever store creates the operation: `op_<type>_<UTC date>_<UTC time>_<8 hex digits>`. */
import { randomBytes } from "node:crypto";

/** A new operation id: readable (its type and creation time, to the second) and unique (32 random bits beside them). */
export function newOperationId(type: string, now = new Date()): string {
  const iso = now.toISOString(); // 2026-11-26T15:30:00.000Z
  const stamp = `${iso.slice(0, 10).replaceAll("-", "")}_${iso.slice(11, 19).replaceAll(":", "")}`;
  return `op_${type}_${stamp}_${randomBytes(4).toString("hex")}`;
}
