// The store contract (tests/store_contract.ts) on SqliteStore, on a file in a temporary folder so a test can reopen
// it. SQLite-only behaviour (the file, WAL, the lock, migrations) is in store.test.ts.
import { join } from "node:path";
import { SqliteStore } from "../src/store/sqlite.ts";
import { storeContract } from "./store_contract.ts";
import { tempDir } from "./helpers.ts";

const cleanups: (() => Promise<void>)[] = [];

storeContract("SqliteStore", {
  async open(opts = {}) {
    const dir = tempDir("trainwatch-contract-");
    const path = join(dir.dir, "trainwatch.db");
    let current = new SqliteStore(path, opts.trends, opts.liveness);
    cleanups.push(async () => {
      await current.close();
      dir.cleanup();
    });
    return {
      store: current,
      async reopen() {
        await current.close();
        current = new SqliteStore(path, opts.trends, opts.liveness);
        return current;
      },
    };
  },
  async cleanup() {
    for (const c of cleanups.splice(0)) await c();
  },
});
