// The operation page's judgement: the trend badges and the best epoch from the stream's trends, and the recommendation
// from GET /operations/{id}/analysis, asked again (at most every 1.5 s) when the trends move.

import { api } from "../../lib/api.js";
import { fmt } from "../../lib/format.js";
import { html, render } from "../../lib/html.js";
import { errorBox, flagBadges, throttle } from "../../lib/widgets.js";

const ACTION_LABELS = {
  continue: "continue",
  stop: "stop",
  use_checkpoint: "use checkpoint",
  insufficient_data: "not enough data",
  check_trainer: "check the trainer",
};

/** The badges and the best monitored value of a trend summary; `quiet`: the trainer is stale or hung (never "no issues"). */
function trendsBlock(t, quiet) {
  const bestText =
    t.best_epoch === null
      ? html`<span class="muted">no finite loss yet</span>`
      : html`best ${t.monitor} <b>${fmt(t.best_val_loss)}</b> at epoch <b>${t.best_epoch}</b>${t.epochs_since_improvement ? html` <span class="muted">(${t.epochs_since_improvement} epochs ago)</span>` : null}`;
  return html`${flagBadges(t, { none: t.total_epochs_completed >= 3 && !quiet })} <span class="best">${bestText}</span>`;
}

/** A recommendation: its action, the reason, and the checkpoint to use when it names one. */
function recommendationBlock(r) {
  const label = ACTION_LABELS[r.action] ?? r.action;
  return html`
      <span class="action ${r.action}" data-action="${r.action}">${label}</span>
      <span class="reason">${r.reason}</span>
      ${r.checkpoint_epoch !== null && html`<span class="muted small">checkpoint epoch ${r.checkpoint_epoch}</span>`}
      ${r.checkpoint_step != null && html`<span class="muted small">checkpoint: the last at or before step ${r.checkpoint_step}</span>`}`;
}

/**
 * The judgement of operation `id`, into its `badges` and `recommendation` elements. showTrends(t) renders the badges;
 * analyse() asks for the recommendation (throttled), analyseIfNew(t) only when `t` differs from the trends the last
 * ask was for; `trends()` reads the page's current trends; nothing is asked once `alive()` is false; cancel() drops a
 * pending ask; `onAnalysis(a)` hears each analysis (the charts mark a step run's spikes and slow-downs from it); `op()`
 * reads the page's operation (a stale or hung one never shows "no issues": its chips say why).
 */
export function analysisPart(
  { badges, recommendation },
  id,
  { trends, op = () => null, alive, onAnalysis = () => {} },
) {
  /** The trends the last analysis was asked for (as JSON). */
  let analysedTrends = null;
  const analyse = throttle(async () => {
    if (!alive()) return;
    analysedTrends = JSON.stringify(trends());
    try {
      const a = await api("GET", `/operations/${encodeURIComponent(id)}/analysis`);
      if (!alive()) return;
      recommendation.className = "recommendation";
      render(recommendation, recommendationBlock(a.recommendation));
      onAnalysis(a);
    } catch (err) {
      render(recommendation, errorBox(err));
    }
  }, 1500);

  return {
    showTrends(t) {
      if (t) render(badges, trendsBlock(t, Boolean(op()?.stale || op()?.hung)));
    },
    analyse,
    analyseIfNew(t) {
      if (JSON.stringify(t) !== analysedTrends) analyse();
    },
    cancel: () => analyse.cancel(),
  };
}
