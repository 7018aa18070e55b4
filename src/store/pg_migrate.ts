/**
 * The PostgreSQL migration runner: brings a schema to the version src/store/pg_migrations.ts describes, in one
 * transaction under an advisory lock (replicas may start together), and refuses a schema a newer server migrated.
 */
import type { SQL } from "bun";
import { PG_MIGRATIONS } from "./pg_migrations.ts";

/** The schema is newer than this server knows (a newer version migrated it): refuse rather than misread it. */
export class SchemaTooNewError extends Error {
  constructor(found: number, known: number) {
    super(`the PostgreSQL schema is at version ${found}, newer than this server's ${known}; upgrade the server`);
    this.name = "SchemaTooNewError";
  }
}

/** Creates `schema` when missing and applies the migrations it lacks. */
export async function migrate(sql: SQL, schema: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext(${`trainwatch.migrate.${schema}`}))`;
    // Under the lock: CREATE SCHEMA IF NOT EXISTS is not safe against itself, and replicas opening a new schema together
    // made one of them fail on pg_namespace's unique index (a CI run of tests/store.postgres.test.ts).
    await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await tx`CREATE TABLE IF NOT EXISTS trainwatch_schema_version (version integer NOT NULL)`;
    const rows: { version: number }[] = await tx`SELECT version FROM trainwatch_schema_version`;
    const from = rows[0]?.version ?? 0;
    if (from > PG_MIGRATIONS.length) throw new SchemaTooNewError(from, PG_MIGRATIONS.length);
    for (let v = from; v < PG_MIGRATIONS.length; v++) await tx.unsafe(PG_MIGRATIONS[v]!);
    if (rows.length === 0) await tx`INSERT INTO trainwatch_schema_version (version) VALUES (${PG_MIGRATIONS.length})`;
    else if (from < PG_MIGRATIONS.length)
      await tx`UPDATE trainwatch_schema_version SET version = ${PG_MIGRATIONS.length}`;
  });
}
