/**
 * Versioned schema migrations of the PostgreSQL store, applied in order at open inside one transaction that holds an
 * advisory lock, so replicas starting together migrate once (the version lives in trainwatch_schema_version).
 * The shape follows the SQLite store's (migrations.ts) with PostgreSQL types: float8 holds NaN and ±Infinity natively,
 * so a diverged loss is data, not NULL; JSON columns stay text so what was written reads back byte for byte (jsonb
 * would reorder a run's metadata keys). Epoch rows have no foreign key: the writer holds the operation's row lock
 * already, and checking a key per row would cost a second index probe for each of a batch's thousand rows.
 * Columns are ordered 8-byte first, so a row has no alignment padding.
 */
export const PG_MIGRATIONS: readonly string[] = [
  // 1: operations, epochs, and chart summaries per block of epochs (src/store/blocks.ts), kept by every write
  `CREATE TABLE operations (
     id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     operation_id   text NOT NULL UNIQUE,
     operation_type text NOT NULL,
     name           text,
     status         text NOT NULL,
     created_at     timestamptz NOT NULL,
     started_at     timestamptz,
     completed_at   timestamptz,
     total_epochs_planned integer,
     error_message  text,
     failure_code   text,
     metadata       text NOT NULL DEFAULT '{}',
     result         text,
     summary        text NOT NULL,
     best_json      text,
     last_seen_at   bigint,
     config         text,
     stop_policy    text,
     control        text
   );
   CREATE INDEX operations_status ON operations (status, id);
   CREATE INDEX operations_type ON operations (operation_type, id);
   CREATE TABLE epochs (
     op             bigint NOT NULL,
     ts             bigint NOT NULL,
     train_loss     float8,
     val_loss       float8,
     train_accuracy float8,
     val_accuracy   float8,
     learning_rate  float8,
     duration       float8,
     epoch          integer NOT NULL,
     custom         text,
     PRIMARY KEY (op, epoch)
   );
   CREATE TABLE epoch_blocks (
     op             bigint NOT NULL,
     block          integer NOT NULL,
     summary        text NOT NULL,
     PRIMARY KEY (op, block)
   );`,
  // 2: replicas. epoch_version counts an operation's epoch writes: each write's NOTIFY carries it, so a stream joining on
  // any replica knows which live batches its replay already holds. A local training's owner (a replica id) renews
  // lease_until while it runs; once the lease runs out, another replica marks the training interrupted.
  `ALTER TABLE operations ADD COLUMN epoch_version bigint NOT NULL DEFAULT 0;
   ALTER TABLE operations ADD COLUMN owner text;
   ALTER TABLE operations ADD COLUMN lease_until bigint;
   CREATE INDEX operations_leases ON operations (lease_until) WHERE owner IS NOT NULL AND status IN ('pending', 'running');`,
  // 3: where an operation runs and on which host, as columns the server alone writes (SQLite's migration 5). Backfilled
  // row by row, each in its own exception block: a blob PostgreSQL cannot parse (malformed, or nested so deep that
  // parsing exceeds the stack depth limit) reads external instead of aborting the migration.
  `ALTER TABLE operations ADD COLUMN location text;
   ALTER TABLE operations ADD COLUMN host text;
   DO $$
   DECLARE
     r record;
     m json;
   BEGIN
     FOR r IN SELECT id, metadata FROM operations WHERE metadata LIKE '%"location"%' LOOP
       BEGIN
         m := r.metadata::json;
         UPDATE operations SET
           location = CASE
             WHEN json_typeof(m) <> 'object' OR m->'location' IS NULL THEN NULL
             WHEN m->>'location' IN ('local', 'host', 'external', 'import') AND json_typeof(m->'location') = 'string'
               THEN m->>'location'
             ELSE 'external' END,
           host = CASE
             WHEN m->>'location' = 'host' AND json_typeof(m->'location') = 'string' AND json_typeof(m->'host') = 'string'
               THEN m->>'host' END
         WHERE id = r.id;
       EXCEPTION WHEN others THEN
         UPDATE operations SET location = 'external', host = NULL WHERE id = r.id;
       END;
     END LOOP;
   END $$;`,
  // 4: issue 20's bound on custom metric
  // names, as SQLite's migration 6: the operation's distinct custom metric names as a sorted JSON array, kept by every
  // write in its transaction, filled in once from the epochs of existing operations (COLLATE "C": JavaScript's order).
  `ALTER TABLE operations ADD COLUMN metric_names text NOT NULL DEFAULT '[]';
   UPDATE operations o SET metric_names = (
     SELECT json_agg(n.name ORDER BY n.name COLLATE "C")::text FROM (
       SELECT DISTINCT json_object_keys(e.custom::json) AS name FROM epochs e WHERE e.op = o.id AND e.custom IS NOT NULL) n)
   WHERE EXISTS (SELECT 1 FROM epochs e WHERE e.op = o.id AND e.custom IS NOT NULL);`,
  // 5: issue 22's steps, as SQLite's migration 7 (8-byte columns first, no padding); step_version counts an operation's
  // step writes as epoch_version counts its epoch writes (each write's NOTIFY carries it). Idempotent (IF NOT EXISTS), so a
  // schema rolled back to an earlier version migrates again.
  `CREATE TABLE IF NOT EXISTS steps (
     op            bigint NOT NULL,
     ts            bigint NOT NULL,
     train_loss    float8,
     val_loss      float8,
     val_accuracy  float8,
     learning_rate float8,
     grad_norm     float8,
     duration      float8,
     samples       float8,
     tokens        float8,
     step          integer NOT NULL,
     epoch         integer,
     custom        text,
     PRIMARY KEY (op, step)
   );
   CREATE TABLE IF NOT EXISTS step_blocks (
     op      bigint NOT NULL,
     block   integer NOT NULL,
     summary text NOT NULL,
     PRIMARY KEY (op, block)
   );
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS total_steps_planned integer;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS steps_completed integer NOT NULL DEFAULT 0;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS step_state text;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS step_version bigint NOT NULL DEFAULT 0;`,
  // 6: issue 23's judgement kept on write, as SQLite's migration 8 (NULL before it: kept by the first analysis read or
  // the next write). Idempotent, like 5.
  `ALTER TABLE operations ADD COLUMN IF NOT EXISTS judgement text;`,
  // 7: issue 23's step judgement kept on write, as SQLite's migration 9. Idempotent, like 5.
  `ALTER TABLE operations ADD COLUMN IF NOT EXISTS step_judgement text;`,
  // 8: the judgement kept on write as encodeJudge's bytes (src/trends/judgement_state.ts), no longer JSON: states an
  // earlier build wrote are dropped, and kept again by the next analysis read or write.
  `ALTER TABLE operations ALTER COLUMN judgement TYPE bytea USING NULL;`,
  // 9: issue 24's liveness for every run, as SQLite's migration 10: watched_at (the first client heartbeat, ms), cadence
  // (the row intervals, JSON), and the partial index the client watchdog reads. Idempotent, like 5.
  `ALTER TABLE operations ADD COLUMN IF NOT EXISTS watched_at bigint;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS cadence text;
   CREATE INDEX IF NOT EXISTS operations_watched ON operations(last_seen_at) WHERE status = 'running' AND watched_at IS NOT NULL;`,
  // 10 (issue 24; 9 is the liveness part's): system metrics, as SQLite's migration 11 (the sample one JSON text, keyed
  // by operation and sample time in ms). Idempotent, like 5.
  `CREATE TABLE IF NOT EXISTS system_samples (
     op     bigint NOT NULL,
     ts     bigint NOT NULL,
     sample text NOT NULL,
     PRIMARY KEY (op, ts)
   );`,
  // 11: issue 24's alerts, as SQLite's migration 12 (PostgreSQL 9 and 10 are issue 24's liveness and system metrics).
  // Idempotent, like 5.
  `ALTER TABLE operations ADD COLUMN IF NOT EXISTS alert_rules text;
   CREATE TABLE IF NOT EXISTS alerts (
     seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
     id           text PRIMARY KEY,
     operation_id text NOT NULL,
     kind         text NOT NULL,
     event        text NOT NULL,
     payload      text NOT NULL,
     created_at   timestamptz NOT NULL
   );
   CREATE INDEX IF NOT EXISTS alerts_operation ON alerts(operation_id, seq);
   CREATE TABLE IF NOT EXISTS alert_deliveries (
     alert_id     text NOT NULL,
     channel      text NOT NULL,
     seq          bigint NOT NULL,
     state        text NOT NULL,
     attempts     integer NOT NULL DEFAULT 0,
     last_status  integer,
     last_error   text,
     next_at      bigint,
     delivered_at text,
     PRIMARY KEY (alert_id, channel)
   );
   CREATE INDEX IF NOT EXISTS alert_deliveries_pending ON alert_deliveries(channel, seq) WHERE state = 'pending';`,
  // 12: issue 25's executors, as SQLite's migration 13 (executor, external_id, pending_reason, queue_position).
  // Idempotent, like 5.
  `ALTER TABLE operations ADD COLUMN IF NOT EXISTS executor text;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS external_id text;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS pending_reason text;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS queue_position integer;`,
  // 13: issue 27's labels and search, as SQLite's migration 14 (tags, group_name, the summary's search columns
  // backfilled from the summary and the latest epoch, operation_tags, operation_config backfilled from the
  // configuration's leaves, the indexes). Idempotent, like 5.
  `ALTER TABLE operations ADD COLUMN IF NOT EXISTS tags text NOT NULL DEFAULT '[]';
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS group_name text;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS best_val_loss float8;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS final_loss float8;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS final_val_loss float8;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS best_epoch integer;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS epochs_completed integer NOT NULL DEFAULT 0;
   ALTER TABLE operations ADD COLUMN IF NOT EXISTS flags integer NOT NULL DEFAULT 0;
   UPDATE operations o SET
     best_val_loss = CASE WHEN jsonb_typeof(s.j -> 'best_val_loss') = 'number' THEN (s.j ->> 'best_val_loss')::float8 END,
     best_epoch = (s.j ->> 'best_epoch')::integer,
     epochs_completed = coalesce((s.j ->> 'total_epochs_completed')::integer, 0),
     flags = (CASE WHEN s.j -> 'is_overfitting' = 'true' THEN 1 ELSE 0 END)
           | (CASE WHEN s.j -> 'is_plateaued' = 'true' THEN 2 ELSE 0 END)
           | (CASE WHEN s.j -> 'is_diverging' = 'true' THEN 4 ELSE 0 END)
           | (CASE WHEN s.j -> 'is_stalled' = 'true' THEN 8 ELSE 0 END),
     final_loss = (SELECT CASE WHEN e.train_loss NOT IN ('NaN', 'Infinity', '-Infinity') THEN e.train_loss END
                   FROM epochs e WHERE e.op = o.id ORDER BY e.epoch DESC LIMIT 1),
     final_val_loss = (SELECT CASE WHEN e.val_loss NOT IN ('NaN', 'Infinity', '-Infinity') THEN e.val_loss END
                       FROM epochs e WHERE e.op = o.id ORDER BY e.epoch DESC LIMIT 1)
   FROM (SELECT id, summary::jsonb AS j FROM operations) s WHERE s.id = o.id;
   CREATE TABLE IF NOT EXISTS operation_tags (
     op  bigint NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
     tag text NOT NULL,
     PRIMARY KEY (tag, op)
   );
   CREATE INDEX IF NOT EXISTS operation_tags_op ON operation_tags(op);
   CREATE TABLE IF NOT EXISTS operation_config (
     op   bigint NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
     num  float8,
     path text NOT NULL,
     kind text NOT NULL,
     str  text,
     PRIMARY KEY (op, path)
   );
   CREATE INDEX IF NOT EXISTS operation_config_num ON operation_config(path, num);
   CREATE INDEX IF NOT EXISTS operation_config_str ON operation_config(path, str COLLATE "C");
   WITH RECURSIVE leaves(op, path, v) AS (
     SELECT o.id, e.key, e.value FROM operations o, jsonb_each(o.config::jsonb) e
       WHERE o.config IS NOT NULL AND jsonb_typeof(o.config::jsonb) = 'object'
     UNION ALL
     SELECT l.op, l.path || '.' || e.key, e.value FROM leaves l, jsonb_each(l.v) e WHERE jsonb_typeof(l.v) = 'object'
   )
   INSERT INTO operation_config (op, path, kind, num, str)
     SELECT op, path, CASE jsonb_typeof(v) WHEN 'boolean' THEN v #>> '{}' ELSE jsonb_typeof(v) END,
       CASE WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{}')::float8 END,
       CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}' END
     FROM leaves WHERE jsonb_typeof(v) <> 'object'
   ON CONFLICT DO NOTHING;
   CREATE INDEX IF NOT EXISTS operations_group ON operations(group_name);
   CREATE INDEX IF NOT EXISTS operations_created ON operations(created_at);
   CREATE INDEX IF NOT EXISTS operations_best ON operations(best_val_loss);`,
];
