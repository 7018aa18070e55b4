// The slurmrestd client's failures that need no cluster: nothing listening and a server that never answers are
// SLURM_UNREACHABLE, an unreadable token file is SLURM_REFUSED, and no message or detail carries the token; and the
// client's reading of slurmrestd's recorded replies (tests/fixtures/slurm), fed through its fetch. The client against a
// real slurmrestd is tests/slurm_rest.slurm.test.ts.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { TrainwatchError } from "../src/errors.ts";
import { SlurmRestClient } from "../src/executors/slurm_rest.ts";

const TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-part.signature";

/** A loopback port nothing listens on: taken from the kernel, then released. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected a failure");
    },
    (e: unknown) => e as TrainwatchError,
  );
const leaks = (err: TrainwatchError) => JSON.stringify({ m: err.message, d: err.details }).includes(TOKEN);

describe("the slurmrestd client without slurmrestd", () => {
  // Accepts connections and never answers: a slurmrestd stuck behind a hung slurmctld.
  const silent = createServer(() => {});
  const listening = new Promise<number>((ok) =>
    silent.listen(0, "127.0.0.1", () => ok((silent.address() as { port: number }).port)),
  );
  afterAll(() => silent.close());

  test("nothing listening: SLURM_UNREACHABLE (503), naming the URL and never the token", async () => {
    const url = `http://127.0.0.1:${await deadPort()}`;
    const err = await failure(new SlurmRestClient({ url, user: "u", token: TOKEN }).ping());
    expect(err).toBeInstanceOf(TrainwatchError);
    expect(err).toMatchObject({ code: "SLURM_UNREACHABLE", status: 503, details: { url } });
    expect(leaks(err)).toBe(false);
  });

  test("a server that never answers: SLURM_UNREACHABLE once the call's timeout passes", async () => {
    const url = `http://127.0.0.1:${await listening}`;
    const client = new SlurmRestClient({ url, user: "u", token: TOKEN, timeoutMs: 200 });
    const err = await failure(client.job(1));
    expect(err.code).toBe("SLURM_UNREACHABLE");
    expect(err.message).toContain("no answer within 200 ms");
    expect(leaks(err)).toBe(false);
  });

  test("an unreadable token file: SLURM_REFUSED naming the setting; the file's path only in the server log", async () => {
    const logged: string[] = [];
    const client = new SlurmRestClient({
      url: "http://127.0.0.1:1",
      user: "u",
      tokenFile: "/nonexistent/slurm.jwt",
      log: (line) => logged.push(line),
    });
    const err = await failure(client.ping());
    expect(err.code).toBe("SLURM_REFUSED");
    expect(err.message).toContain("TRAINWATCH_SLURM_TOKEN_FILE");
    expect(JSON.stringify({ message: err.message, details: err.details })).not.toContain("/nonexistent");
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain("/nonexistent/slurm.jwt");
    // The same failure at the next call is not logged again.
    await failure(client.ping());
    expect(logged).toHaveLength(1);
  });

  test("a reply that is not JSON (a proxy's page): SLURM_REFUSED without its body, which goes to the server log", async () => {
    const logged: string[] = [];
    const page = "<html><body>502 Bad Gateway from internal-proxy-7.corp</body></html>";
    const client = new SlurmRestClient({
      url: "http://slurm.test:6820",
      user: "u",
      token: TOKEN,
      fetch: (async () => new Response(page, { status: 502 })) as unknown as typeof fetch,
      log: (line) => logged.push(line),
    });
    const err = await failure(client.jobs());
    expect(err.code).toBe("SLURM_REFUSED");
    expect(err.message).toContain("not JSON");
    expect(err.message).toContain("TRAINWATCH_SLURM_URL");
    expect(err.message).not.toContain("internal-proxy");
    expect(logged[0]).toContain("internal-proxy-7.corp");
    expect(leaks(err)).toBe(false);
  });

  test("a client needs a token or a token file, and job ids are positive integers", async () => {
    expect(() => new SlurmRestClient({ url: "http://127.0.0.1:1", user: "u" })).toThrow(TrainwatchError);
    const client = new SlurmRestClient({ url: "http://127.0.0.1:1", user: "u", token: TOKEN });
    await expect(client.cancel(0)).rejects.toThrow(/job id 0 is not a job id/);
    await expect(client.job(1.5)).rejects.toThrow(/job id 1.5 is not a job id/);
  });
});

describe("the slurmrestd client on slurmrestd's recorded replies (tests/fixtures/slurm)", () => {
  /** A client whose fetch answers with the recorded reply `name` (HTTP 500 for an error, as slurmrestd does). */
  const replaying = (name: string) => {
    const text = readFileSync(join(import.meta.dir, "fixtures", "slurm", `${name}.json`), "utf8");
    const failed = (JSON.parse(text) as { errors?: unknown[] }).errors?.length ?? 0;
    const requests: Request[] = [];
    const client = new SlurmRestClient({
      url: "http://slurm.test:6820",
      user: "trainwatch",
      token: TOKEN,
      fetch: (async (input: string | URL | Request, init?: RequestInit) => {
        requests.push(new Request(input, init));
        return new Response(text, { status: failed > 0 ? 500 : 200 });
      }) as typeof fetch,
    });
    return { client, requests };
  };

  test("ping: UP when slurmctld answers; the user and token travel as slurmrestd's two headers", async () => {
    const { client, requests } = replaying("ping");
    expect(await client.ping()).toBe(true);
    expect(requests[0]!.url).toBe("http://slurm.test:6820/slurm/v0.0.38/ping");
    expect(requests[0]!.headers.get("X-SLURM-USER-NAME")).toBe("trainwatch");
    expect(requests[0]!.headers.get("X-SLURM-USER-TOKEN")).toBe(TOKEN);
  });

  test("a token slurmctld rejects: SLURM_REFUSED with Slurm's words, never the token", async () => {
    const err = await failure(replaying("bad_token").client.jobs());
    expect(err).toMatchObject({
      code: "SLURM_REFUSED",
      status: 502,
      details: { http_status: 500, slurm_error_number: -1, slurm_error: "Unspecified error" },
    });
    expect(err.message).toBe(
      "Slurm refused GET /slurm/v0.0.38/jobs: Unspecified error: slurmctld config is unable to load",
    );
    expect(leaks(err)).toBe(false);
  });

  test("a submission Slurm refuses: its reason and error code (a bad partition, a gres it cannot parse)", async () => {
    const spec = {
      name: "x",
      current_working_directory: "/",
      standard_output: "/x.out",
      standard_error: "/x.out",
      environment: { PATH: "/bin" },
    };
    const partition = await failure(replaying("submit_refused").client.submit("#!/bin/bash\n", spec));
    expect(partition.message).toBe("Slurm refused POST /slurm/v0.0.38/job/submit: Invalid partition name specified");
    expect(partition.details).toMatchObject({ slurm_error_number: 2000 });
    const gres = await failure(replaying("submit_refused_gres").client.submit("#!/bin/bash\n", spec));
    expect(gres.message).toBe("Slurm refused POST /slurm/v0.0.38/job/submit: Failure during parsing");
    expect(gres.details).toMatchObject({ slurm_error_number: 9001 });
  });

  test("a job Slurm no longer knows is null, not an error", async () => {
    expect(await replaying("job_not_found").client.job(999)).toBeNull();
  });

  test("cancelling a job that already ended succeeds: one DELETE of the job, no signal named", async () => {
    const { client, requests } = replaying("cancel_finished");
    await client.cancel(7);
    expect(requests.map((r) => [r.method, r.url])).toEqual([["DELETE", "http://slurm.test:6820/slurm/v0.0.38/job/7"]]);
  });
});
