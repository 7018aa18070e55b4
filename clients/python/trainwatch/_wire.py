"""The rows' wire form: an epoch as src/schemas/epoch.ts defines it, a step as src/schemas/step.ts does, one JSON
object each. An encoded epoch starts `{"epoch":`, a step `{"step":`, so the sender tells them apart by the third
character (`kind`) and the spool keeps both in one file, in order.

A metric is a finite number, null, or one of the strings "NaN", "Infinity", "-Infinity" (JSON has no literal for
them). Custom metric names are 1 to 64 letters, digits and `_ . / -`, and never `__proto__`, `constructor` or
`prototype`. An epoch number is an integer 0 … 2³¹ − 1. Everything the server would refuse is refused here first,
as a ValueError naming the key, so a bad value fails in the training script at the line that logged it and never
as a dropped batch in the background.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from typing import Any, Dict, Optional

STANDARD_FIELDS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate", "duration")
#: A step row's standard fields (`val_*` are evaluations taken at that step; most rows lack them).
STEP_FIELDS = ("train_loss", "learning_rate", "grad_norm", "duration", "samples", "tokens", "val_loss", "val_accuracy")
#: The names a step row also takes in the habit of `wandb.log`: each read as the standard field it stands for.
STEP_ALIASES = {
    "loss": "train_loss",
    "lr": "learning_rate",
    "eval_loss": "val_loss",
    "eval/loss": "val_loss",
    "eval_accuracy": "val_accuracy",
    "eval/accuracy": "val_accuracy",
}
MAX_EPOCH = 2**31 - 1
MAX_STEP = 2**31 - 1
MAX_EPOCHS_PER_BATCH = 10_000  # epochs or steps: the API takes 1 … 10,000 rows a batch
CUSTOM_METRIC_NAME = re.compile(r"^[A-Za-z0-9_./-]{1,64}$")
RESERVED_METRIC_NAMES = frozenset(("__proto__", "constructor", "prototype"))


_isfinite = math.isfinite
_float_repr = float.__repr__
# Names already checked: a training logs the same few names every epoch, so the regex runs once per name.
_known_names = set(STANDARD_FIELDS) | set(STEP_FIELDS) | set(STEP_ALIASES)


def metric_value(key: str, v: Any) -> Any:
    """A metric as the API takes it: finite float, None, or "NaN" / "Infinity" / "-Infinity". ValueError names the key."""
    if v is None:
        return None
    t = type(v)
    if t is float:
        f = v
    elif t is int:
        return v if -(2**53) <= v <= 2**53 else float(v)
    elif t is bool or isinstance(v, (str, bytes)):
        raise ValueError(f"trainwatch: metric {key!r} must be a number or None, got {t.__name__} {v!r}")
    else:
        # numpy scalars, 0-d torch tensors, Decimal …: anything that says what float it is.
        try:
            f = float(v)
        except (TypeError, ValueError) as e:
            raise ValueError(f"trainwatch: metric {key!r} must be a number or None, got {t.__name__} ({e})") from None
    if _isfinite(f):
        return f
    if f != f:
        return "NaN"
    return "Infinity" if f > 0 else "-Infinity"


def check_name(key: str) -> None:
    if key in _known_names:
        return
    if key in RESERVED_METRIC_NAMES:
        raise ValueError(f"trainwatch: metric name {key!r} is reserved (custom metric names cannot be {', '.join(sorted(RESERVED_METRIC_NAMES))})")
    if not CUSTOM_METRIC_NAME.match(key):
        raise ValueError(f"trainwatch: metric name {key!r}: custom metric names may use letters, digits and _ . / - (1 to 64 characters)")
    if len(_known_names) < 10_000:
        _known_names.add(key)


def check_index(what: str, v: Any, top: int) -> int:
    """An integer 0 … top (an epoch or a step number); ValueError naming `what` otherwise."""
    if type(v) is int:
        n = v
    elif isinstance(v, bool) or not hasattr(v, "__index__"):
        raise ValueError(f"trainwatch: {what} must be an integer, got {type(v).__name__} {v!r}")
    else:
        n = v.__index__()
    if not 0 <= n <= top:
        raise ValueError(f"trainwatch: {what} must be 0 … {top}, got {n}")
    return n


def check_epoch(epoch: Any) -> int:
    return check_index("epoch", epoch, MAX_EPOCH)


def check_step(step: Any) -> int:
    return check_index("step", step, MAX_STEP)


def kind(line: str) -> str:
    """"s" for an encoded step, "e" for an encoded epoch."""
    return line[2]


_second = [-1, ""]


def iso_now(t: Optional[float] = None) -> str:
    """UTC ISO-8601 with milliseconds and Z: the form the server keeps as sent."""
    t = time.time() if t is None else t
    s = int(t)
    if s != _second[0]:  # formatting the date costs more than the rest of an epoch: once a second
        _second[0], _second[1] = s, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    return "%s.%03dZ" % (_second[1], int((t - s) * 1000))


def timestamp_value(v: Any) -> str:
    if isinstance(v, str):
        return v
    iso = getattr(v, "isoformat", None)
    if iso is None:
        raise ValueError(f"trainwatch: timestamp must be an ISO-8601 string or a datetime, got {type(v).__name__}")
    if getattr(v, "tzinfo", None) is None:
        raise ValueError("trainwatch: timestamp datetime must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return iso()


_MAX_FLOAT = sys.float_info.max
# ',"name":' for every checked metric name: the fast path of encoding is a dict lookup and a concatenation.
# "timestamp" and "duration" are never in them: they take the checked path. A step's table also holds the aliases
# (`loss` → ',"train_loss":'), so reading `loss` as the training loss costs nothing.
_prefix: Dict[str, str] = {k: ',"%s":' % k for k in STANDARD_FIELDS if k != "duration"}
_step_prefix: Dict[str, str] = {k: ',"%s":' % k for k in STEP_FIELDS if k != "duration"}
_step_prefix.update({k: ',"%s":' % v for k, v in STEP_ALIASES.items()})


def encode_epoch(epoch: int, metrics: Dict[str, Any], timestamp: Optional[str] = None) -> str:
    """One epoch as its JSON line. Raises ValueError naming the first bad key.

    Written out by hand rather than through json: every name is checked to be letters, digits and _ . / - (nothing to
    escape) and float.__repr__ is JSON's own spelling of a finite float, so the one call the training loop pays for
    stays a few microseconds (bench/python_client.py)."""
    return _encode('{"epoch":%d' % epoch, metrics, timestamp, _prefix)


def step_metrics(data: Optional[Dict[str, Any]], metrics: Dict[str, Any]) -> Dict[str, Any]:
    """A step's metrics as a dict of its own (the caller may reuse its dict; a tensor read later would be read after
    the loop changed it), checked as encode_step would: ValueError naming the first bad key. The fast path, a known
    name with a float, is one type test and one set lookup: run.log() stays cheap, the encoding is the sender's."""
    out = dict(data) if data is not None else metrics
    if data is not None and metrics:
        out.update(metrics)
    for key, v in out.items():
        if type(v) is float and key in _known_names:
            continue
        if key == "timestamp":
            if v is not None:
                out[key] = timestamp_value(v)
            continue
        check_name(key)
        w = metric_value(key, v)
        if key == "duration" and type(w) in (int, float) and w < 0:
            raise ValueError(f"trainwatch: metric 'duration' must be ≥ 0 seconds, got {w}")
        if w is not v:
            out[key] = w
    return out


def encode_step(step: int, epoch: Optional[int], metrics: Dict[str, Any], timestamp: Optional[str] = None) -> str:
    """One step as its JSON line (`epoch` left out when None; `loss`, `lr`, `eval_loss` … under their standard names,
    STEP_ALIASES). Raises ValueError naming the first bad key."""
    head = '{"step":%d' % step if epoch is None else '{"step":%d,"epoch":%d' % (step, epoch)
    return _encode(head, metrics, timestamp, _step_prefix)


def _encode(head: str, metrics: Dict[str, Any], timestamp: Optional[str], prefix: Dict[str, str]) -> str:
    parts = [head]
    stamp = timestamp
    for key, v in metrics.items():
        p = prefix.get(key)
        if p is not None and type(v) is float and -_MAX_FLOAT <= v <= _MAX_FLOAT:  # finite: NaN and ±inf fail both
            parts.append(p + _float_repr(v))
            continue
        if key == "timestamp":
            if v is not None:
                stamp = timestamp_value(v)
            continue
        if p is None:
            check_name(key)
            if key != "duration" and len(prefix) < 10_000:
                p = prefix[key] = ',"%s":' % key
            else:
                p = ',"%s":' % key
        w = metric_value(key, v)
        if w is None:
            parts.append(p + "null")
        elif type(w) is str:
            # The API keeps durations finite: a diverged clock is no duration.
            parts.append(p + ("null" if key == "duration" else '"%s"' % w))
        else:
            if key == "duration" and w < 0:
                raise ValueError(f"trainwatch: metric 'duration' must be ≥ 0 seconds, got {w}")
            parts.append(p + (_float_repr(w) if type(w) is float else "%d" % w))
    parts.append(',"timestamp":%s}' % (json.dumps(stamp) if stamp is not None else '"%s"' % iso_now()))
    return "".join(parts)


def batch_body(lines) -> bytes:
    """`{"epochs":[...]}` from already-encoded epoch lines."""
    return ('{"epochs":[' + ",".join(lines) + "]}").encode()


def steps_body(lines) -> bytes:
    """`{"steps":[...]}` from already-encoded step lines."""
    return ('{"steps":[' + ",".join(lines) + "]}").encode()


def dumps(obj: Any) -> bytes:
    """A request body; values JSON cannot hold (a path, a dtype in a hyper-parameter dict) travel as their str()."""
    return json.dumps(_jsonable(obj), separators=(",", ":"), allow_nan=False).encode()


def _jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return _jsonable(item())
        except Exception:
            pass
    return str(obj)
