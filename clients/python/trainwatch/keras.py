"""Keras 3: `model.fit(..., callbacks=[TrainwatchCallback(name="mnist")])`.

Reports steps: every batch is a step row (`on_train_batch_end`), numbered over the whole fit from 0 (as the API
counts steps: its progress is the highest step + 1), with the batch's `logs` under the API's names (`loss` as train_loss, `accuracy` and other metrics as
custom ones; Keras's batch logs are the epoch's running means, as its own TensorBoard callback records them) and the
epoch it ran in. The learning rate is read at each epoch's first batch (reading a schedule costs Keras most of a
millisecond, too much for every batch). The validation Keras runs at an epoch's end lands on that epoch's last step
(`val_loss`, `val_accuracy`; any other `val_x` as the evaluation `eval/x`); the server derives the per-epoch records
from the steps. When the server says stop (a cancel, the stop policy) it sets `model.stop_training`, which Keras
checks after every batch, so the training ends within the batch it is in.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import keras

from ._adapt import eval_name, number, row_from
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
        self._step = -1
        self._epoch = 0
        self._lr: Optional[float] = None
        self._lr_pending = False

    def on_train_begin(self, logs=None):
        if self.run is None:
            kw = dict(self._init)
            if kw.get("config") is None:
                kw["config"] = _optimizer_config(self.model)
            params = self.params or {}
            epochs, steps = params.get("epochs"), params.get("steps")
            self.run = self.last_run = init(total_epochs=epochs, total_steps=epochs * steps if epochs and steps else None, **kw)
        self._step = -1

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._lr = None

    def on_train_batch_begin(self, batch, logs=None):
        if self._lr is None:  # after every on_epoch_begin ran (a LearningRateScheduler's included)
            self._lr = _learning_rate(self.model.optimizer)
            self._lr_pending = self._lr is not None

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        row = row_from(logs)
        if self._lr_pending:
            row["learning_rate"] = self._lr
            self._lr_pending = False
        self.run.log(step=self._step, epoch=self._epoch, **row)
        if self.run.should_stop:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        row = {}
        for key, v in (logs or {}).items():
            if key.startswith("val_"):
                f = number(v)
                name = eval_name(key[4:])
                if f is not None and name is not None:
                    row[name] = f
        if row and self._step >= 0:
            self.run.log(step=self._step, epoch=epoch, **row)  # added to the epoch's last step
        if self.run.should_stop:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self._owns_run and self.run is not None:
            self.run.finish("completed")
            self.run = None  # a second fit with this callback is a new operation
