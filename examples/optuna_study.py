#!/usr/bin/env python3
"""An Optuna study pruned by Trainwatch's judgement: a small PyTorch MLP on a synthetic regression, over learning
rate, width, dropout and weight decay, every trial a Trainwatch run in one group.

    npm start &                                          # a Trainwatch server (or TRAINWATCH_URL pointing at one)
    python3 examples/optuna_study.py --trials 20         # prints the group; find its runs on the dashboard with
                                                         #   group = "<that name>" in the search box
    python3 examples/optuna_study.py --trials 20 --median # the judgement and Optuna's MedianPruner together

Some configurations are bad on purpose: a high learning rate diverges (NaN or an exploding loss), a very low one
stalls, and a wide net without dropout or weight decay overfits the 256 training rows. Each trial logs its training
and validation loss to its run every epoch (so the server can tell overfitting from noise) and reports the validation
loss to Optuna; the pruner prunes the ones the judgement calls stalled, stops those diverging or overfitting at their
best, and records why in the trial's user attrs and the run's result. `bench/optuna_pruning.py` runs this study against no pruning and
Optuna's MedianPruner (docs/benchmarks.md); `examples/notebooks/sweep_comparison.ipynb` reads the group back.

The model, the data and the objective are here, for the bench and the notebook's CI test to share.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any, Dict, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))  # this checkout's client before an installed one

import optuna  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import trainwatch  # noqa: E402
from trainwatch.optuna import TrainwatchPruner  # noqa: E402

EPOCHS = 30
N_TRAIN = 256
N_VAL = 512
FEATURES = 16
BATCH = 64


def make_data(seed: int) -> Dict[str, torch.Tensor]:
    """A smooth nonlinear target of 16 features plus noise: little training data, a larger validation set."""
    g = torch.Generator().manual_seed(seed)
    n = N_TRAIN + N_VAL
    x = torch.randn(n, FEATURES, generator=g)
    w = torch.randn(FEATURES, 4, generator=g) / math.sqrt(FEATURES)
    h = x @ w
    y = torch.sin(2 * h[:, 0]) + h[:, 1] * h[:, 2] + 0.5 * torch.tanh(h[:, 3]) + 0.3 * torch.randn(n, generator=g)
    y = y.unsqueeze(1)
    return {"x_train": x[:N_TRAIN], "y_train": y[:N_TRAIN], "x_val": x[N_TRAIN:], "y_val": y[N_TRAIN:]}


def suggest(trial: optuna.trial.Trial) -> Dict[str, Any]:
    """The search space: learning rate (SGD with momentum), width, dropout and weight decay."""
    return {
        "lr": trial.suggest_float("lr", 1e-4, 1.0, log=True),
        "width": trial.suggest_int("width", 16, 512, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
    }


def model_of(p: Dict[str, Any]) -> nn.Module:
    w = int(p["width"])
    return nn.Sequential(nn.Linear(FEATURES, w), nn.ReLU(), nn.Dropout(p["dropout"]), nn.Linear(w, w), nn.ReLU(), nn.Dropout(p["dropout"]), nn.Linear(w, 1))


def objective(trial: optuna.trial.Trial, pruner: Optional[TrainwatchPruner], data: Dict[str, torch.Tensor], seed: int, epochs: int = EPOCHS) -> float:
    """Trains one configuration for up to `epochs` epochs; returns its best validation loss (the checkpoint one keeps).

    With a TrainwatchPruner the trial's run gets train_loss and val_loss each epoch; either way trial.report(val_loss)
    feeds Optuna's pruner, and `trial.user_attrs["epochs"]` counts the epochs trained (the compute spent). A
    diverged epoch (NaN or ±inf) is reported as it is."""
    p = suggest(trial)
    torch.manual_seed(seed * 1000 + trial.number)
    model = model_of(p)
    opt = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=0.9, weight_decay=p["weight_decay"])
    loss_fn = nn.MSELoss()
    run = pruner.run(trial) if pruner is not None else None
    x, y = data["x_train"], data["y_train"]
    order = torch.Generator().manual_seed(seed * 1000 + trial.number)
    best = math.inf
    for epoch in range(epochs):
        model.train()
        total = 0.0
        perm = torch.randperm(len(x), generator=order)
        for i in range(0, len(x), BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_loss = total / len(x)
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(data["x_val"]), data["y_val"]).item()
        trial.set_user_attr("epochs", epoch + 1)
        if math.isfinite(val_loss):
            best = min(best, val_loss)
        if run is not None:
            run.log(epoch=epoch, train_loss=train_loss, val_loss=val_loss)
        trial.report(val_loss, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
        if run is not None and run.should_stop:  # judged diverging or overfitting past its best: its best is the result
            break
        if not math.isfinite(train_loss):  # nothing more to learn from a NaN network: a trial without a pruner ends too
            break
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--group", default=None, help="the runs' group (default optuna-<time>)")
    ap.add_argument("--median", action="store_true", help="wrap Optuna's MedianPruner as well")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--url", default=None, help="the server (default TRAINWATCH_URL, else http://127.0.0.1:8000)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    group = args.group or time.strftime("optuna-%Y%m%d-%H%M%S")
    pruner = TrainwatchPruner(url=args.url, group=group, wrapped=optuna.pruners.MedianPruner() if args.median else None, total_epochs=args.epochs, tags=["optuna", "example"])
    study = optuna.create_study(study_name=group, pruner=pruner, sampler=optuna.samplers.TPESampler(seed=args.seed))
    data = make_data(args.seed)
    print(f"group: {group}  (dashboard search: group = \"{group}\")")
    study.optimize(lambda t: objective(t, pruner, data, args.seed, args.epochs), n_trials=args.trials, callbacks=[pruner])
    epochs = sum(t.user_attrs.get("epochs", 0) for t in study.trials)
    for t in study.trials:
        why = t.user_attrs.get("trainwatch_reason", "")
        value = f"{t.value:.4f}" if t.state == optuna.trial.TrialState.COMPLETE else "-"
        by = t.user_attrs.get("trainwatch_pruned_by") or ("stopped by trainwatch" if t.user_attrs.get("trainwatch_stopped") else "")
        print(f"trial {t.number:3d} {t.state.name:9s} epochs {t.user_attrs.get('epochs', 0):3d} value {value:>8s}  {by}{': ' if by else ''}{why[:100]}")
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    print(f"best val_loss {study.best_value:.4f} (trial {study.best_trial.number}, {study.best_params}); {pruned} of {len(study.trials)} trials pruned; {epochs} epochs trained")
    print(f"read it back: trainwatch.Api({pruner.url or os.environ.get('TRAINWATCH_URL') or trainwatch.DEFAULT_URL!r}).runs(q='group = \"{group}\"')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
