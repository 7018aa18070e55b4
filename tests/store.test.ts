// The SQLite store on real files: migrations, WAL, reopening, and all-or-nothing writes that survive a crash.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { MIGRATIONS } from "../src/store/migrations.ts";
import { BLOCK, SqliteStore } from "../src/store/sqlite.ts";
import { newOperationId } from "../src/store/ids.ts";
import { summarizeRows, summarizeTrends, type SpanSummary } from "../src/trends/index.ts";
import { tempDir } from "./helpers.ts";
import { curve, NAMED, TS, writeBlockScenario } from "./store_contract.ts";
import { backfillFixture } from "./store_contract_search.ts";

const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
});

/** A temp directory removed after the test; returns a DB path inside it. */
function dbPath(...nested: string[]): string {
  const t = tempDir("trainwatch-store-");
  cleanups.push(t.cleanup);
  return join(t.dir, ...nested, "trainwatch.db");
}

function open(path: string): SqliteStore {
  const s = new SqliteStore(path);
  cleanups.unshift(() => {
    try {
      s.close();
    } catch {
      // already closed by the test
    }
  });
  return s;
}

describe("SqliteStore", () => {
  test("creates a missing database file at a nested path and applies every migration", async () => {
    const path = dbPath("a", "b", "c");
    expect(existsSync(path)).toBe(false);
    const store = open(path);
    expect(existsSync(path)).toBe(true);
    expect(store.db.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBe(
      MIGRATIONS.length,
    );
    const tables = store.db
      .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(["operations", "epochs"]));
  });

  test("uses WAL with synchronous=FULL", async () => {
    const store = open(dbPath());
    expect(store.db.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get()!.journal_mode).toBe("wal");
    expect(store.db.query<{ synchronous: number }, []>("PRAGMA synchronous").get()!.synchronous).toBe(2);
  });

  test("reopening the same file keeps operations, epochs and trends, and does not re-migrate", async () => {
    const path = dbPath();
    const first = open(path);
    const op = await first.createOperation({ operation_type: "training", name: "keep me", total_epochs_planned: 50 });
    await first.writeEpochs(op.operation_id, curve(0, 40));
    const before = (await first.getOperation(op.operation_id))!;
    const epochsBefore = await first.readEpochs(op.operation_id);
    first.close();

    const second = open(path);
    expect(second.db.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBe(
      MIGRATIONS.length,
    );
    expect(await second.getOperation(op.operation_id)).toEqual(before);
    expect(await second.readEpochs(op.operation_id)).toEqual(epochsBefore);
    expect((await second.listOperations({ limit: 10, offset: 0 })).total).toBe(1);
    // And it keeps accepting writes where it left off.
    expect((await second.writeEpochs(op.operation_id, curve(40, 5))).trends.total_epochs_completed).toBe(45);
  });

  test("a batch that fails part-way leaves nothing behind, also after reopening", async () => {
    const path = dbPath();
    const store = open(path);
    const op = await store.createOperation({ operation_type: "training" });
    await store.writeEpochs(op.operation_id, curve(0, 3));
    const before = (await store.getOperation(op.operation_id))!;

    // Epochs 3…9 are inserted before the 8th record's unusable timestamp aborts the transaction.
    const batch = curve(3, 10);
    batch[7] = { ...batch[7]!, timestamp: "not a date" };
    await expect(store.writeEpochs(op.operation_id, batch)).rejects.toThrow();

    expect((await store.readEpochs(op.operation_id)).map((e) => e.epoch)).toEqual([0, 1, 2]);
    expect(await store.getOperation(op.operation_id)).toEqual(before);
    store.close();

    const reopened = open(path);
    expect((await reopened.readEpochs(op.operation_id)).map((e) => e.epoch)).toEqual([0, 1, 2]);
    expect((await reopened.getOperation(op.operation_id))!.trends).toEqual(before.trends);
    expect(reopened.db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").get()!.integrity_check).toBe(
      "ok",
    );
  });

  test("a write that returned survives the process being killed", async () => {
    const path = dbPath();
    const script = `
      import { SqliteStore } from ${JSON.stringify(join(import.meta.dir, "..", "src", "store", "sqlite.ts"))};
      const s = new SqliteStore(${JSON.stringify(path)});
      const op = await s.createOperation({ operation_type: "training" });
      await s.writeEpochs(op.operation_id, Array.from({ length: 100 }, (_, e) => ({ epoch: e, timestamp: new Date().toISOString(), train_loss: 1 / (e + 1) })));
      console.log(op.operation_id);
      process.kill(process.pid, "SIGKILL");
    `;
    const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).not.toBe(0);
    const id = out.trim();
    expect(id).toMatch(/^op_training_/);

    const store = open(path);
    expect(await store.readEpochs(id)).toHaveLength(100);
    expect((await store.getOperation(id))!.trends).toMatchObject({
      total_epochs_completed: 100,
      best_epoch: 99,
      latest_epoch: 99,
    });
  });

  test("NaN and ±Infinity survive storage (SQLite REAL alone would turn NaN into NULL)", async () => {
    const store = open(dbPath());
    const op = await store.createOperation({ operation_type: "training" });
    await store.writeEpochs(op.operation_id, [
      {
        epoch: 0,
        timestamp: TS,
        train_loss: Number.NaN,
        val_loss: Number.POSITIVE_INFINITY,
        learning_rate: Number.NEGATIVE_INFINITY,
        custom: { grad_norm: Number.NaN },
      },
    ]);
    expect((await store.readEpochs(op.operation_id))[0]).toMatchObject({
      train_loss: "NaN",
      val_loss: "Infinity",
      learning_rate: "-Infinity",
      grad_norm: "NaN",
    });
  });

  test("the incrementally kept trend summary matches a full recompute, whatever the write pattern", async () => {
    const store = open(":memory:");
    const op = await store.createOperation({ operation_type: "training" });
    const history = curve(0, 60);
    // Appends in uneven chunks, then a re-post of an old epoch and a late val_loss-less resume.
    for (const [a, b] of [
      [0, 1],
      [1, 7],
      [7, 30],
      [30, 31],
      [31, 60],
    ] as const)
      await store.writeEpochs(op.operation_id, history.slice(a, b));
    expect((await store.getOperation(op.operation_id))!.trends).toEqual(summarizeTrends(history));

    history[12] = { ...history[12]!, val_loss: 0.001 };
    await store.writeEpochs(op.operation_id, [history[12]!]);
    expect((await store.getOperation(op.operation_id))!.trends).toEqual(summarizeTrends(history));

    const resumed = { epoch: 61, timestamp: TS, train_loss: Number.NaN };
    await store.writeEpochs(op.operation_id, [resumed]);
    expect((await store.getOperation(op.operation_id))!.trends).toEqual(summarizeTrends([...history, resumed]));
  });

  test("operation ids are unique and URL-safe", async () => {
    const ids = new Set(
      Array.from({ length: 1000 }, () => newOperationId("training", new Date("2026-11-26T15:30:00Z"))),
    );
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^op_training_20261126_153000_[0-9a-f]{8}$/);
    expect(encodeURIComponent([...ids][0]!)).toBe([...ids][0]!);
  });
});

describe("failure codes", () => {
  test("a database from before failure codes keeps its host-unreachable operations revivable", async () => {
    const tmp = tempDir();
    try {
      const path = join(tmp.dir, "v1.db");
      const old = new Database(path, { create: true });
      old.run(MIGRATIONS[0]!);
      old.run("PRAGMA user_version = 1");
      old.run(
        `INSERT INTO operations (operation_id, operation_type, status, created_at, error_message, metadata, summary)
         VALUES ('op_old', 'training', 'failed', '2026-01-01T00:00:00.000Z', 'training host unreachable', '{"location":"host"}', ?)`,
        [JSON.stringify(summarizeTrends([]))],
      );
      old.close();
      const store = new SqliteStore(path);
      expect(await store.getOperation("op_old")).toMatchObject({ status: "failed", failure_code: "host_unreachable" });
      expect((await store.writeEpochs("op_old", [])).revived).toBe(true);
      expect(await store.getOperation("op_old")).toMatchObject({
        status: "running",
        failure_code: null,
        error_message: null,
      });
      store.close();
    } finally {
      tmp.cleanup();
    }
  });
});

describe("metric names", () => {
  test("a database from before the metric-name column fills it in from each operation's epochs", async () => {
    const path = dbPath();
    const store = open(path);
    const a = (await store.createOperation({ operation_type: "training" })).operation_id;
    const b = (await store.createOperation({ operation_type: "training" })).operation_id;
    await store.writeEpochs(a, NAMED.epochs);
    await store.writeEpochs(b, curve(0, 3));
    // Back to the schema before it: no column, user_version one short of it.
    const at = MIGRATIONS.findIndex((m) => m.includes("metric_names"));
    store.db.run("ALTER TABLE operations DROP COLUMN metric_names");
    // And without what the later migrations made (7: steps; 8: the kept judgement; 9: the step judgement; 11: system
    // metrics; 12: alerts), as a database from before it is.
    store.db.run("DROP TABLE steps; DROP TABLE step_blocks; DROP TABLE alert_deliveries; DROP TABLE alerts");
    store.db.run("DROP TABLE system_samples");
    // 14: labels and the search's tables, indexes and columns.
    store.db.run("DROP TABLE operation_tags; DROP TABLE operation_config");
    store.db.run("DROP INDEX operations_search; DROP INDEX operations_group; DROP INDEX operations_best");
    store.db.run("DROP INDEX operations_flags");
    for (const c of ["tags", "group_name", "best_val_loss", "best_epoch", "epochs_completed", "final_loss"])
      store.db.run(`ALTER TABLE operations DROP COLUMN ${c}`);
    for (const c of ["final_val_loss", "flags"]) store.db.run(`ALTER TABLE operations DROP COLUMN ${c}`);
    for (const c of [
      "total_steps_planned",
      "steps_completed",
      "step_state",
      "judgement",
      "step_judgement",
      "alert_rules",
      "executor",
      "external_id",
      "pending_reason",
      "queue_position",
    ])
      store.db.run(`ALTER TABLE operations DROP COLUMN ${c}`);
    // 10: the liveness columns and their index.
    store.db.run("DROP INDEX operations_watched");
    for (const c of ["watched_at", "cadence"]) store.db.run(`ALTER TABLE operations DROP COLUMN ${c}`);
    store.db.run(`PRAGMA user_version = ${at}`);
    store.close();
    const again = open(path);
    expect(await again.metricNames(a)).toEqual(NAMED.names);
    expect(await again.metricNames(b)).toEqual([]);
  });
});

describe("search columns", () => {
  test("a database from before the search's columns and tables fills them in from each operation's row and epochs", async () => {
    const path = dbPath();
    const store = open(path);
    const check = await backfillFixture(store);
    // Back to the schema before migration 14: none of its tables, indexes and columns.
    store.db.run("DROP TABLE operation_tags");
    store.db.run("DROP TABLE operation_config");
    for (const i of ["operations_search", "operations_group", "operations_best", "operations_flags"])
      store.db.run(`DROP INDEX ${i}`);
    for (const c of ["tags", "group_name", "best_val_loss", "best_epoch", "epochs_completed", "final_loss"])
      store.db.run(`ALTER TABLE operations DROP COLUMN ${c}`);
    for (const c of ["final_val_loss", "flags"]) store.db.run(`ALTER TABLE operations DROP COLUMN ${c}`);
    store.db.run(`PRAGMA user_version = ${MIGRATIONS.length - 1}`);
    store.close();
    await check(open(path));
  });
});

describe("chart blocks", () => {
  /** Every stored block against a fresh summary of its rows. */
  async function blocksMatchRows(store: SqliteStore, id: string) {
    const opKey = store.db
      .query<{ id: number }, [string]>("SELECT id FROM operations WHERE operation_id = ?")
      .get(id)!.id;
    const stored = store.db
      .query<{ block: number; summary: string }, [number]>(
        "SELECT block, summary FROM epoch_blocks WHERE op = ? ORDER BY block",
      )
      .all(opKey);
    const rows = await store.readEpochs(id);
    const expected = new Map<number, SpanSummary>();
    for (const b of new Set(rows.map((r) => Math.floor(r.epoch / BLOCK))))
      expected.set(b, summarizeRows(rows.filter((r) => Math.floor(r.epoch / BLOCK) === b)));
    expect(stored.map((s) => s.block)).toEqual([...expected.keys()]);
    for (const s of stored) expect(JSON.parse(s.summary)).toEqual(expected.get(s.block)!);
  }

  test("the stored blocks are exactly a summary of their rows after writes of every kind (the contract checks them through epochSpans)", async () => {
    const store = open(":memory:");
    const id = (await store.createOperation({ operation_type: "training" })).operation_id;
    await writeBlockScenario(store, id);
    await blocksMatchRows(store, id);
  });

  test("an operation stored before chart blocks gets them on its first chart read, then keeps them", async () => {
    const store = open(":memory:");
    const id = (await store.createOperation({ operation_type: "training" })).operation_id;
    await store.writeEpochs(
      id,
      Array.from({ length: 500 }, (_, i) => ({ epoch: i, timestamp: TS, val_loss: i % 7 })),
    );
    // What migration 3 leaves for an operation that had epochs: no blocks, chart_blocks = 0.
    store.db.run("DELETE FROM epoch_blocks");
    store.db.run("UPDATE operations SET chart_blocks = 0");
    await store.writeEpochs(id, [{ epoch: 500, timestamp: TS, val_loss: 9 }]);
    expect(store.db.query("SELECT count(*) AS n FROM epoch_blocks").get()).toEqual({ n: 0 });
    expect((await store.epochSpans(id, 0, 500)).reduce((n, s) => n + s.count, 0)).toBe(501);
    await store.writeEpochs(id, [{ epoch: 3, timestamp: TS, val_loss: -1 }]);
    await blocksMatchRows(store, id);
  });
});
