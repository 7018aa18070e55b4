// The Store contract's part for issue 27: a run's labels (tags and group) and the search over runs (q, sort, order),
// run over SQLite and PostgreSQL through tests/store_contract.ts, so the same query gives the same runs on both.
import { describe, expect, test } from "bun:test";
import type { Store } from "../src/store/store.ts";
import { rejection } from "./store_contract_steps.ts";

export function searchContract(open: () => Promise<Store>): void {
  describe("labels", () => {
    test("a run keeps the tags it was created with, sorted and unique, and its group; none reads [] and null", async () => {
      const s = await open();
      const labelled = await s.createOperation({
        operation_type: "training",
        tags: ["bert", "base", "bert", "lr:1e-3"],
        group: "sweep 7",
      });
      const plain = await s.createOperation({ operation_type: "training" });
      expect(labelled).toMatchObject({ tags: ["base", "bert", "lr:1e-3"], group: "sweep 7" });
      expect(await s.getOperation(labelled.operation_id)).toMatchObject({ tags: ["base", "bert", "lr:1e-3"] });
      expect(await s.getOperation(plain.operation_id)).toMatchObject({ tags: [], group: null });
      const { items } = await s.listOperations({ limit: 10, offset: 0 });
      expect(items.map((o) => o.group).sort()).toEqual([null, "sweep 7"].sort());
    });

    test("setLabels replaces, then adds and removes tags; sets or clears the group; keeps what it does not name", async () => {
      const s = await open();
      const { operation_id: id } = await s.createOperation({
        operation_type: "training",
        tags: ["a", "b"],
        group: "g",
      });
      expect(await s.setLabels(id, { add_tags: ["c", "a"], remove_tags: ["b"] })).toMatchObject({
        tags: ["a", "c"],
        group: "g",
      });
      expect(await s.setLabels(id, { tags: ["z"], add_tags: ["y"], group: null })).toMatchObject({
        tags: ["y", "z"],
        group: null,
      });
      expect(await s.setLabels(id, { group: "sweep-8" })).toMatchObject({ tags: ["y", "z"], group: "sweep-8" });
      expect(await s.getOperation(id)).toMatchObject({ tags: ["y", "z"], group: "sweep-8" });
    });

    test("a finished run can be re-labelled", async () => {
      const s = await open();
      const { operation_id: id } = await s.createOperation({ operation_type: "training" });
      await s.finish(id, "completed");
      expect(await s.setLabels(id, { tags: ["kept"], group: "best" })).toMatchObject({
        status: "completed",
        tags: ["kept"],
        group: "best",
      });
    });

    test("more than 32 tags is VALIDATION_ERROR naming the field, and changes nothing; an unknown run is NOT_FOUND", async () => {
      const s = await open();
      const { operation_id: id } = await s.createOperation({ operation_type: "training", tags: ["keep"] });
      const many = Array.from({ length: 32 }, (_, i) => `t${i}`);
      const err = await rejection(s.setLabels(id, { add_tags: many }));
      expect(err.code).toBe("VALIDATION_ERROR");
      expect(err.details?.field).toBe("body.add_tags");
      expect((await s.getOperation(id))?.tags).toEqual(["keep"]);
      expect((await rejection(s.setLabels("op_missing", { tags: [] }))).code).toBe("OPERATION_NOT_FOUND");
    });
  });
}
