// End to end: the real `bun run src/server.ts` process on a free port, spoken to with fetch.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { INTERRUPTED } from "../src/trainer/dispatcher.ts";
import { startServerProcess, tempDir, until, type ServerProcess } from "./helpers.ts";

const started: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

async function start(env: Record<string, string> = {}) {
  const s = await startServerProcess(env);
  started.push(s);
  return s;
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function externalAddress(): string | null {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return null;
}

describe("the server process", () => {
  test("a trainer can register, push epochs and read them back over HTTP, and the database lands at TRAINWATCH_DB", async () => {
    const data = tempDir();
    try {
      const db = join(data.dir, "nested", "tw.db");
      const s = await start({ TRAINWATCH_DB: db });
      const post = (path: string, body: unknown) =>
        fetch(`${s.url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });

      const created = await post("/api/v1/operations", { operation_type: "training", total_epochs_planned: 3 });
      expect(created.status).toBe(201);
      const id = ((await created.json()) as { data: { operation_id: string } }).data.operation_id;

      const epochs = [0, 1, 2].map((e) => ({ epoch: e, train_loss: 1 / (e + 1), val_loss: 1.1 / (e + 1) }));
      expect((await post(`/api/v1/operations/${id}/metrics`, { epochs })).status).toBe(200);
      expect((await post(`/api/v1/operations/${id}/complete`, { status: "completed" })).status).toBe(200);

      const res = await fetch(`${s.url}/api/v1/operations/${id}/metrics`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        data: { status: string; metrics: { epochs: unknown[]; best_epoch: number } };
      };
      expect(body.data.status).toBe("completed");
      expect(body.data.metrics.epochs).toHaveLength(3);
      expect(body.data.metrics.best_epoch).toBe(2);
      expect(existsSync(db)).toBe(true);
    } finally {
      data.cleanup();
    }
  });

  test("binds 127.0.0.1 by default", async () => {
    const s = await start();
    expect(s.output()).toContain(`listening on http://127.0.0.1:${s.port}`);
    const ext = externalAddress();
    if (ext) {
      const reached = await fetch(`http://${ext}:${s.port}/api/v1/health`, { signal: AbortSignal.timeout(2000) }).then(
        () => true,
        () => false,
      );
      expect(reached, `server must not answer on ${ext}`).toBe(false);
    }
  });

  test("with TRAINWATCH_TOKEN set, the API needs the bearer token and health stays public (PORT=0 picks a port)", async () => {
    const s = await start({ TRAINWATCH_TOKEN: "tok-123", PORT: "0" });
    expect(s.port).toBeGreaterThan(0);
    expect((await fetch(`${s.url}/api/v1/operations`)).status).toBe(401);
    expect((await fetch(`${s.url}/api/v1/operations`, { headers: { authorization: "Bearer nope" } })).status).toBe(401);
    expect((await fetch(`${s.url}/api/v1/operations`, { headers: { authorization: "Bearer tok-123" } })).status).toBe(
      200,
    );
    expect((await fetch(`${s.url}/api/v1/health`)).status).toBe(200);
  });

  test("an API killed during a local training keeps every epoch it acknowledged, and after restart the training is failed as interrupted", async () => {
    const data = tempDir();
    try {
      const env = { TRAINWATCH_DB: join(data.dir, "tw.db"), TRAINWATCH_MODELS_DIR: join(data.dir, "models") };
      const s = await start(env);
      const spec = {
        name: "killed",
        dataset: { kind: "synthetic", generator: "spirals", samples: 600, seed: 3 },
        model: { hidden_layers: [16] },
        training: { epochs: 3000, batch_size: 4, seed: 7 },
      };
      const post = await fetch(`${s.url}/api/v1/trainings`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(spec),
      });
      expect(post.status).toBe(202);
      const id = ((await post.json()) as { data: { operation_id: string } }).data.operation_id;
      type Reply = { data: { metrics: { epochs: { epoch: number; train_loss: number }[] } } };
      const metrics = async (url: string) =>
        ((await (await fetch(`${url}/api/v1/operations/${id}/metrics`)).json()) as Reply).data;
      // Every epoch a reply showed was acknowledged: it must survive the kill, value for value.
      const seen = await until(
        "3 acknowledged epochs",
        async () => {
          const epochs = (await metrics(s.url)).metrics.epochs;
          return epochs.length >= 3 ? epochs : undefined;
        },
        30_000,
        50,
      );
      s.proc.kill("SIGKILL");
      await s.proc.exited;

      const again = await start(env);
      expect(again.output()).toContain(`marked 1 interrupted local training(s) failed: ${id}`);
      const op = (
        (await (await fetch(`${again.url}/api/v1/operations/${id}`)).json()) as {
          data: { status: string; error_message: string | null };
        }
      ).data;
      expect(op).toMatchObject({ status: "failed", error_message: INTERRUPTED });
      const kept = new Map((await metrics(again.url)).metrics.epochs.map((e) => [e.epoch, e.train_loss]));
      for (const e of seen) expect(kept.get(e.epoch)).toBe(e.train_loss);
    } finally {
      data.cleanup();
    }
  }, 60_000);

  test("a body far past the limit gets the 413 envelope over the socket, not Bun's bare 413; unauthenticated, a 401", async () => {
    const s = await start({ TRAINWATCH_TOKEN: "t0k" });
    const big = "x".repeat(8 * 1024 * 1024);
    const post = (headers: Record<string, string>) =>
      fetch(`${s.url}/api/v1/operations`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: big,
      });
    const refused = await post({ authorization: "Bearer t0k" });
    expect(refused.status).toBe(413);
    expect(await refused.json()).toMatchObject({
      success: false,
      error: { code: "PAYLOAD_TOO_LARGE", details: { limit: 5 * 1024 * 1024 } },
    });
    const anonymous = await post({});
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
  });

  test("stops cleanly on SIGTERM", async () => {
    const s = await startServerProcess();
    await s.stop();
    expect(s.proc.exitCode).toBe(0);
    expect(s.output()).toContain("received SIGTERM");
  });
});
