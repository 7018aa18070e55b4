// End to end: the real API (`bun run src/server.ts`) and GPU host (`bun run src/host`)
// processes on loopback, on free ports, training tiny synthetic spirals.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { HOST_RESTARTED } from "../src/host/outbox.ts";
import { untar } from "../src/tar.ts";
import { HOST_UNREACHABLE } from "../src/operations/liveness.ts";
import {
  freePort,
  startHostProcess,
  startServerProcess,
  tempDir,
  until,
  type HostProcess,
  type ServerProcess,
} from "./helpers.ts";

/** ~10 epochs a second on 2 cores with wasm: long enough to act mid-training. */
const slow = (epochs: number) => ({
  name: "host-e2e",
  dataset: { kind: "synthetic", generator: "spirals", samples: 600, seed: 3 },
  model: { hidden_layers: [16] },
  training: { epochs, batch_size: 4, seed: 7 },
});
/** A few hundredths of a second per epoch. */
const quick = (epochs: number) => ({
  name: "host-quick",
  dataset: { kind: "synthetic", generator: "spirals", samples: 300, seed: 3 },
  model: { hidden_layers: [16] },
  training: { epochs, batch_size: 16, seed: 7 },
});

class Api {
  constructor(
    readonly url: string,
    private readonly token: string | null = null,
  ) {}
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(`${this.url}/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: await res.json() };
  }
  async train(spec: unknown, target: "local" | "host"): Promise<string> {
    const r = await this.call("POST", "/trainings", { ...(spec as object), target });
    if (r.status !== 202) throw new Error(`POST /trainings answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body.data.operation_id;
  }
  async op(id: string) {
    return (await this.call("GET", `/operations/${id}`)).body.data;
  }
  async metrics(id: string) {
    return (await this.call("GET", `/operations/${id}/metrics`)).body.data;
  }
  /** Waits until the operation has stored at least `n` epochs. */
  untilEpochs(id: string, n: number) {
    return reach(
      `${n} epoch${n === 1 ? "" : "s"}`,
      () => this.metrics(id),
      (m) => m.metrics.epochs.length >= n,
    );
  }
}

/** Waits until `probe` (a call to a process that may not answer yet) returns a value `ok` accepts, and returns it. */
function reach<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  return until(
    what,
    () =>
      probe().then(
        (v) => (ok(v) ? v : undefined),
        () => undefined,
      ),
    timeoutMs,
    50,
  );
}

const hostSession = async (host: HostProcess, id: string, token?: string) => {
  const res = await fetch(`${host.url}/sessions/${id}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return ((await res.json()) as { data: { status: string; epochs_trained: number; relay: { pending: number } } }).data;
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(apiEnv: Record<string, string> = {}, hostEnv: Record<string, string> = {}) {
  const tmp = tempDir("trainwatch-host-");
  cleanups.push(tmp.cleanup);
  const host = await startHostProcess(tmp.dir, {
    TRAINWATCH_HEARTBEAT_INTERVAL: "0.2",
    TRAINWATCH_RELAY_BACKOFF_MAX: "0.3",
    ...hostEnv,
  });
  cleanups.push(host.stop);
  const env = {
    USE_TRAINING_HOST_SERVICE: "true",
    TRAINING_HOST_URL: host.url,
    TRAINWATCH_MODELS_DIR: join(tmp.dir, "api-models"),
    ...apiEnv,
  };
  const server = await startServerProcess(env);
  cleanups.push(server.stop);
  return { tmp, host, server, env };
}

/** Real processes and trainings: seconds, not milliseconds. */
const E2E_TIMEOUT = 90_000;

describe("GPU host service, real processes", () => {
  test(
    "10 epochs through the host have exactly the structure of a local training, and metadata.location is host",
    async () => {
      const { host, server } = await setup(
        { TRAINWATCH_TOKEN: "api-tok", TRAINWATCH_HOST_TOKEN: "host-tok" },
        { TRAINWATCH_TOKEN: "api-tok", TRAINWATCH_HOST_TOKEN: "host-tok" },
      );
      // The host's routes need its token.
      expect((await fetch(`${host.url}/health`)).status).toBe(401);
      const health = (await (
        await fetch(`${host.url}/health`, { headers: { authorization: "Bearer host-tok" } })
      ).json()) as any;
      expect(health.data).toMatchObject({ status: "ok", backend: expect.any(String), active_sessions: 0 });

      const api = new Api(server.url, "api-tok");
      const remote = await api.train(quick(10), "host");
      const local = await api.train(quick(10), "local");
      for (const id of [remote, local])
        await reach(
          `${id} completed`,
          () => api.op(id),
          (o) => o.status === "completed",
        );

      const [rOp, lOp] = [await api.op(remote), await api.op(local)];
      const [rM, lM] = [await api.metrics(remote), await api.metrics(local)];
      expect(rOp.metadata.location).toBe("host");
      expect(rOp.metadata.host).toBe(host.url);
      expect(lOp.metadata.location).toBe("local");
      expect(rM.metrics.epochs).toHaveLength(10);
      expect(rM.metrics.epochs.map((e: any) => e.epoch)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const keys = (o: object) => Object.keys(o).sort();
      expect(keys(rM.metrics)).toEqual(keys(lM.metrics));
      for (let i = 0; i < 10; i++) expect(keys(rM.metrics.epochs[i])).toEqual(keys(lM.metrics.epochs[i]));
      expect(keys(rOp)).toEqual(keys(lOp));
      expect(keys(rOp.progress)).toEqual(keys(lOp.progress));
      expect(keys(rOp.result)).toEqual(keys(lOp.result));
      expect(keys(rOp.metadata).filter((k) => k !== "host")).toEqual(keys(lOp.metadata));
      // Same spec, seed and backend: the same numbers, wherever it ran.
      if (rOp.metadata.backend === lOp.metadata.backend) {
        expect(rM.metrics.epochs.map((e: any) => e.train_loss)).toEqual(
          lM.metrics.epochs.map((e: any) => e.train_loss),
        );
      }
    },
    E2E_TIMEOUT,
  );

  test(
    'SIGKILL the host mid-training: the operation fails with "training host unreachable", the API stays healthy, and a restarted host delivers what it kept',
    async () => {
      const { tmp, host, server } = await setup({ TRAINWATCH_HOST_TIMEOUT: "1.5" });
      const dir = tmp.dir;
      const api = new Api(server.url);
      const id = await api.train(slow(300), "host");
      await api.untilEpochs(id, 2);
      host.proc.kill("SIGKILL");
      await host.proc.exited;
      const op = await reach(
        "failed",
        () => api.op(id),
        (o) => o.status === "failed",
        15_000,
      );
      expect(op.failure_code).toBe("host_unreachable");
      expect(op.error_message).toStartWith(HOST_UNREACHABLE);
      expect(op.error_message).toContain(`from ${host.url} for 1.5 s`);
      expect((await api.call("GET", "/health")).status).toBe(200);
      expect((await api.call("POST", "/operations", { operation_type: "training" })).status).toBe(201);
      expect(server.output()).toContain("training host unreachable");

      // The host comes back on the same outbox file: what it had not delivered arrives, and the
      // operation ends failed with the reason, every epoch trained before the kill in place.
      const trainedBefore = (await api.metrics(id)).metrics.epochs.length;
      const again = await startHostProcess(dir, { TRAINWATCH_HEARTBEAT_INTERVAL: "0.2" });
      cleanups.push(again.stop);
      const after = await reach(
        "interrupted",
        () => api.op(id),
        (o) => o.error_message === HOST_RESTARTED,
        15_000,
      );
      expect(after.status).toBe("failed");
      const epochs = (await api.metrics(id)).metrics.epochs.map((e: any) => e.epoch);
      expect(epochs.length).toBeGreaterThanOrEqual(trainedBefore);
      expect(epochs).toEqual(Array.from({ length: epochs.length }, (_, i) => i));
    },
    E2E_TIMEOUT,
  );

  test(
    "the API stopped for several epochs and restarted on the same database: every epoch arrives once and the training completes",
    async () => {
      const tmpDb = tempDir("trainwatch-host-db-");
      cleanups.push(tmpDb.cleanup);
      const db = join(tmpDb.dir, "trainwatch.db");
      const port = String(freePort());
      const { host, server } = await setup({ TRAINWATCH_DB: db, PORT: port, TRAINWATCH_HOST_TIMEOUT: "5" });
      const api = new Api(server.url);
      const epochs = 40;
      const id = await api.train(slow(epochs), "host");
      await api.untilEpochs(id, 3);

      server.proc.kill("SIGKILL");
      await server.proc.exited;
      const before = (await hostSession(host, id)).epochs_trained;
      const during = await reach(
        "3 epochs trained while the API is down",
        () => hostSession(host, id),
        (s) => s.epochs_trained >= before + 3 || s.status !== "running",
      );
      expect(during.relay.pending).toBeGreaterThan(0);

      const again: ServerProcess = await startServerProcess({
        USE_TRAINING_HOST_SERVICE: "true",
        TRAINING_HOST_URL: host.url,
        TRAINWATCH_DB: db,
        PORT: port,
        TRAINWATCH_HOST_TIMEOUT: "5",
      });
      cleanups.push(again.stop);
      const op = await reach(
        "completed",
        () => api.op(id),
        (o) => o.status === "completed",
        60_000,
      );
      const m = await api.metrics(id);
      const seen = m.metrics.epochs.map((e: any) => e.epoch);
      expect(seen).toEqual(Array.from({ length: epochs }, (_, i) => i));
      expect(op.progress.epochs_completed).toBe(epochs);
      expect(op.result.epochs_run).toBe(epochs);
      await reach(
        "outbox drained",
        () => hostSession(host, id),
        (s) => s.relay.pending === 0,
      );
      // One line when the outage began, one when it ended; not one per retry.
      expect(host.output().match(/cannot deliver to the API/g)).toHaveLength(1);
      expect(host.output().match(/reachable again/g)).toHaveLength(1);
    },
    E2E_TIMEOUT,
  );

  test(
    "cancel through the API stops the training on the host",
    async () => {
      const { host, server } = await setup();
      const api = new Api(server.url);
      const id = await api.train(slow(300), "host");
      await api.untilEpochs(id, 1);
      const res = await api.call("DELETE", `/operations/${id}`);
      expect(res.status).toBe(200);
      expect(res.body.data.status).toBe("cancelled");
      const s = await reach(
        "host session cancelled",
        () => hostSession(host, id),
        (x) => x.status === "cancelled",
        5000,
      );
      // A session turns "cancelled" only once its worker's thread is gone (worker_client settles `done` after the close
      // event), so no epoch can follow it: nothing trains on the host any more, and the result of the cancel, relayed to
      // the API, counts the epochs the session counted.
      const health = (await (await fetch(`${host.url}/health`)).json()) as { data: { active_sessions: number } };
      expect(health.data.active_sessions).toBe(0);
      const op = await reach(
        "the result of the cancel",
        () => api.op(id),
        (o) => typeof o.result?.epochs_run === "number",
      );
      expect(op.status).toBe("cancelled");
      expect(op.result.epochs_run).toBe(s.epochs_trained);
      expect((await hostSession(host, id)).epochs_trained).toBe(s.epochs_trained);
    },
    E2E_TIMEOUT,
  );

  test(
    "a host training cancelled after 3 epochs lists its best and last checkpoints, and each downloads through the API and loads with tf.loadLayersModel",
    async () => {
      const tokens = { TRAINWATCH_TOKEN: "api-tok", TRAINWATCH_HOST_TOKEN: "host-tok" };
      const { host, server, tmp } = await setup(tokens, tokens);
      const api = new Api(server.url, "api-tok");
      const id = await api.train(slow(300), "host");
      await api.untilEpochs(id, 3);
      expect((await api.call("DELETE", `/operations/${id}`)).status).toBe(200);
      const op = await reach(
        "the result of the cancel",
        () => api.op(id),
        (o) => Array.isArray(o.result?.checkpoints),
      );
      expect(op.status).toBe("cancelled");
      const checkpoints = op.result.checkpoints as { epoch: number; kind: string; path: string }[];
      expect(checkpoints.map((c) => c.kind)).toEqual(["best", "last"]);
      expect(checkpoints[1]!.epoch).toBe(op.result.epochs_run - 1);
      // The files stay on the host: the paths are in the host's models folder.
      for (const c of checkpoints) expect(c.path).toBe(join(tmp.dir, "models", id, "checkpoints", `epoch-${c.epoch}`));
      // The host's own route needs its token.
      expect((await fetch(`${host.url}/sessions/${id}/checkpoints/${checkpoints[0]!.epoch}`)).status).toBe(401);
      for (const c of checkpoints) {
        const res = await fetch(`${server.url}/api/v1/operations/${id}/checkpoints/${c.epoch}`, {
          headers: { authorization: "Bearer api-tok" },
        });
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toBe("application/x-tar");
        const files = Object.fromEntries(untar(new Uint8Array(await res.arrayBuffer())).map((f) => [f.name, f.data]));
        expect(Object.keys(files)).toEqual(["model.json", "weights.bin", "preprocessing.json"]);
        const json = JSON.parse(new TextDecoder().decode(files["model.json"]));
        const w = files["weights.bin"]!;
        const model = await tf.loadLayersModel(
          tf.io.fromMemory({
            modelTopology: json.modelTopology,
            weightSpecs: json.weightsManifest[0].weights,
            weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer,
          }),
        );
        const out = tf.tidy(() => (model.predict(tf.zeros([2, 2])) as tf.Tensor).shape);
        model.dispose();
        expect(out).toEqual([2, 3]);
      }
      const missing = await api.call("GET", `/operations/${id}/checkpoints/299`);
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe("CHECKPOINT_NOT_FOUND");
    },
    E2E_TIMEOUT,
  );

  test(
    "target host while no host runs: a clear 503, and the refused training stores nothing",
    async () => {
      const nobody = `http://127.0.0.1:${freePort()}`;
      const server = await startServerProcess({ TRAINING_HOST_URL: nobody });
      cleanups.push(server.stop);
      const api = new Api(server.url);
      const r = await api.call("POST", "/trainings", { ...quick(2), target: "host" });
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe("HOST_UNAVAILABLE");
      expect(r.body.error.message).toContain("no training host reachable");
      expect(r.body.error.message).toContain(nobody);
      expect((await api.call("GET", "/operations")).body.total_count).toBe(0);
    },
    E2E_TIMEOUT,
  );
});
