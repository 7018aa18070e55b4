"""Optuna pruning with Trainwatch's judgement: every trial is a Trainwatch run in the sweep's group, and a trial is
pruned when the server's judgement of its curves says it never learned (stalled), stopped at its best when it says the
best is behind it (diverging, overfitting: the trial completes with that best), or pruned when a wrapped Optuna pruner
(median, successive halving) says so.

    pruner = TrainwatchPruner(group="sweep-7", wrapped=optuna.pruners.MedianPruner())
    study = optuna.create_study(pruner=pruner)

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1, log=True)
        run = pruner.run(trial)                    # the trial's run: name trial-<n>, config = trial.params
        for epoch in range(30):
            train_loss, val_loss = train_one_epoch(), evaluate()
            run.log(epoch=epoch, train_loss=train_loss, val_loss=val_loss)   # both: overfitting is then detectable
            trial.report(val_loss, epoch)         # Optuna's value; the pruner decides on it
            if trial.should_prune():
                raise optuna.TrialPruned()
            if run.should_stop:                   # diverging or overfitting past its best: complete with the best
                break
        return best_val_loss

    study.optimize(objective, n_trials=40, callbacks=[pruner])   # the callback finishes each run with its outcome

How it decides. The run is registered with a stop policy on the pruner's flags, so the server judges every epoch as
it is written and records one stop decision (`control`, with the judgement's reason) when a flag is raised: the rule
and its thresholds are the server's (docs/judgement.md), the same for a sweep as for any run. `prune()` writes the
values Optuna has that the run lacks (an objective that only calls trial.report gets them logged as `val_loss`, or as
`objective` for a maximised study, which the loss rules do not read), waits for the server to acknowledge them
(`Run.flush`), and reads the decision. A flag of `on` (default stalled) prunes. A flag of `stop_on` (default
diverging, overfitting) does not: `run.should_stop` is set, the objective stops and returns its best value, and the
trial completes with it, since pruning would throw away the best epoch before the divergence or the overfitting
(Optuna counts no pruned trial's value); a trial whose objective never asked for its run cannot see that, and one
with no finite value yet has no best: both are pruned. A run
cancelled from the dashboard is pruned too.

Why is recorded where it is seen: the trial's user attrs (`trainwatch_pruned_by` or `trainwatch_stopped`,
`trainwatch_reason`, `trainwatch_flags`, `trainwatch_run`) and the run's result (`pruned`, `pruned_by` or
`stopped_early`, `reason`, `flags`); a pruned run is finished `cancelled` with its decision, a completed trial's run
`completed` with its value, a failed one `failed`.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence

import optuna

from . import client as _client
from .api import Api
from .client import Run

__all__ = ["TrainwatchPruner", "DEFAULT_FLAGS", "DEFAULT_STOP_FLAGS"]

#: The judgement's flags that prune a trial by default: a run that never learned.
DEFAULT_FLAGS = ("stalled",)
#: The flags that end a trial early by default, completed with its best value: a run diverging or overfitting past its
#: best has that best behind it, and pruning would throw it away (Optuna counts no pruned trial's value). A trial with
#: no finite value yet (a NaN at its first epoch) has nothing to keep and is pruned.
DEFAULT_STOP_FLAGS = ("diverging", "overfitting")


class TrainwatchPruner(optuna.pruners.BasePruner):
    """Prunes a trial when Trainwatch's judgement of its run says stop; optionally also when `wrapped` says so.

    `url` / `token` default as `trainwatch.init()`'s (TRAINWATCH_URL, TRAINWATCH_TOKEN). `group` names the sweep
    (default: the study's name); `tags` are added to every trial's run. `on` are the flags that prune (default
    stalled), `stop_on` those that stop a trial at its best (default diverging, overfitting; plateau is the fourth
    flag), `min_epochs` the first epoch they may act (default 0: a NaN at epoch 0 prunes at once; the rules themselves
    need a few epochs for the other flags). `total_epochs` is each
    run's plan, for its progress. `timeout` bounds each wait for the server (s, default 10): a server away does not
    stop the study, its trials are then judged by `wrapped` alone. `run_options` go to `trainwatch.init`.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        group: Optional[str] = None,
        token: Optional[str] = None,
        wrapped: Optional[optuna.pruners.BasePruner] = None,
        *,
        on: Sequence[str] = DEFAULT_FLAGS,
        stop_on: Sequence[str] = DEFAULT_STOP_FLAGS,
        min_epochs: int = 0,
        tags: Optional[Sequence[str]] = None,
        total_epochs: Optional[int] = None,
        timeout: float = 10.0,
        run_options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.url = url
        self.group = group
        self.token = token
        self.wrapped = wrapped
        self.prune_on = tuple(on)
        self.stop_on = tuple(f for f in stop_on if f not in self.prune_on)
        self.policy = _client._policy({"on": [*self.prune_on, *self.stop_on], "min_epochs": int(min_epochs)})
        self.tags = list(tags) if tags is not None else None
        self.total_epochs = total_epochs
        self.timeout = timeout
        self.run_options = dict(run_options or {})
        self._runs: Dict[int, Run] = {}
        self._live: Dict[int, optuna.trial.Trial] = {}
        self._decided: Dict[int, Dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TrainwatchPruner group={self.group!r} on={self.policy['on']} wrapped={type(self.wrapped).__name__ if self.wrapped else None}>"

    # --- the trial's run ------------------------------------------------------------------------------------------

    def run(self, trial: optuna.trial.Trial, config: Optional[Mapping[str, Any]] = None) -> Run:
        """The trial's Trainwatch run, registered on the first call (name `trial-<n>`, config `config` or the
        trial's params so far: call it after the trial's suggest_* calls), for the objective to log its epochs to
        (train_loss and val_loss: with both, overfitting is detectable). Runs of trials already finished are closed."""
        with self._lock:
            self._live[trial.number] = trial
            run = self._runs.get(trial.number)
        if run is None:
            self._close_finished(trial.study, trial.number)
            run = self._open(trial.study, trial.number, dict(config) if config is not None else dict(trial.params))
        return run

    def _open(self, study: optuna.study.Study, number: int, params: Dict[str, Any]) -> Run:
        group = self.group or study.study_name
        run = _client.init(
            name=f"trial-{number}",
            config=params,
            total_epochs=self.total_epochs,
            url=self.url,
            token=self.token,
            stop_policy=self.policy,
            group=group,
            tags=self.tags,
            metadata={"optuna": {"study": study.study_name, "trial": number}},
            **{"system_metrics": 0, **self.run_options},
        )
        with self._lock:
            self._runs.setdefault(number, run)
            run = self._runs[number]
        self._set_attr(study, number, None, "trainwatch_run", run.operation_id)
        return run

    # --- Optuna's side ----------------------------------------------------------------------------------------------

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        with self._lock:
            run = self._runs.get(trial.number)
            decided = self._decided.get(trial.number)
        if decided is not None:  # asked again after the decision: the same answer
            return decided.get("pruned", False)
        if run is None:
            run = self._open(study, trial.number, dict(trial.params))
        self._log_values(study, run, trial)
        run.flush(self.timeout)
        if run.should_stop:
            control = run.control or {}
            reason = str(control.get("reason") or "Trainwatch said stop")
            flags = self._flags(run)
            cancelled = control.get("decided_by") not in (None, "stop_policy")
            # An early stop needs an objective that reads run.should_stop: one that never asked for its run is pruned.
            kept = any(_is_finite(v) for v in trial.intermediate_values.values())
            if cancelled or not flags or any(f in self.prune_on for f in flags) or trial.number not in self._live or not kept:
                self._decide(study, trial, run, "trainwatch", reason, flags)
                return True
            self._stop(study, trial, reason, flags)
            return False
        if self.wrapped is not None and self.wrapped.prune(study, trial):
            name = type(self.wrapped).__name__
            value = trial.intermediate_values.get(step)
            self._decide(study, trial, run, name, f"{name} pruned it at step {step} (value {value:.6g}) against the other trials", [])
            return True
        return False

    def __call__(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> None:
        """A study callback (`study.optimize(..., callbacks=[pruner])`): finishes the trial's run with its outcome."""
        self._finish(trial)

    def close(self, study: optuna.study.Study) -> None:
        """Finishes the runs of the study's finished trials still open (what the callback does, for a study run
        without it)."""
        self._close_finished(study, None)

    # --- inside -----------------------------------------------------------------------------------------------------

    def _log_values(self, study: optuna.study.Study, run: Run, trial: optuna.trial.FrozenTrial) -> None:
        """The intermediate values the run has no epoch for yet (an objective that logs only through trial.report)."""
        last = run._last_epoch if run._last_epoch is not None else -1
        name = "objective" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "val_loss"
        for step in sorted(s for s in trial.intermediate_values if s > last):
            run.log(epoch=int(step), **{name: float(trial.intermediate_values[step])})

    def _flags(self, run: Run) -> List[str]:
        """The judgement's raised flags of the run, for the record (one read, when pruning)."""
        try:
            with Api(run.url, self.token, timeout=self.timeout) as api:
                flags = api.analysis(run.operation_id).get("flags") or {}
        except (ValueError, _client.TrainwatchError) as e:
            _client._logger.warning("trainwatch: reading the flags of %s failed: %s", run.operation_id, e)
            return []
        return [f for f in ("diverging", "overfitting", "stalled", "plateau") if flags.get(f)]

    def _decide(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, run: Run, by: str, reason: str, flags: List[str]) -> None:
        step = trial.last_step
        value = trial.intermediate_values.get(step)
        record = {
            "pruned": True,
            "pruned_by": by,
            "reason": reason,
            "flags": flags,
            "trial": trial.number,
            "epoch": step,
            "value": _finite(value),
        }
        with self._lock:
            self._decided[trial.number] = record
        for key, v in (("trainwatch_pruned_by", by), ("trainwatch_reason", reason), ("trainwatch_flags", flags)):
            self._set_attr(study, trial.number, trial, key, v)
        run.finish("cancelled", result=record, timeout=self.timeout)

    def _stop(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, reason: str, flags: List[str]) -> None:
        """A `stop_on` flag (overfitting past its best): not a pruning; the objective stops on run.should_stop and
        returns its best, and the trial completes with it."""
        record = {"stopped_early": True, "reason": reason, "flags": flags, "epoch": trial.last_step}
        with self._lock:
            self._decided[trial.number] = record
        for key, v in (("trainwatch_stopped", True), ("trainwatch_reason", reason), ("trainwatch_flags", flags)):
            self._set_attr(study, trial.number, trial, key, v)

    def _set_attr(self, study: optuna.study.Study, number: int, frozen: Optional[optuna.trial.FrozenTrial], key: str, value: Any) -> None:
        live = self._live.get(number)
        if live is not None:
            live.set_user_attr(key, value)
        elif frozen is not None:
            study._storage.set_trial_user_attr(frozen._trial_id, key, value)
        else:
            for t in study.get_trials(deepcopy=False):
                if t.number == number:
                    study._storage.set_trial_user_attr(t._trial_id, key, value)

    def _finish(self, trial: optuna.trial.FrozenTrial) -> None:
        with self._lock:
            run = self._runs.pop(trial.number, None)
            self._live.pop(trial.number, None)
            decided = self._decided.pop(trial.number, None)
        if run is None or (decided is not None and decided.get("pruned")):
            return
        state = trial.state
        if state == optuna.trial.TrialState.COMPLETE:
            run.finish("completed", result={"value": _finite(trial.value), "trial": trial.number, **(decided or {})}, timeout=self.timeout)
        elif state == optuna.trial.TrialState.PRUNED:
            run.finish("cancelled", result={"pruned": True, "pruned_by": "objective", "trial": trial.number}, timeout=self.timeout)
        elif state == optuna.trial.TrialState.FAIL:
            why = trial.system_attrs.get("fail_reason") or "the objective raised (Optuna's log has the exception)"
            run.finish("failed", error=f"trial {trial.number} failed: {why}", failure_code="trainer_error", timeout=self.timeout)

    def _close_finished(self, study: optuna.study.Study, current: Optional[int]) -> None:
        with self._lock:
            open_ = [n for n in self._runs if n != current]
        if not open_:
            return
        for t in study.get_trials(deepcopy=False):
            if t.number in open_ and t.state.is_finished():
                self._finish(t)


def _is_finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _finite(v: Any) -> Any:
    """A value for JSON: NaN and ±inf as the API's strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v
