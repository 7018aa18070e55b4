// CSV paths resolve inside the data directory (TRAINWATCH_DATA_DIR): what is refused, and what a refusal says.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TrainwatchError } from "../src/errors.ts";
import { resolveDataPath } from "../src/trainer/datasets/data_dir.ts";
import { tempDir } from "./helpers.ts";

const tmp = tempDir("trainwatch-data-");
const data = join(tmp.dir, "datasets");
mkdirSync(join(data, "sub"), { recursive: true });
writeFileSync(join(data, "a.csv"), "x,y\n1,2\n");
writeFileSync(join(data, "sub", "b.csv"), "x,y\n1,2\n");
writeFileSync(join(tmp.dir, "secret.csv"), "password,hunter2\n");
symlinkSync(join(tmp.dir, "secret.csv"), join(data, "link_out.csv"));
symlinkSync(join(data, "a.csv"), join(data, "link_in.csv"));
symlinkSync(tmp.dir, join(data, "dir_out"));
afterAll(() => tmp.cleanup());

const refusal = (path: string, dir = data) => {
  try {
    resolveDataPath(dir, path, "body.dataset.path");
  } catch (err) {
    expect(err).toBeInstanceOf(TrainwatchError);
    const e = err as TrainwatchError;
    expect(e.status).toBe(400);
    expect(e.details?.field).toBe("body.dataset.path");
    expect(e.message).not.toContain("hunter2");
    return e.message;
  }
  throw new Error(`expected ${path} to be refused`);
};

describe("CSV paths inside the data directory", () => {
  test("relative paths resolve against the data directory; absolute ones inside it and symlinks within it are accepted", () => {
    expect(resolveDataPath(data, "a.csv", "f")).toBe(join(data, "a.csv"));
    expect(resolveDataPath(data, "sub/b.csv", "f")).toBe(join(data, "sub", "b.csv"));
    expect(resolveDataPath(data, "sub/../a.csv", "f")).toBe(join(data, "a.csv"));
    expect(resolveDataPath(data, join(data, "a.csv"), "f")).toBe(join(data, "a.csv"));
    expect(resolveDataPath(data, "link_in.csv", "f")).toBe(join(data, "a.csv"));
  });

  test("`..`, absolute paths elsewhere and symlinks pointing out are refused as outside the data directory", () => {
    for (const path of [
      "../secret.csv",
      join(tmp.dir, "secret.csv"),
      "/etc/passwd",
      "link_out.csv",
      "dir_out/secret.csv",
      "sub/../../secret.csv",
    ]) {
      expect(refusal(path)).toContain("outside the data directory");
    }
  });

  // (Unreadable files are refused too, via access(R_OK); not tested here: the test machine runs as root, which reads anything.)
  test("a missing file, a directory or a missing data directory is refused before training", () => {
    expect(refusal("missing.csv")).toContain('no file "missing.csv"');
    expect(refusal("sub")).toContain("is not a file");
    expect(refusal("a.csv", join(tmp.dir, "nowhere"))).toContain("data directory");
  });
});
