// The OpenAPI document as a contract: every documented operation has cases here (a valid request and its documented
// error cases), each case must get its documented status with a body that matches the documented schema, generic
// probes (bad query values, bad bodies, unknown ids, no token) may only get documented statuses, and every status
// the document lists must actually happen. A route added without cases fails the first test.
import { afterAll, describe, expect, test } from "bun:test";
import type { Operation } from "../src/schemas/operation.ts";
import type { RecipeRequest } from "../src/schemas/recipe.ts";
import { TrainwatchError, invalid } from "../src/errors.ts";
import { sseEvent } from "../src/http/sse.ts";
import type { Store } from "../src/store/store.ts";
import type { Executor } from "../src/executors/executor.ts";
import type { Params } from "../src/recipes/recipe.ts";
import { falling, scriptedTrainer } from "./fixtures/trainer.ts";
import { localTrainingApp, tempDir, until } from "./helpers.ts";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventFile } from "../src/tensorboard/metrics.ts";
import { operationsOf, schemaEngine, servedDocument, validatorCache, type Json } from "./openapi.ts";
import { SseReader } from "./sse.ts";

const TOKEN = "contract-token";
/** Small, so the oversize-body probe is cheap; every valid request here is far below it. */
const MAX_BODY = 64 * 1024;
const MCP_ACCEPT = { accept: "application/json, text/event-stream" };
const UNKNOWN = "op_training_20000101_000000_00000000";

/** What a case sends; the method and path template come from the operation it belongs to. */
interface Call {
  params?: Record<string, string>;
  query?: Record<string, string>;
  /** JSON-encoded unless a string (sent as is). */
  body?: unknown;
  headers?: Record<string, string>;
}

interface Case {
  name: string;
  status: number;
  call: (f: Fixtures) => Call | Promise<Call>;
  /** For a stream that stays open: what to do once it is open so that an event arrives (without it, the stream must end). */
  after?: (f: Fixtures) => Promise<void>;
}

interface Fixtures {
  /** A running external operation with three epochs. */
  running(): Promise<string>;
  /** A completed operation with three epochs. */
  finished(): Promise<string>;
  /** A running operation that a training host owns. */
  hostRunning(): Promise<string>;
  /** The id of an alert: a run that failed (failed alerts by default). */
  alerted(): Promise<string>;
  /** A completed local training whose result lists checkpoints on disk: best epoch 1, last epoch 2. */
  checkpointed(): Promise<string>;
  /** A running host training whose metadata lists a checkpoint of epoch 1, on a host that cannot be reached. */
  hostCheckpointed(): Promise<string>;
  /** A finished local script training (it has logs). */
  scripted(): Promise<string>;
  /** A running script training on a host that cannot be reached. */
  hostScripted(): Promise<string>;
}

const epochs = [0, 1, 2].map((e) => ({ epoch: e, ...falling(e) }));
const spec = { dataset: { kind: "synthetic", generator: "spirals", samples: 40 }, training: { epochs: 2 } };
const rpc = (method: string, id?: number) => ({ jsonrpc: "2.0", method, ...(id === undefined ? {} : { id }) });

/**
 * The contract table, one entry per documented operation. Statuses not listed here (401, 413 and most 400s) come
 * from the generic probes below.
 */
const CONTRACT: Record<string, Case[]> = {
  "GET /api/v1/health": [{ name: "health", status: 200, call: () => ({}) }],
  "GET /api/v1/operations/compare": [
    {
      name: "two runs",
      status: 200,
      call: async (f) => ({ query: { ids: `${await f.running()},${await f.finished()}` } }),
    },
    {
      name: "a zoomed range, smoothed",
      status: 200,
      call: async (f) => ({
        query: { ids: `${await f.running()},${await f.finished()}`, from_epoch: "1", to_epoch: "2", smoothing: "0.9" },
      }),
    },
    {
      name: "one chart's fields",
      status: 200,
      call: async (f) => ({
        query: { ids: `${await f.running()},${await f.finished()}`, fields: "val_loss", smoothing: "0.6" },
      }),
    },
    {
      name: "a bad fields list",
      status: 400,
      call: async (f) => ({ query: { ids: await f.running(), fields: "a,,b" } }),
    },
    {
      name: "max_points below 3",
      status: 400,
      call: async (f) => ({ query: { ids: await f.running(), max_points: "2" } }),
    },
    { name: "smoothing of 1", status: 400, call: async (f) => ({ query: { ids: await f.running(), smoothing: "1" } }) },
    { name: "an unknown id", status: 404, call: async (f) => ({ query: { ids: `${await f.running()},${UNKNOWN}` } }) },
  ],
  "GET /api/v1/operations/curves": [
    {
      name: "two runs' zoomed curves, one field, smoothed",
      status: 200,
      call: async (f) => ({
        query: {
          ids: `${await f.running()},${await f.finished()}`,
          from_epoch: "1",
          to_epoch: "2",
          fields: "train_loss",
          smoothing: "0.6",
        },
      }),
    },
    {
      name: "a reversed range",
      status: 400,
      call: async (f) => ({ query: { ids: await f.running(), from_epoch: "5", to_epoch: "1" } }),
    },
    { name: "an unknown id", status: 404, call: async (f) => ({ query: { ids: `${await f.running()},${UNKNOWN}` } }) },
  ],
  "POST /api/v1/operations": [
    {
      name: "register",
      status: 201,
      call: () => ({ body: { operation_type: "training", name: "contract", total_epochs_planned: 3 } }),
    },
    {
      name: "register with config and a stop policy",
      status: 201,
      call: () => ({
        body: { operation_type: "training", config: { lr: 0.01 }, stop_policy: { on: ["diverging"], min_epochs: 2 } },
      }),
    },
    { name: "operation_type missing", status: 400, call: () => ({ body: { name: "x" } }) },
    {
      name: "an unknown stop flag",
      status: 400,
      call: () => ({ body: { operation_type: "training", stop_policy: { on: ["bored"] } } }),
    },
  ],
  "PUT /api/v1/operations/{id}/stop_policy": [
    {
      name: "set",
      status: 200,
      call: async (f) => ({
        params: { id: await f.running() },
        body: { on: ["overfitting", "stalled"], min_epochs: 5 },
      }),
    },
    {
      name: "negative min_epochs",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, body: { on: ["plateau"], min_epochs: -1 } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN }, body: { on: ["diverging"] } }) },
    {
      name: "finished",
      status: 409,
      call: async (f) => ({ params: { id: await f.finished() }, body: { on: ["diverging"] } }),
    },
  ],
  "DELETE /api/v1/operations/{id}/stop_policy": [
    { name: "clear", status: 200, call: async (f) => ({ params: { id: await f.running() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
    { name: "finished", status: 409, call: async (f) => ({ params: { id: await f.finished() } }) },
  ],
  "GET /api/v1/alerts": [
    {
      name: "list",
      status: 200,
      call: async (f) => (await f.alerted(), { query: { limit: "10", since: "2000-01-01T00:00:00Z" } }),
    },
    { name: "limit 0", status: 400, call: () => ({ query: { limit: "0" } }) },
  ],
  "PATCH /api/v1/operations/{id}/labels": [
    {
      name: "tag and group",
      status: 200,
      call: async (f) => ({ params: { id: await f.finished() }, body: { add_tags: ["best"], group: "sweep-7" } }),
    },
    {
      name: "a bad tag",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, body: { tags: ["a b"] } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN }, body: { tags: [] } }) },
  ],
  "GET /api/v1/alerts/{id}": [
    { name: "get with its delivery log", status: 200, call: async (f) => ({ params: { id: await f.alerted() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: "al_000000000000000000000000" } }) },
  ],
  "GET /api/v1/operations/{id}/alerts": [
    { name: "rules", status: 200, call: async (f) => ({ params: { id: await f.running() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "PUT /api/v1/operations/{id}/alerts": [
    {
      name: "set",
      status: 200,
      call: async (f) => ({
        params: { id: await f.running() },
        body: { on: ["completed"], off: ["hung"], thresholds: [{ metric: "val_loss", when: "above", value: 2 }] },
      }),
    },
    {
      name: "an unknown event",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, body: { on: ["bored"] } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN }, body: {} }) },
  ],
  "GET /api/v1/operations": [
    {
      name: "list",
      status: 200,
      call: async (f) => (await f.running(), { query: { limit: "10", offset: "0", status: "running" } }),
    },
    { name: "limit 0", status: 400, call: () => ({ query: { limit: "0" } }) },
    {
      name: "a search, sorted",
      status: 200,
      call: async (f) => (
        await f.running(),
        { query: { q: "status = running and not flags.diverging", sort: "best_val_loss", order: "asc" } }
      ),
    },
    { name: "a query that does not parse", status: 400, call: () => ({ query: { q: "best_val_loss <" } }) },
  ],
  "GET /api/v1/operations/{id}": [
    { name: "get", status: 200, call: async (f) => ({ params: { id: await f.running() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "DELETE /api/v1/operations/{id}": [
    { name: "cancel a running operation", status: 200, call: async (f) => ({ params: { id: await f.running() } }) },
    {
      name: "cancel saying who and why",
      status: 200,
      call: async (f) => ({ params: { id: await f.running() }, body: { by: "dashboard", reason: "enough" } }),
    },
    {
      name: "an unknown field in the body",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, body: { why: "enough" } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
    { name: "already finished", status: 409, call: async (f) => ({ params: { id: await f.finished() } }) },
  ],
  "POST /api/v1/operations/{id}/complete": [
    {
      name: "complete",
      status: 200,
      call: async (f) => ({ params: { id: await f.running() }, body: { status: "completed", result: { ok: true } } }),
    },
    {
      name: "empty status",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, body: { status: "" } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN }, body: { status: "completed" } }) },
    {
      name: "already finished",
      status: 409,
      call: async (f) => ({ params: { id: await f.finished() }, body: { status: "failed" } }),
    },
  ],
  "POST /api/v1/operations/{id}/metrics": [
    {
      name: "store a batch",
      status: 200,
      call: async (f) => ({ params: { id: await f.running() }, body: { epochs: [{ epoch: 3, train_loss: 0.2 }] } }),
    },
    {
      name: "negative epoch",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, body: { epoch: -1, train_loss: 1 } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN }, body: { epoch: 0, train_loss: 1 } }) },
    {
      name: "finished",
      status: 409,
      call: async (f) => ({ params: { id: await f.finished() }, body: { epoch: 9, train_loss: 1 } }),
    },
  ],
  "GET /api/v1/operations/{id}/metrics": [
    {
      name: "read",
      status: 200,
      call: async (f) => ({ params: { id: await f.running() }, query: { since_epoch: "0", max_points: "10" } }),
    },
    {
      name: "a zoomed range, reduced and smoothed",
      status: 200,
      call: async (f) => ({
        params: { id: await f.running() },
        query: { from_epoch: "1", to_epoch: "2", max_points: "3", smoothing: "0.6" },
      }),
    },
    {
      name: "one chart's fields, reduced",
      status: 200,
      call: async (f) => ({
        params: { id: await f.running() },
        query: { fields: "train_loss,val_loss", max_points: "3" },
      }),
    },
    {
      name: "since_epoch below -1",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, query: { since_epoch: "-5" } }),
    },
    {
      name: "to_epoch before from_epoch",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, query: { from_epoch: "2", to_epoch: "1" } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/operations/{id}/metrics/stream": [
    {
      name: "a finished operation replays and ends",
      status: 200,
      call: async (f) => ({ params: { id: await f.finished() } }),
    },
    {
      name: "since_epoch below -1",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, query: { since_epoch: "-5" } }),
    },
    {
      name: "Last-Event-ID not an epoch",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, headers: { "last-event-id": "abc" } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/stream": [
    {
      name: "a change arrives as an operation event",
      status: 200,
      call: () => ({}),
      after: async (f) => void (await f.running()),
    },
  ],
  "POST /api/v1/operations/{id}/steps": [
    {
      name: "store a batch",
      status: 200,
      call: async (f) => ({
        params: { id: await f.running() },
        body: { steps: [{ step: 0, epoch: 0, train_loss: 0.2, grad_norm: 1 }] },
      }),
    },
    {
      name: "a bad value",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, body: { step: 1, grad_norm: "big" } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN }, body: { step: 0, train_loss: 1 } }) },
    {
      name: "finished",
      status: 409,
      call: async (f) => ({ params: { id: await f.finished() }, body: { step: 9, train_loss: 1 } }),
    },
  ],
  "GET /api/v1/operations/{id}/steps": [
    {
      name: "a zoomed range, reduced and smoothed",
      status: 200,
      call: async (f) => ({
        params: { id: await f.running() },
        query: { from_step: "0", to_step: "100", max_points: "3", smoothing: "0.6", fields: "train_loss" },
      }),
    },
    {
      name: "a range that ends before it starts",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, query: { from_step: "5", to_step: "1" } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "POST /api/v1/operations/{id}/system": [
    {
      name: "store a batch",
      status: 200,
      call: async (f) => ({
        params: { id: await f.running() },
        body: { samples: [{ timestamp: "2026-11-26T15:30:00.000Z", machine: { cpu_percent: 12, load_1m: 0.5 } }] },
      }),
    },
    {
      name: "a reading out of bounds",
      status: 400,
      call: async (f) => ({
        params: { id: await f.running() },
        body: { samples: [{ timestamp: "2026-11-26T15:30:00.000Z", machine: { cpu_percent: 101 } }] },
      }),
    },
    {
      name: "unknown",
      status: 404,
      call: () => ({ params: { id: UNKNOWN }, body: { samples: [{ timestamp: "2026-11-26T15:30:00.000Z" }] } }),
    },
    {
      name: "finished",
      status: 409,
      call: async (f) => ({
        params: { id: await f.finished() },
        body: { samples: [{ timestamp: "2026-11-26T15:30:00.000Z" }] },
      }),
    },
  ],
  "GET /api/v1/operations/{id}/system": [
    {
      name: "a range, bounded",
      status: 200,
      call: async (f) => ({
        params: { id: await f.running() },
        query: { since: "2026-11-26T15:00:00.000Z", until: "2026-11-26T16:00:00.000Z", max_points: "10" },
      }),
    },
    {
      name: "until before since",
      status: 400,
      call: async (f) => ({
        params: { id: await f.running() },
        query: { since: "2026-11-26T16:00:00.000Z", until: "2026-11-26T15:00:00.000Z" },
      }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/operations/{id}/system.csv": [
    { name: "download", status: 200, call: async (f) => ({ params: { id: await f.finished() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/operations/{id}/system.json": [
    { name: "download", status: 200, call: async (f) => ({ params: { id: await f.finished() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/operations/{id}/steps.csv": [
    { name: "download", status: 200, call: async (f) => ({ params: { id: await f.finished() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/operations/{id}/steps.json": [
    { name: "download", status: 200, call: async (f) => ({ params: { id: await f.finished() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/operations/{id}/metrics.csv": [
    { name: "download", status: 200, call: async (f) => ({ params: { id: await f.finished() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/operations/{id}/metrics.json": [
    { name: "download", status: 200, call: async (f) => ({ params: { id: await f.finished() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/operations/{id}/tfevents": [
    { name: "download", status: 200, call: async (f) => ({ params: { id: await f.finished() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "POST /api/v1/imports/tensorboard": [
    { name: "import", status: 200, call: () => ({ body: { logdir: "tb" } }) },
    { name: "import without waiting", status: 202, call: () => ({ body: { logdir: "tb", wait: false } }) },
    { name: "a logdir outside the data directory", status: 400, call: () => ({ body: { logdir: "../" } }) },
    {
      name: "a tag mapped to epoch",
      status: 400,
      call: () => ({ body: { logdir: "tb", tag_map: { loss: "epoch" } } }),
    },
  ],
  "GET /api/v1/operations/{id}/analysis": [
    { name: "analyse", status: 200, call: async (f) => ({ params: { id: await f.finished() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/operations/{id}/checkpoints": [
    { name: "list", status: 200, call: async (f) => ({ params: { id: await f.checkpointed() } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
  ],
  "GET /api/v1/operations/{id}/checkpoints/{epoch}": [
    { name: "download", status: 200, call: async (f) => ({ params: { id: await f.checkpointed(), epoch: "2" } }) },
    {
      name: "epoch not an integer",
      status: 400,
      call: async (f) => ({ params: { id: await f.checkpointed(), epoch: "1.5" } }),
    },
    {
      name: "epoch without a checkpoint",
      status: 404,
      call: async (f) => ({ params: { id: await f.checkpointed(), epoch: "7" } }),
    },
    {
      name: "its host unreachable",
      status: 503,
      call: async (f) => ({ params: { id: await f.hostCheckpointed(), epoch: "1" } }),
    },
  ],
  "POST /api/v1/operations/{id}/heartbeat": [
    {
      name: "heartbeat with progress",
      status: 200,
      call: async (f) => ({
        params: { id: await f.hostRunning() },
        body: { progress: { epoch: 0, batch: 1, batches: 4 } },
      }),
    },
    {
      name: "progress not an object",
      status: 400,
      call: async (f) => ({ params: { id: await f.hostRunning() }, body: { progress: "half" } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN }, body: {} }) },
    { name: "finished", status: 409, call: async (f) => ({ params: { id: await f.finished() }, body: {} }) },
  ],
  "POST /api/v1/trainings": [
    { name: "start locally", status: 202, call: () => ({ body: { ...spec, target: "local" } }) },
    { name: "no dataset", status: 400, call: () => ({ body: { training: { epochs: 2 } } }) },
    { name: "no reachable host", status: 503, call: () => ({ body: { ...spec, target: "host" } }) },
    { name: "a recipe", status: 202, call: () => ({ body: { recipe: "fake", params: { epochs: 2 } } }) },
    { name: "an undeclared recipe", status: 400, call: () => ({ body: { recipe: "rm", params: {} } }) },
  ],
  "GET /api/v1/recipes": [{ name: "list", status: 200, call: () => ({}) }],
  "PATCH /api/v1/operations/{id}/metadata": [
    {
      name: "the GPU a script reports",
      status: 200,
      call: async (f) => ({ params: { id: await f.running() }, body: { gpu: "NVIDIA H100" } }),
    },
    {
      name: "a key Trainwatch owns",
      status: 400,
      call: async (f) => ({ params: { id: await f.running() }, body: { location: "elsewhere" } }),
    },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN }, body: { gpu: "x" } }) },
    { name: "finished", status: 409, call: async (f) => ({ params: { id: await f.finished() }, body: { gpu: "x" } }) },
  ],
  "GET /api/v1/operations/{id}/logs": [
    {
      name: "a script's tail",
      status: 200,
      call: async (f) => ({ params: { id: await f.scripted() }, query: { tail: "10" } }),
    },
    { name: "tail 0", status: 400, call: async (f) => ({ params: { id: await f.scripted() }, query: { tail: "0" } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
    { name: "its host unreachable", status: 503, call: async (f) => ({ params: { id: await f.hostScripted() } }) },
  ],
  "GET /api/v1/operations/{id}/logs/stream": [
    {
      name: "a finished script replays and ends",
      status: 200,
      call: async (f) => ({ params: { id: await f.scripted() } }),
    },
    { name: "tail 0", status: 400, call: async (f) => ({ params: { id: await f.scripted() }, query: { tail: "0" } }) },
    { name: "unknown", status: 404, call: () => ({ params: { id: UNKNOWN } }) },
    { name: "its host unreachable", status: 503, call: async (f) => ({ params: { id: await f.hostScripted() } }) },
  ],
  "POST /mcp": [
    { name: "tools/list", status: 200, call: () => ({ body: rpc("tools/list", 1), headers: MCP_ACCEPT }) },
    {
      name: "a notification",
      status: 202,
      call: () => ({ body: rpc("notifications/initialized"), headers: MCP_ACCEPT }),
    },
    { name: "not a JSON-RPC message", status: 400, call: () => ({ body: { hello: 1 }, headers: MCP_ACCEPT }) },
    {
      name: "Accept without text/event-stream",
      status: 406,
      call: () => ({ body: rpc("tools/list", 1), headers: { accept: "application/json" } }),
    },
    {
      name: "text/plain body",
      status: 415,
      call: () => ({
        body: JSON.stringify(rpc("tools/list", 1)),
        headers: { ...MCP_ACCEPT, "content-type": "text/plain" },
      }),
    },
  ],
};

/**
 * Script trainings as a server with one declared recipe ("fake") shows them, without running a child process: its
 * `local` executor submits nothing (the operation stays pending), and the logs are two fixed lines; a host's script (no
 * host here) is a 503.
 */
function fakeExecutors(_store: Store): Executor[] {
  const hostless = (op: Operation) => {
    if (op.metadata.location === "host")
      throw new TrainwatchError("HOST_UNAVAILABLE", "cannot fetch the log from the training host");
  };
  const logs = async (op: Operation) => {
    hostless(op);
    return {
      operation_id: op.operation_id,
      lines: ["epoch 0", "[trainwatch] exited with code 0 after 1 s"],
      truncated: false,
      running: false,
    };
  };
  const params = { type: "object" as const, properties: { epochs: { type: "integer" as const, minimum: 1 } } };
  const fake: Executor = {
    name: "local",
    location: "local",
    async prepare(r: RecipeRequest) {
      if (r.recipe !== "fake")
        throw invalid("body.recipe", `unknown recipe ${JSON.stringify(r.recipe)}; declared: fake`);
      return {
        recipe: r.recipe,
        params: (r.params ?? {}) as Params,
        resources: { gpus: 0, cpus: null, memory_mb: null, time_limit_minutes: null },
        planned_epochs: null,
        candidates: [],
      };
    },
    async submit() {
      return { external_id: null };
    },
    async recipes() {
      const view = {
        name: "fake",
        description: null,
        params,
        params_via: ["args" as const],
        gpus: 0,
        epochs_param: "epochs",
        target: "local" as const,
        targets: ["local" as const],
        resources: { cpus: null, memory_mb: null, time_limit_minutes: null },
        host: null,
      };
      return { recipes: [view], hosts: [] };
    },
    logs,
    async logStream(op) {
      const { lines } = await logs(op);
      return new Response(sseEvent("lines", { lines }) + sseEvent("end", { running: false })).body!;
    },
    async cancel() {
      return null;
    },
    async recover() {
      return [];
    },
    describe: () => ({}),
  };
  return [fake];
}

// ---- the harness ----

type Handle = (r: Request) => Promise<Response>;

/** Fills the path template, adds the query, encodes the body. */
function toRequest(key: string, call: Call, auth: Record<string, string>): Request {
  const [method, template] = key.split(" ") as [string, string];
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = call.params?.[name];
    if (v === undefined) throw new Error(`${key}: the case gives no path parameter ${name}`);
    return encodeURIComponent(v);
  });
  const qs = new URLSearchParams(call.query ?? {}).toString();
  const headers: Record<string, string> = { ...auth, ...call.headers };
  let body: string | undefined;
  if (call.body !== undefined) {
    body = typeof call.body === "string" ? call.body : JSON.stringify(call.body);
    headers["content-type"] ??= "application/json";
  }
  return new Request(`http://localhost${path}${qs ? `?${qs}` : ""}`, { method, headers, body });
}

/**
 * Reads an event stream as OpenAPI tools parse one: each event as `{ event, data, id? }` with `data` the raw JSON
 * text and the last id carried forward (the EventSource rule). A stream with `after` is read until one event arrives
 * after `after` ran; one without must end on its own (a finished operation's replay).
 */
async function readStream(res: Response, after?: () => Promise<void>): Promise<Json[]> {
  const r = new SseReader(res);
  try {
    if (after) {
      await r.until(() => r.done || r.events.length > 0 || r.comments.length > 0, 5000, "the stream to open");
      await after();
      await r.until(() => r.done || r.events.length > 0, 5000, "an event");
    } else {
      await r.end();
    }
  } finally {
    await r.cancel();
  }
  let id: string | undefined;
  return r.events.map((e) => {
    if (e.id !== null) id = String(e.id);
    return { event: e.event, data: JSON.stringify(e.data), ...(id === undefined ? {} : { id }) };
  });
}

class Contract {
  private readonly compile = validatorCache(schemaEngine());
  /** Statuses seen per operation, to check that each documented one happens. */
  readonly seen = new Map<string, Set<number>>();

  constructor(private readonly ops: Map<string, Json>) {}

  /** Checks one reply against the document; returns a list of violations (empty when it conforms). */
  async check(key: string, res: Response, after?: () => Promise<void>): Promise<string[]> {
    const op = this.ops.get(key)!;
    let seen = this.seen.get(key);
    if (!seen) this.seen.set(key, (seen = new Set()));
    seen.add(res.status);
    const doc = op.responses[String(res.status)] as Json | undefined;
    if (!doc)
      return [
        `answered ${res.status}, which is not documented (documented: ${Object.keys(op.responses).join(", ")}); body: ${(await res.text()).slice(0, 300)}`,
      ];
    const content = doc.content as Json | undefined;
    const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
    if (!content) {
      const text = await res.text();
      return text === "" ? [] : [`${res.status} is documented without a body but has one: ${text.slice(0, 200)}`];
    }
    const media = content[type] as Json | undefined;
    if (!media)
      return [`${res.status} answered content-type "${type}", documented: ${Object.keys(content).join(", ")}`];
    if (type === "application/json") {
      const text = await res.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return [`${res.status} is not JSON: ${text.slice(0, 200)}`];
      }
      return this.validate(media.schema, body, `${res.status} body`);
    }
    if (type === "text/event-stream") {
      const events = await readStream(res, after);
      if (events.length === 0) return [`${res.status} stream sent no event`];
      const problems: string[] = [];
      for (const e of events) {
        problems.push(...this.validate(media.schema, e, `event ${e.event}`));
        const branch = (media.schema.oneOf as Json[]).find((b) => b.properties.event.const === e.event);
        if (branch)
          problems.push(
            ...this.validate(
              branch.properties.data.contentSchema,
              JSON.parse(e.data as string),
              `event ${e.event} data`,
            ),
          );
      }
      return problems;
    }
    // Other media (CSV): a string schema is all the document promises.
    return this.validate(media.schema, await res.text(), `${res.status} ${type}`);
  }

  private validate(schema: unknown, value: unknown, what: string): string[] {
    const v = this.compile(schema);
    if (v(value)) return [];
    return (v.errors ?? [])
      .slice(0, 5)
      .map((e) => `${what}: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
  }
}

/** Bad values for a query or path parameter, chosen to cross every bound: non-numbers, huge, negative, fractional, empty. */
const BAD_QUERY_VALUES = ["abc", "", "-5", "1.5", "1e400", "100000000000000000000", "-100000000000000000000"];
/** Bodies the parser and the validators must refuse with a documented status. */
const BAD_BODIES: { name: string; body: string; type: string }[] = [
  { name: "malformed JSON", body: "{", type: "application/json" },
  { name: "empty", body: "", type: "application/json" },
  { name: "null", body: "null", type: "application/json" },
  { name: "a string", body: '"a string"', type: "application/json" },
  { name: "an array", body: "[]", type: "application/json" },
  { name: "text/plain", body: "hello", type: "text/plain" },
  { name: "urlencoded", body: "a=1", type: "application/x-www-form-urlencoded" },
  { name: "over the size limit", body: JSON.stringify({ pad: "x".repeat(MAX_BODY) }), type: "application/json" },
];

/** The data directory, holding one TensorBoard run (tb/run) to import. */
const data = tempDir("trainwatch-contract-data-");
mkdirSync(join(data.dir, "tb", "run"), { recursive: true });
writeFileSync(
  join(data.dir, "tb", "run", "events.out.tfevents.1.contract.1"),
  eventFile(
    "2026-01-01T00:00:00.000Z",
    epochs.map((e) => ({ ...e, timestamp: "2026-01-01T00:00:01.000Z" })),
  ),
);
afterAll(() => data.cleanup());

for (const withToken of [false, true]) {
  describe(`the OpenAPI contract ${withToken ? "with" : "without"} TRAINWATCH_TOKEN`, () => {
    // The server's own wiring with no GPU host (a host target is a 503), and the scripted trainer in place of the worker:
    // its trainings wait for release(), so the many the probes start stay running and cost nothing (with a slot each, so
    // the trainings the fixtures release never queue behind them).
    const env: Record<string, string> = {
      TRAINWATCH_MAX_BODY_BYTES: String(MAX_BODY),
      TRAINWATCH_MAX_LOCAL_TRAININGS: "1024",
      TRAINWATCH_DATA_DIR: data.dir,
      ...(withToken ? { TRAINWATCH_TOKEN: TOKEN } : {}),
    };
    const trainer = scriptedTrainer({ manual: true, checkpoints: true });
    const made = localTrainingApp({ env, start: trainer, executors: fakeExecutors });
    const handle: Handle = (r) => made.app.handle(r);
    const auth: Record<string, string> = withToken ? { authorization: `Bearer ${TOKEN}` } : {};
    afterAll(() => made.close());

    const api = async (method: string, path: string, body?: unknown) => {
      const res = await handle(toRequest(`${method} ${path}`, { body }, auth));
      if (res.status >= 300) throw new Error(`fixture ${method} ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as Json;
    };
    const fixtures: Fixtures = {
      async running() {
        const id = (await api("POST", "/api/v1/operations", { operation_type: "training", total_epochs_planned: 5 }))
          .data.operation_id as string;
        await api("POST", `/api/v1/operations/${id}/metrics`, { epochs });
        return id;
      },
      async alerted() {
        const id = await this.running();
        await api("POST", `/api/v1/operations/${id}/complete`, { status: "failed", error_message: "boom" });
        return (await api("GET", `/api/v1/alerts?operation_id=${id}`)).data[0].alert.id as string;
      },
      async finished() {
        const id = await this.running();
        await api("POST", `/api/v1/operations/${id}/complete`, { status: "completed" });
        return id;
      },
      hostRunning: async () =>
        (
          await made.store.createOperation({
            operation_type: "training",
            metadata: { location: "host", host: "http://gpu.test" },
          })
        ).operation_id,
      async checkpointed() {
        const id = (await api("POST", "/api/v1/trainings", { ...spec, training: { epochs: 3 }, target: "local" })).data
          .operation_id as string;
        trainer.release(id, 3);
        await until(
          `${id} to complete with its checkpoints`,
          async () => (await made.store.getOperation(id))!.result !== null,
        );
        return id;
      },
      async scripted() {
        const id = (
          await made.store.createOperation({
            operation_type: "training",
            metadata: { location: "local", kind: "script", recipe: "fake" },
          })
        ).operation_id;
        await made.store.finish(id, "completed");
        return id;
      },
      hostScripted: async () =>
        (
          await made.store.createOperation({
            operation_type: "training",
            metadata: { location: "host", host: "http://gpu.test", kind: "script", recipe: "fake" },
          })
        ).operation_id,
      hostCheckpointed: async () =>
        (
          await made.store.createOperation({
            operation_type: "training",
            metadata: {
              location: "host",
              host: "http://gpu.test",
              checkpoints: [{ epoch: 1, kind: "last", path: "/host/models/x/checkpoints/epoch-1" }],
            },
          })
        ).operation_id,
    };

    let ops: Map<string, Json>;
    let contract: Contract;
    const ready = (async () => {
      ops = operationsOf(await servedDocument(made.app));
      contract = new Contract(ops);
    })();

    test("every documented operation has contract cases, and every case names a documented operation", async () => {
      await ready;
      expect(
        [...ops.keys()].filter((k) => !CONTRACT[k]),
        "documented operations without cases in CONTRACT",
      ).toEqual([]);
      expect(
        Object.keys(CONTRACT).filter((k) => !ops.has(k)),
        "CONTRACT entries the document lacks",
      ).toEqual([]);
    });

    for (const [key, cases] of Object.entries(CONTRACT)) {
      test(`${key}: each case gets its documented status and schema, probes get only documented statuses, and every documented status happens`, async () => {
        await ready;
        const op = ops.get(key);
        if (!op) throw new Error(`${key} is not in the document`);
        const problems: string[] = [];
        const run = async (
          label: string,
          call: Call,
          expected: number | null,
          headers = auth,
          after?: () => Promise<void>,
        ) => {
          const res = await handle(toRequest(key, call, headers));
          const status = res.status;
          for (const p of await contract.check(key, res, after)) problems.push(`${label}: ${p}`);
          if (expected !== null && status !== expected) problems.push(`${label}: expected ${expected}, got ${status}`);
          return status;
        };

        for (const c of cases)
          await run(c.name, await c.call(fixtures), c.status, auth, c.after && (() => c.after!(fixtures)));

        // Probes start from the first successful case and break one thing at a time.
        const valid = cases.find((c) => c.status < 300);
        if (!valid) throw new Error(`${key} has no successful case`);
        const fresh = () => valid.call(fixtures);
        const queryParams = (op.parameters ?? [])
          .filter((p: Json) => p.in === "query")
          .map((p: Json) => p.name as string);
        for (const name of queryParams) {
          for (const v of BAD_QUERY_VALUES) {
            const call = await fresh();
            await run(
              `probe query ${name}=${JSON.stringify(v)}`,
              { ...call, query: { ...call.query, [name]: v } },
              null,
              auth,
              valid.after && (() => valid.after!(fixtures)),
            );
          }
        }
        if (op.requestBody) {
          for (const b of BAD_BODIES) {
            const call = await fresh();
            await run(
              `probe body ${b.name}`,
              { ...call, body: b.body, headers: { ...call.headers, "content-type": b.type } },
              null,
            );
          }
        }
        for (const name of [...key.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!)) {
          // An id is any string (probe one that does not exist); other path parameters get the bad values too.
          for (const v of name === "id" ? [UNKNOWN] : BAD_QUERY_VALUES.filter((x) => x !== "")) {
            const call = await fresh();
            await run(
              `probe path ${name}=${JSON.stringify(v)}`,
              { ...call, params: { ...call.params, [name]: v } },
              null,
            );
          }
        }
        if (withToken) {
          const protectedOp = Array.isArray(op.security) && op.security.length > 0;
          for (const [label, headers] of [
            ["no Authorization", {}],
            ["wrong token", { authorization: "Bearer wrong" }],
            ["Basic scheme", { authorization: `Basic ${btoa(`u:${TOKEN}`)}` }],
          ] as [string, Record<string, string>][]) {
            const status = await run(
              `probe ${label}`,
              await fresh(),
              protectedOp ? 401 : valid.status,
              headers,
              valid.after && (() => valid.after!(fixtures)),
            );
            if (!protectedOp && status === 401) problems.push(`probe ${label}: a public operation answered 401`);
          }
        }

        const happened = contract.seen.get(key) ?? new Set();
        for (const s of Object.keys(op.responses)) {
          if (!happened.has(Number(s)))
            problems.push(`documented status ${s} never happened (add a case, or drop it from the document)`);
        }
        expect(problems).toEqual([]);
      });
    }
  });
}
