// Guards the pure core: nothing under src/trends may reach for the runtime, the file system or the network.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const TRENDS_DIR = join(import.meta.dir, "..", "src", "trends");

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

/** Every module a file imports or re-exports, statically or dynamically. */
function importedModules(code: string): string[] {
  const patterns = [
    /\b(?:import|export)\b[^'"`;]*?\bfrom\s*["'`]([^"'`]+)["'`]/g,
    /\bimport\s*["'`]([^"'`]+)["'`]/g,
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
