// Script trainings on a GPU host process (`bun run src/host`), driven by an API on another port: the host checks the
// recipe and params, runs the script in its own process group, the child reports to the host on loopback, and the
// epochs reach the API through the relay outbox. Cancel kills the group; a host killed mid-run fails the operation
// as interrupted at its next start and kills what the script left; logs come from the host, tail and live.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { OperationsService } from "../src/operations/service.ts";
import { HostPool } from "../src/host_pool/pool.ts";
import { groupAlive } from "../src/script_trainings/runner.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { Dispatcher } from "../src/trainer/dispatcher.ts";
import { LocalTrainer } from "../src/trainer/local.ts";
import { fakeRecipe, processAlive, recipeFile } from "./fixtures/scripts.ts";
import { json, req, startHostProcess, tempDir, until, type HostProcess } from "./helpers.ts";
import { SseReader } from "./sse.ts";

/** An API (in process, listening: the host relays to it) whose trainings go to `hostUrl`. */
function apiFor(hostUrl: string) {
  const config = loadConfig({ TRAINWATCH_GPUS: "none" });
  const store = new SqliteStore(":memory:", config.trends);
  const operations = new OperationsService(store);
  const local = new LocalTrainer(operations, { maxConcurrent: 1, modelsDir: "/nonexistent" });
  let url = "";
  const hosts = new HostPool({ urls: [hostUrl], token: null, apiUrl: () => url });
  const app = createApp({ store, operations, config, trainers: new Dispatcher(operations, local, hosts, config) });
  app.listen({ hostname: "127.0.0.1", port: 0 });
  url = `http://127.0.0.1:${app.server!.port}`;
  return { app, store, url, close: async () => (await app.stop(true), store.close()) };
}

describe("script trainings on a GPU host process", () => {
  const tmp = tempDir("trainwatch-host-scripts-");
  // The fake trainer with its step mode declared (fake_train.ts --steps): the other tests of script trainings keep the
  // recipe as it is.
  const fake = fakeRecipe();
  const params = fake.params!;
  const file = recipeFile([
    fakeRecipe({ params: { ...params, properties: { ...params.properties, steps: { type: "integer", minimum: 0 } } } }),
  ]);
  const env = {
    TRAINWATCH_RECIPES: file.path,
    TRAINWATCH_GPUS: "none",
    TRAINWATCH_KILL_GRACE: "0.5",
    TRAINWATCH_LOGS_DIR: join(tmp.dir, "logs"),
    TRAINWATCH_HEARTBEAT_INTERVAL: "0.5",
  };
  let host: HostProcess;
  let api: ReturnType<typeof apiFor>;
  const boot = async () => {
    host = await startHostProcess(tmp.dir, env);
    api = apiFor(host.url);
  };
  afterEach(async () => {
    await api?.close();
    await host?.stop();
  });
  afterAll(() => (tmp.cleanup(), file.cleanup()));

  const post = (body: unknown) =>
    json(api.app.handle(req("POST", "/api/v1/trainings", { target: "host", ...(body as object) })));
  const op = async (id: string) => (await json(api.app.handle(req("GET", `/api/v1/operations/${id}`)))).body.data;
  const logLines = async (id: string): Promise<string[]> =>
    (await json(api.app.handle(req("GET", `/api/v1/operations/${id}/logs?tail=500`)))).body.data?.lines ?? [];
  const finished = (id: string) =>
    until(`${id} to finish`, async () => {
      const o = await op(id);
      return ["completed", "failed", "cancelled"].includes(o.status) ? o : undefined;
    });
  const pids = (id: string) =>
    until(`${id} to print its pids`, async () => {
      const lines = await logLines(id);
      const self = lines.map((l) => /^pid (\d+)/.exec(l)).find(Boolean);
      const child = lines.map((l) => /child pid (\d+)/.exec(l)).find(Boolean);
      return self && child && lines.includes("waiting")
        ? { pgid: Number(self[1]), child: Number(child[1]) }
        : undefined;
    });

  test("GET /recipes lists the host's recipes; every epoch arrives through the relay; the logs come from the host", async () => {
    await boot();
    const recipes = (await json(api.app.handle(req("GET", "/api/v1/recipes")))).body.data;
    expect(recipes.recipes).toEqual([
      expect.objectContaining({ name: "fake", target: "host", targets: ["host"], host: host.url }),
    ]);
    expect(recipes.hosts).toEqual([{ host: host.url, error: null, recipes: 1 }]);
    const { status, body } = await post({ recipe: "fake", params: { epochs: 5 } });
    expect(status).toBe(202);
    // Run by the host executor (src/executors/host.ts): its external id is the host that took it.
    expect(body.data).toMatchObject({
      status: "running",
      executor: "host",
      external_id: host.url,
      metadata: { location: "host", kind: "script", recipe: "fake", host: host.url, params: { epochs: 5 } },
    });
    const id = body.data.operation_id;
    const done = await finished(id);
    expect(done.status).toBe("completed");
    expect(done.progress.epochs_completed).toBe(5);
    expect(done.metadata.backend).toBe("script");
    const epochs = (await json(api.app.handle(req("GET", `/api/v1/operations/${id}/metrics`)))).body.data.metrics
      .epochs;
    expect(epochs.map((e: { epoch: number }) => e.epoch)).toEqual([0, 1, 2, 3, 4]);
    const lines = (await logLines(id)).join("\n");
    expect(lines).toContain("epoch 4 sent: 200");
    expect(lines).toContain("exited with code 0");
    // The child talked to the host on loopback, with a token of its own session, not to the API.
    expect(lines).toMatch(/TRAINWATCH_URL_SEEN=http:\/\/127\.0\.0\.1:\d+/);
    expect(lines).not.toContain(`TRAINWATCH_URL_SEEN=${api.url}`);
  });

  test("a script's steps posted to its host reach the API through the relay, in order and once, and close its epochs", async () => {
    await boot();
    const id = (await post({ recipe: "fake", params: { epochs: 3, steps: 250 } })).body.data.operation_id;
    const done = await finished(id);
    expect(done.status).toBe("completed");
    expect(done.progress.steps_completed).toBe(750);
    const read = async (path: string) =>
      (await json(api.app.handle(req("GET", `/api/v1/operations/${id}/${path}`)))).body.data;
    const steps = (await read("steps?max_points=1000000")).steps;
    expect(steps.map((s: { step: number }) => s.step)).toEqual(Array.from({ length: 750 }, (_, i) => i));
    expect(
      steps.filter((s: { val_loss?: number }) => s.val_loss !== undefined).map((s: { step: number }) => s.step),
    ).toEqual([249, 499, 749]);
    // The finish closed the last epoch: three derived epochs, each with its last evaluation.
    expect(
      (await read("metrics")).metrics.epochs.map((e: { epoch: number; val_loss: number }) => [e.epoch, e.val_loss]),
    ).toEqual([
      [0, 1.2],
      [1, 0.6],
      [2, 1.2 / 3],
    ]);
    expect((await logLines(id)).join("\n")).toContain("steps 700-749 sent: 200");
  });

  test("bad params and undeclared recipes are 400s naming the field; nothing is created", async () => {
    await boot();
    expect((await post({ recipe: "fake", params: { epochs: -1 } })).body.error.details.field).toBe(
      "body.params.epochs",
    );
    expect((await post({ recipe: "fake", params: { shell: "id" } })).body.error.details.field).toBe(
      "body.params.shell",
    );
    const unknown = await post({ recipe: "nope" });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details.field).toBe("body.recipe");
    expect((await api.store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
  });

  test("a crashing script ends failed with its traceback's last line", async () => {
    await boot();
    const id = (await post({ recipe: "fake", params: { mode: "crash" } })).body.data.operation_id;
    const done = await finished(id);
    expect(done.status).toBe("failed");
    expect(done.error_message).toEndWith("ValueError: boom at epoch 1");
    expect(done.failure_code).toBe("trainer_error");
  });

  test("cancel stops it on the host and leaves no process of its group; the live log relays the stop", async () => {
    await boot();
    const id = (await post({ recipe: "fake", params: { mode: "hang", epochs: 2 } })).body.data.operation_id;
    const { pgid, child } = await pids(id);
    expect(groupAlive(pgid)).toBe(true);
    const res = await fetch(`${api.url}/api/v1/operations/${id}/logs/stream?tail=1`);
    const sse = new SseReader(res);
    await sse.until(() => sse.events.length > 0, 20_000, "the replay");
    expect(sse.events[0]!.data.lines).toEqual(["waiting"]);
    expect((await json(api.app.handle(req("DELETE", `/api/v1/operations/${id}`)))).status).toBe(200);
    await sse.until(() => sse.events.some((e) => e.event === "end"), 20_000, "end");
    const streamed = sse.events.flatMap((e) => e.data.lines ?? []).join("\n");
    expect(streamed).toContain(`stopping: SIGTERM to process group ${pgid}`);
    await until("the script's group to be gone", () => !groupAlive(pgid));
    expect(processAlive(child)).toBe(false);
    expect((await op(id)).status).toBe("cancelled");
    const session = await until("the host session to settle", async () => {
      const s = await (await fetch(`${host.url}/sessions/${id}`)).json();
      return s.data.status === "cancelled" ? s.data : undefined;
    });
    expect(session.backend).toBe("script");
  });

  test("a host killed mid-run: its next start kills what the script left and fails the operation as interrupted", async () => {
    await boot();
    const id = (await post({ recipe: "fake", params: { mode: "hang", epochs: 1 } })).body.data.operation_id;
    const { pgid, child } = await pids(id);
    host.proc.kill("SIGKILL");
    await host.proc.exited;
    // The script outlives its host (its own session): only the next start can stop it.
    expect(groupAlive(pgid)).toBe(true);
    const apiUrl = api.url;
    host = await startHostProcess(tmp.dir, { ...env, TRAINWATCH_URL: apiUrl });
    await until("the script's group to be gone", () => !groupAlive(pgid));
    expect(processAlive(child)).toBe(false);
    const done = await finished(id);
    expect(done.status).toBe("failed");
    expect(done.error_message).toContain("interrupted: training host restarted");
    expect(host.output()).toMatch(/killed \d+ process\(es\) left by the previous run/);
  });
});
