// Executors (issue 25): a recipe goes to the executor its target names, the operation records which one runs it and
// its id there, a target without an executor (or one the recipe does not allow) is a 400 naming the field, a client
// cannot set the executor's fields, and why a pending run waits reaches its streams. The local adapter runs the real
// fake trainer (tests/fixtures/scripts/fake_train.ts); the host adapter is checked in tests/host_scripts.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { checkRecipeFile, targetsOf } from "../src/recipes/recipe.ts";
import { chooseTarget } from "../src/executors/registry.ts";
import type { OperationEvent } from "../src/operations/service.ts";
import { fakeRecipe, processAlive, scriptTrainingApp } from "./fixtures/scripts.ts";
import { OperationsService } from "../src/operations/service.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { json, localTrainingApp, makeApp, req, until } from "./helpers.ts";

const apps: ReturnType<typeof scriptTrainingApp>[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});
const start = (...args: Parameters<typeof scriptTrainingApp>) => {
  const a = scriptTrainingApp(...args);
  apps.push(a);
  return a;
};
const post = (a: { app: { handle(r: Request): Promise<Response> } }, body: unknown) =>
  json(a.app.handle(req("POST", "/api/v1/trainings", body)));
const get = async (a: ReturnType<typeof scriptTrainingApp>, id: string) =>
  (await json(a.app.handle(req("GET", `/api/v1/operations/${id}`)))).body.data;

describe("a recipe's targets", () => {
  const file = (r: Record<string, unknown>) => ({ recipes: [{ name: "r", command: ["x"], ...r }] });

  test("default local; one target or several, the first the default", () => {
    expect(targetsOf({})).toEqual(["local"]);
    expect(targetsOf({ target: "slurm" })).toEqual(["slurm"]);
    expect(targetsOf({ target: ["slurm", "local"] })).toEqual(["slurm", "local"]);
  });

  test("the file refuses host (a host declares its own), a slurm object without target slurm, and bad resources", () => {
    expect(checkRecipeFile(file({ target: "host" }))?.field).toBe("recipes.0.target");
    expect(checkRecipeFile(file({ slurm: { partition: "gpu" } }))?.field).toBe("recipes.0.slurm");
    expect(checkRecipeFile(file({ target: "local", slurm: { qos: "normal" } }))?.message).toContain(
      "only meaningful with target slurm",
    );
    expect(checkRecipeFile(file({ cpus: 0 }))?.field).toBe("recipes.0.cpus");
    expect(checkRecipeFile(file({ memory_mb: 1.5 }))?.field).toBe("recipes.0.memory_mb");
    expect(checkRecipeFile(file({ target: "slurm", slurm: { partition: "gpu; rm -rf" } }))?.field).toBe(
      "recipes.0.slurm.partition",
    );
    expect(checkRecipeFile(file({ target: "slurm", slurm: { extra: 1 } }))?.field).toStartWith("recipes.0.slurm");
    expect(
      checkRecipeFile(
        file({
          target: ["local", "slurm"],
          gpus: 1,
          cpus: 4,
          memory_mb: 16_000,
          time_limit_minutes: 90,
          slurm: { partition: "gpu", account: "lab", qos: "normal", gres: "shard:2" },
        }),
      ),
    ).toBeNull();
  });

  test("a request's target must be one the recipe allows; without one the recipe's first applies", () => {
    const r = { name: "r", target: ["local", "slurm"] as ("local" | "slurm")[] };
    expect(chooseTarget(undefined, r, "host")).toBe("local");
    expect(chooseTarget("slurm", r, "local")).toBe("slurm");
    expect(() => chooseTarget("slurm", { name: "r" }, "local")).toThrow(
      'body.target: recipe "r" runs on local, not slurm',
    );
    // A recipe this server does not declare is a host's to check; without a target the server's default applies.
    expect(chooseTarget("host", { name: "r" }, "local")).toBe("host");
    expect(chooseTarget(undefined, null, "host")).toBe("host");
  });
});

describe("routing a training request by its target", () => {
  test("GET /recipes lists each recipe's targets and resources", async () => {
    const a = start({ recipes: [fakeRecipe({ target: ["local", "slurm"], cpus: 2, time_limit_minutes: 5 })] });
    const { body } = await json(a.app.handle(req("GET", "/api/v1/recipes")));
    expect(body.data.recipes).toEqual([
      expect.objectContaining({
        name: "fake",
        target: "local",
        targets: ["local", "slurm"],
        resources: { cpus: 2, memory_mb: null, time_limit_minutes: 5 },
      }),
    ]);
  });

  test("a target the recipe does not allow is a 400 naming body.target; nothing is created", async () => {
    const a = start();
    const { status, body } = await post(a, { recipe: "fake", target: "slurm" });
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: "VALIDATION_ERROR", details: { field: "body.target" } });
    expect(body.error.message).toContain('recipe "fake" runs on local, not slurm');
    expect((await a.store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
  });

  test("a target without an executor here is a 400 naming body.target and what to configure", async () => {
    const a = start({ recipes: [fakeRecipe({ target: ["slurm", "local"] })] });
    const slurm = await post(a, { recipe: "fake" });
    expect(slurm.status).toBe(400);
    expect(slurm.body.error.details.field).toBe("body.target");
    expect(slurm.body.error.message).toContain("no slurm executor is configured");
    expect(slurm.body.error.message).toContain("TRAINWATCH_SLURM_URL");
    const host = await post(a, { recipe: "fake", target: "host" });
    expect(host.status).toBe(400);
    expect(host.body.error.message).toContain("TRAINING_HOST_URL");
    expect((await a.store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
    // The recipe's other target still runs it.
    const local = await post(a, { recipe: "fake", target: "local", params: { epochs: 1 } });
    expect(local.status).toBe(202);
    expect(local.body.data.executor).toBe("local");
  });

  test("a built-in spec cannot go to slurm: a 400 naming body.target; nothing is created", async () => {
    const made = localTrainingApp();
    try {
      const { status, body } = await json(
        made.app.handle(
          req("POST", "/api/v1/trainings", {
            dataset: { kind: "synthetic", generator: "overfit", seed: 3 },
            target: "slurm",
          }),
        ),
      );
      expect(status).toBe(400);
      expect(body.error.details.field).toBe("body.target");
      expect((await made.store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
    } finally {
      made.close();
    }
  });
});

describe("the local executor", () => {
  test("the operation records executor local and the process group as its external id", async () => {
    const a = start();
    const { status, body } = await post(a, { recipe: "fake", params: { epochs: 2 } });
    expect(status).toBe(202);
    expect(body.data).toMatchObject({
      status: "running",
      executor: "local",
      external_id: String(body.data.metadata.pid),
    });
    const done = await until("the script to finish", async () => {
      const o = await get(a, body.data.operation_id);
      return o.metadata.exit ? o : undefined;
    });
    expect(done).toMatchObject({ status: "completed", executor: "local", external_id: String(body.data.metadata.pid) });
  });

  test("a script waiting for a slot is pending with the reason and no external id; it gets one when it starts", async () => {
    const a = start({ env: { TRAINWATCH_MAX_LOCAL_TRAININGS: "1" } });
    const first = (await post(a, { recipe: "fake", params: { mode: "hang", epochs: 1 } })).body.data;
    const second = (await post(a, { recipe: "fake", params: { epochs: 1 } })).body.data;
    expect(first.status).toBe("running");
    expect(second).toMatchObject({
      status: "pending",
      executor: "local",
      external_id: null,
      pending_reason: expect.stringContaining("TRAINWATCH_MAX_LOCAL_TRAININGS"),
    });
    expect(second.queue_position).toBe(1);
    const cancelled = await json(a.app.handle(req("DELETE", `/api/v1/operations/${first.operation_id}`)));
    expect(cancelled.status).toBe(200);
    const started = await until("the second to start", async () => {
      const o = await get(a, second.operation_id);
      return o.status !== "pending" && o.external_id ? o : undefined;
    });
    expect(started).not.toHaveProperty("pending_reason");
    expect(started.external_id).toBe(String(started.metadata.pid));
    await until("the first's processes to be gone", async () => !processAlive(first.metadata.pid) || undefined);
  });
});

test("a waiting local script's queue_position follows the queue: the one behind a cancelled one moves up", async () => {
  const a = start({ env: { TRAINWATCH_MAX_LOCAL_TRAININGS: "1" } });
  const first = (await post(a, { recipe: "fake", params: { mode: "hang", epochs: 1 } })).body.data;
  const second = (await post(a, { recipe: "fake", params: { mode: "hang", epochs: 1 } })).body.data;
  const third = (await post(a, { recipe: "fake", params: { mode: "hang", epochs: 1 } })).body.data;
  expect([first.status, second.queue_position, third.queue_position]).toEqual(["running", 1, 2]);
  await json(a.app.handle(req("DELETE", `/api/v1/operations/${second.operation_id}`)));
  const moved = await until("the third to move up", async () => {
    const o = await get(a, third.operation_id);
    return o.queue_position === 1 ? o : undefined;
  });
  expect(moved).toMatchObject({
    status: "pending",
    pending_reason: expect.stringContaining("TRAINWATCH_MAX_LOCAL_TRAININGS"),
  });
  for (const id of [first.operation_id, third.operation_id])
    await json(a.app.handle(req("DELETE", `/api/v1/operations/${id}`)));
  await until("the first's processes to be gone", async () => !processAlive(first.metadata.pid) || undefined);
});

describe("the executor's fields are the server's", () => {
  test("a client registering an operation cannot set executor or external_id (400 naming the field)", async () => {
    const { app } = makeApp();
    for (const field of ["executor", "external_id", "pending_reason", "queue_position"]) {
      const top = await json(
        app.handle(req("POST", "/api/v1/operations", { operation_type: "training", [field]: "x" })),
      );
      expect(top.status).toBe(400);
      expect(JSON.stringify(top.body.error)).toContain(field);
      const inMetadata = await json(
        app.handle(req("POST", "/api/v1/operations", { operation_type: "training", metadata: { [field]: "x" } })),
      );
      expect(inMetadata.status).toBe(400);
      expect(inMetadata.body.error.details.field).toBe(`body.metadata.${field}`);
    }
    const op = (await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })))).body.data;
    expect(op).toMatchObject({ executor: null, external_id: null });
    const patch = await json(
      app.handle(req("PATCH", `/api/v1/operations/${op.operation_id}/metadata`, { external_id: "123" })),
    );
    expect(patch.status).toBe(400);
    expect(patch.body.error.details.field).toBe("body.external_id");
  });
});

describe("why a pending operation waits", () => {
  test("setPending reaches the operation's streams and its reads; a start hides it", async () => {
    const operations = new OperationsService(new SqliteStore(":memory:"));
    const op = await operations.createOperation({ operation_type: "training", status: "pending", executor: "slurm" });
    const heard: OperationEvent[] = [];
    const off = operations.subscribe(op.operation_id, (e) => heard.push(e));
    await operations.setPending(op.operation_id, { reason: "Resources", position: 3 });
    await operations.setExternalId(op.operation_id, "4242");
    off();
    const statuses = heard.filter((e) => e.type === "status").map((e) => (e as { operation: unknown }).operation);
    expect(statuses[0]).toMatchObject({ status: "pending", pending_reason: "Resources", queue_position: 3 });
    expect(statuses[1]).toMatchObject({ external_id: "4242", pending_reason: "Resources" });
    const started = await operations.markStarted(op.operation_id);
    expect(started).toMatchObject({ status: "running", executor: "slurm", external_id: "4242" });
    expect(started).not.toHaveProperty("pending_reason");
  });
});
