// The standard field list has one home (src/schemas/fields.ts); the Python client, which cannot import it, spells it in
// trainwatch/_wire.py. This holds the two equal, in order, so a field added to one is added to the other.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { STANDARD_FIELDS } from "../src/schemas/fields.ts";

const WIRE_PY = join(import.meta.dir, "../clients/python/trainwatch/_wire.py");

describe("standard fields", () => {
  test("the Python client's STANDARD_FIELDS are the server's, in the same order", () => {
    const line = /^STANDARD_FIELDS = \(([^)]*)\)$/m.exec(readFileSync(WIRE_PY, "utf8"));
    expect(line).not.toBeNull();
    const python = [...line![1]!.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
    expect(python).toEqual([...STANDARD_FIELDS]);
  });
});
