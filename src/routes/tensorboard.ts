/**
 * The TensorBoard bridge's routes: one operation's epochs (a step run's steps) as an event file to download, and the import of a logdir
 * on the server. Thin: the codec is src/tensorboard/metrics.ts, the import src/tensorboard/importer.ts; the live mirror
 * (TRAINWATCH_TENSORBOARD_DIR) has no route, it listens to the operations service (src/server.ts starts it).
 */
import { Elysia } from "elysia";
import { invalid } from "../errors.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";
import { documented } from "../http/openapi.ts";
import { Operation, OperationIdParams } from "../schemas/operation.ts";
import { TensorboardImportInput, TensorboardImportReport } from "../schemas/tensorboard.ts";
import { epochRecords, fileHeader, stepRecords, tagMapProblem } from "../tensorboard/metrics.ts";
import { planLogdir, startImport } from "../tensorboard/importer.ts";
import { resolveDataPath } from "../trainer/datasets/data_dir.ts";
import { loadOperation } from "../store/load.ts";
import { epochPages, pageEpochs, stepPages } from "../store/pages.ts";
import { downloadStream } from "../http/download.ts";
import type { AppDeps } from "./deps.ts";

export const tensorboardRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/tensorboard" })
    .get(
      "/operations/:id/tfevents",
      async ({ params }) => {
        const op = await loadOperation(deps.store, params.id);
        // Streamed: the opening record, then a page of records at a time (the bytes of eventFile). A step run's file
        // holds its steps at their step numbers, as the live mirror writes it; its epochs are derived from them.
        const store = deps.store;
        const steps = (op.progress.steps_completed ?? 0) > 0;
        const bytes = downloadStream(
          (async function* () {
            yield fileHeader(op.created_at);
            const size = pageEpochs((await store.metricNames(params.id)).length);
            if (steps) for await (const page of stepPages(store, params.id, size)) yield stepRecords(page);
            else for await (const page of epochPages(store, params.id, size)) yield epochRecords(page);
          })(),
        );
        const name = `events.out.tfevents.${Math.floor(Date.parse(op.created_at) / 1000)}.trainwatch.${params.id}`;
        return new Response(bytes, {
          headers: {
            "content-type": "application/octet-stream",
            "content-disposition": `attachment; filename="${name.replace(/["\\\r\n]/g, "")}"`,
          },
        });
      },
      {
        params: OperationIdParams,
        detail: {
          tags: ["metrics"],
          summary: "Download the epochs (a step run's steps) as a TensorBoard event file",
          description:
            "Every stored epoch as one TensorBoard event (step = epoch, wall time = the epoch's timestamp), one `simple_value` scalar per metric under its own name (train_loss, val_loss, …, custom metrics), after the `brain.Event:2` file_version event. A run with steps gets its steps instead, each at its own step number, under the Hugging Face Trainer's tags (train/loss, train/learning_rate, train/grad_norm, train/duration, train/samples, train/tokens, eval/loss, eval/accuracy, train/epoch; custom metrics under their own names), which the import reads back as steps. Values are float32 (simple_value's type): NaN and ±Infinity stay, a finite value beyond float32 becomes ±Infinity. Save it in a folder of its own and run `tensorboard --logdir` on the folder above.",
          responses: {
            200: documented(
              "TFRecord file of Event messages",
              { type: "string", format: "binary" },
              "application/octet-stream",
            ),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    )
    .post(
      "/imports/tensorboard",
      async ({ body, set, request, server }) => {
        const problem = body.tag_map ? tagMapProblem(body.tag_map) : null;
        if (problem) throw invalid(`body.tag_map.${problem[0]}`, problem[1]);
        const root = resolveDataPath(deps.config.dataDir, body.logdir, "body.logdir", "directory");
        const plan = planLogdir(root, body.logdir, "body.logdir");
        const { operation, done } = await startImport(deps.operations, plan, {
          root,
          label: body.logdir,
          tagMap: body.tag_map,
          as: body.as,
          field: "body.logdir",
        });
        if (body.wait === false) {
          // Nobody waits: a failure is the import operation's (failed, with the message), and the log's.
          done.catch((err) => console.error(`[tensorboard] ${operation.operation_id}:`, (err as Error).message));
          set.status = 202;
          return ok(operation);
        }
        // The reply waits on the whole import: no idle cut-off for this request (Bun's default is 10 s).
        server?.timeout(request, 0);
        return ok(await done);
      },
      {
        body: TensorboardImportInput,
        response: {
          200: Envelope(TensorboardImportReport),
          202: Envelope(Operation),
          400: ErrorEnvelope,
        },
        detail: {
          tags: ["imports"],
          summary: "Import a TensorBoard logdir",
          description:
            'Reads a logdir on the server (inside TRAINWATCH_DATA_DIR) and makes each run directory (a directory holding events.out.tfevents.* files; a Keras `<run>/train` + `<run>/validation` pair is one run) a completed `training` operation named by its path, with `metadata.source` "tensorboard". Scalars are read in both encodings (`simple_value`, and TF2 tensor summaries of the `scalars` plugin); step = epoch. Tags map to the standard fields by name (loss/epoch_loss → train_loss, val_loss/epoch_val_loss → val_loss, accuracy → train_accuracy, lr/learning_rate → learning_rate, …; `tag_map` overrides) and to custom metrics otherwise; graphs, images, histograms and other events are skipped and counted. The import is an operation of its own (operation_type `import`): progress.batch counts records read of all records, and its result is the report. Every file is checked before anything is written: a damaged record is a 400 naming the file and the byte offset (details.file, details.offset), and creates no run; a last record cut short (a file still being written) is reported in `truncated`, and what precedes it is imported. `wait: false` replies 202 with the import operation at once.',
        },
      },
    );
