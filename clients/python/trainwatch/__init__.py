"""Trainwatch's Python client: report a training's epochs or steps to a Trainwatch server and hear its word to stop.

    import trainwatch
    run = trainwatch.init(name="resnet18", config={"lr": 0.1}, total_epochs=50, stop_policy={"on": ["diverging"]})
    for epoch in range(50):
        run.log(epoch=epoch, train_loss=..., val_loss=..., learning_rate=...)
        if run.should_stop:  # cancelled, or the stop policy fired: run.control says why
            break
    run.finish()

Steps, in the habit of `wandb.log`: `run.log({"loss": l, "lr": lr}, step=i)` (batched: a post every 0.5 s or 1,000 rows).

Framework adapters: trainwatch.keras, trainwatch.lightning, trainwatch.hf (each imports its framework only when used).
Reading runs back in a notebook: `trainwatch.Api().runs(q='group = "sweep-7"')` (pandas DataFrames; pandas only then).
Optuna: `trainwatch.optuna.TrainwatchPruner(group="sweep-7")` prunes trials on Trainwatch's judgement.
Standard library only.
"""

from .api import Api
from .client import DEFAULT_URL, Run, TrainwatchError, TrainwatchWarning, init

__version__ = "0.1.0"
__all__ = ["init", "Api", "Run", "TrainwatchError", "TrainwatchWarning", "DEFAULT_URL", "__version__"]
