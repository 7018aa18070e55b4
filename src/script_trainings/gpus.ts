/**
 * The GPUs a machine hands to script trainings: TRAINWATCH_GPUS when set (a count, "0,1", or "none"), else what
 * `nvidia-smi` lists. Each GPU recipe gets as many ids as it declares, as CUDA_VISIBLE_DEVICES.
 */

export interface Gpu {
  /** As CUDA_VISIBLE_DEVICES names it. */
  id: string;
  name: string | null;
}

/** Asks nvidia-smi; none when it is missing or fails (a machine without an NVIDIA driver). */
export function detectGpus(): Gpu[] {
  try {
    const r = Bun.spawnSync(["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"], {
      stdout: "pipe",
      stderr: "ignore",
    });
    if (r.exitCode !== 0) return [];
    return r.stdout
      .toString()
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)
      .map((l) => {
        const [id, ...name] = l.split(",");
        return { id: id!.trim(), name: name.join(",").trim() || null };
      });
  } catch {
    return [];
  }
}

/** The configured ids (null: detect), with names where nvidia-smi knows them. */
export function machineGpus(configured: string[] | null, detect: () => Gpu[] = detectGpus): Gpu[] {
  if (configured === null) return detect();
  if (configured.length === 0) return [];
  const known = new Map(detect().map((g) => [g.id, g.name]));
  return configured.map((id) => ({ id, name: known.get(id) ?? null }));
}
