// A run's labels over REST (issue 27): tags and group at POST /operations and POST /trainings, changed by
// PATCH /operations/{id}/labels in any status, refused with a 400 naming the field; on an in-memory store.
import { afterEach, describe, expect, test } from "bun:test";
import { json, localTrainingApp, makeApp, req } from "./helpers.ts";
import { scriptedTrainer } from "./fixtures/trainer.ts";

let close: (() => void) | null = null;
afterEach(() => {
  close?.();
  close = null;
});

function app() {
  const made = makeApp();
  close = () => made.store.close();
  return made.app;
}

const API = "/api/v1";

describe("labels over REST", () => {
  test("POST /operations takes tags and group; the operation carries them sorted, and [] / null without", async () => {
    const a = app();
    const made = await json(
      a.handle(
        req("POST", `${API}/operations`, { operation_type: "training", tags: ["b", "a", "b"], group: "sweep-7" }),
      ),
    );
    expect(made.status).toBe(201);
    expect(made.body.data).toMatchObject({ tags: ["a", "b"], group: "sweep-7" });
    const plain = await json(a.handle(req("POST", `${API}/operations`, { operation_type: "training" })));
    expect(plain.body.data).toMatchObject({ tags: [], group: null });
    const read = await json(a.handle(req("GET", `${API}/operations/${made.body.data.operation_id}`)));
    expect(read.body.data).toMatchObject({ tags: ["a", "b"], group: "sweep-7" });
  });

  test("PATCH /operations/{id}/labels adds, removes and replaces, also on a finished run", async () => {
    const a = app();
    const { body } = await json(
      a.handle(req("POST", `${API}/operations`, { operation_type: "training", tags: ["x"] })),
    );
    const id = body.data.operation_id as string;
    await a.handle(req("POST", `${API}/operations/${id}/complete`, { status: "completed" }));
    const patched = await json(
      a.handle(
        req("PATCH", `${API}/operations/${id}/labels`, { add_tags: ["best"], remove_tags: ["x"], group: "g 1" }),
      ),
    );
    expect(patched.status).toBe(200);
    expect(patched.body.data).toMatchObject({ status: "completed", tags: ["best"], group: "g 1" });
    const cleared = await json(a.handle(req("PATCH", `${API}/operations/${id}/labels`, { group: null })));
    expect(cleared.body.data).toMatchObject({ tags: ["best"], group: null });
  });

  test("a bad tag or group is a 400 naming the field; an unknown operation is a 404", async () => {
    const a = app();
    const { body } = await json(a.handle(req("POST", `${API}/operations`, { operation_type: "training" })));
    const id = body.data.operation_id as string;
    const badTag = await json(a.handle(req("PATCH", `${API}/operations/${id}/labels`, { add_tags: ["no spaces"] })));
    expect(badTag.status).toBe(400);
    expect(badTag.body.error.details.field).toStartWith("body.add_tags");
    const badGroup = await json(
      a.handle(req("POST", `${API}/operations`, { operation_type: "training", group: " padded" })),
    );
    expect(badGroup.status).toBe(400);
    expect(badGroup.body.error.details.field).toBe("body.group");
    const unknownKey = await json(a.handle(req("PATCH", `${API}/operations/${id}/labels`, { label: "x" })));
    expect(unknownKey.status).toBe(400);
    const missing = await json(a.handle(req("PATCH", `${API}/operations/op_missing/labels`, { tags: [] })));
    expect(missing.status).toBe(404);
  });

  test("POST /trainings labels the training it starts", async () => {
    const world = localTrainingApp({ start: scriptedTrainer({ ms: 5 }) });
    close = world.close;
    const started = await json(
      world.app.handle(
        req("POST", `${API}/trainings`, {
          dataset: { kind: "synthetic", generator: "spirals", samples: 40 },
          training: { epochs: 2 },
          tags: ["spec"],
          group: "sweep-1",
        }),
      ),
    );
    expect(started.status).toBe(202);
    expect(started.body.data).toMatchObject({ tags: ["spec"], group: "sweep-1" });
  });
});
