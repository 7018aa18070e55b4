// The store contract (tests/store_contract.ts) on PostgresStore, each test in a schema of its own on the run's server
// (tests/fixtures/postgres.ts: TRAINWATCH_TEST_PG, or a throwaway local one). In CI a missing server fails this file;
// elsewhere, without PostgreSQL binaries, it says so in a skipped test's name.
import { describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { PG_MIGRATIONS } from "../src/store/pg_migrations.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { SchemaTooNewError } from "../src/store/pg_migrate.ts";
import { NAMED, storeContract, TS } from "./store_contract.ts";
import { backfillFixture } from "./store_contract_search.ts";
import { stepOf } from "./store_contract_steps.ts";
import { dropSchema, pgStoreFactory, schemaName, withPostgres } from "./fixtures/postgres.ts";

await withPostgres("the PostgresStore contract", (url) => {
  storeContract(
    "PostgresStore",
    pgStoreFactory(async () => {
      const schema = schemaName();
      return {
        connect: (opts) => PostgresStore.open(url, { schema, trends: opts.trends, liveness: opts.liveness }),
        drop: () => dropSchema(url, schema),
      };
    }),
  );

  describe("PostgresStore on its own", () => {
    test("migrates a new schema to the latest version once, also when replicas open it together", async () => {
      const schema = schemaName();
      try {
        const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open(url, { schema })));
        const sql = new SQL(url, { max: 1 });
        const [{ version }] = await sql.unsafe(`SELECT version FROM "${schema}".trainwatch_schema_version`);
        const rows = await sql.unsafe(`SELECT count(*)::int AS n FROM "${schema}".trainwatch_schema_version`);
        const tables = (await sql`SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema}`).map(
          (r: { table_name: string }) => r.table_name,
        );
        await sql.close();
        expect(version).toBe(PG_MIGRATIONS.length);
        expect(rows[0].n).toBe(1);
        expect(tables).toEqual(expect.arrayContaining(["operations", "epochs", "trainwatch_schema_version"]));
        for (const s of stores) await s.close();
      } finally {
        await dropSchema(url, schema);
      }
    });

    test("refuses a schema a newer server migrated", async () => {
      const schema = schemaName();
      try {
        (await PostgresStore.open(url, { schema })).close();
        const sql = new SQL(url, { max: 1 });
        await sql.unsafe(`UPDATE "${schema}".trainwatch_schema_version SET version = ${PG_MIGRATIONS.length + 1}`);
        await sql.close();
        expect(PostgresStore.open(url, { schema })).rejects.toBeInstanceOf(SchemaTooNewError);
      } finally {
        await dropSchema(url, schema);
      }
    });

    test("a schema from before the metric-name column fills it in from each operation's epochs", async () => {
      const schema = schemaName();
      try {
        const store = await PostgresStore.open(url, { schema });
        const a = (await store.createOperation({ operation_type: "training" })).operation_id;
        const b = (await store.createOperation({ operation_type: "training" })).operation_id;
        await store.writeEpochs(a, NAMED.epochs);
        await store.writeEpochs(b, [{ epoch: 0, timestamp: TS, train_loss: 1 }]);
        await store.close();
        // Back to the schema before it: no column, the version one short of it.
        const sql = new SQL(url, { max: 1 });
        await sql.unsafe(`ALTER TABLE "${schema}".operations DROP COLUMN metric_names`);
        const at = PG_MIGRATIONS.findIndex((m) => m.includes("metric_names"));
        await sql.unsafe(`UPDATE "${schema}".trainwatch_schema_version SET version = ${at}`);
        await sql.close();
        const again = await PostgresStore.open(url, { schema });
        expect(await again.metricNames(a)).toEqual(NAMED.names);
        expect(await again.metricNames(b)).toEqual([]);
        await again.close();
      } finally {
        await dropSchema(url, schema);
      }
    });

    test("a schema from before the search's columns and tables fills them in from each operation's row and epochs", async () => {
      const schema = schemaName();
      try {
        const store = await PostgresStore.open(url, { schema });
        const check = await backfillFixture(store);
        await store.close();
        // Back to the schema before migration 13: its columns and tables emptied (it is idempotent), the version before it.
        const sql = new SQL(url, { max: 1 });
        await sql.unsafe(`DROP TABLE "${schema}".operation_tags, "${schema}".operation_config`);
        await sql.unsafe(
          `UPDATE "${schema}".operations SET best_val_loss = NULL, best_epoch = NULL, epochs_completed = 0, final_loss = NULL, final_val_loss = NULL, flags = 0`,
        );
        const at13 = PG_MIGRATIONS.findIndex((m) => m.includes("operation_tags"));
        await sql.unsafe(`UPDATE "${schema}".trainwatch_schema_version SET version = ${at13}`);
        await sql.close();
        const again = await PostgresStore.open(url, { schema });
        await check(again);
        await again.close();
      } finally {
        await dropSchema(url, schema);
      }
    });

    test("migration 14 keeps every stored step: the old table becomes the legacy partition, new runs get partitions of their own", async () => {
      const schema = schemaName();
      const sql = new SQL(url, { max: 1, connection: { search_path: schema } });
      try {
        // A schema as the migrations before 14 left it, with two runs' steps stored (one with a NaN and a custom metric).
        const at14 = PG_MIGRATIONS.findIndex((m) => m.includes("step_partitioning"));
        await sql.unsafe(`CREATE SCHEMA "${schema}"`);
        for (const m of PG_MIGRATIONS.slice(0, at14)) await sql.unsafe(m);
        await sql.unsafe(`CREATE TABLE trainwatch_schema_version (version integer NOT NULL);
          INSERT INTO trainwatch_schema_version VALUES (${at14});
          INSERT INTO operations (operation_id, operation_type, status, created_at, summary, steps_completed)
            VALUES ('a', 'training', 'completed', now(), '{}', 500), ('b', 'training', 'running', now(), '{}', 3);
          INSERT INTO steps (op, ts, train_loss, step, epoch, custom)
            SELECT 1, 1000 + g, 1.0 / (g + 1), g, g / 100, NULL FROM generate_series(0, 499) g;
          INSERT INTO steps (op, ts, train_loss, grad_norm, step, custom)
            VALUES (2, 5, 'NaN', 1, 0, '{"x":1}'), (2, 6, 0.5, 'Infinity', 1, NULL), (2, 7, 0.25, NULL, 2, NULL);`);
        const before = await sql`SELECT * FROM steps ORDER BY op, step`;
        const store = await PostgresStore.open(url, { schema });
        try {
          const parts = await sql`
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'steps'::regclass ORDER BY c.relname`;
          expect(parts.map((p: { relname: string }) => p.relname)).toEqual(["steps_legacy", "steps_p1"]);
          expect(parts[0].bound).toBe("FOR VALUES FROM (MINVALUE) TO ('1024')");
          expect(await sql`SELECT * FROM steps ORDER BY op, step`).toEqual(before);
          expect(await store.readSteps("b")).toEqual<unknown[]>([
            { step: 0, train_loss: "NaN", grad_norm: 1, x: 1, timestamp: new Date(5).toISOString() },
            { step: 1, train_loss: 0.5, grad_norm: "Infinity", timestamp: new Date(6).toISOString() },
            { step: 2, train_loss: 0.25, timestamp: new Date(7).toISOString() },
          ]);
          // A run created now lands in the legacy partition's range (ids below 1,024) and writes there as before.
          const c = (await store.createOperation({ operation_type: "training" })).operation_id;
          await store.writeSteps(c, [{ step: 0, timestamp: new Date(9).toISOString(), train_loss: 2 }]);
          expect(await store.readSteps(c)).toHaveLength(1);
          const [{ n }] = await sql`SELECT count(*)::int AS n FROM steps_legacy`;
          expect(n).toBe(504);
        } finally {
          await store.close();
        }
      } finally {
        await sql.close();
        await dropSchema(url, schema);
      }
    });

    test("retention truncates a partition whose every run expired and deletes the expired runs of the others", async () => {
      const schema = schemaName();
      const sql = new SQL(url, { max: 1, connection: { search_path: schema } });
      try {
        // Partitions of 4 ids, set before the first operation (the layout is read at open).
        (await PostgresStore.open(url, { schema })).close();
        await sql`UPDATE step_partitioning SET ops = 4`;
        const store = await PostgresStore.open(url, { schema });
        try {
          const ids: string[] = [];
          for (let i = 1; i <= 10; i++) {
            const id = (await store.createOperation({ operation_type: "training" })).operation_id;
            await store.writeSteps(id, [stepOf(0, 0), stepOf(1, 0), stepOf(2, 0)]);
            ids.push(id);
          }
          // ids 1–3 (partition 0) and 4–7 (partition 1, but 6 keeps running) and 8–10 (partition 2, ids 11 and up to come).
          for (const [i, id] of ids.entries()) if (i + 1 !== 6) await store.finish(id, "completed");
          const last = (await store.getOperation(ids[9]!))!.completed_at!;
          const cutoff = Date.parse(last) + 1;
          const res = await store.pruneSteps(cutoff, cutoff);
          expect(res.partitions).toEqual(["steps_p0"]);
          expect(res.operations).toEqual(ids.filter((_, i) => i + 1 !== 6).sort());
          const rows = await sql`SELECT op::int AS op, count(*)::int AS n FROM steps GROUP BY op ORDER BY op`;
          expect(rows).toEqual([{ op: 6, n: 3 }]);
          expect(await store.readSteps(ids[5]!)).toHaveLength(3);
          // Once the last run of partition 1 finishes and expires, partition 1 goes whole; partition 0 is not touched again.
          const done = Date.parse((await store.finish(ids[5]!, "completed")).completed_at!);
          const again = await store.pruneSteps(done + 1, done + 1);
          expect(again).toEqual({ operations: [ids[5]!], partitions: ["steps_p1"] });
          expect(await sql`SELECT count(*)::int AS n FROM steps`).toEqual([{ n: 0 }]);
          // Truncated, not dropped: a revivable run of partition 0 revived by a step still has where to write.
          const [{ parts }] =
            await sql`SELECT count(*)::int AS parts FROM pg_inherits WHERE inhparent = 'steps'::regclass`;
          expect(parts).toBe(4);
        } finally {
          await store.close();
        }
      } finally {
        await sql.close();
        await dropSchema(url, schema);
      }
    });

    test("refuses a schema name it could not quote safely", async () => {
      expect(PostgresStore.open(url, { schema: 'x"; DROP TABLE y; --' })).rejects.toThrow(/schema: expected/);
    });
  });
});
