// The store contract (tests/store_contract.ts) on SqliteStore: ":memory:" for a fresh database, a file in a temporary
// folder when the test reopens it. SQLite-only behaviour (the file, WAL, the lock, migrations) is in store.test.ts.
import { join } from "node:path";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { AsyncStore } from "../src/store/postgres.ts";
import type { Store } from "../src/store/store.ts";
import { storeContract } from "./store_contract.ts";
import { tempDir } from "./helpers.ts";

/** The synchronous store behind the promise-returning seam: a throw becomes a rejection, as a network store's would. */
function promised(store: Store): AsyncStore {
  return new Proxy(store, {
    get(target, key) {
      const v = Reflect.get(target, key) as unknown;
      if (typeof v !== "function") return v;
      return async (...args: unknown[]) => (v as (...a: unknown[]) => unknown).apply(target, args);
    },
  }) as unknown as AsyncStore;
}

const cleanups: (() => void)[] = [];

storeContract("SqliteStore", {
  async open(opts = {}) {
    const dir = tempDir("trainwatch-contract-");
    const path = join(dir.dir, "trainwatch.db");
    let current = new SqliteStore(path, opts.trends, opts.liveness);
    cleanups.push(() => {
      current.close();
      dir.cleanup();
    });
    return {
      store: promised(current),
      async reopen() {
        current.close();
        current = new SqliteStore(path, opts.trends, opts.liveness);
        return promised(current);
      },
    };
  },
  async cleanup() {
    for (const c of cleanups.splice(0)) c();
  },
});
