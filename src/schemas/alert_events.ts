/**
 * The events a run can alert on, by name: the one list the alert schemas (src/schemas/alert.ts), the rules
 * (src/alerts/rules.ts), the configuration and the dashboard's rules editor read. Pure and free of TypeBox, so the page
 * runs it as is (src/routes/dashboard.ts BROWSER_MODULES).
 */

/** A flag the judgement raises (the analysis's `flags`, the step judgement's, and `hung` from the liveness watchdog). */
export const FLAG_EVENTS = [
  "diverging",
  "overfitting",
  "stalled",
  "plateau",
  "hung",
  "grad_explosion",
  "slowdown",
] as const;
/** A status reached: `lost` is `failed` with failure_code lost; `stopped` is a stop decision of the run's stop policy. */
export const STATUS_EVENTS = ["completed", "failed", "lost", "cancelled", "stopped"] as const;
export const ALERT_EVENTS = [...FLAG_EVENTS, ...STATUS_EVENTS] as const;
export type FlagEvent = (typeof FLAG_EVENTS)[number];
export type StatusEvent = (typeof STATUS_EVENTS)[number];
export type AlertEvent = (typeof ALERT_EVENTS)[number];
