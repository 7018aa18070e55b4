// The MCP tools in process: an SDK client on a linked in-memory transport reaches createMcpServer, whose typed API client
// fetches through `app.handle` on an in-memory database; the same tools on the API's own /mcp (Streamable HTTP), behind
// the bearer token; and one stdio smoke test of `bun run src/mcp` as an MCP client spawns it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { join } from "node:path";
import { TrainwatchClient } from "../src/client/api.ts";
import { finishedWithEarlierBest, improving, overfitting, seedRun } from "./fixtures/runs.ts";
import { freePort, localTrainingApp, makeApp } from "./helpers.ts";
import { inProcessFetch, memoryClient } from "./fixtures/mcp.ts";

const ROOT = join(import.meta.dir, "..");

/** `bun run src/mcp` as an MCP client spawns it, pointed at `url`. */
async function stdioClient(url: string): Promise<Client> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "TRAINWATCH_TOKEN") env[k] = v;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ["run", "src/mcp"],
    cwd: ROOT,
    env: { ...env, TRAINWATCH_URL: url },
    stderr: "pipe",
  });
  const client = new Client({ name: "mcp-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

/** The structured result of a successful call. */
async function data<T = any>(client: Client, name: string, args: Record<string, unknown> = {}): Promise<T> {
  const res = await call(client, name, args);
  if (res.isError) throw new Error(`${name} failed: ${JSON.stringify(res.content)}`);
  expect(JSON.parse((res.content[0] as { text: string }).text)).toEqual(res.structuredContent as never);
  return res.structuredContent as T;
}

/** The `CODE: message` text of a failed call. */
async function failure(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
  const res = await call(client, name, args);
  expect(res.isError).toBe(true);
  return (res.content[0] as { text: string }).text;
}

const TOOL_NAMES = [
  "analyze_training",
  "cancel_operation",
  "compare_runs",
  "get_operation_logs",
  "get_operation_metrics",
  "get_operation_status",
  "get_system_metrics",
  "label_operation",
  "list_alerts",
  "list_operations",
  "list_recipes",
  "set_alert_rules",
  "set_stop_policy",
  "start_training",
];

let world: ReturnType<typeof localTrainingApp>;
let api: TrainwatchClient;
let mcp: Client;
const ids: Record<"improving" | "overfitting" | "finished", string> = { improving: "", overfitting: "", finished: "" };

beforeAll(async () => {
  world = localTrainingApp();
  api = new TrainwatchClient({ baseUrl: "http://localhost", fetch: inProcessFetch(world.app) });
  ids.improving = await seedRun(api, "improving", improving());
  ids.overfitting = await seedRun(api, "overfitting", overfitting());
  ids.finished = await seedRun(api, "finished", finishedWithEarlierBest(), { complete: true });
  mcp = await memoryClient(api);
});

afterAll(async () => {
  await mcp?.close();
  // The start_training test's tiny training may still run: let it end before the store closes.
  await world?.local.stopAll();
  world?.close();
});

describe("MCP tools in process, against the app", () => {
  test("lists the fourteen tools, each with a description and a JSON object input schema", async () => {
    const { tools } = await mcp.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOL_NAMES);
    for (const t of tools) {
      expect(t.description!.length).toBeGreaterThan(80);
      expect(t.inputSchema.type).toBe("object");
    }
    const metrics = tools.find((t) => t.name === "get_operation_metrics")!;
    expect(metrics.inputSchema.required).toEqual(["operation_id"]);
    expect(Object.keys(metrics.inputSchema.properties!)).toEqual([
      "operation_id",
      "resolution",
      "since_epoch",
      "since_step",
      "from_step",
      "to_step",
      "max_points",
    ]);
    // start_training advertises the API's TrainingSpec schema itself.
    const start = tools.find((t) => t.name === "start_training")!;
    expect(Object.keys(start.inputSchema.properties!)).toEqual(
      expect.arrayContaining(["dataset", "model", "training", "target"]),
    );
  });

  test("get_system_metrics returns the samples a client posted, spread over max_points", async () => {
    const id = ids.improving;
    const sample = (s: number) => ({
      timestamp: new Date(Date.parse("2026-11-26T15:30:00.000Z") + s * 1000).toISOString(),
      gpus: [{ index: 0, utilization_percent: s % 100, memory_used_mb: 1000, memory_total_mb: 8000 }],
    });
    const posted = await world.app.handle(
      new Request(`http://localhost/api/v1/operations/${id}/system`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ samples: Array.from({ length: 20 }, (_, i) => sample(i * 15)) }),
      }),
    );
    expect(posted.status).toBe(200);
    const all = await data(mcp, "get_system_metrics", { operation_id: id });
    expect(all.samples).toHaveLength(20);
    expect(all.samples[3]).toEqual(sample(45));
    const few = await data(mcp, "get_system_metrics", { operation_id: id, max_points: 4 });
    expect(few.samples.map((s: { timestamp: string }) => s.timestamp)).toEqual(
      [0, 75, 150, 225].map((t) => sample(t).timestamp),
    );
  });

  test("label_operation labels a run and list_operations finds it by q, sorted; a bad query names its position", async () => {
    const labelled = await data(mcp, "label_operation", {
      operation_id: ids.finished,
      add_tags: ["mcp-found"],
      group: "mcp sweep",
    });
    expect(labelled).toMatchObject({ operation_id: ids.finished, tags: ["mcp-found"], group: "mcp sweep" });
    const found = await data(mcp, "list_operations", {
      q: 'tags has "mcp-found" and group = "mcp sweep" and status = completed',
      sort: "best_val_loss",
      order: "asc",
    });
    expect(found.total_count).toBe(1);
    expect(found.operations.map((o: any) => o.operation_id)).toEqual([ids.finished]);
    expect(await failure(mcp, "list_operations", { q: "best_val_loss <" })).toStartWith(
      "QUERY_SYNTAX: query.q at 15: expected a value after '<'",
    );
    expect(await failure(mcp, "list_operations", { q: "colour = 1" })).toStartWith("QUERY_FIELD: query.q at 0");
  });

  test("list_operations filters by status and reports flags", async () => {
    const all = await data(mcp, "list_operations");
    expect(all.total_count).toBeGreaterThanOrEqual(3);
    const done = await data(mcp, "list_operations", { status: "completed" });
    expect(done.operations.map((o: any) => o.operation_id)).toEqual([ids.finished]);
    const over = all.operations.find((o: any) => o.operation_id === ids.overfitting);
    expect(over).toMatchObject({ status: "running", best_epoch: 10, flags: { overfitting: true } });
  });

  test("get_operation_status returns the operation with its progress and trends", async () => {
    const op = await data(mcp, "get_operation_status", { operation_id: ids.improving });
    expect(op).toMatchObject({
      operation_id: ids.improving,
      status: "running",
      progress: { epochs_completed: 12, total_epochs: 30 },
    });
    expect(op.trends.best_epoch).toBe(11);
  });

  test("get_operation_metrics returns only epochs after since_epoch, and downsamples to max_points", async () => {
    const newer = await data(mcp, "get_operation_metrics", { operation_id: ids.improving, since_epoch: 9 });
    expect(newer.metrics.epochs.map((e: any) => e.epoch)).toEqual([10, 11]);
    expect(newer.metrics.total_epochs_completed).toBe(12);
    const thin = await data(mcp, "get_operation_metrics", { operation_id: ids.overfitting, max_points: 5 });
    expect(thin.metrics.epochs.length).toBeLessThanOrEqual(5);
    expect(thin.metrics.epochs.map((e: any) => e.epoch)).toEqual(expect.arrayContaining([0, 10, 19]));
  });

  test("get_operation_metrics of a step run answers per step by default, in a range, after a cursor, within max_points (default 200) with every spike kept", async () => {
    const { operation_id: id } = await api.createOperation({ operation_type: "training", total_steps_planned: 2000 });
    // 1,000 steps over two epochs, a NaN at 123 and a spike at 777, an evaluation every 100 steps.
    const steps = Array.from({ length: 1000 }, (_, step) => ({
      step,
      epoch: step < 500 ? 0 : 1,
      train_loss: step === 123 ? "NaN" : step === 777 ? 50 : 2 - step / 1000,
      grad_norm: 1,
      ...(step % 100 === 99 ? { val_loss: 2.5 - step / 1000 } : {}),
    }));
    await api.writeSteps(id, steps as never);
    const all = await data(mcp, "get_operation_metrics", { operation_id: id });
    expect(all).toMatchObject({
      resolution: "step",
      steps_completed: 1000,
      total_steps_planned: 2000,
      epoch_ends: [
        { epoch: 0, step: 499 },
        { epoch: 1, step: 999 },
      ],
      trends: { latest_epoch: 0 },
    });
    expect(all.steps.length).toBeLessThanOrEqual(200);
    const at = (rows: { step: number; train_loss: unknown }[], step: number) => rows.find((r) => r.step === step);
    expect(at(all.steps, 123)?.train_loss).toBe("NaN");
    expect(at(all.steps, 777)?.train_loss).toBe(50);
    expect([all.steps[0].step, all.steps.at(-1).step]).toEqual([0, 999]);

    const range = await data(mcp, "get_operation_metrics", { operation_id: id, from_step: 295, to_step: 305 });
    expect(range.steps.map((s: { step: number }) => s.step)).toEqual(Array.from({ length: 11 }, (_, i) => 295 + i));
    expect(at(range.steps, 299)).toMatchObject({ val_loss: 2.5 - 0.299 });
    const newer = await data(mcp, "get_operation_metrics", { operation_id: id, since_step: 996 });
    expect(newer.steps.map((s: { step: number }) => s.step)).toEqual([997, 998, 999]);

    const epochs = await data(mcp, "get_operation_metrics", { operation_id: id, resolution: "epoch" });
    expect(epochs.resolution).toBe("epoch");
    expect(epochs.metrics.epochs.map((e: { epoch: number }) => e.epoch)).toEqual([0]);
    // A run without steps answers per epoch, as before.
    expect((await data(mcp, "get_operation_metrics", { operation_id: ids.improving })).resolution).toBe("epoch");

    expect(await failure(mcp, "get_operation_metrics", { operation_id: id, resolution: "epoch", from_step: 3 })).toBe(
      "VALIDATION_ERROR: arguments.from_step: only with resolution 'step'. Fix that argument and call the tool again.",
    );
    expect(await failure(mcp, "get_operation_metrics", { operation_id: id, from_step: 30, to_step: 3 })).toStartWith(
      "VALIDATION_ERROR: ",
    );
  });

  test("analyze_training recommends stopping an overfitting run at its best epoch, with the gap widening", async () => {
    const a = await data(mcp, "analyze_training", { operation_id: ids.overfitting });
    expect(a.recommendation).toMatchObject({ action: "stop", checkpoint_epoch: 10, trajectory: "worsening" });
    expect(a.recommendation.reason).toContain("epoch 10");
    expect(a).toMatchObject({
      best_epoch: 10,
      monitor: "val_loss",
      flags: { overfitting: true, plateau: false, diverging: false },
    });
    expect(a.generalization_gap.trend).toBe("widening");
    expect(a.final.epoch).toBe(19);
  });

  test("set_alert_rules chooses a run's events; list_alerts shows what alerted, with its reason and deliveries", async () => {
    const id = (await api.createOperation({ operation_type: "training", name: "mcp-alerts" })).operation_id;
    const rules = await data(mcp, "set_alert_rules", { operation_id: id, on: ["completed"], off: ["failed"] });
    expect(rules.events).toEqual(["diverging", "hung", "completed", "lost"]);
    expect(await failure(mcp, "set_alert_rules", { operation_id: id, on: ["bored"] })).toStartWith("VALIDATION_ERROR");
    await api.completeOperation(id, { status: "completed" });
    const { alerts } = await data(mcp, "list_alerts", { operation_id: id });
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      event: "completed",
      title: 'Run "mcp-alerts" completed',
      operation: { id },
      deliveries: [],
    });
  });

  test("compare_runs gives each run's best epoch, epochs to best and final metrics, and names the best run", async () => {
    const c = await data(mcp, "compare_runs", { operation_ids: [ids.improving, ids.overfitting, ids.finished] });
    expect(c.best_run).toBe(ids.overfitting);
    expect(c.basis).toContain(ids.overfitting);
    expect(c.runs.map((r: any) => r.operation_id)).toEqual([ids.improving, ids.overfitting, ids.finished]);
    const finished = c.runs[2];
    expect(finished.summary).toMatchObject({
      best_epoch: 8,
      epochs_to_best: 8,
      flags: { overfitting: expect.any(Boolean) },
    });
    expect(finished.summary.final.epoch).toBe(14);
    expect(finished.curves).toBeUndefined();
  });

  test("start_training creates a training operation from a spec", async () => {
    const op = await data(mcp, "start_training", {
      name: "mcp-tiny",
      dataset: { kind: "synthetic", generator: "spirals", samples: 60 },
      model: { hidden_layers: [4] },
      training: { epochs: 1, batch_size: 30 },
    });
    expect(op.operation_type).toBe("training");
    expect(op.name).toBe("mcp-tiny");
    const again = await data(mcp, "get_operation_status", { operation_id: op.operation_id });
    expect(["pending", "running", "completed"]).toContain(again.status);
  });

  test("cancel_operation stops a running operation and echoes the reason; a second cancel is an actionable error", async () => {
    const id = await seedRun(api, "to-cancel", improving());
    const res = await data(mcp, "cancel_operation", { operation_id: id, reason: "test says stop" });
    expect(res).toMatchObject({ operation_id: id, status: "cancelled", reason: "test says stop" });
    // The reason is recorded on the operation, by MCP, for the trainer and the dashboard.
    expect(res.control).toMatchObject({
      action: "stop",
      decided_by: "mcp",
      reason: "cancelled by mcp: test says stop",
      epoch: 11,
    });
    expect(await failure(mcp, "cancel_operation", { operation_id: id })).toMatch(
      /^OPERATION_FINISHED: .*use analyze_training/,
    );
  });

  test("set_stop_policy sets a policy that decides at once on a diverging run, clears it, and names a bad flag", async () => {
    const id = await seedRun(api, "to-police", improving());
    const set = await data(mcp, "set_stop_policy", { operation_id: id, on: ["overfitting"], min_epochs: 3 });
    expect(set).toMatchObject({
      operation_id: id,
      status: "running",
      stop_policy: { on: ["overfitting"], min_epochs: 3 },
      control: null,
    });
    await api.postMetrics(id, [{ epoch: 12, train_loss: "NaN" }]);
    // Diverging is not in the policy: no decision.
    expect((await api.getOperation(id)).control).toBeNull();
    const now = await data(mcp, "set_stop_policy", { operation_id: id, on: ["diverging"] });
    expect(now.control).toMatchObject({ action: "stop", decided_by: "stop_policy", epoch: 12 });
    expect(now.control.reason).toContain("diverging");
    const cleared = await data(mcp, "set_stop_policy", { operation_id: id, clear: true });
    expect(cleared.stop_policy).toBeNull();
    expect(cleared.control.decided_by).toBe("stop_policy");
    expect(await failure(mcp, "set_stop_policy", { operation_id: id, on: ["bored"] })).toStartWith(
      "VALIDATION_ERROR: arguments.on.0:",
    );
    expect(await failure(mcp, "set_stop_policy", { operation_id: id })).toStartWith("VALIDATION_ERROR: arguments.on:");
  });

  test("an unknown operation comes back as isError naming the fix", async () => {
    expect(await failure(mcp, "analyze_training", { operation_id: "op_missing" })).toBe(
      "OPERATION_NOT_FOUND: operation op_missing not found. Call list_operations to find a valid operation_id.",
    );
    expect(await failure(mcp, "compare_runs", { operation_ids: [ids.improving, "op_missing"] })).toStartWith(
      "OPERATION_NOT_FOUND",
    );
  });

  test("bad arguments come back as isError naming the argument", async () => {
    expect(await failure(mcp, "get_operation_metrics", {})).toStartWith("VALIDATION_ERROR: arguments.operation_id:");
    expect(await failure(mcp, "get_operation_metrics", { operation_id: ids.improving, max_points: 1 })).toStartWith(
      "VALIDATION_ERROR: arguments.max_points:",
    );
    expect(await failure(mcp, "list_operations", { status: "sleeping" })).toStartWith(
      'VALIDATION_ERROR: arguments.status: Expected one of "pending", "running", "completed", "failed", "cancelled"',
    );
    expect(await failure(mcp, "start_training", { dataset: { kind: "synthetic", generator: "nope" } })).toStartWith(
      'VALIDATION_ERROR: arguments.dataset.generator: Expected one of "spirals", "overfit", "random_walk"',
    );
    // The server is still there after every failure.
    expect((await data(mcp, "get_operation_status", { operation_id: ids.finished })).status).toBe("completed");
  });

  test("an unknown tool is a protocol error listing the tools", async () => {
    await expect(mcp.callTool({ name: "delete_everything", arguments: {} })).rejects.toThrow(
      /unknown tool delete_everything; available: list_operations/,
    );
  });

  test("an unreachable API comes back as isError telling how to start it, and the MCP server keeps serving", async () => {
    const lonely = await memoryClient(new TrainwatchClient({ baseUrl: `http://127.0.0.1:${freePort()}` }));
    try {
      const text = await failure(lonely, "list_operations", {});
      expect(text).toStartWith("UNREACHABLE: cannot reach the Trainwatch API");
      expect(text).toContain("bun run src/server.ts");
      expect(await failure(lonely, "analyze_training", { operation_id: ids.finished })).toStartWith("UNREACHABLE");
    } finally {
      await lonely.close();
    }
  });
});

describe("MCP over stdio", () => {
  test("`bun run src/mcp` serves the same tools over stdio and reaches the API at TRAINWATCH_URL", async () => {
    const http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (r) => world.app.handle(r) });
    const stdio = await stdioClient(`http://127.0.0.1:${http.port}`);
    try {
      expect((await stdio.listTools()).tools).toEqual((await mcp.listTools()).tools);
      const a = await data(stdio, "analyze_training", { operation_id: ids.finished });
      expect(a.recommendation).toMatchObject({ action: "use_checkpoint", checkpoint_epoch: 8 });
    } finally {
      await stdio.close();
      http.stop(true);
    }
  }, 30_000);
});

describe("MCP over Streamable HTTP at /mcp", () => {
  test("the API offers the same tools on /mcp", async () => {
    const client = new Client({ name: "mcp-http-test", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL("http://localhost/mcp"), { fetch: inProcessFetch(world.app) }),
    );
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(TOOL_NAMES);
      expect(tools).toEqual((await mcp.listTools()).tools);
      const a = await data(client, "analyze_training", { operation_id: ids.finished });
      expect(a.recommendation).toMatchObject({ action: "use_checkpoint", checkpoint_epoch: 8 });
    } finally {
      await client.close();
    }
  });

  test("with TRAINWATCH_TOKEN set, /mcp needs the bearer token and its tools reach the API with it", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: "s3cret" });
    const inProcess = inProcessFetch(app);
    const mcpUrl = new URL("http://localhost/mcp");

    const anonymous = new Client({ name: "anon", version: "1.0.0" });
    await expect(anonymous.connect(new StreamableHTTPClientTransport(mcpUrl, { fetch: inProcess }))).rejects.toThrow(
      /401|Unauthorized/i,
    );

    const client = new Client({ name: "authorised", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(mcpUrl, {
        fetch: inProcess,
        requestInit: { headers: { authorization: "Bearer s3cret" } },
      }),
    );
    try {
      expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(TOOL_NAMES);
      expect((await data(client, "list_operations")).total_count).toBe(0);
      expect(await failure(client, "get_operation_status", { operation_id: "op_missing" })).toStartWith(
        "OPERATION_NOT_FOUND",
      );
    } finally {
      await client.close();
    }
  });

  test("GET /mcp is 405: the endpoint is stateless and opens no stream", async () => {
    const { app } = makeApp();
    const res = await app.handle(new Request("http://localhost/mcp", { headers: { accept: "text/event-stream" } }));
    expect(res.status).toBe(405);
  });
});
