/**
 * The alert rules as pure functions (issue 24): which events alert for a run (the server's defaults, the run's on/off),
 * an alert's deterministic id (the same fact raised twice, by two replicas or a retried write, is stored once), the
 * flags a write raised (before vs after), and the thresholds a batch crossed. No I/O: the write algorithm, the operations
 * service and the Alerts shell (src/alerts/service.ts) call these.
 */
import {
  ALERT_EVENTS,
  FLAG_EVENTS,
  type AlertEvent,
  type AlertKind,
  type AlertRules,
  type AlertThreshold,
  type FlagEvent,
} from "../schemas/alert.ts";
import type { TrendSummary } from "../trends/types.ts";
import type { StepFlags } from "../trends/step_judgement.ts";

/** TRAINWATCH_ALERT_ON's default: what alerts on every run unless it says `off`. */
export const DEFAULT_ALERT_ON: readonly AlertEvent[] = ["diverging", "failed", "lost", "hung"];

/** The stored form of a run's rules: each event once, in the order given; thresholds as given (null when none). */
export function normalizeRules(r: AlertRules): AlertRules {
  const out: AlertRules = {};
  if (r.on?.length) out.on = [...new Set(r.on)];
  if (r.off?.length) out.off = [...new Set(r.off)];
  if (r.thresholds?.length)
    out.thresholds = r.thresholds.map((t) => ({ metric: t.metric, when: t.when, value: t.value }));
  return out;
}

/** TRAINWATCH_ALERT_ON as events: a comma-separated list, "none" for none; null when a name is unknown. */
export function parseEvents(s: string): AlertEvent[] | null {
  if (s.trim().toLowerCase() === "none") return [];
  const names = s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  const known = new Set<string>(ALERT_EVENTS);
  return names.every((n) => known.has(n)) ? ([...new Set(names)] as AlertEvent[]) : null;
}

/** Whether `event` alerts for a run: (the server's `defaults` ∪ the run's `on`) − the run's `off`. */
export function alertsOn(event: AlertEvent, rules: AlertRules | null, defaults: readonly AlertEvent[]): boolean {
  if (rules?.off?.includes(event)) return false;
  return defaults.includes(event) || rules?.on?.includes(event) === true;
}

/** The events that alert for a run, in ALERT_EVENTS order (alertsOn of each). */
export const effectiveEvents = (rules: AlertRules | null, defaults: readonly AlertEvent[]): AlertEvent[] =>
  ALERT_EVENTS.filter((e) => alertsOn(e, rules, defaults));

/**
 * An alert's id: `al_` + 24 hex of a hash of (operation, kind, name, where). `where` is the epoch or step it happened
 * at for a flag (a flag that clears and rises again later is a new alert), null for a status (a run reaches each once)
 * and for a threshold (once per run and threshold: the first epoch or step past it).
 */
export function alertId(operationId: string, kind: AlertKind, name: string, where: number | null): string {
  const key = `${operationId}\u0000${kind}\u0000${name}\u0000${where ?? ""}`;
  return `al_${fnv(key, 0x811c9dc5)}${fnv(key, 0x01000193)}${fnv(key, 0x2545f491)}`;
}

/** FNV-1a over UTF-16 code units from `seed`, as 8 hex: three seeds make the id's 96 bits. */
function fnv(s: string, seed: number): string {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** An epoch run's flags, from its trend summary. */
export const summaryFlags = (
  s: Pick<TrendSummary, "is_diverging" | "is_overfitting" | "is_stalled" | "is_plateaued">,
) =>
  ({
    diverging: s.is_diverging,
    overfitting: s.is_overfitting,
    stalled: s.is_stalled,
    plateau: s.is_plateaued,
  }) satisfies Partial<Record<FlagEvent, boolean>>;

/**
 * A step run's flags, from its step verdict: `spike` is left out (a spike being watched may recover; one that does not
 * becomes `diverging`).
 */
export const stepFlags = (f: StepFlags) =>
  ({
    diverging: f.diverging,
    overfitting: f.overfitting,
    stalled: f.stalled,
    plateau: f.plateau,
    grad_explosion: f.grad_explosion,
    slowdown: f.slowdown,
  }) satisfies Partial<Record<FlagEvent, boolean>>;

/** The flags `after` raises that `before` did not (false → true), in FLAG_EVENTS order. */
export function raisedFlags(
  before: Partial<Record<FlagEvent, boolean>>,
  after: Partial<Record<FlagEvent, boolean>>,
): FlagEvent[] {
  return FLAG_EVENTS.filter((f) => after[f] === true && before[f] !== true);
}

/** A threshold a batch crossed: the first epoch or step (in key order) whose value lies past it. */
export interface Crossing {
  threshold: AlertThreshold;
  observed: number;
  epoch: number | null;
  step: number | null;
}

/** What the threshold check reads of an epoch or a step. */
export interface MetricPoint {
  epoch?: number;
  step?: number;
  custom?: Record<string, number | null>;
}

/** A threshold's readable name (its id's name part, and the title's): "val_loss above 2.5". */
export const thresholdName = (t: AlertThreshold) => `${t.metric} ${t.when} ${t.value}`;

/**
 * The thresholds the batch `rows` crossed, each once: its first row (by step, else epoch) whose `metric` (a standard
 * field or a custom metric; a non-finite value never crosses) is above or below the value. O(batch × thresholds).
 */
export function crossings(thresholds: readonly AlertThreshold[], rows: readonly MetricPoint[]): Crossing[] {
  if (thresholds.length === 0 || rows.length === 0) return [];
  const ordered = [...rows].sort((a, b) => (a.step ?? a.epoch ?? 0) - (b.step ?? b.epoch ?? 0));
  const out: Crossing[] = [];
  for (const t of thresholds) {
    for (const r of ordered) {
      const v = metricValue(r, t.metric);
      if (v === null || !Number.isFinite(v)) continue;
      if (t.when === "above" ? v > t.value : v < t.value) {
        out.push({ threshold: t, observed: v, epoch: r.epoch ?? null, step: r.step ?? null });
        break;
      }
    }
  }
  return out;
}

function metricValue(r: MetricPoint, metric: string): number | null {
  const own = (r as unknown as Record<string, unknown>)[metric];
  if (typeof own === "number") return own;
  const c = r.custom?.[metric];
  return typeof c === "number" ? c : null;
}
