// The PostgreSQL store through pgbouncer in transaction mode (issue 26), as replicas share a database behind a pooler:
// the store contract (tests/store_contract.ts) with the pool through the pooler, unprepared, and the LISTEN connection
// and the jobs lock on the direct URL (PostgresOptions.directUrl, TRAINWATCH_DB_DIRECT); two replicas hearing each
// other through it; and the refusal of a schema the pooler cannot select. pgbouncer 1.18 passes no search_path, so each
// test takes a database of its own (schema public) instead of a schema. In CI a missing pgbouncer fails this file.
import { describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { PostgresStore } from "../src/store/postgres.ts";
import type { StoreChange } from "../src/store/store.ts";
import { storeContract, TS } from "./store_contract.ts";
import { onDatabase, withPgbouncer } from "./fixtures/pgbouncer.ts";
import { pgStoreFactory, schemaName } from "./fixtures/postgres.ts";
import { until } from "./fixtures/poll.ts";

await withPgbouncer("the PostgresStore contract through pgbouncer", ({ pooled, direct }) => {
  const admin = () => new SQL(direct, { max: 1 });
  /** A new database, reached through the pooler and directly. */
  async function database(): Promise<{ name: string; pooled: string; direct: string }> {
    const name = schemaName();
    const sql = admin();
    try {
      await sql.unsafe(`CREATE DATABASE "${name}"`);
    } finally {
      await sql.close();
    }
    return { name, pooled: onDatabase(pooled, name), direct: onDatabase(direct, name) };
  }
  async function drop(name: string): Promise<void> {
    const sql = admin();
    try {
      // FORCE: the pooler still holds idle server connections to it.
      await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    } finally {
      await sql.close();
    }
  }

  storeContract(
    "PostgresStore through pgbouncer",
    pgStoreFactory(async () => {
      const db = await database();
      return {
        connect: (opts) =>
          PostgresStore.open(db.pooled, { directUrl: db.direct, trends: opts.trends, liveness: opts.liveness }),
        drop: () => drop(db.name),
      };
    }),
  );

  describe("replicas behind pgbouncer", () => {
    test("two replicas hear each other's writes on their direct LISTEN connections, and one of them holds the jobs lock", async () => {
      const db = await database();
      const [a, b] = await Promise.all([0, 1].map(() => PostgresStore.open(db.pooled, { directUrl: db.direct })));
      const heard: StoreChange[] = [];
      const stop = await b!.listen(
        (c) => heard.push(c),
        () => {},
      );
      const [la, lb] = [a!.leadership("jobs"), b!.leadership("jobs")];
      try {
        const id = (await a!.createOperation({ operation_type: "training" })).operation_id;
        // Many pooled transactions between the writes: a LISTEN or a session lock on a pooled connection would be lost.
        for (let e = 0; e < 20; e++) await a!.writeEpochs(id, [{ epoch: e, timestamp: TS, train_loss: 1 / (e + 1) }]);
        const epochs = await until("replica b to hear the 20 writes of replica a", () => {
          const v = heard.filter((c) => c.kind === "epochs" && c.operation_id === id);
          return v.length === 20 && v;
        });
        expect(epochs.map((c) => (c as { version: number }).version)).toEqual(
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
        expect(await la.check()).toBe(true);
        for (let i = 0; i < 20; i++) {
          await a!.getOperation(id);
          expect(await la.check()).toBe(true);
          expect(await lb.check()).toBe(false);
        }
      } finally {
        await stop();
        await la.close();
        await lb.close();
        await a!.close();
        await b!.close();
        await drop(db.name);
      }
    });

    test("a schema other than the database's default is refused: the pooler drops the search_path the store asks for", async () => {
      const db = await database();
      try {
        await expect(PostgresStore.open(db.pooled, { schema: "tw_other", directUrl: db.direct })).rejects.toThrow(
          /schema tw_other: the connection's search_path is "\\"\$user\\", public"/,
        );
        const sql = new SQL(db.direct, { max: 1 });
        const [{ n }] = await sql`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname IN ('public', 'tw_other')`;
        await sql.close();
        expect(n).toBe(0); // refused before it migrated anything
      } finally {
        await drop(db.name);
      }
    });
  });
});
