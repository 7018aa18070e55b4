// The batch script of a Slurm job runs the recipe's argv word for word: bash reads back every word the builder quoted,
// however hostile, and nothing in a word runs. The environment carries Trainwatch's coordinates, which a recipe's own
// variables cannot overwrite.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TrainwatchError } from "../src/errors.ts";
import { DEFAULT_JOB_PATH, batchScript, jobEnvironment, shellQuote } from "../src/executors/slurm_script.ts";

describe("the batch script", () => {
  test("bash hands the program every hostile word unchanged, and runs none of them", () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-slurm-script-"));
    const canary = join(dir, "canary");
    const hostile = [
      `$(touch ${canary})`,
      `\`touch ${canary}\``,
      `'; touch ${canary}; '`,
      `"; touch ${canary}; "`,
      `line one\ntouch ${canary}\n`,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion the script must not perform
      "$HOME ${PATH} $0 $@ * ?",
      "it's",
      "",
      "--lr=0.1",
      "back\\slash",
      "ünïcödé ✓",
    ];
    // The program prints its argv as JSON: what it received, word for word.
    const script = batchScript(["python3", "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", ...hostile]);
    expect(script.startsWith("#!/bin/bash\nexec 'python3' '-c' ")).toBe(true);
    writeFileSync(join(dir, "job.sh"), script);
    try {
      const run = Bun.spawnSync(["bash", join(dir, "job.sh")], { cwd: dir, stdout: "pipe", stderr: "pipe" });
      expect(run.stderr.toString()).toBe("");
      expect(run.exitCode).toBe(0);
      expect(JSON.parse(run.stdout.toString())).toEqual(hostile);
      expect(existsSync(canary)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("with params, the script writes them to a fresh private file in the node's temp folder, TRAINWATCH_PARAMS its path", () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-batch-params-"));
    try {
      const params = `${JSON.stringify({ tag: 'it\'s $HOME `id` \\ "q"', lr: 0.1 }, null, 2)}\n`;
      const script = batchScript(
        [
          "python3",
          "-c",
          "import os, sys; p = os.environ['TRAINWATCH_PARAMS']; sys.stdout.write(p + '\\n' + open(p).read())",
        ],
        params,
      );
      writeFileSync(join(dir, "job.sh"), script);
      const run = Bun.spawnSync(["bash", join(dir, "job.sh")], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TMPDIR: dir },
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(run.stderr.toString()).toBe("");
      const [path, ...rest] = run.stdout.toString().split("\n");
      expect(path).toStartWith(join(dir, "trainwatch-params."));
      expect(rest.join("\n")).toBe(params);
      expect(statSync(path!).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a quote inside a word closes, escapes and reopens", () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  test("an empty command and a NUL byte are refused, naming argv", () => {
    expect(() => batchScript([])).toThrow(TrainwatchError);
    expect(() => batchScript(["python3", "a\0b"])).toThrow(/argv: .*NUL/);
  });
});

describe("the job's environment", () => {
  test("carries PATH, unbuffered Python and the operation's coordinates", () => {
    expect(jobEnvironment({ url: "http://api:8080", token: "tok", operationId: "op_1" })).toEqual({
      PATH: DEFAULT_JOB_PATH,
      PYTHONUNBUFFERED: "1",
      TRAINWATCH_URL: "http://api:8080",
      TRAINWATCH_TOKEN: "tok",
      TRAINWATCH_OPERATION_ID: "op_1",
    });
  });

  test("a recipe's variables override the defaults, never Trainwatch's own", () => {
    const env = jobEnvironment({
      url: "http://api:8080",
      token: null,
      operationId: "op_1",
      env: {
        PATH: "/opt/conda/bin:/usr/bin",
        TRAINWATCH_URL: "http://evil",
        TRAINWATCH_TOKEN: "stolen",
        OMP_NUM_THREADS: "1",
      },
    });
    expect(env).toEqual({
      PATH: "/opt/conda/bin:/usr/bin",
      PYTHONUNBUFFERED: "1",
      OMP_NUM_THREADS: "1",
      TRAINWATCH_URL: "http://api:8080",
      TRAINWATCH_OPERATION_ID: "op_1",
    });
  });
});
