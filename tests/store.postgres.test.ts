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
import { dropSchema, schemaName, withPostgres } from "./fixtures/postgres.ts";

await withPostgres("the PostgresStore contract", (url) => {
  const made: { schema: string; stores: PostgresStore[] }[] = [];

  storeContract("PostgresStore", {
    async open(opts = {}) {
      const schema = schemaName();
      const entry = { schema, stores: [] as PostgresStore[] };
      made.push(entry);
      const connect = async () => {
        const s = await PostgresStore.open(url, { schema, trends: opts.trends, liveness: opts.liveness });
        entry.stores.push(s);
        return s;
      };
      let current = await connect();
      return {
        store: current,
        async reopen() {
          await current.close();
          current = await connect();
          return current;
        },
      };
    },
    async cleanup() {
      for (const { schema, stores } of made.splice(0)) {
        for (const s of stores) await s.close();
        await dropSchema(url, schema);
      }
    },
  });

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
        await sql.unsafe(`UPDATE "${schema}".trainwatch_schema_version SET version = ${PG_MIGRATIONS.length - 1}`);
        await sql.close();
        const again = await PostgresStore.open(url, { schema });
        await check(again);
        await again.close();
      } finally {
        await dropSchema(url, schema);
      }
    });

    test("refuses a schema name it could not quote safely", async () => {
      expect(PostgresStore.open(url, { schema: 'x"; DROP TABLE y; --' })).rejects.toThrow(/schema: expected/);
    });
  });
});
