"""Hugging Face Transformers: `Trainer(..., callbacks=[TrainwatchCallback(name="bert-sst2")])`.

Reports steps, at the Trainer's own cadence: every log (`logging_steps`) is a step row on the step just taken,
numbered from 0 as the API counts steps (`state.global_step` − 1: HF counts the steps done) with the training `loss`, `learning_rate`, `grad_norm`, `num_input_tokens_seen` as `tokens`
and other numbers as custom metrics; every evaluation (`eval_steps`, or the epoch's end) lands on the step it was
taken at (`eval_loss` as val_loss, `eval_accuracy` as val_accuracy, any other `eval_x`, its runtime and throughputs
too, as the evaluation `eval/x`). The training's closing summary lands on its last step under the names HF's own
TensorBoardCallback gives it (`train/train_runtime`, `train/train_samples_per_second`, `train/train_steps_per_second`,
`train/total_flos`, and `train/train_loss`, the whole run's mean, kept apart from the step's train_loss): every number
the Trainer logs is kept, as TensorBoard keeps it. Each row carries the epoch it ran in (counted from `on_epoch_begin`: HF's
fractional `epoch` reads 1.0 on epoch 0's last step), and the server derives the per-epoch records from them. The
run's plan is `state.max_steps`. When the server says stop it sets `control.should_training_stop` on the next
`on_step_end`, so the Trainer stops after the step it is in; the run is finished on `on_train_end`.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

from transformers import TrainerCallback

from ._adapt import eval_name, number, row_from
from .client import Run, init

__all__ = ["TrainwatchCallback"]

_SKIP = {"epoch", "step"}  # HF's fractional epoch (each row carries the epoch it ran in) and its step
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


def _step(state: Any) -> int:
    """The step just taken, from 0 (the API's steps_completed is the highest step + 1); an evaluation before the first
    step (`eval_on_start`) is on step 0."""
    return max(0, state.global_step - 1)


class TrainwatchCallback(TrainerCallback):
    """Reports a Trainer's training to Trainwatch. `name`, `config`, `stop_policy` and any other keyword go to
    `trainwatch.init()` (config defaults to the main TrainingArguments); or pass `run=` to use a run you made."""

    def __init__(self, name: Optional[str] = None, config: Optional[Mapping[str, Any]] = None, stop_policy: Any = None, run: Optional[Run] = None, **init_kwargs: Any) -> None:
        self.run = run
        self._owns_run = run is None
        #: The last run's, kept after the run is finished.
        self.last_run: Optional[Run] = run
        self._init = dict(name=name, config=config, stop_policy=stop_policy, **init_kwargs)
        self._epoch = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.run is None:
            kw = dict(self._init)
            if kw.get("config") is None:
                kw["config"] = _config(args, model)
            total = math.ceil(args.num_train_epochs) if (args.max_steps is None or args.max_steps <= 0) else None
            steps = state.max_steps if state.max_steps and state.max_steps > 0 else None
            self.run = self.last_run = init(total_epochs=total if total and total > 0 else None, total_steps=steps, **kw)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._epoch = int(round(state.epoch or 0))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.run is None or not logs or any(k.startswith("eval_") for k in logs):
            return  # an evaluation: on_evaluate's
        if "train_loss" in logs and "loss" not in logs:  # the closing summary: its train_loss is the run's mean
            row = row_from({f"train/{k}": v for k, v in logs.items() if k not in _SKIP})
        else:
            row = row_from({k: v for k, v in logs.items() if k not in _SKIP})
        if "num_input_tokens_seen" in row:
            row["tokens"] = row.pop("num_input_tokens_seen")
        if row:
            self.run.log(step=_step(state), epoch=self._epoch, **row)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.run is None or not metrics:
            return
        row = {}
        for k, v in metrics.items():
            if not k.startswith("eval_"):
                continue
            f = number(v)
            name = eval_name(k[5:])
            if f is not None and name is not None:
                row[name] = f
        if row:
            self.run.log(step=_step(state), epoch=self._epoch, **row)

    def on_step_end(self, args, state, control, **kwargs):
        if self.run is not None and self.run.should_stop:
            control.should_training_stop = True

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.run is not None and self.run.should_stop:
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        if self._owns_run and self.run is not None:
            self.run.finish("completed")
            self.run = None  # a second train() with this callback is a new operation
