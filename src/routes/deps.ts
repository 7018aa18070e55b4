/**
 * What every route factory gets: the store's read-only view, the operations service (the one writer), the configuration,
 * the trainers and the version. Built by createApp (src/app.ts).
 */
import type { Config } from "../config.ts";
import type { OperationsService } from "../operations/service.ts";
import type { StoreReader } from "../store/store.ts";
import type { Trainers } from "../trainer/types.ts";

export interface AppDeps {
  /** Reads only: every write goes through `operations`, which makes it heard by the streams. */
  store: StoreReader;
  operations: OperationsService;
  config: Config;
  trainers?: Trainers;
  version: string;
}
