// The Store contract's part for issue 27: a run's labels (tags and group) and the search over runs (q, sort, order),
// run over SQLite and PostgreSQL through tests/store_contract.ts, so the same query gives the same runs on both.
import { describe, expect, test } from "bun:test";
import type { ListFilter, Store } from "../src/store/store.ts";
import type { Operation } from "../src/schemas/operation.ts";
import type { EpochRecord } from "../src/schemas/epoch.ts";
import { parseQuery, parseSort } from "../src/schemas/search.ts";
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

  describe("search", () => {
    const TS = "2026-11-26T15:30:00.000Z";
    const epochs = (n: number, last?: Partial<EpochRecord>): EpochRecord[] =>
      Array.from({ length: n }, (_, e) => ({
        epoch: e,
        timestamp: TS,
        train_loss: 1 / (e + 1),
        val_loss: 1.2 / (e + 1) + (e > 30 ? 0.01 * (e - 30) : 0),
        ...(e === n - 1 ? last : {}),
      }));
    const INJECTED = 'x"; DROP TABLE operations; --';

    /** Six runs of every kind a query tells apart, created in order; returned by name after their writes. */
    async function sweep(s: Store): Promise<Record<string, Operation>> {
      const make = (name: string | null, extra: Record<string, unknown>) =>
        s.createOperation({ operation_type: "training", name, ...extra });
      const r1 = await make("bert-base", {
        tags: ["bert", "base"],
        group: "sweep-7",
        config: { lr: 1e-4, optimizer: "adam", model: { width: 128 } },
      });
      const r2 = await make("bert-large", {
        tags: ["bert", "large"],
        group: "sweep-7",
        config: { lr: 5e-3, optimizer: "sgd", model: { width: 512 } },
      });
      const r3 = await make("gpt-small", {
        tags: ["gpt"],
        group: "sweep-8",
        config: { lr: 1e-3, optimizer: "adam", amp: true },
      });
      const r4 = await make("resnet", { config: { lr: "auto", model: { width: "wide" } } });
      const r5 = await make(INJECTED, { tags: ["lonely"] });
      const r6 = await s.createOperation({ operation_type: "evaluation", tags: ["gpt"] });
      await s.writeEpochs(r1.operation_id, epochs(60));
      await s.writeEpochs(r2.operation_id, epochs(8, { train_loss: Number.NaN, val_loss: Number.NaN }));
      await s.writeEpochs(r3.operation_id, epochs(5));
      await s.finish(r4.operation_id, "completed");
      const out: Record<string, Operation> = {};
      for (const [k, op] of Object.entries({ r1, r2, r3, r4, r5, r6 }))
        out[k] = (await s.getOperation(op.operation_id))!;
      return out;
    }

    /** The runs a listing gives, by their fixture key, in its order. */
    async function keys(
      s: Store,
      runs: Record<string, Operation>,
      f: Partial<ListFilter> & { q?: string; by?: string },
    ) {
      const { q, by, ...rest } = f;
      const byId = new Map(Object.entries(runs).map(([k, op]) => [op.operation_id, k]));
      const { items, total } = await s.listOperations({
        limit: 50,
        offset: 0,
        ...rest,
        query: parseQuery(q ?? ""),
        sort: parseSort(by),
      });
      return { keys: items.map((o) => byId.get(o.operation_id) ?? o.operation_id), total };
    }
    /** The runs `q` picks, sorted by key; the listing's total counts exactly those (a lone term counts its side table). */
    const set = async (s: Store, runs: Record<string, Operation>, q: string) => {
      const { keys: found, total } = await keys(s, runs, { q });
      expect(`${q}: total ${total}`).toBe(`${q}: total ${found.length}`);
      return found.sort();
    };

    test("each field and operator picks the runs it names, whatever the store", async () => {
      const s = await open();
      const runs = await sweep(s);
      expect(runs.r1!.trends.is_diverging).toBe(false);
      expect(runs.r2!.trends.is_diverging).toBe(true);
      const cases: [string, string[]][] = [
        ['tags has "bert"', ["r1", "r2"]],
        ['tags has bert and group = "sweep-7" and config.lr < 1e-3', ["r1"]],
        ['group = "sweep-7" and not flags.diverging', ["r1"]],
        ['group ~ "SWEEP"', ["r1", "r2", "r3"]],
        ["group = null", ["r4", "r5", "r6"]],
        ['config.optimizer = "adam"', ["r1", "r3"]],
        ['config.optimizer != "adam"', ["r2"]],
        ['config.optimizer > "b"', ["r2"]],
        ['config.optimizer ~ "GD"', ["r2"]],
        ["config.lr < 1e-2", ["r1", "r2", "r3"]],
        ["config.lr = 0.001", ["r3"]],
        ["config.lr != 0.001", ["r1", "r2"]],
        ["not config.lr < 1e-2", ["r4", "r5", "r6"]],
        ['config.lr = "auto"', ["r4"]],
        ["config.model.width >= 256", ["r2"]],
        ["config.model.width != null", ["r1", "r2", "r4"]],
        ["config.amp = true", ["r3"]],
        ["config.amp = false", []],
        ["config.amp = null", ["r1", "r2", "r4", "r5", "r6"]],
        ['name ~ "BERT"', ["r1", "r2"]],
        ['name ~ "%"', []],
        ['name ~ "_"', []],
        ['name ~ "t-b"', ["r1"]],
        ['name ~ "\\\\"', []],
        ['name != "resnet"', ["r1", "r2", "r3", "r5"]],
        ["name = null", ["r6"]],
        ["status = completed", ["r4"]],
        ["status != running", ["r4"]],
        ["operation_type = evaluation", ["r6"]],
        ["epochs_completed >= 5", ["r1", "r2", "r3"]],
        ["epochs_completed = 0", ["r4", "r5", "r6"]],
        ["steps_completed = 0", ["r1", "r2", "r3", "r4", "r5", "r6"]],
        ["best_val_loss < 10", ["r1", "r2", "r3"]],
        ["best_val_loss = null", ["r4", "r5", "r6"]],
        ["final_loss != null", ["r1", "r3"]],
        [`final_loss = ${1 / 5}`, ["r3"]],
        [`final_val_loss < ${1.2 / 5 + 1e-9}`, ["r3"]],
        ["best_epoch = 4", ["r3"]],
        ["completed_at != null", ["r4"]],
        ["started_at = null", []],
        ['(tags has gpt or tags has lonely) and not group = "sweep-8"', ["r5", "r6"]],
        ["flags.diverging or flags.overfitting = false and tags has gpt", ["r2", "r3", "r6"]],
      ];
      for (const [q, want] of cases) expect(`${q} → ${await set(s, runs, q)}`).toBe(`${q} → ${want}`);
    });

    test("flags and dates match the runs' own trends and timestamps", async () => {
      const s = await open();
      const runs = await sweep(s);
      const all = Object.entries(runs);
      const flags = {
        overfitting: "is_overfitting",
        plateau: "is_plateaued",
        diverging: "is_diverging",
        stalled: "is_stalled",
      } as const;
      for (const [flag, key] of Object.entries(flags)) {
        const want = all.filter(([, op]) => op.trends[key]).map(([k]) => k);
        expect(`${flag}: ${await set(s, runs, `flags.${flag}`)}`).toBe(`${flag}: ${want.sort()}`);
        const rest = all.filter(([, op]) => !op.trends[key]).map(([k]) => k);
        expect(`not ${flag}: ${await set(s, runs, `not flags.${flag}`)}`).toBe(`not ${flag}: ${rest.sort()}`);
      }
      expect(runs.r1!.trends.is_overfitting).toBe(true);
      const at = runs.r3!.created_at;
      const after = all.filter(([, op]) => op.created_at >= at).map(([k]) => k);
      expect(await set(s, runs, `created_at >= "${at}"`)).toEqual(after.sort());
      const before = all.filter(([, op]) => op.created_at < at).map(([k]) => k);
      expect(await set(s, runs, `created_at < "${at}"`)).toEqual(before.sort());
    });

    test("a value with quotes, semicolons and SQL is one bound value: it finds its run and runs nothing", async () => {
      const s = await open();
      const runs = await sweep(s);
      expect(await set(s, runs, 'name = "x\\"; DROP TABLE operations; --"')).toEqual(["r5"]);
      expect(await set(s, runs, 'name ~ "\'; DELETE FROM operations; --"')).toEqual([]);
      expect(await set(s, runs, 'config.lr = "1 OR 1=1"')).toEqual([]);
      expect(await set(s, runs, "tags has \"bert' OR '1'='1\"")).toEqual([]);
      expect((await s.listOperations({ limit: 50, offset: 0 })).total).toBe(6);
    });

    test("sorts by a column or a configuration value, missing values last either way, and pages with a total", async () => {
      const s = await open();
      const runs = await sweep(s);
      expect((await keys(s, runs, {})).keys).toEqual(["r6", "r5", "r4", "r3", "r2", "r1"]);
      expect((await keys(s, runs, { order: "asc" })).keys).toEqual(["r1", "r2", "r3", "r4", "r5", "r6"]);
      const best = Object.entries(runs)
        .filter(([, op]) => op.trends.best_val_loss !== null)
        .sort(([, a], [, b]) => a.trends.best_val_loss! - b.trends.best_val_loss!)
        .map(([k]) => k);
      expect((await keys(s, runs, { by: "best_val_loss", order: "asc" })).keys).toEqual([...best, "r4", "r5", "r6"]);
      expect((await keys(s, runs, { by: "best_val_loss" })).keys).toEqual([...best.reverse(), "r6", "r5", "r4"]);
      // Numbers, then strings, then runs without the key.
      expect((await keys(s, runs, { by: "config.lr", order: "asc" })).keys).toEqual([
        "r1",
        "r3",
        "r2",
        "r4",
        "r5",
        "r6",
      ]);
      expect((await keys(s, runs, { by: "config.lr", order: "desc" })).keys).toEqual([
        "r2",
        "r3",
        "r1",
        "r4",
        "r6",
        "r5",
      ]);
      // By code point: upper case and punctuation before lower case, on both stores.
      expect((await keys(s, runs, { by: "name", order: "asc" })).keys).toEqual(["r1", "r2", "r3", "r4", "r5", "r6"]);
      const page = await keys(s, runs, {
        q: "tags has bert or group = null",
        by: "name",
        order: "asc",
        limit: 2,
        offset: 1,
      });
      expect(page).toEqual({ keys: ["r2", "r4"], total: 5 });
      expect(await keys(s, runs, { q: "group = null", status: "completed" })).toEqual({ keys: ["r4"], total: 1 });
      expect(await keys(s, runs, { q: "tags has gpt", operation_type: "training" })).toEqual({
        keys: ["r3"],
        total: 1,
      });
    });

    test("the summary figures follow every write: a re-posted epoch, a re-label, a step run's closed epochs", async () => {
      const s = await open();
      const { operation_id: id } = await s.createOperation({ operation_type: "training", tags: ["a"] });
      await s.writeEpochs(id, epochs(5));
      const ids = async (q: string) =>
        (await s.listOperations({ query: parseQuery(q), limit: 10, offset: 0 })).items.map((o) => o.operation_id);
      expect(await ids("final_loss = 0.2 and epochs_completed = 5")).toEqual([id]);
      await s.writeEpochs(id, [{ epoch: 4, timestamp: TS, train_loss: 0.125, val_loss: 0.01 }]);
      expect(
        await ids("final_loss = 0.125 and final_val_loss = 0.01 and best_val_loss = 0.01 and best_epoch = 4"),
      ).toEqual([id]);
      await s.setLabels(id, { tags: ["b"] });
      expect(await ids("tags has a")).toEqual([]);
      expect(await ids("tags has b")).toEqual([id]);
      const { operation_id: stepRun } = await s.createOperation({ operation_type: "training" });
      await s.writeSteps(stepRun, [
        { step: 0, epoch: 0, timestamp: TS, train_loss: 2 },
        { step: 1, epoch: 1, timestamp: TS, train_loss: 1 },
      ]);
      expect(await ids("steps_completed = 2 and epochs_completed = 1 and final_loss = 2")).toEqual([stepRun]);
    });
  });
}

/**
 * Runs whose search columns and configuration leaves a migration must backfill, as a write stores them: `check` on
 * the same database after the migration finds each by them.
 */
export async function backfillFixture(s: Store): Promise<(again: Store) => Promise<void>> {
  const TS = "2026-11-26T15:30:00.000Z";
  const a = await s.createOperation({
    operation_type: "training",
    config: { lr: 0.001, opt: "adam", amp: true, model: { width: 128 }, layers: [1, 2] },
  });
  await s.writeEpochs(
    a.operation_id,
    Array.from({ length: 5 }, (_, e) => ({ epoch: e, timestamp: TS, train_loss: 1 / (e + 1), val_loss: 2 / (e + 1) })),
  );
  const b = await s.createOperation({ operation_type: "training" });
  await s.writeEpochs(b.operation_id, [
    { epoch: 0, timestamp: TS, train_loss: 1 },
    { epoch: 1, timestamp: TS, train_loss: Number.NaN },
  ]);
  const queries: [string, string][] = [
    [
      'config.lr = 0.001 and config.opt = "adam" and config.amp = true and config.model.width = 128 and config.layers != null',
      a.operation_id,
    ],
    [
      "final_loss = 0.2 and final_val_loss = 0.4 and best_val_loss = 0.4 and best_epoch = 4 and epochs_completed = 5",
      a.operation_id,
    ],
    ["not flags.diverging and config.lr != null", a.operation_id],
    ["flags.diverging and final_loss = null and epochs_completed = 2", b.operation_id],
  ];
  return async (again) => {
    for (const [q, id] of queries) {
      const { items } = await again.listOperations({ query: parseQuery(q), limit: 10, offset: 0 });
      expect(`${q} → ${items.map((o) => o.operation_id)}`).toBe(`${q} → ${id}`);
    }
  };
}
