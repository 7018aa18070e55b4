/**
 * Versioned schema migrations, applied in order at start (PRAGMA user_version).
 * Epochs are one row per (operation, epoch) in a WITHOUT ROWID table keyed by the
 * operation's integer key, so 100 epochs of the 8 standard fields stay near 7 KB.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: operations and epochs
  `CREATE TABLE operations (
     id            INTEGER PRIMARY KEY,
     operation_id  TEXT NOT NULL UNIQUE,
     operation_type TEXT NOT NULL,
     name          TEXT,
     status        TEXT NOT NULL,
     created_at    TEXT NOT NULL,
     started_at    TEXT,
     completed_at  TEXT,
     total_epochs_planned INTEGER,
     error_message TEXT,
     metadata      TEXT NOT NULL DEFAULT '{}',
     result        TEXT,
     summary       TEXT NOT NULL,
     best_json     TEXT,
     last_seen_at  INTEGER
   );
   CREATE INDEX operations_status ON operations(status, id);
   CREATE INDEX operations_type ON operations(operation_type, id);
   CREATE TABLE epochs (
     op             INTEGER NOT NULL,
     epoch          INTEGER NOT NULL,
     train_loss     REAL,
     val_loss       REAL,
     train_accuracy REAL,
     val_accuracy   REAL,
     learning_rate  REAL,
     duration       REAL,
     ts             INTEGER NOT NULL,
     custom         TEXT,
     PRIMARY KEY (op, epoch)
   ) WITHOUT ROWID;`,
  // 2: why a failed operation failed, as data (store.ts FailureCode); the revive rule reads it instead of the message
  `ALTER TABLE operations ADD COLUMN failure_code TEXT;
   UPDATE operations SET failure_code = 'host_unreachable' WHERE status = 'failed' AND error_message = 'training host unreachable';`,
  // 3: chart summaries per block of epochs (src/trends/downsample.ts SpanSummary as JSON), kept by every write, so a chart
  //    of a long run reads about count / BLOCK summaries instead of every row; operations.chart_blocks = 1 once an
  //    operation's blocks cover all its epochs (new operations at once; older ones on their first chart read)
  `CREATE TABLE epoch_blocks (
     op      INTEGER NOT NULL,
     block   INTEGER NOT NULL,
     summary TEXT NOT NULL,
     PRIMARY KEY (op, block)
   ) WITHOUT ROWID;
   ALTER TABLE operations ADD COLUMN chart_blocks INTEGER NOT NULL DEFAULT 0;
   UPDATE operations SET chart_blocks = 1 WHERE NOT EXISTS (SELECT 1 FROM epochs WHERE epochs.op = operations.id);`,
  // 4: issue 12's stop signal: the trainer's hyper-parameters, the stop policy and the recorded stop decision, as JSON (NULL: none)
  `ALTER TABLE operations ADD COLUMN config TEXT;
   ALTER TABLE operations ADD COLUMN stop_policy TEXT;
   ALTER TABLE operations ADD COLUMN control TEXT;`,
  // 5: where an operation runs and on which host, as columns the server alone writes (src/operations/ownership.ts), so
  //    the watchdog never reads the client's metadata blob: one nested past SQLite's JSON depth (1,000) made its
  //    json_extract fail on every check. Backfilled from the blob; a blob SQLite cannot read (malformed, too deep) is
  //    external, and so is a location that is no known one.
  `ALTER TABLE operations ADD COLUMN location TEXT;
   ALTER TABLE operations ADD COLUMN host TEXT;
   UPDATE operations SET location = CASE
       WHEN NOT json_valid(metadata) THEN 'external'
       WHEN json_type(metadata, '$.location') IS NULL THEN NULL
       WHEN json_type(metadata, '$.location') = 'text'
         AND json_extract(metadata, '$.location') IN ('local', 'host', 'external', 'import')
         THEN json_extract(metadata, '$.location')
       ELSE 'external' END;
   UPDATE operations SET host = json_extract(metadata, '$.host')
     WHERE location = 'host' AND json_type(metadata, '$.host') = 'text';`,
  // 6: issue 20's bound on custom metric
  //    names. metric_names is the operation's distinct custom metric names as a sorted JSON array, kept by every write
  //    in its transaction (src/schemas/epoch.ts mergeMetricNames), so the limit check costs O(batch) and an export knows
  //    its columns without a scan; existing operations are filled in once from their epochs
  `ALTER TABLE operations ADD COLUMN metric_names TEXT NOT NULL DEFAULT '[]';
   UPDATE operations SET metric_names = (
     SELECT json_group_array(name) FROM (
       SELECT DISTINCT j.key AS name FROM epochs e, json_each(e.custom) j
       WHERE e.op = operations.id AND e.custom IS NOT NULL ORDER BY 1))
   WHERE EXISTS (SELECT 1 FROM epochs e WHERE e.op = operations.id AND e.custom IS NOT NULL);`,
  // 7: issue 22's steps. One row per (operation, step) in a WITHOUT ROWID table like epochs (`epoch` labels the epoch
  //    the step ran in; samples and tokens are cumulative counts), chart summaries per block of steps like epoch_blocks,
  //    the steps planned, and what a step write keeps on the operation: steps_completed (highest step + 1, the
  //    progress), step_state (src/operations/step_epochs.ts StepState as JSON: the open epoch's running sums and each
  //    epoch's step span, so deriving epoch records costs O(batch)). Every operation before it has no steps.
  `CREATE TABLE steps (
     op            INTEGER NOT NULL,
     step          INTEGER NOT NULL,
     epoch         INTEGER,
     train_loss    REAL,
     val_loss      REAL,
     val_accuracy  REAL,
     learning_rate REAL,
     grad_norm     REAL,
     duration      REAL,
     samples       REAL,
     tokens        REAL,
     ts            INTEGER NOT NULL,
     custom        TEXT,
     PRIMARY KEY (op, step)
   ) WITHOUT ROWID;
   CREATE TABLE step_blocks (
     op      INTEGER NOT NULL,
     block   INTEGER NOT NULL,
     summary TEXT NOT NULL,
     PRIMARY KEY (op, block)
   ) WITHOUT ROWID;
   ALTER TABLE operations ADD COLUMN total_steps_planned INTEGER;
   ALTER TABLE operations ADD COLUMN steps_completed INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE operations ADD COLUMN step_state TEXT;`,
  // 8: issue 23's judgement kept on write: src/trends/judgement_state.ts JudgeState (encodeJudge's bytes, a BLOB: SQLite
  //    keeps a BLOB as it is in a TEXT column; a JSON state an earlier build wrote reads as none and is rebuilt), advanced by every epoch
  //    write in its transaction (a step run's derived epochs included), so GET …/analysis reads it and a bounded tail
  //    instead of the whole history. NULL on the rows before it: the first analysis read of such an operation judges its
  //    history once and keeps the state (Store.keepJudgement); its next write would rebuild it too.
  `ALTER TABLE operations ADD COLUMN judgement TEXT;`,
  // 9: issue 23's step judgement, kept on write: src/trends/step_judgement.ts StepJudgementState as JSON (every step rule's
  //    bounded state), advanced by each step write over the rows it stored, so GET …/analysis of a step run reads one row.
  //    NULL before any step; a step run from before it is judged from its next step on.
  `ALTER TABLE operations ADD COLUMN step_judgement TEXT;`,
  // 10: issue 24's liveness for every run. watched_at: when a client first heartbeat for the operation (ms; NULL: never,
  //     and then it keeps the behaviour before it: never stale, never lost); cadence: src/operations/liveness.ts Cadence
  //     as JSON (the last row's time, the recent 32 intervals between writes and the longest gap), kept by every epoch
  //     and step write, so the hung rule reads O(1). The watchdog's query reads the running watched rows through the
  //     partial index, never a finished one.
  `ALTER TABLE operations ADD COLUMN watched_at INTEGER;
   ALTER TABLE operations ADD COLUMN cadence TEXT;
   CREATE INDEX operations_watched ON operations(last_seen_at) WHERE status = 'running' AND watched_at IS NOT NULL;`,
  // 11 (issue 24; 10 is the liveness part's): system metrics, a series of the run beside its epochs and steps, keyed by
  //    (operation, sample time in ms). The sample's groups (process, machine, up to 64 GPUs) stay one JSON text: a GPU
  //    count varies per machine, nothing is filtered or summed on them in SQL, and every read (chart, export, the
  //    latest for liveness) returns whole samples. The chart reads one sample per time bucket through this key.
  `CREATE TABLE system_samples (
     op     INTEGER NOT NULL,
     ts     INTEGER NOT NULL,
     sample TEXT NOT NULL,
     PRIMARY KEY (op, ts)
   ) WITHOUT ROWID;`,
  // 12: issue 24's alerts (SQLite 10 and 11 are issue 24's liveness and system metrics). alert_rules: a run's rules
  //    (src/schemas/alert.ts AlertRules as JSON; NULL: the server's defaults). alerts: the outbox, one row per fact (id
  //    deterministic, so a fact raised twice is stored once; seq orders delivery), its payload the generic webhook body.
  //    alert_deliveries: one row per alert and channel, the delivery log (state pending → delivered | failed, attempts,
  //    the receiver's last status, next_at in ms for the retry); a channel's pending rows go in seq order.
  `ALTER TABLE operations ADD COLUMN alert_rules TEXT;
   CREATE TABLE alerts (
     seq          INTEGER PRIMARY KEY AUTOINCREMENT,
     id           TEXT NOT NULL UNIQUE,
     operation_id TEXT NOT NULL,
     kind         TEXT NOT NULL,
     event        TEXT NOT NULL,
     payload      TEXT NOT NULL,
     created_at   TEXT NOT NULL
   );
   CREATE INDEX alerts_operation ON alerts(operation_id, seq);
   CREATE TABLE alert_deliveries (
     alert_id     TEXT NOT NULL,
     channel      TEXT NOT NULL,
     seq          INTEGER NOT NULL,
     state        TEXT NOT NULL,
     attempts     INTEGER NOT NULL DEFAULT 0,
     last_status  INTEGER,
     last_error   TEXT,
     next_at      INTEGER,
     delivered_at TEXT,
     PRIMARY KEY (alert_id, channel)
   ) WITHOUT ROWID;
   CREATE INDEX alert_deliveries_pending ON alert_deliveries(channel, seq) WHERE state = 'pending';`,
  // 13: issue 25's executors. executor: which one runs a declared training (src/executors: "local", "host", "slurm"),
  //     external_id: the run's id there (a process group id, a host URL, a Slurm job id); pending_reason and
  //     queue_position: why a pending operation waits and its place in the executor's queue, as the executor last
  //     said (read only while pending). All the server's own (src/operations/ownership.ts); NULL on older rows.
  `ALTER TABLE operations ADD COLUMN executor TEXT;
   ALTER TABLE operations ADD COLUMN external_id TEXT;
   ALTER TABLE operations ADD COLUMN pending_reason TEXT;
   ALTER TABLE operations ADD COLUMN queue_position INTEGER;`,
  // 14: issue 27's labels and search. tags (a sorted JSON array, read with the row) and group_name; the search's summary
  //     figures and flags as columns (src/store/search_columns.ts), kept by every epoch write in its transaction and
  //     backfilled here from the summary and the latest epoch; operation_tags, one row per (tag, operation), so
  //     `tags has "x"` is an index probe; operation_config, one row per leaf of a run's configuration, so
  //     `config.lr < 1e-3` is an index range. An operation row is ~1.7 KB (its summary, rule state and kept judgement),
  //     so a search never scans the table: operations_search holds every searchable column (a scan of it reads ~1/10 of
  //     the pages, in created_at order for the default sort: `flags.overfitting` counted over 20,000 runs in 45 ms from
  //     the table, 5 ms from it), and narrow indexes serve a filter or sort on one column (group, best_val_loss, flags).
  `ALTER TABLE operations ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
   ALTER TABLE operations ADD COLUMN group_name TEXT;
   ALTER TABLE operations ADD COLUMN best_val_loss REAL;
   ALTER TABLE operations ADD COLUMN best_epoch INTEGER;
   ALTER TABLE operations ADD COLUMN epochs_completed INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE operations ADD COLUMN final_loss REAL;
   ALTER TABLE operations ADD COLUMN final_val_loss REAL;
   ALTER TABLE operations ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
   UPDATE operations SET
     best_val_loss = CASE WHEN json_type(summary, '$.best_val_loss') IN ('integer', 'real') THEN json_extract(summary, '$.best_val_loss') END,
     best_epoch = json_extract(summary, '$.best_epoch'),
     epochs_completed = coalesce(json_extract(summary, '$.total_epochs_completed'), 0),
     flags = (CASE WHEN json_extract(summary, '$.is_overfitting') THEN 1 ELSE 0 END)
           | (CASE WHEN json_extract(summary, '$.is_plateaued') THEN 2 ELSE 0 END)
           | (CASE WHEN json_extract(summary, '$.is_diverging') THEN 4 ELSE 0 END)
           | (CASE WHEN json_extract(summary, '$.is_stalled') THEN 8 ELSE 0 END),
     final_loss = (SELECT CASE WHEN typeof(train_loss) = 'real' AND abs(train_loss) <= 1.7976931348623157e308 THEN train_loss END
                   FROM epochs WHERE op = operations.id ORDER BY epoch DESC LIMIT 1),
     final_val_loss = (SELECT CASE WHEN typeof(val_loss) = 'real' AND abs(val_loss) <= 1.7976931348623157e308 THEN val_loss END
                       FROM epochs WHERE op = operations.id ORDER BY epoch DESC LIMIT 1);
   CREATE TABLE operation_tags (
     tag TEXT NOT NULL,
     op  INTEGER NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
     PRIMARY KEY (tag, op)
   ) WITHOUT ROWID;
   CREATE INDEX operation_tags_op ON operation_tags(op);
   CREATE TABLE operation_config (
     op   INTEGER NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
     path TEXT NOT NULL,
     kind TEXT NOT NULL,
     num  REAL,
     str  TEXT,
     PRIMARY KEY (op, path)
   ) WITHOUT ROWID;
   CREATE INDEX operation_config_num ON operation_config(path, num);
   CREATE INDEX operation_config_str ON operation_config(path, str);
   INSERT OR IGNORE INTO operation_config (op, path, kind, num, str)
     SELECT o.id, replace(substr(t.fullkey, 3), '"', ''),
       CASE t.type WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' WHEN 'text' THEN 'string' ELSE t.type END,
       CASE WHEN t.type IN ('integer', 'real') THEN t.atom END, CASE WHEN t.type = 'text' THEN t.atom END
     FROM operations o, json_tree(o.config) t
     WHERE o.config IS NOT NULL AND json_valid(o.config) AND t.type <> 'object' AND t.fullkey NOT LIKE '%[%';
   CREATE INDEX operations_search ON operations(created_at, status, operation_type, group_name, name, started_at,
     completed_at, best_val_loss, best_epoch, epochs_completed, steps_completed, final_loss, final_val_loss, flags);
   CREATE INDEX operations_group ON operations(group_name);
   CREATE INDEX operations_best ON operations(best_val_loss);
   CREATE INDEX operations_flags ON operations(flags);`,
];
