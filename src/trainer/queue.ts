/**
 * The one queue of trainings on a machine: first in, first out, at most `maxConcurrent` running, and a task that
 * needs GPUs starts only when that many are free (it gets their ids; the ones behind it that need none may pass it).
 * Built-in trainings and script trainings share it, so TRAINWATCH_MAX_LOCAL_TRAININGS bounds both. No I/O.
 */

/** What a running task gives back: how to stop it, and when it is over (its slot and GPUs free up then). */
export interface RunningTask {
  cancel(): void;
  done: Promise<unknown>;
}

export interface Task {
  /** GPUs it needs (0: none). */
  gpus: number;
  /** Starts it on the given GPU ids (empty when gpus is 0). Called at most once. */
  launch(devices: string[]): RunningTask;
  /** Called instead of launch when the task is cancelled while queued. */
  dropped?(): void;
  /** Told its place in line (1: next) when it is queued and each time that place changes, until it starts. */
  queued?(position: number): void;
}

interface Queued extends Task {
  id: string;
  /** The place it was last told (queued). */
  told?: number;
}

export class TaskQueue {
  private readonly queue: Queued[] = [];
  private readonly running = new Map<string, RunningTask>();
  private readonly freeGpus: string[];

  constructor(
    private readonly maxConcurrent: number,
    /** The machine's GPU ids, as CUDA_VISIBLE_DEVICES names them ("0", "1", …). */
    readonly gpus: readonly string[] = [],
  ) {
    this.freeGpus = [...gpus];
  }

  /** Queues a task; it starts now if a slot (and its GPUs) is free, else when they free up. */
  submit(id: string, task: Task): void {
    if (task.gpus > this.gpus.length)
      throw new Error(`task ${id} needs ${task.gpus} GPU(s); this machine has ${this.gpus.length}`);
    this.queue.push({ ...task, id });
    this.pump();
  }

  /** Tells each waiting task whose place in line changed its new place (Task.queued). */
  private tell(): void {
    this.queue.forEach((job, i) => {
      if (job.told === i + 1 || !job.queued) return;
      job.told = i + 1;
      job.queued(i + 1);
    });
  }

  /** Stops a queued or running task. True when it was known here. */
  cancel(id: string): boolean {
    const i = this.queue.findIndex((j) => j.id === id);
    if (i >= 0) {
      const [job] = this.queue.splice(i, 1);
      job!.dropped?.();
      this.tell();
      return true;
    }
    const run = this.running.get(id);
    run?.cancel();
    return run !== undefined;
  }

  has(id: string): boolean {
    return this.running.has(id) || this.queue.some((j) => j.id === id);
  }

  /** Resolves when the task (if running) is over. */
  async settled(id: string): Promise<void> {
    await this.running.get(id)?.done.catch(() => {});
  }

  describe() {
    return {
      max_concurrent: this.maxConcurrent,
      running: this.running.size,
      queued: this.queue.length,
      gpus: this.gpus.length,
      gpus_free: this.freeGpus.length,
    };
  }

  /** Drops every queued task and stops every running one; resolves when all are over. */
  async stopAll(): Promise<void> {
    for (const job of this.queue.splice(0)) job.dropped?.();
    const runs = [...this.running.values()];
    for (const run of runs) run.cancel();
    await Promise.allSettled(runs.map((r) => r.done));
  }

  private pump(): void {
    for (let i = 0; i < this.queue.length && this.running.size < this.maxConcurrent; ) {
      const job = this.queue[i]!;
      if (job.gpus > this.freeGpus.length) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      const devices = this.freeGpus.splice(0, job.gpus);
      let run: RunningTask;
      try {
        run = job.launch(devices);
      } catch (err) {
        // A launcher that throws has started nothing: its slot and GPUs stay free.
        console.error(`[queue] ${job.id}: start failed:`, err);
        this.freeGpus.push(...devices);
        continue;
      }
      this.running.set(job.id, run);
      run.done
        .catch(() => {})
        .finally(() => {
          this.running.delete(job.id);
          this.freeGpus.push(...devices);
          this.pump();
        });
    }
    this.tell();
  }
}
