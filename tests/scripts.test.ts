// Script trainings without torch: the recipe file rules, params checks and argv (pure), and the whole lifecycle of a
// real child process (a bun script reporting over HTTP like the Python client): epochs, exit codes, cancel killing
// the process group, SIGKILL after the grace period, logs (tail and live), and that no request can run a command.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { argvOf, checkParams, checkRecipeFile, paramsSchema, renderArgs } from "../src/recipes/recipe.ts";
import { LogStore } from "../src/script_trainings/logs.ts";
import { loadRecipeBook, parseRecipes } from "../src/recipes/book.ts";
import { childEnv, failureMessage, groupAlive, killLeftovers } from "../src/script_trainings/runner.ts";
import { jobEnvironment } from "../src/executors/slurm_script.ts";
import { TrainwatchError } from "../src/errors.ts";
import { fakeRecipe, processAlive, recipeFile, scriptTrainingApp } from "./fixtures/scripts.ts";
import { json, req, tempDir, until } from "./helpers.ts";
import { SseReader } from "./sse.ts";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { TrainwatchClient } from "../src/client/api.ts";
import { createMcpServer } from "../src/mcp/server.ts";

const fieldOf = (fn: () => unknown): string | null => {
  try {
    fn();
    return null;
  } catch (err) {
    return err instanceof TrainwatchError ? String(err.details?.field) : `not a TrainwatchError: ${err}`;
  }
};

describe("recipe file rules", () => {
  const file = (r: object) => ({ recipes: [{ name: "a", command: ["python3", "t.py"], ...r }] });

  test("a good file passes, and cwd resolves against the file's folder", async () => {
    expect(checkRecipeFile(file({ params: fakeRecipe().params }))).toBeNull();
    const [r] = parseRecipes(JSON.stringify(file({ cwd: "sub" })), "/x/trainwatch.recipes.json", "/x");
    expect(r!.cwd).toBe("/x/sub");
    const [d] = parseRecipes(JSON.stringify(file({})), "/x/f.json", "/x");
    expect(d!.cwd).toBe("/x");
  });

  const cases: [string, object, string][] = [
    ["a command that is a string, not argv", { command: "python3 t.py" }, "recipes.0.command"],
    ["an empty command", { command: [] }, "recipes.0.command"],
    ["a bad name", { name: "Has Space" }, "recipes.0.name"],
    ["an unknown key", { shell: true }, "recipes.0.shell"],
    [
      "a nested param",
      { params: { type: "object", properties: { x: { type: "object" } } } },
      "recipes.0.params.properties.x.type",
    ],
    [
      "a default of the wrong type",
      { params: { type: "object", properties: { n: { type: "integer", default: "5" } } } },
      "recipes.0.params.properties.n.default",
    ],
    [
      "a default out of bounds",
      { params: { type: "object", properties: { n: { type: "integer", maximum: 3, default: 5 } } } },
      "recipes.0.params.properties.n.default",
    ],
    [
      "required names a missing param",
      { params: { type: "object", properties: {}, required: ["x"] } },
      "recipes.0.params.required",
    ],
    [
      "epochs_param not an integer",
      { params: { type: "object", properties: { e: { type: "string" } } }, epochs_param: "e" },
      "recipes.0.epochs_param",
    ],
    [
      "a bad pattern",
      { params: { type: "object", properties: { s: { type: "string", pattern: "(" } } } },
      "recipes.0.params.properties.s.pattern",
    ],
  ];
  for (const [what, r, field] of cases) {
    test(`refuses ${what}, naming ${field}`, async () => {
      expect(checkRecipeFile(file(r))?.field).toBe(field);
    });
  }

  test("a name declared twice is refused", async () => {
    expect(
      checkRecipeFile({
        recipes: [
          { name: "a", command: ["x"] },
          { name: "a", command: ["y"] },
        ],
      })?.field,
    ).toBe("recipes.1.name");
  });

  test("a broken file stops the start with one line naming the file and the field; a missing explicit file too", async () => {
    const f = recipeFile([]);
    try {
      writeFileSync(f.path, JSON.stringify(file({ command: "sh -c" })));
      expect(() => loadRecipeBook(f.path)).toThrow(`TRAINWATCH_RECIPES: ${f.path}: recipes.0.command`);
      writeFileSync(f.path, "{ not json");
      expect(() => loadRecipeBook(f.path)).toThrow("is not JSON");
      expect(() => loadRecipeBook(join(f.dir, "missing.json"))).toThrow("does not exist");
    } finally {
      f.cleanup();
    }
  });
});

describe("params", () => {
  const recipe = fakeRecipe({
    params: {
      type: "object",
      properties: {
        lr: { type: "number", exclusiveMinimum: 0 },
        epochs: { type: "integer", minimum: 1, default: 3 },
        device: { type: "string", enum: ["cpu", "cuda"] },
        amp: { type: "boolean" },
        tag: { type: "string", maxLength: 8 },
      },
      required: ["lr"],
    },
  });

  test("defaults are filled in, in declaration order", async () => {
    expect(checkParams(recipe, { lr: 0.1 })).toEqual({ lr: 0.1, epochs: 3 });
    expect(Object.keys(checkParams(recipe, { device: "cuda", lr: 1 }))).toEqual(["lr", "epochs", "device"]);
  });

  const bad: [string, unknown, string][] = [
    ["a missing required param", {}, "body.params.lr"],
    ["a wrong type", { lr: "fast" }, "body.params.lr"],
    ["a value out of bounds", { lr: 0 }, "body.params.lr"],
    ["an integer given a fraction", { lr: 1, epochs: 1.5 }, "body.params.epochs"],
    ["a value outside the enum", { lr: 1, device: "tpu" }, "body.params.device"],
    ["an undeclared param", { lr: 1, command: "rm -rf /" }, "body.params.command"],
    ["a string too long", { lr: 1, tag: "123456789" }, "body.params.tag"],
    ["a NUL in a string", { lr: 1, tag: "a\0b" }, "body.params.tag"],
  ];
  for (const [what, params, field] of bad) {
    test(`${what} is a 400 naming ${field}`, async () => {
      expect(fieldOf(() => checkParams(recipe, params))).toBe(field);
    });
  }

  test("argv: the declared command, then --key=value (a value starting with - stays a value), booleans as --key / --no-key", async () => {
    expect(renderArgs({ lr: 0.5, tag: "-rf", amp: true, x: false })).toEqual([
      "--lr=0.5",
      "--tag=-rf",
      "--amp",
      "--no-x",
    ]);
    expect(argvOf({ command: ["python3", "t.py"] }, { lr: 1 })).toEqual(["python3", "t.py", "--lr=1"]);
    expect(argvOf({ command: ["python3", "t.py"], params_via: ["file"] }, { lr: 1 })).toEqual(["python3", "t.py"]);
    expect(paramsSchema(recipe).additionalProperties).toBe(false);
  });

  test("the child's environment drops the parent's TRAINWATCH_* and hides GPUs from a recipe that declares none", async () => {
    const env = childEnv(
      {
        operationId: "op_1",
        recipe: { ...fakeRecipe({ env: { A: "1" } }), cwd: "/" },
        params: {},
        apiUrl: "http://127.0.0.1:1",
        token: "t",
        devices: [],
      },
      { PATH: "/bin", TRAINWATCH_HOST_TOKEN: "secret", TRAINWATCH_TOKEN: "outer" },
      "/tmp/p.json",
    );
    expect(env).toMatchObject({
      PATH: "/bin",
      A: "1",
      TRAINWATCH_URL: "http://127.0.0.1:1",
      TRAINWATCH_OPERATION_ID: "op_1",
      TRAINWATCH_TOKEN: "t",
      TRAINWATCH_PARAMS: "/tmp/p.json",
      CUDA_VISIBLE_DEVICES: "",
    });
    expect(env.TRAINWATCH_HOST_TOKEN).toBeUndefined();
  });

  test("a local child and a Slurm job get the same Trainwatch variables, which no recipe overrides (a token included)", async () => {
    const recipeEnv = { A: "1", TRAINWATCH_URL: "http://evil", TRAINWATCH_TOKEN: "stolen" };
    const child = childEnv(
      {
        operationId: "op_1",
        recipe: { ...fakeRecipe({ env: recipeEnv }), cwd: "/" },
        params: {},
        apiUrl: "http://127.0.0.1:1",
        token: null,
        devices: [],
      },
      { PATH: "/bin" },
      // A Slurm job's params file comes from its script (batchScript), not from its environment.
      null,
    );
    const job = jobEnvironment({ url: "http://127.0.0.1:1", token: "", operationId: "op_1", env: recipeEnv });
    const trainwatch = (env: Record<string, string>) =>
      Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("TRAINWATCH_") || k === "PYTHONUNBUFFERED"));
    expect(trainwatch(child)).toEqual({
      PYTHONUNBUFFERED: "1",
      TRAINWATCH_URL: "http://127.0.0.1:1",
      TRAINWATCH_OPERATION_ID: "op_1",
    });
    expect(trainwatch(job)).toEqual(trainwatch(child));
  });

  test("a failure message ends with the last stderr lines", async () => {
    const m = failureMessage({
      exit_code: 1,
      signal: null,
      stopped: false,
      spawn_error: null,
      stderr_tail: ["Traceback …", "ZeroDivisionError: division by zero"],
      duration_s: 1,
    });
    expect(m).toStartWith("script exited with code 1");
    expect(m).toEndWith("ZeroDivisionError: division by zero");
  });
});

describe("logs on disk", () => {
  const tmp = tempDir("trainwatch-logs-");
  afterAll(() => tmp.cleanup());

  test("lines arrive whole across chunks, and the tail reads them back after the run", async () => {
    const logs = new LogStore(tmp.dir);
    const log = logs.create("op_a");
    log.write("stdout", "hel");
    log.write("stdout", "lo\nwor");
    log.write("stderr", "oops\n");
    logs.close("op_a");
    expect(logs.tail("op_a", 10)).toEqual({ lines: ["hello", "oops", "wor"], truncated: false, running: false });
    expect(logs.tail("op_a", 2)).toEqual({ lines: ["oops", "wor"], truncated: true, running: false });
  });

  test("one log never exceeds its bound and keeps the newest lines", async () => {
    const logs = new LogStore(tmp.dir, 10_000);
    const log = logs.create("op_b");
    for (let i = 0; i < 2000; i++) log.write("stdout", `line ${i}\n`);
    logs.close("op_b");
    const path = logs.pathOf("op_b");
    const size = readFileSync(path).length + readFileSync(`${path}.1`).length;
    expect(size).toBeLessThanOrEqual(10_000);
    const { lines, truncated } = logs.tail("op_b", 100_000);
    expect(lines.at(-1)).toBe("line 1999");
    expect(truncated).toBe(false);
    expect(lines.length).toBeGreaterThan(300);
    expect(logs.tail("op_b", 5).truncated).toBe(true);
  });

  test("a relative folder is made absolute: the script runs in its own cwd and TRAINWATCH_PARAMS names a file in here", async () => {
    expect(new LogStore("data/logs").dir).toBe(join(process.cwd(), "data/logs"));
  });

  test("an id that is not a file name is refused", async () => {
    expect(() => new LogStore(tmp.dir).pathOf("../etc/passwd")).toThrow("not an operation id");
  });
});

describe("script trainings, locally (a bun script as the trainer)", () => {
  const apps: ReturnType<typeof scriptTrainingApp>[] = [];
  const start = (opts?: Parameters<typeof scriptTrainingApp>[0]) => {
    const a = scriptTrainingApp(opts);
    apps.push(a);
    return a;
  };
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
  });
  const post = (a: ReturnType<typeof scriptTrainingApp>, body: unknown) =>
    json(a.app.handle(req("POST", "/api/v1/trainings", body)));
  const op = async (a: ReturnType<typeof scriptTrainingApp>, id: string) =>
    (await json(a.app.handle(req("GET", `/api/v1/operations/${id}`)))).body.data;
  const finished = (a: ReturnType<typeof scriptTrainingApp>, id: string) =>
    until(`${id} to finish`, async () => {
      const o = await op(a, id);
      return ["completed", "failed", "cancelled"].includes(o.status) && o.metadata.exit ? o : undefined;
    });

  test("GET /recipes lists the declared recipe with its params schema", async () => {
    const a = start();
    const { status, body } = await json(a.app.handle(req("GET", "/api/v1/recipes")));
    expect(status).toBe(200);
    expect(body.data.recipes).toHaveLength(1);
    expect(body.data.recipes[0]).toMatchObject({
      name: "fake",
      target: "local",
      host: null,
      epochs_param: "epochs",
      params: { properties: { epochs: { type: "integer" } } },
    });
    // Where the files are and what runs stays on the server.
    expect(body.data.recipes[0].command).toBeUndefined();
  });

  test("every epoch arrives, the exit code 0 completes it, and the logs route returns the output", async () => {
    const a = start();
    const { status, body } = await post(a, { recipe: "fake", params: { epochs: 4 } });
    expect(status).toBe(202);
    // A free slot starts it before the reply: the child is running, its pid recorded.
    expect(body.data).toMatchObject({ status: "running", metadata: { pid: expect.any(Number) } });
    expect(body.data).toMatchObject({
      metadata: { location: "local", kind: "script", recipe: "fake", params: { epochs: 4, mode: "ok", finish: false } },
    });
    expect(body.data.progress.total_epochs).toBe(4);
    const id = body.data.operation_id;
    const done = await finished(a, id);
    expect(done.status).toBe("completed");
    expect(done.progress.epochs_completed).toBe(4);
    expect(done.metadata.exit).toMatchObject({ exit_code: 0, signal: null });
    expect(done.metadata.command.slice(-3)).toEqual(["--epochs=4", "--mode=ok", "--no-finish"]);
    const metrics = (await json(a.app.handle(req("GET", `/api/v1/operations/${id}/metrics`)))).body.data.metrics.epochs;
    expect(metrics.map((e: { epoch: number }) => e.epoch)).toEqual([0, 1, 2, 3]);
    const logs = await json(a.app.handle(req("GET", `/api/v1/operations/${id}/logs?tail=50`)));
    expect(logs.status).toBe(200);
    expect(logs.body.data.running).toBe(false);
    const text = logs.body.data.lines.join("\n");
    expect(text).toContain("fake_train: mode=ok epochs=4");
    expect(text).toContain('params: { "epochs": 4, "mode": "ok", "finish": false }');
    // The params file was there for the script, and is gone with its run.
    const paramsFile = text.match(/params_file=(\S+)/)?.[1] ?? "";
    expect(paramsFile).toEndWith(`${id}.params.json`);
    expect(existsSync(paramsFile)).toBe(false);
    expect(text).toContain("epoch 3 sent: 200");
    expect(text).toContain("[trainwatch] exited with code 0");
    const tail = await json(a.app.handle(req("GET", `/api/v1/operations/${id}/logs?tail=1`)));
    expect(tail.body.data).toMatchObject({ lines: [expect.stringContaining("exited with code 0")], truncated: true });
  });

  test("a stop_policy in the request is recorded on the script's operation", async () => {
    const a = start();
    const { status, body } = await post(a, {
      recipe: "fake",
      params: { epochs: 1 },
      stop_policy: { on: ["diverging"], min_epochs: 2 },
    });
    expect(status).toBe(202);
    expect(body.data.stop_policy).toEqual({ on: ["diverging"], min_epochs: 2 });
    await finished(a, body.data.operation_id);
  });

  test("a script that finishes the operation itself keeps its own result", async () => {
    const a = start();
    const id = (await post(a, { recipe: "fake", params: { epochs: 1, finish: true } })).body.data.operation_id;
    const done = await finished(a, id);
    expect(done.status).toBe("completed");
    expect(done.result).toEqual({ by: "script" });
  });

  test("a crashing script ends failed with its traceback's last line in error_message", async () => {
    const a = start();
    const id = (await post(a, { recipe: "fake", params: { mode: "crash" } })).body.data.operation_id;
    const done = await finished(a, id);
    expect(done.status).toBe("failed");
    expect(done.error_message).toStartWith("script exited with code 3");
    expect(done.error_message).toEndWith("ValueError: boom at epoch 1");
    expect(done.failure_code).toBe("trainer_error");
    expect(done.progress.epochs_completed).toBe(1);
  });

  test("a program that does not exist fails the operation saying so", async () => {
    const a = start({ recipes: [fakeRecipe({ name: "missing", command: ["/nonexistent/python9"] })] });
    const id = (await post(a, { recipe: "missing" })).body.data.operation_id;
    const done = await finished(a, id);
    expect(done.status).toBe("failed");
    expect(done.error_message).toContain("could not start");
    expect(done.failure_code).toBe("trainer_error");
  });

  const childPid = async (a: ReturnType<typeof scriptTrainingApp>, id: string) =>
    until(`${id} to print its child's pid`, async () => {
      const lines: string[] =
        (await json(a.app.handle(req("GET", `/api/v1/operations/${id}/logs`)))).body.data?.lines ?? [];
      const m = lines.map((l) => /child pid (\d+)/.exec(l)).find(Boolean);
      return m && lines.includes("waiting") ? Number(m[1]) : undefined;
    });

  test("cancel stops it: SIGTERM to the process group, and no process of it is left (its child included)", async () => {
    const a = start();
    const id = (await post(a, { recipe: "fake", params: { mode: "hang", epochs: 2 } })).body.data.operation_id;
    const child = await childPid(a, id);
    const running = await op(a, id);
    expect(running.status).toBe("running");
    const pgid = running.metadata.pid as number;
    expect(groupAlive(pgid)).toBe(true);
    expect(processAlive(child)).toBe(true);
    const cancel = await json(a.app.handle(req("DELETE", `/api/v1/operations/${id}`)));
    expect(cancel.status).toBe(200);
    const done = await finished(a, id);
    expect(done.status).toBe("cancelled");
    expect(done.metadata.exit.signal).toBe("SIGTERM");
    expect(groupAlive(pgid)).toBe(false);
    expect(processAlive(child)).toBe(false);
    const lines = (await json(a.app.handle(req("GET", `/api/v1/operations/${id}/logs`)))).body.data.lines.join("\n");
    expect(lines).toContain(`stopping: SIGTERM to process group ${pgid}`);
  });

  test("a script that ignores SIGTERM is killed after TRAINWATCH_KILL_GRACE", async () => {
    const a = start({ env: { TRAINWATCH_KILL_GRACE: "0.3" } });
    const id = (await post(a, { recipe: "fake", params: { mode: "stubborn", epochs: 1 } })).body.data.operation_id;
    const child = await childPid(a, id);
    const pgid = (await op(a, id)).metadata.pid as number;
    await a.app.handle(req("DELETE", `/api/v1/operations/${id}`));
    const done = await finished(a, id);
    expect(done.metadata.exit.signal).toBe("SIGKILL");
    expect(groupAlive(pgid)).toBe(false);
    expect(processAlive(child)).toBe(false);
    const lines = (await json(a.app.handle(req("GET", `/api/v1/operations/${id}/logs`)))).body.data.lines.join("\n");
    expect(lines).toContain("ignoring SIGTERM");
    expect(lines).toContain("sending SIGKILL");
  });

  test("the live log stream sends the tail, then lines as they are printed, then end", async () => {
    const a = start();
    const id = (await post(a, { recipe: "fake", params: { mode: "hang", epochs: 1 } })).body.data.operation_id;
    await childPid(a, id);
    const res = await fetch(`${a.url}/api/v1/operations/${id}/logs/stream?tail=1`);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const sse = new SseReader(res);
    await sse.until(() => sse.events.length > 0, 10_000, "the replay");
    expect(sse.events[0]).toMatchObject({ event: "lines", data: { lines: ["waiting"] } });
    await a.app.handle(req("DELETE", `/api/v1/operations/${id}`));
    await sse.until(() => sse.events.some((e) => e.event === "end"), 20_000, "end");
    await sse.end();
    const text = sse.events
      .filter((e) => e.event === "lines")
      .flatMap((e) => e.data.lines)
      .join("\n");
    expect(text).toContain("stopping: SIGTERM");
    expect(text).toContain("killed by SIGTERM");
  });

  test("the queue is shared: with TRAINWATCH_MAX_LOCAL_TRAININGS=1 a second script waits pending until the first ends", async () => {
    const a = start({ env: { TRAINWATCH_MAX_LOCAL_TRAININGS: "1" } });
    const first = (await post(a, { recipe: "fake", params: { mode: "hang", epochs: 1 } })).body.data.operation_id;
    await childPid(a, first);
    const second = (await post(a, { recipe: "fake", params: { epochs: 1 } })).body.data.operation_id;
    expect((await op(a, second)).status).toBe("pending");
    expect(existsSync(a.logs.pathOf(second))).toBe(false);
    await a.app.handle(req("DELETE", `/api/v1/operations/${first}`));
    expect((await finished(a, second)).status).toBe("completed");
  });

  test("cancelling a queued script removes it before anything runs", async () => {
    const a = start({ env: { TRAINWATCH_MAX_LOCAL_TRAININGS: "1" } });
    const first = (await post(a, { recipe: "fake", params: { mode: "hang", epochs: 1 } })).body.data.operation_id;
    await childPid(a, first);
    const second = (await post(a, { recipe: "fake" })).body.data.operation_id;
    expect((await json(a.app.handle(req("DELETE", `/api/v1/operations/${second}`)))).body.data.status).toBe(
      "cancelled",
    );
    await a.app.handle(req("DELETE", `/api/v1/operations/${first}`));
    await finished(a, first);
    expect(existsSync(a.logs.pathOf(second))).toBe(false);
  });

  test("bad params, undeclared recipes and a recipe mixed with a spec are 400s naming the field, and create nothing", async () => {
    const a = start();
    const cases: [unknown, string][] = [
      [{ recipe: "nope" }, "body.recipe"],
      [{ recipe: "fake", params: { epochs: 0 } }, "body.params.epochs"],
      [{ recipe: "fake", params: { epochs: "3" } }, "body.params.epochs"],
      [{ recipe: "fake", params: { mode: "rm -rf /" } }, "body.params.mode"],
      [{ recipe: "fake", params: { command: ["sh", "-c", "id"] } }, "body.params.command"],
      [{ recipe: "fake", dataset: { kind: "synthetic", generator: "spirals" } }, "body.dataset"],
      [{ recipe: 5 }, "body.recipe"],
      [{ params: { epochs: 1 } }, "body.params"],
      [{}, "body.dataset"],
    ];
    for (const [body, field] of cases) {
      const { status, body: reply } = await post(a, body);
      expect({ body, status, field: reply.error?.details?.field }).toEqual({ body, status: 400, field });
    }
    expect((await a.store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
  });

  test("no request runs a command: command, argv, cwd, env or shell in a body are refused", async () => {
    const a = start();
    for (const key of ["command", "argv", "cwd", "env", "shell"]) {
      const { status, body } = await post(a, {
        recipe: "fake",
        [key]: key === "command" ? ["sh", "-c", "touch /tmp/pwned"] : "x",
      });
      expect({ key, status, field: body.error.details.field }).toEqual({ key, status: 400, field: `body.${key}` });
    }
    expect((await a.store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
  });

  test("logs of an operation that is not a script training are a 404 that says why", async () => {
    const a = start();
    const ext = (await json(a.app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })))).body.data
      .operation_id;
    const { status, body } = await json(a.app.handle(req("GET", `/api/v1/operations/${ext}/logs`)));
    expect(status).toBe(404);
    expect(body.error.message).toContain("only script trainings");
    expect((await json(a.app.handle(req("GET", "/api/v1/operations/op_nope/logs")))).status).toBe(404);
    expect((await json(a.app.handle(req("GET", `/api/v1/operations/${ext}/logs?tail=0`)))).status).toBe(400);
  });
});

describe("MCP: start_training takes a recipe, get_operation_logs reads its output", () => {
  test("list_recipes, start_training {recipe, params}, get_operation_logs; a bad param is an isError naming it", async () => {
    const a = scriptTrainingApp();
    try {
      const api = new TrainwatchClient({ baseUrl: a.url });
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      await createMcpServer(api).connect(serverSide);
      const mcp = new Client({ name: "scripts-test", version: "1.0.0" });
      await mcp.connect(clientSide);
      const call = async (name: string, args: Record<string, unknown>) =>
        (await mcp.callTool({ name, arguments: args })) as CallToolResult;
      const recipes = (await call("list_recipes", {})).structuredContent as { recipes: { name: string }[] };
      expect(recipes.recipes.map((r) => r.name)).toEqual(["fake"]);
      const started = await call("start_training", { recipe: "fake", params: { epochs: 2 } });
      expect(started.isError).toBeFalsy();
      const id = (started.structuredContent as { operation_id: string }).operation_id;
      await until("the script to finish", async () =>
        (await a.store.getOperation(id))?.metadata.exit ? true : undefined,
      );
      const logs = (await call("get_operation_logs", { operation_id: id, tail: 50 })).structuredContent as {
        lines: string[];
        running: boolean;
      };
      expect(logs.lines.join("\n")).toContain("epoch 1 sent: 200");
      expect(logs.running).toBe(false);
      const bad = await call("start_training", { recipe: "fake", params: { epochs: 1000 } });
      expect(bad.isError).toBe(true);
      expect((bad.content[0] as { text: string }).text).toStartWith("VALIDATION_ERROR: body.params.epochs");
      const external = (await a.store.createOperation({ operation_type: "training" })).operation_id;
      const none = await call("get_operation_logs", { operation_id: external });
      expect(none.isError).toBe(true);
      expect((none.content[0] as { text: string }).text).toContain("only script trainings");
      await mcp.close();
    } finally {
      await a.close();
    }
  });
});

describe("leftovers of a crashed run", () => {
  test("a process group named in a pid file is killed only where its processes carry that operation id", async () => {
    const tmp = tempDir("trainwatch-leftovers-");
    try {
      const id = "op_training_20260101_000000_deadbeef";
      const ours = Bun.spawn(["sleep", "600"], {
        env: { ...process.env, TRAINWATCH_OPERATION_ID: id },
        detached: true,
      });
      const other = Bun.spawn(["sleep", "600"], {
        env: { ...process.env, TRAINWATCH_OPERATION_ID: "op_other" },
        detached: true,
      });
      writeFileSync(join(tmp.dir, `${id}.pid`), `${ours.pid}\n`);
      writeFileSync(join(tmp.dir, `op_x.pid`), `${other.pid}\n`);
      expect(killLeftovers(tmp.dir).sort()).toEqual([id, "op_x"].sort());
      await ours.exited;
      expect(ours.signalCode).toBe("SIGKILL");
      expect(groupAlive(other.pid)).toBe(true);
      other.kill("SIGKILL");
      await other.exited;
      expect(existsSync(join(tmp.dir, `${id}.pid`))).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });
});

describe("PATCH /operations/{id}/metadata", () => {
  test("merges what a client reports (its GPU), refuses Trainwatch's own keys, and 409s once finished", async () => {
    const a = scriptTrainingApp();
    try {
      const id = (
        await a.store.createOperation({
          operation_type: "training",
          metadata: { location: "local", kind: "script", recipe: "fake" },
        })
      ).operation_id;
      const ok = await json(
        a.app.handle(req("PATCH", `/api/v1/operations/${id}/metadata`, { gpu: "NVIDIA H200", torch: "2.13.0" })),
      );
      expect(ok.status).toBe(200);
      expect(ok.body.data.metadata).toMatchObject({
        location: "local",
        recipe: "fake",
        gpu: "NVIDIA H200",
        torch: "2.13.0",
      });
      const own = await json(a.app.handle(req("PATCH", `/api/v1/operations/${id}/metadata`, { recipe: "other" })));
      expect([own.status, own.body.error.details.field]).toEqual([400, "body.recipe"]);
      await a.store.finish(id, "completed");
      expect((await json(a.app.handle(req("PATCH", `/api/v1/operations/${id}/metadata`, { gpu: "x" })))).status).toBe(
        409,
      );
    } finally {
      await a.close();
    }
  });
});
