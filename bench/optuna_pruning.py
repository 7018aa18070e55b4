#!/usr/bin/env python3
"""Pruning a real Optuna study with Trainwatch's judgement, against no pruning and Optuna's MedianPruner.

    python bench/optuna_pruning.py [--seeds 3] [--first-seed 3] [--trials 40] [--epochs 30]   # needs optuna, torch, node_modules

The study is examples/optuna_study.py's: 40 trials of a small PyTorch MLP (CPU, one thread) on a synthetic
regression of 256 training rows, over learning rate (SGD, 1e-4 … 1: the top diverges, the bottom stalls), width
(16 … 512), dropout (0 … 0.5) and weight decay (1e-6 … 0.1: a wide net with little of either overfits), 30 epochs,
the objective the best validation loss. Six arms, each over the same seeds:

- none: every trial trains its 30 epochs (a NaN loss ends a trial: any loop would stop there);
- median: Optuna's MedianPruner() with its defaults;
- trainwatch: TrainwatchPruner() alone, its defaults: stalled prunes; diverging and overfitting stop the trial at its
  best (the objective reads `run.should_stop`, ends and returns its best validation loss, which a pruned trial loses);
- trainwatch+median: TrainwatchPruner(wrapped=MedianPruner());
- trainwatch-prune, trainwatch-prune+median: the same with a diverging trial pruned (on=("diverging", "stalled"),
  stop_on=("overfitting",)), the pruner's first defaults.

The defaults were chosen on seeds 0–2 (where pruning diverging trials lost the best configuration once); report on
others with --first-seed (docs/benchmarks.md reports seeds 3–5).

Every arm samples with RandomSampler(seed), so for one seed all four see the same 40 configurations, each trained
deterministically (its torch seed from the seed and the trial number): they differ only in what was pruned when. The
bench starts its own Trainwatch server on loopback (SQLite in a temporary folder); every arm's trials are runs in a
group of their own (bench-<arm>-s<seed>). It prints, per arm, the trials pruned, the compute spent (epochs trained)
and the best validation loss found (the study's best, over completed trials), as means over the seeds and per seed,
then the goal: a Trainwatch arm spends less compute than the median arm for the same best value (within 1 %), or
finds a better best value for no more compute (within 5 %): met or missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clients", "python", "tests"))  # server.py: the tests' server process
sys.path.insert(0, os.path.join(HERE, "..", "examples"))  # optuna_study.py: the study (it puts this client first)

import optuna_study as study_mod  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
from trainwatch.optuna import TrainwatchPruner  # noqa: E402

from server import Server  # noqa: E402

ARMS = ("none", "median", "trainwatch", "trainwatch+median", "trainwatch-prune", "trainwatch-prune+median")
#: The -prune arms prune a diverging trial (the pruner's first default, before seeds 0–2 showed it losing bests)
#: instead of stopping it at its best (the default: on=("stalled",), stop_on=("diverging", "overfitting")).
PRUNE = {"on": ("diverging", "stalled"), "stop_on": ("overfitting",)}
SAME_BEST = 0.01  # "the same best value": within 1 %
SAME_COMPUTE = 0.05  # "the same compute": within 5 %


def pruner_of(arm: str, url: str, group: str, epochs: int):
    if arm == "none":
        return optuna.pruners.NopPruner(), None
    if arm == "median":
        return optuna.pruners.MedianPruner(), None
    wrapped = optuna.pruners.MedianPruner() if arm.endswith("+median") else None
    flags = PRUNE if "-prune" in arm else {}
    tw = TrainwatchPruner(url=url, group=group, wrapped=wrapped, total_epochs=epochs, tags=["bench"], **flags)
    return tw, tw


def run_arm(arm: str, seed: int, url: str, trials: int, epochs: int) -> dict:
    group = f"bench-{arm}-s{seed}"
    pruner, tw = pruner_of(arm, url, group, epochs)
    study = optuna.create_study(study_name=group, pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=seed))
    data = study_mod.make_data(seed)
    t0 = time.perf_counter()
    study.optimize(lambda t: study_mod.objective(t, tw, data, seed, epochs), n_trials=trials, callbacks=[tw] if tw else [])
    wall = time.perf_counter() - t0
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    by = {}
    for t in study.trials:
        if t.state == optuna.trial.TrialState.PRUNED:
            k = t.user_attrs.get("trainwatch_pruned_by", "MedianPruner")
            flags = t.user_attrs.get("trainwatch_flags") or []
            key = f"pruned {k}:{'/'.join(flags)}" if flags else f"pruned {k}"
            by[key] = by.get(key, 0) + 1
        elif t.user_attrs.get("trainwatch_stopped"):
            key = "stopped:" + "/".join(t.user_attrs.get("trainwatch_flags") or [])
            by[key] = by.get(key, 0) + 1
    return {
        "arm": arm,
        "seed": seed,
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        "epochs": sum(t.user_attrs.get("epochs", 0) for t in study.trials),
        "best": min(t.value for t in done) if done else float("nan"),
        "wall": wall,
        "by": by,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=3, help="the first seed (0–2 chose the defaults: report on others)")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=study_mod.EPOCHS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import logging

    logging.getLogger("trainwatch").setLevel(logging.ERROR)  # each judgement stop is logged; the table says it
    server = Server().start()
    t0 = time.perf_counter()
    try:
        results = [run_arm(arm, seed, server.url, args.trials, args.epochs) for seed in range(args.first_seed, args.first_seed + args.seeds) for arm in ARMS]
    finally:
        server.close()
    print(f"\n{args.trials} trials × {args.epochs} epochs, seeds {args.first_seed}…{args.first_seed + args.seeds - 1}, torch {torch.__version__} (1 thread), optuna {optuna.__version__}, {time.perf_counter() - t0:.0f} s in all\n")
    mean = {}
    print("| arm | trials pruned | epochs trained | best val_loss | per seed: pruned / epochs / best | wall s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for arm in ARMS:
        rs = [r for r in results if r["arm"] == arm]
        m = {k: statistics.mean(r[k] for r in rs) for k in ("pruned", "epochs", "best", "wall")}
        mean[arm] = m
        per = "; ".join(f"{r['pruned']} / {r['epochs']} / {r['best']:.4f}" for r in rs)
        print(f"| {arm} | {m['pruned']:.1f} | {m['epochs']:.0f} | {m['best']:.4f} | {per} | {m['wall']:.1f} |")
    print("\nwhat pruned or stopped a trial early (all seeds):")
    for arm in ARMS[1:]:
        total = {}
        for r in results:
            if r["arm"] == arm:
                for k, v in r["by"].items():
                    total[k] = total.get(k, 0) + v
        print(f"  {arm}: " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
    med = mean["median"]
    print(f"\ngoal: less compute than MedianPruner for the same best value (within {SAME_BEST:.0%}), or a better best value for the same compute (within {SAME_COMPUTE:.0%})")
    for arm in ARMS[2:]:
        m = mean[arm]
        less = m["epochs"] < med["epochs"] and m["best"] <= med["best"] * (1 + SAME_BEST)
        better = m["best"] < med["best"] and m["epochs"] <= med["epochs"] * (1 + SAME_COMPUTE)
        verdict = "MET" if less or better else "MISSED"
        print(f"  {arm}: {m['epochs']:.0f} epochs vs {med['epochs']:.0f} ({m['epochs'] / med['epochs'] - 1:+.1%}), best {m['best']:.4f} vs {med['best']:.4f} ({m['best'] / med['best'] - 1:+.2%}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
