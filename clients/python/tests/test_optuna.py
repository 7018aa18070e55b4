"""trainwatch.optuna.TrainwatchPruner against a real server: each trial a run in the group, pruned on the judgement
(stalled; diverging when asked, or with no finite value) with the reason recorded, diverging and overfitting stopping a
trial at its best, a wrapped pruner, a cancel from
the dashboard, and every run finished with its trial's outcome."""

from __future__ import annotations

import math
import uuid

import pytest

from conftest import require

optuna = require("optuna")
from trainwatch.optuna import TrainwatchPruner  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Scripted curves (train_loss, val_loss) per epoch, by kind.
CURVES = {
    "healthy": lambda e: (1.0 / (e + 1), 1.1 / (e + 1) + 0.05),
    "nan": lambda e: (float("nan"), float("nan")) if e >= 3 else (1.0 / (e + 1), 1.1 / (e + 1)),
    "overfit": lambda e: (1.0 / (e + 1), 0.3 + 0.1 * abs(e - 5)),  # validation best at epoch 5, then climbing
    "stall": lambda e: (1.0 + 0.001 * (-1) ** e, 1.0 + 0.001 * (-1) ** e),
}


def study_of(pruner, kinds, epochs=25, log_run=True):
    """One trial per kind, in order; the objective logs both losses to the trial's run and reports val_loss."""
    study = optuna.create_study(pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    queue = list(kinds)

    def objective(trial):
        kind = queue[trial.number]
        trial.suggest_int("i", trial.number, trial.number)  # a config of one parameter: the trial's index
        run = pruner.run(trial) if log_run else None
        best = math.inf
        for e in range(epochs):
            tl, vl = CURVES[kind](e)
            if run is not None:
                run.log(epoch=e, train_loss=tl, val_loss=vl)
            if math.isfinite(vl):
                best = min(best, vl)
            trial.report(vl, e)
            if trial.should_prune():
                raise optuna.TrialPruned()
            if run is not None and run.should_stop:
                break
        return best

    study.optimize(objective, n_trials=len(kinds), callbacks=[pruner])
    return study


def group_name() -> str:
    return f"optuna-{uuid.uuid4().hex[:8]}"


def test_a_diverging_trial_stops_at_its_best_and_completes_with_it_by_default(server):
    study = study_of(TrainwatchPruner(group=group_name()), ["nan"])
    t = study.trials[0]
    # The NaN at epoch 3 is the flag; the best before it (epoch 2) is the trial's value, not thrown away by a pruning.
    assert t.state == optuna.trial.TrialState.COMPLETE and t.last_step == 3 and t.value == pytest.approx(1.1 / 3)
    assert t.user_attrs["trainwatch_stopped"] is True and t.user_attrs["trainwatch_flags"] == ["diverging"]
    op = server.operation(t.user_attrs["trainwatch_run"])
    assert op["status"] == "completed" and op["result"]["stopped_early"] is True


def test_a_diverging_trial_with_no_finite_value_has_no_best_and_is_pruned(server):
    curves = dict(CURVES)
    CURVES["nan0"] = lambda e: (float("nan"), float("nan"))
    try:
        study = study_of(TrainwatchPruner(group=group_name()), ["nan0"])
    finally:
        CURVES.clear()
        CURVES.update(curves)
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED and t.last_step == 0 and t.user_attrs["trainwatch_flags"] == ["diverging"]


def test_a_diverging_trial_is_pruned_with_the_judgements_reason_when_asked(server):
    g = group_name()
    pruner = TrainwatchPruner(group=g, on=("diverging", "stalled"), stop_on=("overfitting",))
    study = study_of(pruner, ["nan", "healthy"])
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED and t.last_step == 3  # pruned at the NaN epoch
    assert t.user_attrs["trainwatch_pruned_by"] == "trainwatch" and t.user_attrs["trainwatch_flags"] == ["diverging"]
    assert "NaN" in t.user_attrs["trainwatch_reason"]
    op = server.operation(t.user_attrs["trainwatch_run"])
    assert op["name"] == "trial-0" and op["group"] == g and op["status"] == "cancelled"
    assert op["result"]["pruned"] is True and op["result"]["flags"] == ["diverging"] and op["control"]["decided_by"] == "stop_policy"
    healthy = study.trials[1]
    assert healthy.state == optuna.trial.TrialState.COMPLETE and healthy.last_step == 24
    op = server.operation(healthy.user_attrs["trainwatch_run"])
    assert op["status"] == "completed" and op["result"]["value"] == pytest.approx(healthy.value) and op["config"] == {"i": 1}


def test_a_stalled_trial_is_pruned(server):
    study = study_of(TrainwatchPruner(group=group_name()), ["stall"])
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED and "stalled" in t.user_attrs["trainwatch_flags"]


def test_an_overfitting_trial_stops_at_its_best_and_completes_with_it(server):
    study = study_of(TrainwatchPruner(group=group_name()), ["overfit"])
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.COMPLETE and t.value == pytest.approx(0.3)
    assert t.last_step < 24 and t.user_attrs["trainwatch_stopped"] is True and t.user_attrs["trainwatch_flags"][0] == "overfitting"
    op = server.operation(t.user_attrs["trainwatch_run"])
    assert op["status"] == "completed" and op["result"]["stopped_early"] is True and op["result"]["value"] == pytest.approx(0.3)


def test_overfitting_can_prune_instead(server):
    study = study_of(TrainwatchPruner(group=group_name(), on=("diverging", "overfitting"), stop_on=()), ["overfit"])
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED


def test_an_objective_that_only_reports_is_judged_on_the_values_logged_for_it(server):
    # It never asked for its run, so it cannot stop at its best: the diverging trial is pruned.
    study = study_of(TrainwatchPruner(group=group_name()), ["nan"], log_run=False)
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED and t.last_step == 3
    epochs = server.epochs(t.user_attrs["trainwatch_run"])
    assert [e["epoch"] for e in epochs] == [0, 1, 2, 3] and epochs[3]["val_loss"] == "NaN"


def test_the_wrapped_pruner_prunes_too_and_says_so(server):
    pruner = TrainwatchPruner(group=group_name(), wrapped=optuna.pruners.ThresholdPruner(upper=0.9, n_warmup_steps=2))
    study = study_of(pruner, ["healthy", "stall"])
    t = study.trials[1]
    assert t.state == optuna.trial.TrialState.PRUNED and t.last_step == 2
    assert t.user_attrs["trainwatch_pruned_by"] == "ThresholdPruner" and "ThresholdPruner" in t.user_attrs["trainwatch_reason"]
    assert server.operation(t.user_attrs["trainwatch_run"])["result"]["pruned_by"] == "ThresholdPruner"


def test_a_trial_cancelled_from_the_dashboard_is_pruned(server):
    pruner = TrainwatchPruner(group=group_name())
    study = optuna.create_study(pruner=pruner)

    def objective(trial):
        run = pruner.run(trial)
        for e in range(50):
            run.log(epoch=e, train_loss=1.0 / (e + 1), val_loss=1.0 / (e + 1))
            if e == 2:
                assert server.call("DELETE", f"/operations/{run.operation_id}", {"reason": "enough", "by": "dashboard"})["status"] == 200
            trial.report(1.0 / (e + 1), e)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 0.0

    study.optimize(objective, n_trials=1, callbacks=[pruner])
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED and t.last_step <= 3
    assert "cancelled by dashboard: enough" in t.user_attrs["trainwatch_reason"]


def test_a_failed_trial_fails_its_run(server):
    pruner = TrainwatchPruner(group=group_name())
    study = optuna.create_study(pruner=pruner)

    def objective(trial):
        pruner.run(trial).log(epoch=0, train_loss=1.0)
        raise RuntimeError("out of memory")

    study.optimize(objective, n_trials=1, callbacks=[pruner], catch=(RuntimeError,))
    op = server.operation(study.trials[0].user_attrs["trainwatch_run"])
    assert op["status"] == "failed" and op["failure_code"] == "trainer_error" and "trial 0 failed" in op["error_message"]
