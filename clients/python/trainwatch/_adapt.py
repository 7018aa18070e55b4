"""What the framework adapters share: turning a framework's metric dict into a row (a step's, or an epoch's).

Frameworks name things their own way (Keras `loss` / `accuracy`, Hugging Face `eval_loss`, Lightning whatever the
module logged, `_epoch` / `_step` suffixes) and log values that are tensors, numpy scalars or not numbers at all.
A row keeps the numbers, under the API's standard names where one fits and a valid custom name otherwise; anything
else is left out, so a framework's odd entry never raises inside the training loop.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, Mapping, Optional

from ._wire import RESERVED_METRIC_NAMES

# Names frameworks and people commonly use for the six standard fields.
ALIASES: Dict[str, str] = {
    "loss": "train_loss",
    "train_loss": "train_loss",
    "training_loss": "train_loss",
    "val_loss": "val_loss",
    "valid_loss": "val_loss",
    "validation_loss": "val_loss",
    "eval_loss": "val_loss",
    "accuracy": "train_accuracy",
    "acc": "train_accuracy",
    "train_acc": "train_accuracy",
    "train_accuracy": "train_accuracy",
    "val_accuracy": "val_accuracy",
    "val_acc": "val_accuracy",
    "valid_acc": "val_accuracy",
    "eval_accuracy": "val_accuracy",
    "eval_acc": "val_accuracy",
    "lr": "learning_rate",
    "learning_rate": "learning_rate",
}

_BAD = re.compile(r"[^A-Za-z0-9_./-]")


def metric_name(key: str) -> Optional[str]:
    """The API's name for a framework's key: a standard field, or a valid custom name (None when nothing is left)."""
    std = ALIASES.get(key)
    if std:
        return std
    name = _BAD.sub("_", str(key))[:64]
    if not name or name in RESERVED_METRIC_NAMES:
        return None
    return name


#: An evaluation's names for the standard evaluation fields; any other evaluation value is the custom `eval/<name>`.
EVAL_FIELDS = {"loss": "val_loss", "accuracy": "val_accuracy", "acc": "val_accuracy"}


def eval_name(name: str) -> Optional[str]:
    """The API's name for an evaluation's value `name` (a framework's key without its `eval_` / `val_` prefix)."""
    return EVAL_FIELDS.get(name) or metric_name("eval/" + name)


def number(v: Any) -> Optional[float]:
    """A float for anything that is one number (python, numpy, a 0-d / 1-element tensor); None otherwise."""
    if isinstance(v, bool) or v is None or isinstance(v, (str, bytes)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError, RuntimeError):
        return None
    return f if isinstance(f, float) else None


def row_from(logs: Optional[Mapping[str, Any]], skip: Iterable[str] = ()) -> Dict[str, float]:
    """The numeric entries of `logs` under API names; keys in `skip` and non-numbers are left out."""
    out: Dict[str, float] = {}
    skip = set(skip)
    for key, v in (logs or {}).items():
        if key in skip:
            continue
        f = number(v)
        if f is None:
            continue
        name = metric_name(key)
        if name is None:
            continue
        out[name] = f
    return out

