// The docs stay honest: every relative link and #anchor in README.md and docs/*.md resolves (anchors as GitHub writes
// them), and every environment variable the code reads is a row of the one configuration table in README.md, which
// lists nothing the code does not read. A link checker that finds nothing proves nothing, so the checker is also run
// on broken links of its own making.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

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

/** The rows of the first table after the `## Configuration` heading: every backticked name in each row's first cell. */
export function configTableVariables(readme: string): string[] {
  const lines = withoutFences(readme);
  const start = lines.findIndex((l) => /^##\s+Configuration\s*$/.test(l));
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
  const readme = readFileSync(README, "utf8");
  const documented = configTableVariables(readme);
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

  test("there is one table of variables: README's", () => {
    const tables = markdownFiles().flatMap((f) =>
      variableTables(readFileSync(f, "utf8")).map((line) => `${relative(ROOT, f)}:${line}`),
    );
    expect(tables.length).toBe(1);
    expect(tables[0]).toStartWith("README.md:");
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
