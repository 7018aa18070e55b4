/** What every route factory gets: the store, the operations service, the configuration, the trainers and the version. Built by createApp (src/app.ts). */
import type { Config } from "../config.ts";
import type { OperationsService } from "../operations/service.ts";
import type { Store } from "../store/store.ts";
import type { Trainers } from "../trainer/types.ts";

export interface AppDeps {
  store: Store;
  operations: OperationsService;
  config: Config;
  trainers?: Trainers;
  version: string;
}
