/** What every route factory gets: the store, the hub, the configuration, the trainers and the version. Built by createApp (src/app.ts). */
import type { Config } from "../config.ts";
import type { Hub } from "../hub.ts";
import type { Store } from "../store/store.ts";
import type { Trainers } from "../trainer/types.ts";

export interface AppDeps {
  store: Store;
  hub: Hub;
  config: Config;
  trainers?: Trainers;
  version: string;
}
