/**
 * System metrics (issue 24): one sample of the process, the machine and its GPUs, as a client's sampler takes it every
 * 15 s. One TypeBox source for the route's validation, OpenAPI and the MCP tool; the pure codec between a wire sample
 * and its stored form (its instant in ms, and the groups as one JSON text) lives here too, so both stores share it.
 */
import { Type, type Static } from "@sinclair/typebox";
import { invalid } from "../errors.ts";

/** A number within `[min, max]`, or null when the source lacks it; optional (absent reads as null). */
const reading = (min: number, max: number, description: string) =>
  Type.Optional(
    Type.Union([Type.Number({ minimum: min, maximum: max }), Type.Null()], {
      description: `${description} (${min} … ${max}; null when the source lacks it).`,
      errorMessage: `expected a number from ${min} to ${max}, or null`,
    }),
  );

/** 1 PB in MB: no machine or GPU reports more memory. */
const MAX_MB = 1e9;

export const ProcessSample = Type.Object(
  {
    cpu_percent: reading(0, 100 * 4096, "CPU of the training process, % of one core (above 100 on several cores)"),
    rss_mb: reading(0, MAX_MB, "Resident memory of the training process, MB"),
  },
  { additionalProperties: false, description: "The training process." },
);

export const MachineSample = Type.Object(
  {
    cpu_percent: reading(0, 100, "CPU of the whole machine, % of all cores"),
    memory_used_mb: reading(0, MAX_MB, "Memory in use on the machine, MB"),
    memory_total_mb: reading(0, MAX_MB, "Memory of the machine, MB"),
    load_1m: reading(0, 1e6, "Load average over 1 minute"),
  },
  { additionalProperties: false, description: "The machine the training runs on." },
);

export const GpuSample = Type.Object(
  {
    index: Type.Integer({
      minimum: 0,
      maximum: 1023,
      description: "The GPU's index, as NVML and nvidia-smi number it.",
    }),
    name: Type.Optional(
      Type.Union([Type.String({ maxLength: 128 }), Type.Null()], { description: "The GPU's model." }),
    ),
    utilization_percent: reading(0, 100, "GPU utilisation, %"),
    memory_used_mb: reading(0, MAX_MB, "GPU memory in use, MB"),
    memory_total_mb: reading(0, MAX_MB, "GPU memory, MB"),
    temperature_c: reading(-273, 1000, "GPU temperature, °C"),
    power_w: reading(0, 100_000, "GPU power draw, W"),
  },
  { additionalProperties: false, description: "One GPU." },
);

/** The most GPUs one sample may carry (a node has 8 or 16; 64 leaves room without letting a body grow unbounded). */
export const MAX_GPUS = 64;

export const SystemSample = Type.Object(
  {
    timestamp: Type.String({ format: "date-time", description: "ISO-8601: when the sample was taken." }),
    process: Type.Optional(ProcessSample),
    machine: Type.Optional(MachineSample),
    gpus: Type.Optional(Type.Array(GpuSample, { maxItems: MAX_GPUS, description: `Up to ${MAX_GPUS} GPUs.` })),
  },
  {
    additionalProperties: false,
    description:
      "One system sample: each group present when the client could read it; a value null when its source lacks it.",
  },
);
export type SystemSample = Static<typeof SystemSample>;

/** The most samples one POST may carry (a client posts a few every minute). */
export const MAX_SYSTEM_SAMPLES = 1_000;

export const SystemBatchInput = Type.Object(
  { samples: Type.Array(SystemSample, { minItems: 1, maxItems: MAX_SYSTEM_SAMPLES }) },
  {
    additionalProperties: false,
    description: `Up to ${MAX_SYSTEM_SAMPLES.toLocaleString("en")} samples, stored in one transaction.`,
  },
);
export type SystemBatchInput = Static<typeof SystemBatchInput>;

export const SystemWriteReply = Type.Object({
  operation_id: Type.String(),
  stored: Type.Integer({ description: "Samples stored (a sample re-posted with the same timestamp replaces it)." }),
});

/** The most points the chart read returns, and its default. */
export const SYSTEM_MAX_POINTS = { minimum: 2, maximum: 2_000, default: 500 } as const;

export const SystemData = Type.Object({
  operation_id: Type.String(),
  samples: Type.Array(SystemSample, { description: "Ascending by timestamp." }),
});

/** A stored sample: its instant in ms (the key, with the operation) and its groups as one JSON text. */
export interface SystemRecord {
  ts: number;
  sample: string;
}

/**
 * Wire samples → stored records, in order; a timestamp the format check let through but Date cannot read is a 400
 * naming it (`body.samples.3.timestamp`). Groups are kept as sent (the schema already bounded them).
 */
export function decodeSystemSamples(samples: readonly SystemSample[]): SystemRecord[] {
  return samples.map((s, i) => {
    const ts = Date.parse(s.timestamp);
    if (Number.isNaN(ts)) throw invalid(`body.samples.${i}.timestamp`, `"${s.timestamp}" is not an ISO-8601 date-time`);
    const { timestamp: _, ...groups } = s;
    return { ts, sample: JSON.stringify(groups) };
  });
}

/** A stored record back in wire form: the timestamp as UTC ISO-8601 (ms), then its groups. */
export function encodeSystemSample(r: SystemRecord): SystemSample {
  return { timestamp: new Date(r.ts).toISOString(), ...(JSON.parse(r.sample) as Omit<SystemSample, "timestamp">) };
}

/**
 * The chart read's plan: `points` time buckets of `width` ms from `first`, covering first … last, so that each bucket
 * gives its first sample. Fewer samples than buckets, spaced wider than a bucket, all come back; a denser run gives one
 * sample per bucket (a spike between two chosen samples is not shown: the export has every sample).
 */
export function systemBuckets(first: number, last: number, maxPoints: number): { width: number; points: number } {
  const span = last - first + 1;
  const width = Math.max(1, Math.ceil(span / maxPoints));
  return { width, points: Math.ceil(span / width) };
}
