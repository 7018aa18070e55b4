/**
 * Runs one script training: the recipe's argv (no shell) as a child in its own process group (setsid), its output
 * into the operation's log, and a stop that reaches the whole group: SIGTERM, then SIGKILL after the grace period
 * (TRAINWATCH_KILL_GRACE). A run is over only when no process of its group is left, so a data-loader worker or a
 * stray subprocess cannot keep a GPU busy after the operation says it stopped. The same runner serves the API
 * (local trainings) and the GPU host.
 *
 * The group id is written to `<logs>/<id>.pid` while the run lives: a process that died without stopping its
 * children (a crash, SIGKILL) kills what is left of them at its next start (`killLeftovers`).
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { argvOf, viaOf, type Params, type Recipe } from "../recipes/recipe.ts";
import { paramsText, runEnvironment } from "../recipes/run_env.ts";
import type { LogStore, ScriptLog } from "./logs.ts";

export const DEFAULT_KILL_GRACE_MS = 10_000;
/** Longest error message taken from a failed run's stderr. */
const MAX_ERROR_CHARS = 4000;

export interface ScriptJob {
  operationId: string;
  recipe: Recipe;
  params: Params;
  /** TRAINWATCH_URL and TRAINWATCH_TOKEN as the child should use them (the API, or the host on loopback). */
  apiUrl: string;
  token: string | null;
  /** GPU ids for CUDA_VISIBLE_DEVICES (empty: none visible). */
  devices: string[];
}

export interface ScriptExit {
  exit_code: number | null;
  signal: string | null;
  /** Stopped by cancel() (or a shutdown), not by itself. */
  stopped: boolean;
  /** The process could not be started at all (say the program does not exist). */
  spawn_error: string | null;
  /** The last lines of stderr. */
  stderr_tail: string[];
  duration_s: number;
}

export interface ScriptRun {
  pid: number | null;
  argv: string[];
  /** Resolves when the process and every member of its group are gone and the log is closed. Never rejects. */
  done: Promise<ScriptExit>;
  /** SIGTERM to the group, SIGKILL after the grace period. Idempotent. */
  cancel(): void;
}

export interface RunnerOptions {
  logs: LogStore;
  killGraceMs?: number;
  /** The parent's environment the child inherits, less TRAINWATCH_* (default process.env). */
  baseEnv?: Record<string, string | undefined>;
}

/** One line for a failed run's error_message: how it ended, then the last lines of stderr. */
export function failureMessage(exit: ScriptExit): string {
  const how = exit.spawn_error
    ? `could not start: ${exit.spawn_error}`
    : exit.signal
      ? `script killed by ${exit.signal}`
      : `script exited with code ${exit.exit_code}`;
  const tail = exit.stderr_tail.filter((l) => l.trim() !== "");
  let text = tail.length ? `${how}; last stderr lines:\n${tail.join("\n")}` : how;
  if (text.length > MAX_ERROR_CHARS)
    text = `${how}; last stderr lines:\n…${text.slice(-(MAX_ERROR_CHARS - how.length - 25))}`;
  return text;
}

/** The child's environment: the parent's less its TRAINWATCH_* (tokens stay in the parent), then the recipe's, then ours. */
export function childEnv(
  job: ScriptJob,
  base: Record<string, string | undefined>,
  paramsFile: string | null,
): Record<string, string> {
  const parent: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !k.startsWith("TRAINWATCH_")) parent[k] = v;
  const child = runEnvironment(parent, job.recipe.env, {
    url: job.apiUrl,
    operationId: job.operationId,
    token: job.token,
    paramsFile,
  });
  // A recipe that declares no GPU sees none, so the host's GPU count is what bounds GPU work.
  child.CUDA_VISIBLE_DEVICES = job.devices.join(",");
  return child;
}

/** Starts the job now. The returned run's `done` says how it ended; the caller decides what that means for the operation. */
export function startScript(job: ScriptJob, opts: RunnerOptions): ScriptRun {
  const { operationId: id, recipe } = job;
  const graceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const log = opts.logs.create(id);
  const startedAt = Date.now();
  const argv = argvOf(recipe, job.params);
  let paramsFile: string | null = null;
  if (viaOf(recipe).includes("file")) {
    paramsFile = join(opts.logs.dir, `${id}.params.json`);
    writeFileSync(paramsFile, paramsText(job.params));
  }
  const pidFile = join(opts.logs.dir, `${id}.pid`);
  log.note(
    `$ ${argv.map(quote).join(" ")}   (cwd ${recipe.cwd}${job.devices.length ? `, CUDA_VISIBLE_DEVICES=${job.devices.join(",")}` : ""})`,
  );

  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(argv, {
      cwd: recipe.cwd,
      env: childEnv(job, opts.baseEnv ?? process.env, paramsFile),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      detached: true,
    });
  } catch (err) {
    const message = (err as Error).message;
    log.note(`could not start ${JSON.stringify(argv[0])}: ${message}`);
    opts.logs.close(id);
    if (paramsFile) rmSync(paramsFile, { force: true });
    const exit: ScriptExit = {
      exit_code: null,
      signal: null,
      stopped: false,
      spawn_error: message,
      stderr_tail: [],
      duration_s: 0,
    };
    return { pid: null, argv, done: Promise.resolve(exit), cancel: () => {} };
  }
  const pgid = proc.pid;
  writeFileSync(pidFile, `${pgid}\n`);

  let stopped = false;
  let killTimer: ReturnType<typeof setTimeout> | null = null;
  const terminate = () => {
    if (killTimer) return;
    signalGroup(pgid, "SIGTERM");
    killTimer = setTimeout(() => {
      if (groupAlive(pgid)) {
        log.note(`still running ${graceMs / 1000} s after SIGTERM: sending SIGKILL to process group ${pgid}`);
        signalGroup(pgid, "SIGKILL");
      }
    }, graceMs);
  };

  const pumps = [
    pipe(proc.stdout as ReadableStream<Uint8Array>, "stdout", log),
    pipe(proc.stderr as ReadableStream<Uint8Array>, "stderr", log),
  ];
  const done = (async (): Promise<ScriptExit> => {
    const code = await proc.exited;
    // The leader is gone; what it started in its group goes too (SIGTERM, SIGKILL after the grace).
    if (groupAlive(pgid)) terminate();
    while (groupAlive(pgid)) await Bun.sleep(50);
    if (killTimer) clearTimeout(killTimer);
    // A process that left the group (its own setsid) may still hold the pipes: give the output a moment, not forever.
    await Promise.race([Promise.all(pumps), Bun.sleep(1000)]);
    const exit: ScriptExit = {
      exit_code: proc.signalCode ? null : code,
      signal: proc.signalCode === null ? null : String(proc.signalCode),
      stopped,
      spawn_error: null,
      stderr_tail: [...log.stderrTail],
      duration_s: Math.round((Date.now() - startedAt) / 100) / 10,
    };
    log.note(
      `${exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.exit_code}`} after ${exit.duration_s} s${stopped ? " (stopped by Trainwatch)" : ""}`,
    );
    opts.logs.close(id);
    rmSync(pidFile, { force: true });
    // Read by the script at its start; nothing needs it once its processes are gone.
    if (paramsFile) rmSync(paramsFile, { force: true });
    return exit;
  })();
  return {
    pid: pgid,
    argv,
    done,
    cancel: () => {
      if (stopped) return;
      stopped = true;
      log.note(`stopping: SIGTERM to process group ${pgid}`);
      terminate();
    },
  };
}

async function pipe(stream: ReadableStream<Uint8Array>, name: "stdout" | "stderr", log: ScriptLog): Promise<void> {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read())
      log.write(name, decoder.decode(r.value, { stream: true }));
  } catch {
    // the pipe broke with the process: what arrived is kept
  }
}

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);

function signalGroup(pgid: number, signal: "SIGTERM" | "SIGKILL"): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is gone already
  }
}

/** Members of process group `pgid` that are alive (zombies excluded), read from /proc; null where there is no /proc. */
export function groupMembers(pgid: number): number[] | null {
  if (!existsSync("/proc/self/stat")) return null;
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") out.push(Number(name));
  }
  return out;
}

/** True while some process of the group is alive. */
export function groupAlive(pgid: number): boolean {
  const members = groupMembers(pgid);
  if (members) return members.length > 0;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether process `pid` was started for operation `id` (its environment names it), so a reused pid is never killed. */
function startedFor(pid: number, id: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`TRAINWATCH_OPERATION_ID=${id}`);
  } catch {
    return false;
  }
}

/**
 * At start: the process groups a previous process of this machine left running (it died without stopping them).
 * Each member whose environment names its operation is killed; the pid files go. Returns the operation ids.
 */
export function killLeftovers(logsDir: string): string[] {
  if (!existsSync(logsDir)) return [];
  const ids: string[] = [];
  for (const name of readdirSync(logsDir)) {
    if (!name.endsWith(".pid")) continue;
    const id = name.slice(0, -4);
    const pgid = Number(readFileSync(join(logsDir, name), "utf8").trim());
    const members = Number.isInteger(pgid) && pgid > 1 ? (groupMembers(pgid) ?? []) : [];
    const ours = members.filter((pid) => startedFor(pid, id));
    for (const pid of ours) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    if (ours.length)
      console.warn(`[scripts] ${id}: killed ${ours.length} process(es) left by the previous run (group ${pgid})`);
    rmSync(join(logsDir, name), { force: true });
    ids.push(id);
  }
  return ids;
}
