/**
 * The benches' database server and CPU accounting, shared by bench/store.ts and bench/scale.ts: a throwaway PostgreSQL
 * (.ci/postgres.sh, the server's default durability) or a given one, each run on a database of its own; the CPU
 * seconds of processes from /proc (a server process, a PostgreSQL server's postmaster and its backends, the machine);
 * and a probe of what the database's busy backends wait on during a load.
 */
import { SQL } from "bun";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

// The PostgreSQL server --------------------------------------------------------------------------------------------
export interface Pg {
  /** A database of this run's own. */
  url: string;
  describe: string;
  /** The server's postmaster pid when it runs on this machine and we may read its data directory, for its CPU. */
  postmaster: number | null;
  close(): Promise<void>;
}

/**
 * A database of this run's own on `given` (a server's URL), or on a throwaway server started with .ci/postgres.sh in a
 * temp dir (stopped by close(), and by the script itself once this process is gone) when `given` is undefined.
 */
export async function startPostgres(given: string | undefined): Promise<Pg> {
  let server: string;
  let stop = async () => {};
  let origin: string;
  if (given) {
    server = given;
    origin = "given";
  } else {
    // Its own folder under the temp dir: as root the server runs as `postgres`, which must reach it.
    const pgDir = mkdtempSync(join(tmpdir(), "trainwatch-bench-pg-"));
    const start = Bun.spawnSync(
      ["bash", join(ROOT, ".ci/postgres.sh"), "start", pgDir, "--owner-pid", String(process.pid)],
      { stdout: "pipe", stderr: "pipe" },
    );
    if (start.exitCode !== 0) throw new Error(`.ci/postgres.sh start failed: ${start.stderr.toString().trim()}`);
    server = start.stdout.toString().trim();
    origin = "throwaway (.ci/postgres.sh)";
    stop = async () => void Bun.spawnSync(["bash", join(ROOT, ".ci/postgres.sh"), "stop", pgDir]);
  }
  const admin = new SQL(server, { max: 1 });
  const database = `tw_bench_${Date.now().toString(36)}`;
  await admin.unsafe(`CREATE DATABASE "${database}"`);
  const settings = (
    await admin`
    SELECT current_setting('server_version') AS v, current_setting('fsync') AS fsync,
           current_setting('synchronous_commit') AS sc, current_setting('shared_buffers') AS sb,
           current_setting('data_directory', true) AS data`
  )[0] as Record<string, string | null>;
  let postmaster: number | null = null;
  try {
    postmaster = Number(readFileSync(join(settings.data!, "postmaster.pid"), "utf8").split("\n")[0]) || null;
  } catch {
    // Another machine's server, or no right to read its folder: its CPU is not shown.
  }
  const url = new URL(server);
  url.pathname = `/${database}`;
  return {
    url: url.toString(),
    postmaster,
    describe: `PostgreSQL ${settings.v} on loopback, ${origin}: fsync=${settings.fsync}, synchronous_commit=${settings.sc}, shared_buffers=${settings.sb}`,
    async close() {
      await admin.unsafe(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await admin.close();
      await stop();
    },
  };
}

// What the database does during a load ----------------------------------------------------------------------------

export interface Probed {
  walBytes: number;
  notifications: number;
  notifyBytes: number;
  /** Connections to the database at the end of the run, by application_name. */
  connections: Record<string, number>;
  /** Samples of pg_stat_activity: the most backends busy at once, and what busy backends waited on. */
  maxActive: number;
  waits: Map<string, number>;
  samples: number;
}

/**
 * Watches the database during the load from a connection of its own: the WAL it writes, the NOTIFYs every replica
 * hears (counted by listening on the same channel), and every `everyMs` what its busy backends wait on, which says
 * whether requests wait on the CPU, on the disk's WAL flush or on each other's row locks.
 */
export async function probe(url: string, everyMs = 50) {
  const sql = new SQL(url, { max: 2 });
  const wal = async () =>
    Number(((await sql`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 AS b`)[0] as { b: number }).b);
  let notifications = 0;
  let notifyBytes = 0;
  const sub = await sql.listen("trainwatch_public", (payload) => {
    notifications++;
    notifyBytes += payload.length;
  });
  const wal0 = await wal();
  const waits = new Map<string, number>();
  let maxActive = 0;
  let samples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const rows = (await sql`
        SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w FROM pg_stat_activity
        WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()`) as { w: string }[];
      samples++;
      maxActive = Math.max(maxActive, rows.length);
      for (const r of rows) waits.set(r.w, (waits.get(r.w) ?? 0) + 1);
      await Bun.sleep(everyMs);
    }
  })();
  return async (): Promise<Probed> => {
    sampling = false;
    await sampler;
    const walBytes = (await wal()) - wal0;
    const conns = (await sql`
      SELECT coalesce(nullif(application_name, ''), '(none)') AS app, count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1 ORDER BY 1`) as {
      app: string;
      n: number;
    }[];
    await sub.unlisten();
    await sql.close();
    return {
      walBytes,
      notifications,
      notifyBytes,
      connections: Object.fromEntries(conns.map((c) => [c.app, c.n])),
      maxActive,
      waits,
      samples,
    };
  };
}

/** How many backends were busy, and what they waited on ("CPU": not waiting). */
export function busyLine(p: Probed): string {
  const busy = [...p.waits.values()].reduce((a, b) => a + b, 0);
  const waits = [...p.waits]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([w, n]) => `${w} ${fmt((100 * n) / Math.max(1, busy))} %`)
    .join(", ");
  return `busy backends (${fmt(p.samples)} samples of pg_stat_activity): at most ${p.maxActive} at once, ${fmt(busy / Math.max(1, p.samples), 2)} on average; of their time: ${waits}`;
}

// CPU from /proc -------------------------------------------------------------------------------------------------

/** The fields of /proc/PID/stat after the command name (Linux), or null. */
export function statOf(pid: number | string): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  } catch {
    return null;
  }
}
/** utime + stime of a process, in seconds (0 where there is no /proc). */
export function cpuOf(pid: number): number {
  const f = statOf(pid);
  return f ? (Number(f[11]) + Number(f[12])) / 100 : 0;
}
/**
 * CPU seconds of a PostgreSQL server: the postmaster (with the backends it has reaped) and its live children (the
 * backends of the pools, the WAL writer, the checkpointer). Null when this run did not start the server.
 */
export function postgresCpu(postmaster: number | null): number | null {
  if (postmaster === null) return null;
  const own = statOf(postmaster);
  if (!own) return null;
  let total = own.slice(11, 15).reduce((a, b) => a + Number(b), 0) / 100; // utime stime cutime cstime
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const f = statOf(name);
    if (f && Number(f[1]) === postmaster) total += (Number(f[11]) + Number(f[12])) / 100;
  }
  return total;
}
/** Busy CPU seconds of the whole machine (every core), from /proc/stat. */
export function machineCpu(): number {
  try {
    const [, ...v] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
    const n = v.map(Number);
    return (n[0]! + n[1]! + n[2]! + n[5]! + n[6]! + n[7]!) / 100; // user nice system irq softirq steal
  } catch {
    return 0;
  }
}
