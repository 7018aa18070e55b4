"""PyTorch Lightning 2.x: `Trainer(logger=TrainwatchLogger(name="mnist"), callbacks=[TrainwatchCallback()])`.

The logger owns the run and reports steps: `log_hyperparams` becomes the operation's config; every `log_metrics`
(each `log_every_n_steps`, each validation at `val_check_interval` or the epoch's end) is a step row on the step
Lightning gives (the optimizer step just taken, from 0, as its TensorBoard logger records it) with the epoch it ran
in: `x_step` values as `x`, `x_epoch` aggregates left out (the server derives each epoch's record from its steps),
`val_loss` / `val_acc` as the evaluation fields and any other `val_x` as the evaluation `eval/x`. `finalize`
finishes the run (`failed` with the exception's text when the fit raised). The callback adds the learning rate each
step used, sets the run's plan (`trainer.estimated_stepping_batches`) and sets `trainer.should_stop` once the server
says stop, which Lightning checks after every batch. The logger alone works too; the callback alone needs the logger.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Dict, Mapping, Optional

try:
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import Logger
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:  # the older distribution name
    from pytorch_lightning.callbacks import Callback  # type: ignore[no-redef]
    from pytorch_lightning.loggers import Logger  # type: ignore[no-redef]
    from pytorch_lightning.utilities import rank_zero_only  # type: ignore[no-redef]

from ._adapt import eval_name, number, row_from
from .client import Run, _failure_of, init

__all__ = ["TrainwatchLogger", "TrainwatchCallback"]


def _row(metrics: Mapping[str, Any]) -> Dict[str, float]:
    picked: Dict[str, Any] = {}
    for key, v in metrics.items():
        if key in ("epoch", "step") or key.endswith("_epoch"):
            continue
        name = key[: -len("_step")] if key.endswith("_step") else key
        picked[name] = v
    row = row_from({k: v for k, v in picked.items() if not k.startswith(("val_", "val/"))})
    for key, v in picked.items():
        if key.startswith(("val_", "val/")):
            f, name = number(v), eval_name(key[4:])
            if f is not None and name is not None:
                row[name] = f
    return row


class TrainwatchLogger(Logger):
    """A Lightning logger that reports to Trainwatch. `name`, `config`, `stop_policy` and any other keyword go to
    `trainwatch.init()` (config also takes what `log_hyperparams` gets); or pass `run=` to use a run you made."""

    def __init__(self, name: Optional[str] = None, config: Optional[Mapping[str, Any]] = None, stop_policy: Any = None, run: Optional[Run] = None, **init_kwargs: Any) -> None:
        super().__init__()
        self._name = name
        self._config: Dict[str, Any] = dict(config or {})
        self._stop_policy = stop_policy
        self._init_kwargs = init_kwargs
        self._run = run
        self._owns_run = run is None
        self._finalized = False
        self.total_epochs: Optional[int] = None
        self.total_steps: Optional[int] = None
        #: The learning rate of the step under way (the callback reads it from the optimizer).
        self.learning_rate: Optional[float] = None
        self._exception: Optional[BaseException] = None

    @property
    def name(self) -> str:
        return self._name or "trainwatch"

    @property
    def version(self) -> str:
        return (self._run.operation_id if self._run else None) or "unregistered"

    @property
    def run(self) -> Run:
        """The run, registered on first use with the hyper-parameters logged so far."""
        if self._run is None:
            self._run = init(name=self._name, config=self._config or None, total_epochs=self.total_epochs, total_steps=self.total_steps,
                             stop_policy=self._stop_policy, **self._init_kwargs)
        return self._run

    @property
    def experiment(self) -> Any:
        """The run, registered when first used: Lightning touches `experiment` at setup, before it logs the
        hyper-parameters, and registering then would lose them."""
        return _LazyRun(self)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(params, argparse.Namespace):
            params = vars(params)
        if self._run is None and isinstance(params, Mapping):
            self._config.update(params)  # after registration there is no route to change the config: kept as registered

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        if self._finalized:
            return  # a test/validate after fit: the operation is finished
        row = _row(metrics)
        if not row:
            return
        epoch = number(metrics.get("epoch"))
        if self.learning_rate is not None:
            row.setdefault("learning_rate", self.learning_rate)
        run = self.run
        run.log(step=step if step is not None else run.step + 1, epoch=int(epoch) if epoch is not None else None, **row)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._finalized or self._run is None:
            return
        if status == "finished":  # a requeue signal (SLURM): the job goes on elsewhere, so flush but do not end it
            return
        self._finalized = True
        if not self._owns_run:
            return
        if status == "success":
            self._run.finish("completed")
        else:
            exc = self._exception
            if exc is not None:
                code, text = _failure_of(type(exc), exc, exc.__traceback__)
                self._run.finish("failed", error=text, failure_code=code)
            else:
                self._run.finish("failed", error=f"Lightning finalize({status!r})")


class _LazyRun:
    def __init__(self, logger: TrainwatchLogger) -> None:
        self._logger = logger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger.run, name)

    def __repr__(self) -> str:
        return repr(self._logger._run) if self._logger._run else "<trainwatch.Run (registered on first use)>"


class TrainwatchCallback(Callback):
    """Adds the learning rate to each step, sets the plan, and stops the fit when the server says stop."""

    def __init__(self) -> None:
        super().__init__()
        self._logger: Optional[TrainwatchLogger] = None

    def _find(self, trainer: Any) -> TrainwatchLogger:
        for lg in trainer.loggers:
            if isinstance(lg, TrainwatchLogger):
                return lg
        raise RuntimeError("trainwatch: TrainwatchCallback needs a TrainwatchLogger: Trainer(logger=TrainwatchLogger(...), callbacks=[TrainwatchCallback()])")

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        lg = self._logger = self._find(trainer)
        if trainer.max_epochs and trainer.max_epochs > 0:
            lg.total_epochs = trainer.max_epochs
        steps = trainer.estimated_stepping_batches
        if isinstance(steps, int) or (isinstance(steps, float) and math.isfinite(steps)):
            lg.total_steps = int(steps) if steps >= 1 else None
        lg.run  # registered now, with the hyper-parameters Lightning logged at fit start

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._logger is not None and trainer.optimizers:
            self._logger.learning_rate = number(trainer.optimizers[0].param_groups[0].get("lr"))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._logger is not None and self._logger.run.should_stop:
            trainer.should_stop = True

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        lg = self._logger or next((x for x in trainer.loggers if isinstance(x, TrainwatchLogger)), None)
        if lg is not None:
            lg._exception = exception
