// CSV datasets: header row, numeric feature columns, a label column that is either class names (classification) or a
// number (regression). Every data error names its row (1-based line of the file, the header is row 1) and column, and
// never quotes a cell or a line: what a file holds does not leak through an error message.

import { readFileSync } from "node:fs";
import { TrainwatchError } from "../../errors.ts";
import type { NormalizedDataset } from "../../schemas/spec.ts";
import type { Dataset } from "./dataset.ts";

type CsvSpec = Extract<NormalizedDataset, { kind: "csv" }>;

interface Record_ {
  fields: string[];
  /** 1-based line where the record starts. */
  line: number;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function readCsvDataset(spec: CsvSpec): Dataset {
  let text: string;
  try {
    text = readFileSync(spec.path, "utf8");
  } catch (err) {
    throw new TrainwatchError("TRAINING_FAILED", `cannot read CSV ${spec.path}: ${(err as Error).message}`, {
      path: spec.path,
    });
  }
  return parseCsvDataset(text, spec);
}

/** The pure part of readCsvDataset: `text` is the file's content. */
export function parseCsvDataset(text: string, spec: Pick<CsvSpec, "label" | "features" | "task" | "path">): Dataset {
  const records = parseCsv(text);
  const header = records[0];
  if (!header) throw dataError(1, spec.label, "the file is empty; expected a header row", spec.path);
  const columns = header.fields.map((c) => c.trim());
  const indexOf = (name: string, role: string) => {
    const i = columns.indexOf(name);
    if (i < 0)
      throw dataError(1, name, `${role} column not found in the header (${columns.length} column(s))`, spec.path);
    return i;
  };
  const labelIndex = indexOf(spec.label, "label");
  const featureNames = spec.features ?? columns.filter((_, i) => i !== labelIndex);
  if (featureNames.length === 0) throw dataError(1, spec.label, "no feature columns besides the label", spec.path);
  const featureIndex = featureNames.map((name) => indexOf(name, "feature"));
  const rows = records.length - 1;
  if (rows < 1) throw dataError(2, spec.label, "no data rows after the header", spec.path);

  const f = featureNames.length;
  const x = new Float32Array(rows * f);
  const labels: string[] = new Array(rows);
  for (let r = 0; r < rows; r++) {
    const rec = records[r + 1]!;
    const cell = (i: number) => {
      const v = rec.fields[i]?.trim();
      if (v === undefined || v === "") throw dataError(rec.line, columns[i]!, "missing value", spec.path);
      return v;
    };
    for (let j = 0; j < f; j++) {
      const i = featureIndex[j]!;
      const v = cell(i);
      if (!NUMBER.test(v)) throw dataError(rec.line, columns[i]!, "not a number", spec.path);
      x[r * f + j] = Number(v);
    }
    labels[r] = cell(labelIndex);
  }

  const numeric = labels.every((v) => NUMBER.test(v));
  const task = spec.task ?? (numeric ? "regression" : "classification");
  const y = new Float32Array(rows);
  if (task === "regression") {
    for (let r = 0; r < rows; r++) {
      const v = labels[r]!;
      if (!NUMBER.test(v))
        throw dataError(records[r + 1]!.line, spec.label, "not a number (regression label)", spec.path);
      y[r] = Number(v);
    }
    return { x, y, rows, featureNames, task, classes: null };
  }
  const classes = [...new Set(labels)].sort(numeric ? (a, b) => Number(a) - Number(b) : undefined);
  if (classes.length < 2)
    throw dataError(2, spec.label, `classification needs at least 2 classes, found ${classes.length}`, spec.path);
  const id = new Map(classes.map((c, i) => [c, i]));
  for (let r = 0; r < rows; r++) y[r] = id.get(labels[r]!)!;
  return { x, y, rows, featureNames, task, classes };
}

function dataError(row: number, column: string, problem: string, path: string): TrainwatchError {
  return new TrainwatchError("TRAINING_FAILED", `row ${row}, column ${JSON.stringify(column)}: ${problem}`, {
    path,
    row,
    column,
  });
}

/** RFC 4180: comma-separated, "quoted" fields may hold commas, newlines and "" escapes; blank lines are skipped. */
export function parseCsv(text: string): Record_[] {
  const out: Record_[] = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  let sawContent = false;
  const endRecord = () => {
    fields.push(field);
    if (sawContent) out.push({ fields, line: start });
    fields = [];
    field = "";
    sawContent = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === "\n") line++;
        field += c;
      }
      continue;
    }
    if (c === '"') {
      quoted = true;
      sawContent = true;
    } else if (c === ",") {
      fields.push(field);
      field = "";
      sawContent = true;
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      endRecord();
      line++;
      start = line;
    } else {
      if (c.trim() !== "") sawContent = true;
      field += c;
    }
  }
  endRecord();
  return out;
}
