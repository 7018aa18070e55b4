// Where CSV datasets (and TensorBoard logdirs to import) may come from: one data directory (TRAINWATCH_DATA_DIR). A
// spec's path resolves inside it, is refused when it leads out of it (`..`, an absolute path elsewhere, a symlink
// pointing out), and must name a readable file, all before a training is accepted. Messages name the path as given,
// never anything read from a file.

import { accessSync, constants, realpathSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { invalid } from "../../errors.ts";
import type { NormalizedSpec } from "../../schemas/spec.ts";

const inside = (root: string, path: string) => {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
};

/**
 * The real path of the CSV file `path` names inside `dataDir`, for the trainer to read (or, with `kind` "directory",
 * of a directory there: a TensorBoard logdir to import). Relative paths resolve against `dataDir`; absolute ones must
 * lie inside it. Symlinks are followed (realpath) and the target must lie inside the real data directory too. Throws a
 * 400 naming `field` (e.g. "body.dataset.path") otherwise, or when it is missing, not of that kind, or not readable.
 */
export function resolveDataPath(
  dataDir: string,
  path: string,
  field: string,
  kind: "file" | "directory" = "file",
): string {
  let root: string;
  try {
    root = realpathSync(resolve(dataDir));
  } catch {
    throw invalid(
      field,
      `the data directory ${dataDir} does not exist; put ${kind === "file" ? "CSV files" : "TensorBoard logdirs"} there or set TRAINWATCH_DATA_DIR`,
    );
  }
  const outside = () =>
    invalid(
      field,
      `${JSON.stringify(path)} is outside the data directory (TRAINWATCH_DATA_DIR); give a path inside it, e.g. "${kind === "file" ? "flowers.csv" : "tb"}"`,
    );
  // Lexical check first: a `..` path is refused even when what it points at does not exist.
  const candidate = resolve(root, path);
  if (!inside(root, candidate) && !inside(resolve(dataDir), resolve(dataDir, path))) throw outside();
  let real: string;
  try {
    real = realpathSync(resolve(dataDir, path));
  } catch {
    throw invalid(field, `no ${kind} ${JSON.stringify(path)} in the data directory (TRAINWATCH_DATA_DIR)`);
  }
  if (!inside(root, real)) throw outside();
  const stat = statSync(real);
  if (kind === "file" ? !stat.isFile() : !stat.isDirectory())
    throw invalid(field, `${JSON.stringify(path)} is not a ${kind}`);
  try {
    accessSync(real, constants.R_OK);
  } catch {
    throw invalid(field, `${JSON.stringify(path)} is not readable by the server`);
  }
  return real;
}

/** `spec` with a CSV dataset's path replaced by the real file it names (resolveDataPath); other datasets unchanged. */
export function resolveSpecPaths(spec: NormalizedSpec, dataDir: string, prefix: string): NormalizedSpec {
  const ds = spec.dataset;
  if (ds.kind !== "csv") return spec;
  return { ...spec, dataset: { ...ds, path: resolveDataPath(dataDir, ds.path, `${prefix}.dataset.path`) } };
}
