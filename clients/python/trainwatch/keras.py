"""Keras 3: `model.fit(..., callbacks=[TrainwatchCallback(name="mnist")])`.

Logs every epoch's `logs` (loss / val_loss / accuracy / val_accuracy under the API's names, other metrics as
custom ones), the learning rate in effect at the epoch's first step (a LearningRateScheduler or a schedule object
included) and the epoch's duration. When the server says stop (a cancel, the stop policy) it sets
`model.stop_training`, which Keras checks after every batch, so the training ends within the batch it is in.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Optional

import keras

from ._adapt import number, row_from
from .client import Run, init

__all__ = ["TrainwatchCallback"]


def _learning_rate(optimizer: Any) -> Optional[float]:
    if optimizer is None:
        return None
    try:
        return number(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except Exception:  # an optimizer without a readable rate is still a training
        return None


def _optimizer_config(model: Any) -> Mapping[str, Any]:
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return {}
    try:
        cfg = {k: v for k, v in opt.get_config().items() if isinstance(v, (int, float, str, bool)) or v is None}
    except Exception:
        cfg = {}
    return {"optimizer": type(opt).__name__, **{f"optimizer.{k}": v for k, v in cfg.items() if k != "name"}}


class TrainwatchCallback(keras.callbacks.Callback):
    """Reports a Keras fit to Trainwatch. `name`, `config`, `stop_policy` and any other keyword go to
    `trainwatch.init()` (config defaults to the optimizer's settings); or pass `run=` to use a run you made."""

    def __init__(self, name: Optional[str] = None, config: Optional[Mapping[str, Any]] = None, stop_policy: Any = None, run: Optional[Run] = None, **init_kwargs: Any) -> None:
        super().__init__()
        self.run = run
        self._owns_run = run is None
        #: The last run's, kept after the run is finished.
        self.last_run: Optional[Run] = run
        self._init = dict(name=name, config=config, stop_policy=stop_policy, **init_kwargs)
        self._t0 = 0.0
        self._lr: Optional[float] = None

    def on_train_begin(self, logs=None):
        if self.run is None:
            kw = dict(self._init)
            if kw.get("config") is None:
                kw["config"] = _optimizer_config(self.model)
            self.run = self.last_run = init(total_epochs=self.params.get("epochs") if self.params else None, **kw)

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._lr = None

    def on_train_batch_begin(self, batch, logs=None):
        if self._lr is None:  # after every on_epoch_begin ran (a LearningRateScheduler's included)
            self._lr = _learning_rate(self.model.optimizer)

    def on_train_batch_end(self, batch, logs=None):
        if self.run.should_stop:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        row = row_from(logs)
        row.setdefault("learning_rate", self._lr if self._lr is not None else _learning_rate(self.model.optimizer))
        row["duration"] = time.perf_counter() - self._t0
        self.run.log(epoch=epoch, **row)
        if self.run.should_stop:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self._owns_run and self.run is not None:
            self.run.finish("completed")
            self.run = None  # a second fit with this callback is a new operation
