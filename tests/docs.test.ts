// The docs stay honest: every relative link and #anchor in README.md and docs/*.md resolves (anchors as GitHub writes
// them), every environment variable the code reads is a row of the one configuration table in docs/configuration.md, which
// lists nothing the code does not read, and every error code the code can give (the API's, the failure codes, the
// clients') and every error and warning message of the Python client has an entry in docs/troubleshooting.md. The
// codes are read from the source, not from a list kept here. A checker that finds nothing proves nothing, so each
// checker is also run on offenders of its own making.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { MAX_METRIC_NAMES, admitMetricNames } from "../src/schemas/epoch.ts";

const ROOT = join(import.meta.dir, "..");
const README = join(ROOT, "README.md");

/** README.md and every page under docs/, as absolute paths. */
function markdownFiles(): string[] {
  const dir = join(ROOT, "docs");
  const pages = existsSync(dir)
    ? readdirSync(dir)
        .filter((n) => n.endsWith(".md"))
        .map((n) => join(dir, n))
    : [];
  return [README, ...pages.sort()];
}

/** The text outside fenced code blocks, line for line (fenced lines become empty, so line numbers still match). */
function withoutFences(markdown: string): string[] {
  let fence: string | null = null;
  return markdown.split("\n").map((line) => {
    const m = line.match(/^\s{0,3}(`{3,}|~{3,})/);
    if (fence === null && m) {
      fence = m[1]!;
      return "";
    }
    if (fence !== null) {
      // A closing fence is at least as long as the opening one and has nothing after it (CommonMark).
      if (m && m[1]!.startsWith(fence) && line.trim() === m[1]) fence = null;
      return "";
    }
    return line;
  });
}

/** A heading's anchor as GitHub writes it: lower case, punctuation dropped, each space a hyphen (github-slugger). */
export function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // a link or image keeps only its text
    .replace(/<[^>]+>/g, "") // inline HTML
    .replace(/[`*]/g, "") // code spans and emphasis marks (underscores stay: GitHub keeps them)
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
}

/** Every anchor a page defines: one per heading (repeats numbered -1, -2, … as GitHub does), plus HTML id/name. */
export function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutFences(markdown)) {
    const h = line.match(/^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/);
    if (h) {
      const base = slug(h[1]!);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      found.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of line.matchAll(/<a\s[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']/gi)) found.add(m[1]!);
  }
  return found;
}

interface Link {
  line: number;
  target: string;
}

/** Inline links and images `[text](target)` and reference definitions `[id]: target`, outside code. */
export function links(markdown: string): Link[] {
  const out: Link[] = [];
  withoutFences(markdown).forEach((raw, i) => {
    const line = raw.replace(/`[^`]*`/g, "");
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      out.push({ line: i + 1, target: m[1]! });
    const def = line.match(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/);
    if (def) out.push({ line: i + 1, target: def[1]! });
  });
  return out;
}

/** Why a link in `file` does not resolve, or null when it does. External links (any scheme) are not checked here. */
export function brokenLink(file: string, target: string, readPage: (path: string) => string | null): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null;
  const hash = target.indexOf("#");
  const path = hash === -1 ? target : target.slice(0, hash);
  const anchor = hash === -1 ? null : decodeURIComponent(target.slice(hash + 1));
  const to = path === "" ? file : resolve(dirname(file), decodeURIComponent(path));
  const page = to.endsWith(".md") ? readPage(to) : null;
  if (path !== "" && page === null && !existsSync(to)) return `${target}: no file ${relative(ROOT, to)}`;
  if (anchor === null) return null;
  if (page === null) return `${target}: an anchor into a file that is not markdown`;
  return anchors(page).has(anchor) ? null : `${target}: ${relative(ROOT, to)} has no heading with anchor #${anchor}`;
}

/** Every broken relative link of the given pages, as "file:line: why" lines. */
function brokenLinks(files: string[], readPage: (path: string) => string | null): string[] {
  const problems: string[] = [];
  for (const file of files) {
    const text = readPage(file);
    if (text === null) throw new Error(`cannot read ${file}`);
    for (const { line, target } of links(text)) {
      const why = brokenLink(file, target, readPage);
      if (why) problems.push(`${relative(ROOT, file)}:${line}: ${why}`);
    }
  }
  return problems;
}

const readDisk = (path: string): string | null => (existsSync(path) ? readFileSync(path, "utf8") : null);

// ---------------------------------------------------------------------------------------------------------------------
// Environment variables.

/**
 * Folders whose code users run (the servers, the host, MCP, the agents, the examples and clients). Left out: tests/ and
 * bench/ (their variables, such as BENCH_LAG_FILE and CHROMIUM, are plumbing between a script and its own child, not
 * configuration), dependencies, data, virtual environments and dot folders.
 */
const SKIP_DIRS = new Set([
  "node_modules",
  "tests",
  "bench",
  "data",
  "artifacts",
  "public",
  "docs",
  "__pycache__",
  "venv",
  "site-packages",
]);

function codeFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name.startsWith(".") || SKIP_DIRS.has(name) ? [] : codeFiles(path);
    return /\.(ts|tsx|js|mjs|cjs|py)$/.test(name) ? [path] : [];
  });
}

const NAME = "([A-Z][A-Z0-9_]*)";
const ENV_READS: RegExp[] = [
  // src/env.ts's typed readers: number(env, "PORT", …), bool(env, …), and the helpers built on them.
  new RegExp(`\\(\\s*env\\s*,\\s*["']${NAME}["']`, "g"),
  // Direct reads: process.env.X, Bun.env.X, env.X, env?.X, and the bracket forms with a literal name.
  new RegExp(`\\b(?:process\\.env|Bun\\.env|import\\.meta\\.env|env)\\??\\.${NAME}\\b`, "g"),
  new RegExp(`\\b(?:process\\.env|Bun\\.env|env)\\[\\s*["']${NAME}["']\\s*\\]`, "g"),
  // Python: os.environ["X"], os.environ.get("X"), os.getenv("X").
  new RegExp(`\\bos\\.(?:environ(?:\\.get)?|getenv)\\s*[[(]\\s*["']${NAME}["']`, "g"),
];

/** Every environment variable a piece of code reads, by name. */
export function envReads(code: string, python = false): string[] {
  const comment = python ? /(^|\s)#.*$/gm : /(^|\s)\/\/.*$/gm;
  const code1 = code.replace(/\/\*[\s\S]*?\*\//g, "").replace(comment, "$1");
  return [...new Set(ENV_READS.flatMap((re) => [...code1.matchAll(re)].map((m) => m[1]!)))];
}

/** The rows of the first table after the `Configuration` heading: every backticked name in each row's first cell. */
export function configTableVariables(page: string): string[] {
  const lines = withoutFences(page);
  const start = lines.findIndex((l) => /^#{1,2}\s+Configuration\s*$/.test(l));
  if (start === -1) return [];
  const names: string[] = [];
  let inTable = false;
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,2}\s/.test(line)) break;
    if (line.startsWith("|")) {
      inTable = true;
      const first = line.split("|")[1] ?? "";
      for (const m of first.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.push(m[1]!);
    } else if (inTable) break;
  }
  return names;
}

/** Tables whose first header cell is "Variable": a second table of variables would drift from the first. */
function variableTables(markdown: string): number[] {
  return withoutFences(markdown).flatMap((line, i) => (/^\|\s*Variable\s*\|/i.test(line) ? [i + 1] : []));
}

describe("links in README.md and docs/ resolve", () => {
  const files = markdownFiles();

  test("the pages exist and have links to check", () => {
    expect(files.length).toBeGreaterThanOrEqual(2);
    expect(files.flatMap((f) => links(readFileSync(f, "utf8"))).length).toBeGreaterThan(20);
  });

  test("every relative link and #anchor resolves", () => {
    expect(brokenLinks(files, readDisk)).toEqual([]);
  });

  test("every page under docs/ is linked from README.md", () => {
    const linked = new Set(
      links(readFileSync(README, "utf8"))
        .map((l) => l.target.split("#")[0]!)
        .filter((t) => t.startsWith("docs/")),
    );
    for (const file of files.slice(1)) expect(linked).toContain(relative(ROOT, file));
  });
});

describe("the link checker catches offenders", () => {
  const page = join(ROOT, "docs", "page.md");
  const pages = new Map<string, string>([
    [page, "# Page\n\n## Two words, and `code`\n\n## Repeat\n\n## Repeat\n\n```sh\n# not a heading\n```\n"],
    [README, "# Trainwatch\n\n## Configuration\n"],
  ]);
  const read = (p: string) => pages.get(p) ?? readDisk(p);
  const check = (target: string) => brokenLink(page, target, read);

  test("anchors follow GitHub's slugs", () => {
    expect(slug("How good the judgement is: `bun bench/judgement.ts`")).toBe(
      "how-good-the-judgement-is-bun-benchjudgementts",
    );
    expect(slug("MCP server and agents")).toBe("mcp-server-and-agents");
    expect(slug("Live metrics stream (SSE)")).toBe("live-metrics-stream-sse");
    expect(slug("GPU host — relay")).toBe("gpu-host--relay");
    expect(slug("snake_case and [a link](x.md)")).toBe("snake_case-and-a-link");
  });

  test("good links pass", () => {
    for (const t of [
      "#two-words-and-code",
      "#repeat",
      "#repeat-1",
      "../README.md",
      "../README.md#configuration",
      "https://example.com/#x",
    ]) {
      expect(check(t)).toBeNull();
    }
  });

  test("a missing file, a missing anchor, a fenced 'heading' and an anchor into a non-markdown file fail", () => {
    expect(check("missing.md")).toContain("no file docs/missing.md");
    expect(check("#nope")).toContain("has no heading with anchor #nope");
    expect(check("#repeat-2")).toContain("#repeat-2");
    expect(check("#not-a-heading")).toContain("#not-a-heading");
    expect(check("../README.md#quick-start")).toContain("README.md has no heading");
    expect(check("../package.json#x")).toContain("not markdown");
  });

  test("a fence 'closed' with text after it stays open, as GitHub renders it", () => {
    expect(anchors("```\ncode\n``` text\n## Hidden\n```\n## Seen\n")).toEqual(new Set(["seen"]));
  });

  test("links in code are not links; reference definitions are", () => {
    const found = links('see `[x](nowhere.md)`\n\n```\n[y](nowhere.md)\n```\n[z]: ./there.md\n[w](a.md#b "title")');
    expect(found.map((l) => l.target)).toEqual(["./there.md", "a.md#b"]);
  });

  test("a broken link in a page is reported with its file and line", () => {
    pages.set(page, "# Page\n\nSee [the API](api-nope.md) and [here](#page).\n");
    expect(brokenLinks([page], read)).toEqual(["docs/page.md:3: api-nope.md: no file docs/api-nope.md"]);
  });
});

describe("every environment variable the code reads is in the one configuration table", () => {
  const documented = configTableVariables(readFileSync(join(ROOT, "docs", "configuration.md"), "utf8"));
  const reads = new Map<string, string[]>();
  for (const file of codeFiles(ROOT)) {
    for (const name of envReads(readFileSync(file, "utf8"), file.endsWith(".py")))
      reads.set(name, [...(reads.get(name) ?? []), relative(ROOT, file)]);
  }

  test("the scan finds the table and the readers", () => {
    expect(documented.length).toBeGreaterThanOrEqual(25);
    expect(reads.get("PORT")).toContain("src/config.ts");
    expect(reads.get("TRAINWATCH_HOST_PORT")).toContain("src/host/config.ts");
    expect(reads.get("TRAINWATCH_URL")).toContain("src/client/api.ts");
  });

  test("every variable read is documented", () => {
    const missing = [...reads]
      .filter(([name]) => !documented.includes(name))
      .map(([name, where]) => `${name} (read in ${where.join(", ")})`);
    expect(missing).toEqual([]);
  });

  test("every documented variable is read somewhere", () => {
    expect(documented.filter((name) => !reads.has(name))).toEqual([]);
  });

  test("no variable has two rows", () => {
    expect(documented.filter((name, i) => documented.indexOf(name) !== i)).toEqual([]);
  });

  test("there is one table of variables: docs/configuration.md's", () => {
    const tables = markdownFiles().flatMap((f) =>
      variableTables(readFileSync(f, "utf8")).map((line) => `${relative(ROOT, f)}:${line}`),
    );
    expect(tables.length).toBe(1);
    expect(tables[0]).toStartWith("docs/configuration.md:");
  });

  test("the scan sees every way the code reads a variable", () => {
    const ts = [
      'port(env, "A_PORT", 8000)',
      "const t = env.TOKEN_X ?? env?.OTHER_Y;",
      'process.env["BRACKET"]; Bun.env.BUNV;',
      "// env.IN_A_COMMENT is not a read",
    ].join("\n");
    expect(envReads(ts).sort()).toEqual(["A_PORT", "BRACKET", "BUNV", "OTHER_Y", "TOKEN_X"]);
    const py =
      'URL = os.environ.get("PY_URL", "x"); os.getenv("PY_TWO")\nos.environ["PY_THREE"]  # os.getenv("PY_COMMENT")';
    expect(envReads(py, true).sort()).toEqual(["PY_THREE", "PY_TWO", "PY_URL"]);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
// Error codes and messages: each has an entry in docs/troubleshooting.md.

const TROUBLESHOOTING = join(ROOT, "docs", "troubleshooting.md");

/** The string literals of a piece of code ("X", 'X'), in order. */
const literals = (code: string): string[] => [...code.matchAll(/"([^"\\]*)"|'([^'\\]*)'/g)].map((m) => m[1] ?? m[2]!);

/** The `ErrorCode` union of src/errors.ts: the codes of the API's error envelope. */
export function apiErrorCodes(errorsTs: string): string[] {
  const union = errorsTs.match(/export type ErrorCode\s*=([^;]*);/);
  return union ? literals(union[1]!) : [];
}

/**
 * The failure codes of src/schemas/operation.ts: the literals of its FAILURE_CODES list, and those of every constant
 * it names or spreads (`...HOST_FAILURES` = [...] as const, `TRAINER_ERROR` = "trainer_error").
 */
export function failureCodes(operationTs: string): string[] {
  const list = operationTs.match(/export const FAILURE_CODES\s*=\s*\[([^\]]*)\]/);
  if (!list) return [];
  const codes = literals(list[1]!);
  for (const [, name] of list[1]!.matchAll(/(?:\.\.\.)?\b([A-Z][A-Z_]+)\b/g)) {
    const decl = operationTs.match(new RegExp(`export const ${name}\\s*=([^;]*);`));
    if (decl) codes.push(...literals(decl[1]!));
  }
  return codes;
}

/** The text of a call's first argument: from after `(` to the first comma or `)` outside brackets and strings. */
function firstArgument(code: string, open: number): string {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    const c = code[i]!;
    if (c === '"' || c === "'" || c === "`") {
      const end = code.indexOf(c, i + 1);
      if (end === -1) break;
      i = end;
    } else if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) {
      if (depth === 0) return code.slice(open, i);
      depth--;
    } else if (c === "," && depth === 0) return code.slice(open, i);
  }
  return code.slice(open);
}

/**
 * The codes a client makes up itself: the first argument of `new ApiError(…)`, `toolError(…)` and `new ToolError(…)`
 * (a literal, or the literals of a conditional), a `code … ?? "X"` fallback, and a code built from the status
 * (`HTTP_${status}`, f"HTTP_{status}"), which is written `HTTP_<status>`.
 */
export function clientCodes(code: string): string[] {
  const found = new Set<string>();
  for (const m of code.matchAll(/\b(?:new ApiError|toolError|new ToolError)\(/g)) {
    for (const lit of literals(firstArgument(code, m.index! + m[0].length)))
      if (/^[A-Z][A-Z0-9_]+$/.test(lit)) found.add(lit);
  }
  for (const m of code.matchAll(/\bcode\b[^;\n]*\?\?\s*"([A-Z][A-Z0-9_]+)"/g)) found.add(m[1]!);
  if (/HTTP_\$\{|f"HTTP_\{/.test(code)) found.add("HTTP_<status>");
  return [...found];
}

/** The public error and warning classes a Python package exports (its `__all__`). */
export function pythonExceptionNames(initPy: string): string[] {
  const all = initPy.match(/__all__\s*=\s*\[([^\]]*)\]/);
  return all ? literals(all[1]!).filter((n) => /(Error|Warning)$/.test(n)) : [];
}

/** The argument text of each call to `fn(` in Python code, to its closing parenthesis (strings skipped). */
function pythonCallArguments(code: string, fn: RegExp): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(fn)) {
    const start = m.index! + m[0].length;
    let depth = 0;
    for (let i = start; i < code.length; i++) {
      const c = code[i]!;
      if (c === '"' || c === "'") {
        let j = i + 1;
        while (j < code.length && code[j] !== c) j += code[j] === "\\" ? 2 : 1;
        i = j;
      } else if (c === "(") depth++;
      else if (c === ")") {
        if (depth === 0) {
          out.push(code.slice(start, i));
          break;
        }
        depth--;
      }
    }
  }
  return out;
}

/** Stands for a replacement field in fixedText's output: a character no message holds. */
const HOLE = "\u2063";

/** A Python f-string's or string's fixed text: each `{…}` replacement (nested braces included) becomes HOLE. */
function fixedText(literal: string): string {
  let out = "";
  let depth = 0;
  for (let i = 0; i < literal.length; i++) {
    const c = literal[i]!;
    if (depth === 0 && c === "{" && literal[i + 1] === "{") out += literal[++i];
    else if (depth === 0 && c === "}" && literal[i + 1] === "}") out += literal[++i];
    else if (c === "{") {
      if (depth++ === 0) out += HOLE;
    } else if (c === "}") depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

/**
 * The messages the Python client raises (`raise TrainwatchError(…)`) and warns (`_warn(…)`), each as its longest fixed
 * piece of text: what a reader can search for, whatever the ids and numbers were.
 */
export function pythonMessages(code: string): string[] {
  const calls = [
    ...pythonCallArguments(code, /\braise TrainwatchError\(/g),
    ...pythonCallArguments(code, /(?<![\w.]|def )_warn\(/g),
  ];
  return calls.map((args) => {
    const text = [...args.matchAll(/(?:\bf)?(["'])((?:\\.|(?!\1).)*)\1/g)].map((m) => fixedText(m[2]!)).join("");
    const pieces = text
      .split(HOLE)
      .flatMap((p) => p.split(/\\[nt]/))
      .map((p) => p.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ""));
    return pieces.reduce((a, b) => (b.length > a.length ? b : a), "");
  });
}

/** The lines of a page that can hold an entry: headings and table rows, outside code fences. */
export function entryLines(markdown: string): string[] {
  return withoutFences(markdown).filter((l) => /^\s{0,3}#{1,6}\s/.test(l) || /^\s*\|/.test(l));
}

/** True when a heading or table row names `code` as a whole word. */
export function hasEntry(lines: readonly string[], code: string): boolean {
  const esc = code.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const word = new RegExp(`(^|[^A-Za-z0-9_])${esc}($|[^A-Za-z0-9_])`);
  return lines.some((l) => word.test(l));
}

const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

/** Every client source file whose codes count: the typed client, the MCP server and the agents. */
const CLIENT_SOURCES = ["src/client", "src/mcp", "agents"].flatMap((dir) =>
  readdirSync(join(ROOT, dir))
    .filter((n) => n.endsWith(".ts"))
    .map((n) => `${dir}/${n}`),
);
const PYTHON_PACKAGE = "clients/python/trainwatch";
const PYTHON_SOURCES = readdirSync(join(ROOT, PYTHON_PACKAGE))
  .filter((n) => n.endsWith(".py"))
  .map((n) => `${PYTHON_PACKAGE}/${n}`);

/** Every code the code base can give, by where it comes from. */
function allCodes(): Record<string, string[]> {
  return {
    "src/errors.ts ErrorCode": apiErrorCodes(read("src/errors.ts")),
    "src/schemas/operation.ts FailureCode": failureCodes(read("src/schemas/operation.ts")),
    "TypeScript client, MCP and agents": [...new Set(CLIENT_SOURCES.flatMap((f) => clientCodes(read(f))))],
    "Python client": [
      ...pythonExceptionNames(read(`${PYTHON_PACKAGE}/__init__.py`)),
      ...new Set(PYTHON_SOURCES.flatMap((f) => clientCodes(read(f)))),
    ],
  };
}

/** The codes and messages without an entry, as "where: code" lines. */
function missingEntries(page: string, codes: Record<string, string[]>, messages: string[]): string[] {
  const lines = entryLines(page);
  return [
    ...Object.entries(codes).flatMap(([where, list]) =>
      list.filter((c) => !hasEntry(lines, c)).map((c) => `${where}: ${c}`),
    ),
    ...messages.filter((m) => !lines.some((l) => l.includes(m))).map((m) => `Python client message: ${m}`),
  ];
}

describe("every error code and client message has a troubleshooting entry", () => {
  const page = readFileSync(TROUBLESHOOTING, "utf8");
  const codes = allCodes();
  const messages = PYTHON_SOURCES.flatMap((f) => pythonMessages(read(f)));

  test("the scan finds the codes where they are defined", () => {
    expect(codes["src/errors.ts ErrorCode"]).toContain("OPERATION_FINISHED");
    expect(codes["src/errors.ts ErrorCode"]!.length).toBeGreaterThanOrEqual(14);
    expect(codes["src/schemas/operation.ts FailureCode"]).toEqual(
      expect.arrayContaining(["host_unreachable", "host_lost_session", "host_token_refused", "trainer_error"]),
    );
    // Spread lists and named constants alike.
    expect(new Set(codes["src/schemas/operation.ts FailureCode"])).toEqual(
      new Set([
        "host_unreachable",
        "host_lost_session",
        "host_token_refused",
        "trainer_error",
        "lost",
        "terminated",
        "node_fail",
        "out_of_memory",
        "time_limit",
        "preempted",
      ]),
    );
    expect(codes["TypeScript client, MCP and agents"]).toEqual(
      expect.arrayContaining(["UNREACHABLE", "TIMEOUT", "BAD_RESPONSE", "HTTP_<status>", "VALIDATION_ERROR"]),
    );
    expect(codes["Python client"]).toEqual(expect.arrayContaining(["TrainwatchError", "TrainwatchWarning"]));
    expect(messages.length).toBeGreaterThanOrEqual(10);
    expect(messages).toContain("the training goes on, what it logs is spooled to");
    // Each message keeps enough fixed text to be searched for (an empty one would match any line).
    expect(messages.filter((m) => m.length < 12)).toEqual([]);
  });

  test("every code and message has an entry (a heading or a table row that names it)", () => {
    expect(missingEntries(page, codes, messages)).toEqual([]);
  });

  test("a code added without an entry is reported, and prose alone is not an entry", () => {
    const errorsTs = read("src/errors.ts").replace(/export type ErrorCode\s*=/, '$& "NEW_CODE_WITHOUT_ENTRY" |');
    const lifecycle = read("src/schemas/operation.ts").replace(/(HOST_FAILURES = \[[^\]]*)\]/, '$1, "host_evicted"]');
    const client =
      'throw new ApiError(slow ? "RATE_LIMITED" : "UNREACHABLE", "x", null);\nconst code = e?.code ?? "NO_CODE";';
    const py = '        _warn(f"trainwatch: the spool of {self.operation_id} is {n} MB; " f"old epochs are dropped")\n';
    const made = {
      ...codes,
      "src/errors.ts ErrorCode": apiErrorCodes(errorsTs),
      "src/schemas/operation.ts FailureCode": failureCodes(lifecycle),
      "TypeScript client, MCP and agents": clientCodes(client),
    };
    const withProse = `${page}\nNEW_CODE_WITHOUT_ENTRY is mentioned here in prose, which is not an entry.\n`;
    // Only what the made-up additions bring: the real tree's own misses are the test above's to report.
    const before = new Set(missingEntries(page, codes, messages));
    const added = (p: string, m: string[]) => missingEntries(p, made, m).filter((line) => !before.has(line));
    expect(added(withProse, [...messages, ...pythonMessages(py)])).toEqual([
      "src/errors.ts ErrorCode: NEW_CODE_WITHOUT_ENTRY",
      "src/schemas/operation.ts FailureCode: host_evicted",
      "TypeScript client, MCP and agents: RATE_LIMITED",
      "TypeScript client, MCP and agents: NO_CODE",
      "Python client message: MB; old epochs are dropped",
    ]);
    expect(added(`${withProse}\n### \`NEW_CODE_WITHOUT_ENTRY\` (429)\n`, messages).length).toBe(3);
  });

  test("the Python scan reads f-strings, nested braces and concatenated pieces", () => {
    const py = [
      "    _warn(f\"trainwatch: {run.x} is {(a or {}).get('r', '')}: \"",
      '          f"{n} epoch(s) it refused were dropped")',
      '    raise TrainwatchError(f"trainwatch: GET {u} → {s}")',
      '    _warn("trainwatch: sender error (retrying):\\n" + traceback.format_exc())',
      "    self._warn_count(x)",
      "def _warn(message: str) -> None:",
    ].join("\n");
    expect(pythonMessages(py)).toEqual([
      "trainwatch: GET",
      "epoch(s) it refused were dropped",
      "trainwatch: sender error (retrying",
    ]);
  });
});

// The metric-name limit: the deploy page states the limit the code enforces, and troubleshooting quotes the message the
// stores give for it, word for word (issue 20, defect 4).
describe("the metric-name limit is documented as enforced", () => {
  test("deploy.md states MAX_METRIC_NAMES; troubleshooting.md quotes the refusal the stores give", () => {
    const deploy = readFileSync(join(ROOT, "docs", "deploy.md"), "utf8");
    const section = deploy.slice(deploy.indexOf("### Metric names and exports"));
    expect(section).toContain(`at most **${MAX_METRIC_NAMES} distinct custom metric names**`);
    let refusal = "";
    try {
      const over = Array.from({ length: MAX_METRIC_NAMES + 1 }, (_, e) => ({
        epoch: e,
        timestamp: "2026-01-01T00:00:00.000Z",
        custom: { [`m${e}`]: 1 },
      }));
      admitMetricNames([], over);
    } catch (err) {
      refusal = (err as Error).message;
    }
    expect(refusal).toStartWith(`body.epochs.${MAX_METRIC_NAMES}.m${MAX_METRIC_NAMES}: `);
    expect(readFileSync(TROUBLESHOOTING, "utf8")).toContain(refusal);
  });
});
