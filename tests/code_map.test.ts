// The README's map stays whole: every folder under src/ is a row of its "Code map" table and a line of the layer
// picture below it, so a newcomer finds each folder where the README says the code lives. The folders are read from
// the tree, not from a list kept here; the checker also runs on a map of its own making that misses one.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");

/** The folders directly under src/, by name. */
function srcFolders(): string[] {
  return readdirSync(join(ROOT, "src"), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** The "Code map" section of a README: its table rows and the fenced layer picture that follows them. */
function codeMap(readme: string): { rows: string; picture: string } {
  const start = readme.indexOf("\n## Code map\n");
  if (start < 0) return { rows: "", picture: "" };
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const rows = section
    .split("\n")
    .filter((l) => l.startsWith("|"))
    .join("\n");
  const picture = section.match(/```text\n([\s\S]*?)```/)?.[1] ?? "";
  return { rows, picture };
}

/** Folders the map leaves out, as "src/x/ (table)" or "x/ (picture)"; empty when the map is whole. */
function missing(readme: string, folders: string[]): string[] {
  const { rows, picture } = codeMap(readme);
  const problems: string[] = [];
  for (const f of folders) {
    if (!rows.includes(`\`src/${f}/\``)) problems.push(`src/${f}/ (table)`);
    // `host/` must not be satisfied by `host_pool/`, nor `trainer/` by a longer name ending in it.
    if (!new RegExp(`(^|[^\\w/])${f}/`, "m").test(picture)) problems.push(`${f}/ (picture)`);
  }
  return problems;
}

describe("the README's code map", () => {
  test("every folder under src/ is a row of the table and a line of the layer picture", () => {
    const folders = srcFolders();
    expect(folders.length).toBeGreaterThanOrEqual(10);
    expect(missing(readFileSync(join(ROOT, "README.md"), "utf8"), folders)).toEqual([]);
  });

  test("the check names a folder the map leaves out", () => {
    const readme = [
      "# x",
      "## Code map",
      "| Folder | What |",
      "| `src/host_pool/` | pool |",
      "```text",
      " host_pool/   the pool",
      "```",
      "## Next",
      "| `src/host/` | outside the section |",
    ].join("\n");
    expect(missing(readme, ["host", "host_pool"])).toEqual(["src/host/ (table)", "host/ (picture)"]);
  });
});
