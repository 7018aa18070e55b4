"""Hugging Face Transformers: `Trainer(..., callbacks=[TrainwatchCallback(name="bert-sst2")])`.

One epoch row per epoch: the mean of the training `loss` values logged during it (exact with
`logging_strategy="epoch"`), the evaluation's `eval_*` values (`eval_loss` as val_loss, `eval_accuracy` as
val_accuracy; runtimes and throughputs left out), `grad_norm` and other numbers as custom metrics, the learning rate
in effect at the epoch's first step, and the epoch's duration. The row is sent once the epoch's evaluation is in (or
when the next epoch begins, without one). When the server says stop it sets `control.should_training_stop`, which
the Trainer checks after every step; the run is finished on `on_train_end`.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Mapping, Optional

from transformers import TrainerCallback

from ._adapt import number, row_from
from .client import Run, init

__all__ = ["TrainwatchCallback"]

_SKIP = {"epoch", "step", "loss", "learning_rate", "total_flos", "num_input_tokens_seen"}
_SPEED = ("_runtime", "_samples_per_second", "_steps_per_second", "_tokens_per_second")
_ARGS = (
    "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "weight_decay", "warmup_steps", "warmup_ratio", "lr_scheduler_type", "optim", "seed",
    "max_grad_norm", "adam_beta1", "adam_beta2", "adam_epsilon", "fp16", "bf16",
)


def _config(args: Any, model: Any) -> Dict[str, Any]:
    cfg: Dict[str, Any] = {}
    for k in _ARGS:
        v = getattr(args, k, None)
        if v is not None:
            cfg[k] = v if isinstance(v, (int, float, str, bool)) else str(v)
    if model is not None:
        cfg["model"] = type(model).__name__
    return cfg


class TrainwatchCallback(TrainerCallback):
    """Reports a Trainer's training to Trainwatch. `name`, `config`, `stop_policy` and any other keyword go to
    `trainwatch.init()` (config defaults to the main TrainingArguments); or pass `run=` to use a run you made."""

    def __init__(self, name: Optional[str] = None, config: Optional[Mapping[str, Any]] = None, stop_policy: Any = None, run: Optional[Run] = None, **init_kwargs: Any) -> None:
        self.run = run
        self._owns_run = run is None
        #: The last run's, kept after the run is finished.
        self.last_run: Optional[Run] = run
        self._init = dict(name=name, config=config, stop_policy=stop_policy, **init_kwargs)
        self._epoch: Optional[int] = None
        self._row: Dict[str, float] = {}
        self._losses: List[float] = []
        self._ended = False
        self._t0 = 0.0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.run is None:
            kw = dict(self._init)
            if kw.get("config") is None:
                kw["config"] = _config(args, model)
            total = math.ceil(args.num_train_epochs) if (args.max_steps is None or args.max_steps <= 0) else None
            self.run = self.last_run = init(total_epochs=total if total and total > 0 else None, **kw)

    def on_epoch_begin(self, args, state, control, optimizer=None, **kwargs):
        self._flush()
        self._epoch = int(round(state.epoch or 0))
        self._row, self._losses, self._ended = {}, [], False
        self._t0 = time.perf_counter()
        if optimizer is not None and optimizer.param_groups:
            lr = number(optimizer.param_groups[0].get("lr"))
            if lr is not None:
                self._row["learning_rate"] = lr

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._epoch is None or not logs or "train_runtime" in logs:
            return  # before the first epoch, or the run's closing summary (its train_loss averages the whole run)
        loss = number(logs.get("loss"))
        if loss is not None:
            self._losses.append(loss)
        self._row.update(row_from({k: v for k, v in logs.items() if k not in _SKIP and not k.endswith(_SPEED)}))

    def on_epoch_end(self, args, state, control, **kwargs):
        self._ended = True
        if self.run.should_stop:
            control.should_training_stop = True

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self._ended:
            self._flush()

    def on_step_end(self, args, state, control, **kwargs):
        if self.run is not None and self.run.should_stop:
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        self._flush()
        if self._owns_run and self.run is not None:
            self.run.finish("completed")
            self.run = None  # a second train() with this callback is a new operation

    def _flush(self) -> None:
        if self._epoch is None or self.run is None:
            return
        row = dict(self._row)
        if self._losses:
            row["train_loss"] = sum(self._losses) / len(self._losses)
        row["duration"] = time.perf_counter() - self._t0
        self.run.log(epoch=self._epoch, **row)
        self._epoch = None
