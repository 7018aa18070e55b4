// Layers point one way: a table of forbidden import edges between the folders of src/, checked by scanning every
// module's imports (transitively through src/, so a forbidden module reached through a third one counts too), and
// the pure core's own stricter rule: nothing under src/trends may reach for the runtime, the file system or the network.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = join(import.meta.dir, "..");
const SRC = join(ROOT, "src");
const TRENDS_DIR = join(SRC, "trends");

const FORBIDDEN_MODULES = [/^bun(:|$)/, /^node:/, /^elysia(\/|$)/, /^@elysiajs\//, /^fs(\/|$)/];
const FORBIDDEN_GLOBALS: [RegExp, string][] = [
  [/\bfetch\b/, "fetch"],
  [/\bBun\b/, "Bun global"],
  [/\bprocess\b/, "process global"],
  [/\brequire\s*\(/, "require()"],
];

/** Comments may mention anything; code may not. Block comments, and line comments that start a line or follow whitespace. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|\s)\/\/.*$/gm, "$1");
}

/** Every module a file imports or re-exports, statically or dynamically (type-only imports included: they are edges too). */
function importedModules(code: string): string[] {
  const patterns = [
    /\b(?:import|export)\b[^'"`;]*?\bfrom\s*["'`]([^"'`]+)["'`]/g,
    // A side-effect import starts a statement: the word "import" inside a string ("import"] say) is no import.
    /(?:^|;)\s*import\s*["'`]([^"'`]+)["'`]/gm,
    /\bimport\s*\(\s*["'`]([^"'`]+)["'`]/g,
  ];
  return patterns.flatMap((re) => [...code.matchAll(re)].map((m) => m[1]!));
}

/** Why `source` breaks purity; empty when it is pure. Only relative imports inside src/trends are allowed. */
function purityViolations(source: string): string[] {
  const code = stripComments(source);
  const problems: string[] = [];
  for (const mod of importedModules(code)) {
    if (FORBIDDEN_MODULES.some((re) => re.test(mod))) problems.push(`imports "${mod}"`);
    else if (!mod.startsWith("./")) problems.push(`imports "${mod}" from outside src/trends`);
  }
  if (/\bimport\s*\(/.test(code) && !/\bimport\s*\(\s*["'`]/.test(code)) problems.push("computed dynamic import()");
  for (const [re, what] of FORBIDDEN_GLOBALS) if (re.test(code)) problems.push(`uses ${what}`);
  return problems;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|tsx|js|mjs|cjs)$/.test(name) ? [path] : [];
  });
}

/** A module's name as the rules spell it: "src/…" for files of the tree, the bare specifier for packages and built-ins. */
type Graph = Map<string, string[]>;

/** Every module under src/ and what it imports, relative imports resolved to "src/…" paths. */
function importGraph(): Graph {
  const graph: Graph = new Map();
  for (const file of sourceFiles(SRC)) {
    const code = stripComments(readFileSync(file, "utf8"));
    const edges = importedModules(code).map((mod) =>
      mod.startsWith(".") ? relative(ROOT, resolve(dirname(file), mod)) : mod,
    );
    graph.set(relative(ROOT, file), edges);
  }
  return graph;
}

/**
 * One forbidden edge: no module under `from` may import one matching `to`. Transitive rules follow imports through
 * src/ (a type-only import through a third module counts: the dependency points the same way).
 */
interface Rule {
  from: string;
  to: RegExp;
  why: string;
  transitive: boolean;
}

const under = (...dirs: string[]) => new RegExp(`^(${dirs.map((d) => d.replace(/[.]/g, "\\.")).join("|")})(/|$)`);

/** The pure parts of src/operations: rules the service applies, with no I/O of their own. */
const PURE_OPERATIONS = [
  "src/operations/step_epochs.ts",
  "src/operations/lifecycle.ts",
  "src/operations/progress.ts",
  "src/operations/stop_policy.ts",
  "src/operations/judgement.ts",
  "src/operations/liveness.ts",
  "src/operations/ownership.ts",
];

/** The alert rules and payloads: pure functions the write algorithm, the service and the worker call. */
const PURE_ALERTS = ["src/alerts/rules.ts", "src/alerts/payload.ts"];

/** The TensorBoard codec: TFRecord framing, Event messages, epochs ↔ scalars. Bytes in, bytes or records out. */
const PURE_TENSORBOARD = ["src/tensorboard/tfrecord.ts", "src/tensorboard/events.ts", "src/tensorboard/metrics.ts"];

const RULES: Rule[] = [
  {
    from: "src/schemas",
    to: under(
      "src/routes",
      "src/http",
      "src/store",
      "src/trainer",
      "src/host",
      "src/host_pool",
      "src/mcp",
      "src/app.ts",
      "src/operations/service.ts",
      "src/operations/fanout.ts",
      "src/server.ts",
    ),
    why: "schemas are the bottom layer: validation, OpenAPI and MCP read them",
    transitive: true,
  },
  {
    from: "src/client",
    to: under("src/routes", "src/http", "src/store", "src/mcp", "src/app.ts", "src/server.ts"),
    why: "the typed client speaks the wire, not the server's code",
    transitive: true,
  },
  {
    from: "src/routes",
    to: under("src/mcp"),
    why: "MCP calls the routes through the app, never the other way",
    transitive: true,
  },
  {
    from: "src/mcp",
    to: under("src/routes", "src/store", "src/operations/service.ts", "src/operations/fanout.ts"),
    why: "MCP tools call the API through the app (app.handle), so they share its validation and auth",
    transitive: true,
  },
  {
    from: "src/http",
    to: under(
      "src/routes",
      "src/mcp",
      "src/store",
      "src/host",
      "src/host_pool",
      "src/trainer",
      "src/app.ts",
      "src/operations",
    ),
    why: "HTTP plumbing is shared by the API, the host and MCP, so it knows none of them",
    transitive: true,
  },
  {
    from: "src/host",
    to: under(
      "src/store/store.ts",
      "src/store/sqlite.ts",
      "src/store/migrations.ts",
      "src/store/postgres.ts",
      "src/store/pg_migrations.ts",
      "src/store/rows.ts",
      "src/store/blocks.ts",
      "src/store/pg_leader.ts",
      "src/store/pg_leases.ts",
      "src/store/pg_migrate.ts",
      "src/store/pg_notify.ts",
      "src/store/pg_copy.ts",
      "src/store/write_epochs.ts",
      "src/store/operation_changes.ts",
      "src/store/ids.ts",
      "src/routes",
      "src/host_pool",
      "src/mcp",
      "src/app.ts",
      "src/operations/service.ts",
      "src/operations/fanout.ts",
      "src/server.ts",
    ),
    why: "the GPU host runs without the API's store, routes or host pool",
    transitive: true,
  },
  {
    from: "src/host_pool",
    to: under("src/host", "src/routes", "src/mcp"),
    why: "the API's side of hosts talks to them over HTTP (src/client), not by importing the host's code",
    transitive: true,
  },
  {
    from: "src/executors",
    to: under(
      "src/routes",
      "src/http",
      "src/mcp",
      "src/trainer",
      "src/host_pool",
      "src/script_trainings",
      "src/store/sqlite.ts",
      "src/store/postgres.ts",
      "src/app.ts",
      "src/server.ts",
    ),
    why: "an executor adapts a runner it is given (interfaces of its own) through the operations service: it imports neither the runners nor how the API serves them",
    transitive: true,
  },
  {
    from: "src/trainer",
    to: under("src/routes", "src/http", "src/mcp", "src/app.ts", "src/server.ts"),
    why: "whoever runs trainings does not know how the API serves them",
    transitive: true,
  },
  {
    from: "src/store",
    to: under(
      "src/routes",
      "src/http",
      "src/mcp",
      "src/operations/service.ts",
      "src/operations/fanout.ts",
      "src/app.ts",
      "src/trainer",
      "src/host",
      "src/host_pool",
      "src/alerts/service.ts",
      "src/alerts/deliver.ts",
    ),
    why: "the store persists; it calls nobody above it",
    transitive: true,
  },
  {
    from: "src/recipes/recipe.ts",
    to: /^(?!src\/recipes\/recipe\.ts$|src\/schemas\/|src\/errors\.ts$|@sinclair\/typebox(\/|$))/,
    why: "recipe rules are pure: schemas and errors only (no files, no processes; the book reads the file)",
    transitive: false,
  },
  {
    from: "src/recipes",
    to: under(
      "src/routes",
      "src/mcp",
      "src/host",
      "src/host_pool",
      "src/script_trainings",
      "src/trainer",
      "src/store",
      "src/operations",
      "src/app.ts",
      "src/server.ts",
    ),
    why: "the recipe book is read by the API and the GPU host alike, and by the runner: it knows none of them",
    transitive: true,
  },
  {
    from: "src/script_trainings",
    to: under("src/routes", "src/mcp", "src/host_pool", "src/store/sqlite.ts", "src/app.ts", "src/server.ts"),
    why: "the script runner serves the API and the GPU host alike, so it knows neither's serving code",
    transitive: true,
  },
  {
    from: "src/executors/slurm_states.ts",
    to: /./,
    why: "the Slurm state table is a pure function of a job's state: it imports nothing",
    transitive: false,
  },
  {
    from: "src/executors/slurm_script.ts",
    to: /^(?!src\/(errors|recipes\/run_env)\.ts$)/,
    why: "the batch-script builder is pure: errors and the run's environment rule only (no files, no processes)",
    transitive: false,
  },
  {
    from: "src/executors/slurm_rest.ts",
    to: under("src/routes", "src/http", "src/mcp", "src/store", "src/operations", "src/app.ts", "src/server.ts"),
    why: "the Slurm client speaks slurmrestd's wire and knows nothing of the server it serves",
    transitive: true,
  },
  {
    from: "src/trends",
    to: /^(?!src\/trends\/)/,
    why: "the pure core imports only itself (no bun:*, node:*, elysia, packages)",
    transitive: false,
  },
  {
    from: "src/host/relay_policy.ts",
    to: /./,
    why: "the relay policy is a pure function of status and attempt: it imports nothing (no client, no clock, no file)",
    transitive: false,
  },
  {
    from: "src/schemas/defaults.ts",
    to: /./,
    why: "the dashboard runs the defaults table as is (src/routes/dashboard.ts), so it imports nothing",
    transitive: false,
  },
  {
    from: "src/schemas/fields.ts",
    to: /./,
    why: "the dashboard runs the standard field list as is (src/routes/dashboard.ts), so it imports nothing",
    transitive: false,
  },
  {
    from: "src/operations/progress.ts",
    to: /./,
    why: "the dashboard runs the progress rule as is (src/routes/dashboard.ts), so it imports nothing",
    transitive: false,
  },
  // The operations service writes through the store and is called by the routes, the trainers and the hosts: never the other way.
  {
    from: "src/operations",
    to: under(
      "src/routes",
      "src/http/index.ts",
      "src/http/openapi.ts",
      "src/mcp",
      "src/trainer",
      "src/host",
      "src/host_pool",
      "src/script_trainings",
      "src/app.ts",
      "src/server.ts",
      "src/startup.ts",
    ),
    why: "the operations service sits under the routes, trainers and hosts that call it (only the SSE framing of http/ is shared)",
    transitive: true,
  },
  ...PURE_OPERATIONS.map((from) => ({
    from,
    to: /^(?!src\/(schemas|trends)\/|src\/errors\.ts$|src\/operations\/(lifecycle|progress|stop_policy|judgement|liveness|ownership)\.ts$|@sinclair\/typebox(\/|$))/,
    why: "the operation rules are pure: schemas, the trend core and errors only (no store, no runtime, no clock)",
    transitive: true,
  })),
  ...PURE_ALERTS.map((from) => ({
    from,
    to: /^(?!src\/(schemas|trends)\/|src\/alerts\/(rules|payload)\.ts$|@sinclair\/typebox(\/|$))/,
    why: "the alert rules and payloads are pure: schemas and the trend core only (no store, no network, no clock)",
    transitive: true,
  })),
  {
    from: "src/alerts",
    to: under(
      "src/routes",
      "src/http/index.ts",
      "src/mcp",
      "src/trainer",
      "src/host",
      "src/host_pool",
      "src/app.ts",
      "src/server.ts",
    ),
    why: "alerts sit under the routes and the server that call them",
    transitive: true,
  },
  ...PURE_TENSORBOARD.map((from) => ({
    from,
    to: /^(?!src\/(schemas|trends)\/|src\/errors\.ts$|src\/tensorboard\/(tfrecord|events|metrics)\.ts$|@sinclair\/typebox(\/|$)|@aws-crypto\/crc32c$|@bufbuild\/protobuf\/wire$)/,
    why: "the TensorBoard codec is pure: schemas, the trend core, its CRC32C and protobuf wire packages only (no files, no clock)",
    transitive: true,
  })),
  {
    from: "src/cli.ts",
    to: under(
      "src/routes",
      "src/http",
      "src/store",
      "src/operations",
      "src/tensorboard",
      "src/app.ts",
      "src/server.ts",
    ),
    why: "the command line talks to a server through the typed client, never its code",
    transitive: true,
  },
  {
    from: "src/tensorboard",
    to: under(
      "src/routes",
      "src/http",
      "src/mcp",
      "src/trainer",
      "src/host",
      "src/host_pool",
      "src/app.ts",
      "src/server.ts",
    ),
    why: "the TensorBoard mirror and import write through the operations service; the routes call them, never the other way",
    transitive: true,
  },
];

/**
 * Edges that break a rule today and are known debt (issue 11), written out so they cannot grow unnoticed: the scan
 * does not follow them, and a test fails once one is gone, so the list only shrinks.
 */
const KNOWN_DEBT: [string, string][] = [
  // Empty: StartupError moved to src/errors.ts, so src/store/database.ts no longer reaches src/startup.ts (and http/).
];
const isDebt = (from: string, to: string) => KNOWN_DEBT.some(([f, t]) => f === from && t === to);

/** Modules reachable from `start` through src/ (start excluded), each with the chain that reaches it. */
function reachable(graph: Graph, start: string, transitive: boolean): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const queue: [string, string[]][] = [[start, [start]]];
  while (queue.length > 0) {
    const [mod, path] = queue.shift()!;
    for (const next of graph.get(mod) ?? []) {
      if (seen.has(next) || next === start || isDebt(mod, next)) continue;
      seen.set(next, [...path, next]);
      if (transitive && graph.has(next)) queue.push([next, [...path, next]]);
    }
  }
  return seen;
}

/** Every broken rule, as "chain (why)" lines; empty when the layers point one way. */
function layeringViolations(graph: Graph, rules: Rule[] = RULES): string[] {
  const problems: string[] = [];
  for (const rule of rules) {
    for (const mod of graph.keys()) {
      if (!under(rule.from).test(mod)) continue;
      for (const [target, chain] of reachable(graph, mod, rule.transitive)) {
        if (under(rule.from).test(target) && rule.from !== "src/trends") continue;
        if (rule.to.test(target)) problems.push(`${chain.join(" → ")} (${rule.from} ↛ ${target}: ${rule.why})`);
      }
    }
  }
  return problems;
}

/**
 * Routes are leaves: a route file imports no other file of src/routes/ (only deps.ts, the type of what createApp hands
 * every route), so what two routes share lives below them (shapes in src/schemas/, reads in src/operations/ and
 * src/store/), and no route grows into a hub the others lean on. Returns the offending "from → to" edges.
 */
function siblingRouteImports(graph: Graph): string[] {
  const isRoute = (m: string) => m.startsWith("src/routes/") && m !== "src/routes/deps.ts";
  return [...graph].flatMap(([from, tos]) =>
    from.startsWith("src/routes/") ? tos.filter(isRoute).map((to) => `${from} → ${to}`) : [],
  );
}

describe("layers point one way", () => {
  const graph = importGraph();

  test("every folder a rule names exists and is scanned", () => {
    const mods = [...graph.keys()];
    for (const rule of RULES) expect(mods.some((m) => under(rule.from).test(m))).toBe(true);
    expect(mods.length).toBeGreaterThanOrEqual(60);
  });

  test("no module imports across a forbidden edge, directly or through others", () => {
    expect(layeringViolations(graph)).toEqual([]);
  });

  test("routes import no sibling route", () => {
    expect(graph.has("src/routes/operations.ts")).toBe(true);
    expect(siblingRouteImports(graph)).toEqual([]);
  });

  test("the sibling check catches a route that imports another, and lets deps.ts and lower layers through", () => {
    const g: Graph = new Map([
      ["src/routes/a.ts", ["src/routes/deps.ts", "src/routes/b.ts", "src/store/load.ts"]],
      ["src/routes/b.ts", ["src/schemas/query.ts"]],
    ]);
    expect(siblingRouteImports(g)).toEqual(["src/routes/a.ts → src/routes/b.ts"]);
  });

  test("every known-debt edge still exists (delete it from KNOWN_DEBT once fixed)", () => {
    for (const [from, to] of KNOWN_DEBT) expect(graph.get(from) ?? []).toContain(to);
  });

  test("the check catches a forbidden edge reached through a third module", () => {
    const g: Graph = new Map([
      ["src/host/a.ts", ["src/schemas/x.ts"]],
      ["src/schemas/x.ts", ["src/store/store.ts"]],
      ["src/store/store.ts", []],
    ]);
    const problems = layeringViolations(g);
    expect(problems.some((p) => p.startsWith("src/host/a.ts → src/schemas/x.ts → src/store/store.ts"))).toBe(true);
    expect(problems.some((p) => p.startsWith("src/schemas/x.ts → src/store/store.ts"))).toBe(true);
  });

  test("imports inside a layer and down the layers are fine", () => {
    const g: Graph = new Map([
      ["src/routes/a.ts", ["src/routes/b.ts", "src/http/index.ts", "src/schemas/x.ts", "elysia"]],
      ["src/routes/b.ts", ["src/store/store.ts"]],
      ["src/http/index.ts", ["src/schemas/x.ts"]],
      ["src/schemas/x.ts", ["@sinclair/typebox"]],
      ["src/store/store.ts", ["src/schemas/x.ts"]],
    ]);
    expect(layeringViolations(g)).toEqual([]);
  });
});

describe("src/trends is pure", () => {
  const files = sourceFiles(TRENDS_DIR);

  test("the core exists and is scanned", () => {
    expect(files.map((f) => relative(TRENDS_DIR, f))).toContain("index.ts");
    expect(files.length).toBeGreaterThanOrEqual(8);
  });

  for (const file of files) {
    test(`${relative(TRENDS_DIR, file)} imports nothing with I/O`, () => {
      expect(purityViolations(readFileSync(file, "utf8"))).toEqual([]);
    });
  }
});

describe("the TensorBoard codec is pure", () => {
  for (const file of PURE_TENSORBOARD) {
    test(`${file} reaches for no runtime, file system or network`, () => {
      const code = stripComments(readFileSync(join(ROOT, file), "utf8"));
      expect(FORBIDDEN_GLOBALS.filter(([re]) => re.test(code)).map(([, what]) => what)).toEqual([]);
      expect(importedModules(code).filter((m) => FORBIDDEN_MODULES.some((re) => re.test(m)))).toEqual([]);
    });
  }
});

describe("src/host/relay_policy.ts is pure", () => {
  test("it reaches for no runtime, file system or network", () => {
    expect(purityViolations(readFileSync(join(SRC, "host", "relay_policy.ts"), "utf8"))).toEqual([]);
  });
});

describe("the purity check catches offenders", () => {
  const offenders: [string, string][] = [
    ['import { Database } from "bun:sqlite";', "bun:"],
    ['import { readFileSync } from "node:fs";', "node:"],
    ['import { Elysia } from "elysia";', "elysia"],
    ['import * as fs from "fs";', "fs"],
    ['import "node:os";', "side-effect import"],
    ['export { x } from "bun:test";', "re-export"],
    ['const m = await import("node:fs");', "dynamic import"],
    ['import {\n  readFile,\n} from "fs/promises";', "multi-line import"],
    ["const r = await fetch(url);", "fetch"],
    ["const f = Bun.file(path);", "Bun."],
    ["const home = process.env.HOME;", "process."],
    ['const fs = require("fs");', "require"],
    ['import { Type } from "@sinclair/typebox";', "package outside src/trends"],
  ];
  for (const [source, what] of offenders) {
    test(`flags ${what}`, () => {
      expect(purityViolations(source).length).toBeGreaterThan(0);
    });
  }

  test("relative imports, type imports and comments that mention fetch are fine", () => {
    const ok = [
      'import { linearFit } from "./regression.ts";',
      'import { DEFAULT_TREND_CONFIG, type TrendConfig } from "./types.ts";',
      'export * from "./summary.ts";',
      "// no fetch here, and Bun.file is not called\n/* process.env stays untouched */\nexport const x = 1;",
    ].join("\n");
    expect(purityViolations(ok)).toEqual([]);
  });
});
