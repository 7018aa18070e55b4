"""PyTorch Lightning 2.x: `Trainer(logger=TrainwatchLogger(name="mnist"), callbacks=[TrainwatchCallback()])`.

The logger owns the run: `log_hyperparams` becomes the operation's config, `log_metrics` gathers what the module
logs by epoch (`x_epoch` as `x`; `x_step` left out: an epoch row holds epoch values), `finalize` finishes the run
(`failed` with the exception's text when the fit raised). The callback completes each epoch's row the moment the
epoch ends (after validation): the learning rate in effect at the epoch's first step, the epoch's duration and the
epoch-level values of `trainer.callback_metrics`; and it sets `trainer.should_stop` once the server says stop, which
Lightning checks after every batch. The logger alone works too; the callback alone needs the logger.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict, Mapping, Optional

try:
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import Logger
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:  # the older distribution name
    from pytorch_lightning.callbacks import Callback  # type: ignore[no-redef]
    from pytorch_lightning.loggers import Logger  # type: ignore[no-redef]
    from pytorch_lightning.utilities import rank_zero_only  # type: ignore[no-redef]

from ._adapt import number, row_from
from .client import Run, _exception_text, init

__all__ = ["TrainwatchLogger", "TrainwatchCallback"]


def _row(metrics: Mapping[str, Any]) -> Dict[str, float]:
    picked = {}
    for key, v in metrics.items():
        if key in ("epoch", "step") or key.endswith("_step"):
            continue
        picked[key[: -len("_epoch")] if key.endswith("_epoch") else key] = v
    return row_from(picked)


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
        self._rows: Dict[int, Dict[str, float]] = {}
        self._sent: Dict[int, Dict[str, float]] = {}
        self._open: Optional[int] = None
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
            self._run = init(name=self._name, config=self._config or None, total_epochs=self.total_epochs, stop_policy=self._stop_policy, **self._init_kwargs)
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
        epoch = number(metrics.get("epoch"))
        e = int(epoch) if epoch is not None else (self._open or 0)
        if self._open is not None and e > self._open:
            self._flush(self._open)
        if self._open is None or e >= self._open:
            self._open = e
        self._rows.setdefault(e, {}).update(_row(metrics))
        if e in self._sent:
            self._flush(e)  # the callback sent this epoch already: re-sent (replacing it) only if something is new

    def commit_epoch(self, epoch: int, row: Mapping[str, float]) -> None:
        """The callback's end-of-epoch row: merged with what was logged, sent now."""
        if self._finalized:
            return
        self._rows.setdefault(epoch, {}).update(row)
        self._open = max(self._open or 0, epoch)
        self._flush(epoch)

    def _flush(self, epoch: int) -> None:
        row = self._rows.get(epoch)
        if not row or self._sent.get(epoch) == row:
            return
        self.run.log(epoch=epoch, **row)
        self._sent[epoch] = dict(row)
        for old in [k for k in self._rows if k < epoch - 1]:  # an epoch's late values come within the next one
            self._rows.pop(old, None)
            self._sent.pop(old, None)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._finalized or self._run is None:
            return
        if self._open is not None:
            self._flush(self._open)
        if status == "finished":  # a requeue signal (SLURM): the job goes on elsewhere, so flush but do not end it
            return
        self._finalized = True
        if not self._owns_run:
            return
        if status == "success":
            self._run.finish("completed")
        else:
            exc = self._exception
            self._run.finish("failed", error=_exception_text(type(exc), exc, exc.__traceback__) if exc else f"Lightning finalize({status!r})")


class _LazyRun:
    def __init__(self, logger: TrainwatchLogger) -> None:
        self._logger = logger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger.run, name)

    def __repr__(self) -> str:
        return repr(self._logger._run) if self._logger._run else "<trainwatch.Run (registered on first use)>"


class TrainwatchCallback(Callback):
    """Completes each epoch's row the moment it ends and stops the fit when the server says stop."""

    def __init__(self) -> None:
        super().__init__()
        self._logger: Optional[TrainwatchLogger] = None
        self._t0 = 0.0
        self._lr: Optional[float] = None

    def _find(self, trainer: Any) -> TrainwatchLogger:
        for lg in trainer.loggers:
            if isinstance(lg, TrainwatchLogger):
                return lg
        raise RuntimeError("trainwatch: TrainwatchCallback needs a TrainwatchLogger: Trainer(logger=TrainwatchLogger(...), callbacks=[TrainwatchCallback()])")

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._logger = self._find(trainer)
        if trainer.max_epochs and trainer.max_epochs > 0:
            self._logger.total_epochs = trainer.max_epochs
        self._logger.run  # registered now, with the hyper-parameters Lightning logged at fit start

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._t0 = time.perf_counter()
        self._lr = None

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._lr is None and trainer.optimizers:
            self._lr = number(trainer.optimizers[0].param_groups[0].get("lr"))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._logger is not None and self._logger.run.should_stop:
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        lg = self._logger
        if lg is None:
            return
        row = _row(trainer.callback_metrics)
        if self._lr is not None:
            row["learning_rate"] = self._lr
        row["duration"] = time.perf_counter() - self._t0
        lg.commit_epoch(trainer.current_epoch, row)
        if lg.run.should_stop:
            trainer.should_stop = True

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        lg = self._logger or next((x for x in trainer.loggers if isinstance(x, TrainwatchLogger)), None)
        if lg is not None:
            lg._exception = exception
