"""The core client: `trainwatch.init()` registers (or attaches to) an operation and returns a Run; `run.log()` queues
one row (an epoch, or a step) and returns at once; a background sender (_sender.py) delivers the queue in batches and
hears the server's word to stop; `run.finish()` flushes and completes the operation.

The training loop only reads `run.should_stop` and `run.control` (the server's word, from every reply, and from a
poll of the operation when nothing was posted for a second).

Liveness (_heartbeat.py). A thread of its own heartbeats the operation right after registration and then at the
interval the server names, also while the loop sits inside a long step, so the server tells a slow run from a dead
one (stale, then lost, after kill -9).

Goodbyes (_hooks.py). An uncaught exception (sys.excepthook) finishes every open run as failed with the exception
text (failure_code trainer_error); SIGTERM and SIGINT as failed with "stopped by SIGTERM" / "stopped by SIGINT"
(failure_code terminated), then the signal has its usual effect; at exit (atexit) an open run is finished as
completed when it was told to stop, ran its planned epochs or had no plan, and as failed otherwise.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import socket
import sys
import tempfile
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _system, _wire
from ._errors import TrainwatchError, TrainwatchWarning
from ._errors import warn as _warn
from ._hooks import AT_EXIT_TIMEOUT_S, MAX_ERROR_CHARS
from ._hooks import at_exit as _at_exit  # noqa: F401  (importable from here, as before)
from ._hooks import exception_text as _exception_text  # noqa: F401  (the Lightning logger's)
from ._hooks import failure_of as _failure_of
from ._hooks import install as _install_hooks
from ._hooks import live as _live
from ._heartbeat import Heartbeat
from ._http import Api, ServerAway, error_of
from ._sender import BACKOFF_CAP_S, BACKOFF_START_S, Sender  # noqa: F401  (the constants: importable from here, as before)

__all__ = ["init", "Run", "TrainwatchError", "TrainwatchWarning", "DEFAULT_URL"]

DEFAULT_URL = "http://127.0.0.1:8000"
VERSION = "0.1.0"
FINISH_TIMEOUT_S = 30.0
STOP_FLAGS = ("diverging", "overfitting", "stalled", "plateau")

_logger = logging.getLogger("trainwatch")
_time = time.time


def _device() -> Dict[str, str]:
    """The GPU this process trains on, when the script has imported torch and CUDA is available: {"gpu", "torch"}.

    torch is never imported here (that costs seconds and memory a Keras-on-JAX script does not want): a script that
    trains with torch has imported it before `init()`. Nothing is reported on a CPU, and a failing CUDA query is not
    the training's problem: it only means no GPU name.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    try:
        if not torch.cuda.is_available():
            return {}
        return {"gpu": str(torch.cuda.get_device_name(torch.cuda.current_device())), "torch": str(torch.__version__)}
    except Exception as e:  # a broken driver: say so once, train on
        _logger.info("trainwatch: could not read the CUDA device name: %s", e)
        return {}


def _policy(stop_policy: Any) -> Optional[Dict[str, Any]]:
    """`{"on": [...], "min_epochs": n}`; a flag name or a list of them is shorthand for `{"on": [...]}`."""
    if stop_policy is None:
        return None
    if isinstance(stop_policy, str):
        stop_policy = {"on": [stop_policy]}
    elif isinstance(stop_policy, (list, tuple)):
        stop_policy = {"on": list(stop_policy)}
    if not isinstance(stop_policy, Mapping):
        raise ValueError(f"trainwatch: stop_policy must be a dict like {{'on': ['diverging'], 'min_epochs': 5}}, got {type(stop_policy).__name__}")
    on = stop_policy.get("on")
    if not isinstance(on, (list, tuple)) or not on or any(f not in STOP_FLAGS for f in on):
        raise ValueError(f"trainwatch: stop_policy['on'] must be a non-empty list of {', '.join(STOP_FLAGS)}; got {on!r}")
    out = dict(stop_policy)
    out["on"] = list(on)
    return out


def _alerts(alerts: Any) -> Optional[Dict[str, Any]]:
    """A run's alert rules: an event name or a list of them is shorthand for `{"on": [...]}`; a dict is sent as is
    (`on`, `off`, `thresholds`). The server checks the names and answers which are wrong (a ValueError here)."""
    if alerts is None:
        return None
    if isinstance(alerts, str):
        return {"on": [alerts]}
    if isinstance(alerts, (list, tuple)):
        return {"on": list(alerts)}
    if not isinstance(alerts, Mapping):
        raise ValueError(f"trainwatch: alerts must be a list of events or a dict like {{'on': ['completed'], 'off': ['hung'], 'thresholds': [...]}}, got {type(alerts).__name__}")
    return {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in alerts.items()}


def init(
    name: Optional[str] = None,
    config: Optional[Mapping[str, Any]] = None,
    total_epochs: Optional[int] = None,
    url: Optional[str] = None,
    token: Optional[str] = None,
    resume: Optional[str] = None,
    stop_policy: Any = None,
    *,
    total_steps: Optional[int] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    operation_type: str = "training",
    spool_dir: Optional[str] = None,
    timeout: float = 5.0,
    system_metrics: Any = _system.DEFAULT_INTERVAL_S,
    alerts: Any = None,
    tags: Optional[Sequence[str]] = None,
    group: Optional[str] = None,
) -> "Run":
    """Registers an operation for this training and returns its Run.

    url / token default to TRAINWATCH_URL (else http://127.0.0.1:8000) and TRAINWATCH_TOKEN. `resume=<operation_id>`
    continues that operation instead (after a restart; re-posted epochs replace the stored ones), and so does
    TRAINWATCH_OPERATION_ID when it is set (a training Trainwatch started itself). `stop_policy` asks the server to
    stop the run when its judgement raises one of the flags: {"on": ["diverging", "overfitting", "stalled",
    "plateau"], "min_epochs": 5}. `total_steps` is the planned number of steps of a run that logs steps: its progress
    is then counted in steps. `system_metrics` samples the process, the machine and its GPUs every that many seconds
    (default 15; 0, False or None: off; TRAINWATCH_SYSTEM_METRICS overrides it) on a thread of its own, posted about
    once a minute as the run's system series. `alerts` chooses what alerts for this run on top of the server's defaults
    (TRAINWATCH_ALERT_ON): a list of events (["completed", "overfitting"]) or {"on": [...], "off": [...],
    "thresholds": [{"metric": "val_loss", "when": "above", "value": 2.5}]}; where alerts go is the server's setting.
    `tags` (["bert", "baseline"]) and `group` ("sweep-7": a sweep, an experiment) label the run for search
    (`GET /operations?q=tags has "bert" and group = "sweep-7"`, trainwatch.Api().runs(q=...)); `run.set_labels()`
    changes them later. A resumed run keeps its labels (set_labels changes them).

    An unreachable server does not raise: the run warns, spools its epochs and registers once the server answers.
    A refusal does: ValueError for a bad argument the server names, TrainwatchError for a wrong token or an
    operation to resume that is unknown or already finished.
    """
    interval = _system.interval_of(system_metrics)
    url = url or os.environ.get("TRAINWATCH_URL") or DEFAULT_URL
    token = token or os.environ.get("TRAINWATCH_TOKEN") or None
    attach = resume or os.environ.get("TRAINWATCH_OPERATION_ID") or None
    if total_epochs is not None:
        total_epochs = _wire.check_epoch(total_epochs)
        if total_epochs < 1:
            raise ValueError("trainwatch: total_epochs must be ≥ 1")
    if total_steps is not None:
        total_steps = _wire.check_step(total_steps)
        if total_steps < 1:
            raise ValueError("trainwatch: total_steps must be ≥ 1")
    body: Optional[Dict[str, Any]] = None
    if not attach:
        body = {"operation_type": operation_type}
        if name is not None:
            body["name"] = str(name)
        if total_epochs is not None:
            body["total_epochs_planned"] = total_epochs
        if total_steps is not None:
            body["total_steps_planned"] = total_steps
        body["metadata"] = {
            "client": f"trainwatch-python/{VERSION}",
            "python": platform.python_version(),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            **_device(),
            **(dict(metadata) if metadata else {}),
        }
        if config is not None:
            body["config"] = dict(config)
        policy = _policy(stop_policy)
        if policy is not None:
            body["stop_policy"] = policy
        rules = _alerts(alerts)
        if rules is not None:
            body["alerts"] = rules
        if tags is not None:
            body["tags"] = _tag_list(tags, "tags")
        if group is not None:
            body["group"] = str(group)
    run = Run(url, token, attach, body, name=name, total_epochs=total_epochs, total_steps=total_steps, spool_dir=spool_dir)
    run._start(timeout)
    if interval is not None:
        run._system = _system.Sampler(run.url, token, lambda: run.operation_id, interval).start()
    return run


def _tag_list(tags: Any, name: str) -> List[str]:
    """Tags as the API takes them: a list of strings; one string is one tag (never its characters)."""
    if isinstance(tags, str):
        return [tags]
    if not isinstance(tags, (list, tuple, set, frozenset)) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"trainwatch: {name} must be a list of strings, got {tags!r}")
    return sorted(tags) if isinstance(tags, (set, frozenset)) else list(tags)


def _dict_epoch(v: Any) -> Optional[int]:
    """The `epoch` a wandb-style dict carries: an integer, or the floor of a fractional epoch (HF's 1.5)."""
    if v is None:
        return None
    if isinstance(v, float) and math.isfinite(v) and v >= 0:
        return int(v)
    return _wire.check_epoch(v)


class Run:
    """One training's link to its operation. Create it with `trainwatch.init()`."""

    def __init__(
        self,
        url: str,
        token: Optional[str],
        operation_id: Optional[str],
        register: Optional[Dict[str, Any]],
        *,
        name: Optional[str] = None,
        total_epochs: Optional[int] = None,
        total_steps: Optional[int] = None,
        spool_dir: Optional[str] = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.name = name
        self.total_epochs = total_epochs
        self.total_steps = total_steps
        self._token = token
        self._sender = Sender(self.url, token, operation_id, register, spool_dir or os.path.join(tempfile.gettempdir(), "trainwatch-spool"))
        self._heartbeat = Heartbeat(self.url, token, lambda: self._sender.operation_id)
        # The hand-off to the sender thread, held here too: log() runs every step and touches only these.
        self._queue = self._sender.queue
        self._wake = self._sender.wake
        self._last_epoch: Optional[int] = None
        self._last_step = -1
        self._last_log_t = time.perf_counter()
        self._finished = False
        self._warned: set = set()
        #: The system metrics sampler (trainwatch/_system.py); None when off.
        self._system: Optional[_system.Sampler] = None

    def __repr__(self) -> str:
        return f"<trainwatch.Run {self.operation_id or '(not registered yet)'} at {self.url}{' stop' if self.should_stop else ''}>"

    @property
    def operation_id(self) -> Optional[str]:
        """The operation's id; None until a run started while the server was away is registered."""
        return self._sender.operation_id

    @property
    def should_stop(self) -> bool:
        """True once the server said stop (a cancel, the monitor, the stop policy) or that the operation is over."""
        return self._sender.should_stop

    @property
    def control(self) -> Optional[Dict[str, Any]]:
        """The server's last word: {"action": "continue"} or the stop decision (reason, checkpoint_epoch, decided_by …)."""
        return self._sender.control

    @property
    def delivered(self) -> int:
        """Rows (epochs and steps) the server has acknowledged."""
        return self._sender.delivered

    @property
    def rejected(self) -> int:
        """Rows the server refused as invalid (400), each batch in a warning."""
        return self._sender.rejected

    @property
    def step(self) -> int:
        """The last step logged (-1 before the first)."""
        return self._last_step

    # --- the training side: cheap, never touches the network ---------------------------------------------------

    def log(self, data: Optional[Mapping[str, Any]] = None, /, step: Optional[int] = None, epoch: Optional[int] = None, **metrics: Any) -> None:
        """Queues one row and returns at once: never a request, never a wait.

        A step: `run.log(step=n, train_loss=…)`, `run.log(step=n, epoch=e, …)`, or `run.log({"loss": …}, step=n)` in the
        habit of `wandb.log` (a dict without `step` and `epoch` gets the previous step + 1, from 0). Step fields:
        train_loss (or `loss`), learning_rate (or `lr`), grad_norm, duration, samples, tokens, and the evaluations
        val_loss (or `eval_loss`, `eval/loss`), val_accuracy (or `eval_accuracy`); `eval/<name>` customs are
        evaluations too. Logging the same step again adds to it (the later value of a field wins).

        An epoch (as before steps): `run.log(epoch=e, **metrics)`, or `run.log(**metrics)` for the previous epoch + 1.
        Standard fields train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration (seconds; by
        default the time since the previous log), timestamp (default now).

        Any other keyword is a custom numeric metric. NaN and ±Infinity are data (a diverged loss). Raises ValueError
        naming the key for a value that is not a number (or None) or a name the API refuses.
        """
        if data is not None:
            if type(data) is not dict and not isinstance(data, Mapping):  # (the ABC check costs a microsecond)
                if step is None and epoch is None:  # run.log(3, train_loss=…): the epoch, positionally, as before
                    return self.log(epoch=data, **metrics)
                raise ValueError(f"trainwatch: run.log() takes a dict of metrics first, got {type(data).__name__}")
            if "epoch" in data or "step" in data:
                # wandb.log({"epoch": e, …}): the epoch it ran in; a "step" key is the step. Never metrics of the row.
                data = dict(data)
                e, s = data.pop("epoch", None), data.pop("step", None)
                if epoch is None and e is not None:
                    epoch = _dict_epoch(e)
                if step is None:
                    step = s
            if step is None:
                if epoch is not None:  # a dict with an epoch and no step: an epoch row, read with the wandb names
                    return self._log_epoch(epoch, {_wire.STEP_ALIASES.get(k, k): v for k, v in {**data, **metrics}.items()})
                step = self._last_step + 1
        elif step is None:
            return self._log_epoch(epoch, metrics)
        if type(step) is not int or not 0 <= step <= _wire.MAX_STEP:
            step = _wire.check_step(step)
        if epoch is not None and (type(epoch) is not int or not 0 <= epoch <= _wire.MAX_EPOCH):
            epoch = _wire.check_epoch(epoch)
        row = _wire.step_metrics(data, metrics)
        self._last_step = step
        sender = self._sender
        if sender.finishing is not None or sender.closed:
            self._drop(f"step {step}")
            return
        # The row as it is; the sender encodes it (and merges a step logged twice) off the training's path.
        q = self._queue
        q.append((step, epoch, row, _time()))
        if len(q) >= sender.batch_rows and not self._wake.is_set():  # a full batch: posted now, not at the next tick
            self._wake.set()

    def _log_epoch(self, epoch: Any, metrics: Dict[str, Any]) -> None:
        now = time.perf_counter()
        e = (0 if self._last_epoch is None else self._last_epoch + 1) if epoch is None else _wire.check_epoch(epoch)
        if "duration" not in metrics:
            metrics["duration"] = now - self._last_log_t
        line = _wire.encode_epoch(e, metrics)
        self._last_epoch = e
        self._last_log_t = now
        sender = self._sender
        if sender.finishing is not None or sender.closed:
            self._drop(f"epoch {e}")
            return
        self._queue.append(line)
        sender.epochs_logged += 1
        if not self._wake.is_set():  # set() takes a lock and notifies: a quarter of log()'s time when done every call
            self._wake.set()

    def _drop(self, what: str) -> None:
        sender = self._sender
        sender.dropped += 1
        if sender.finishing is not None and "after-finish" not in self._warned:
            self._warned.add("after-finish")
            _warn(f"trainwatch: run.log() after run.finish() on {self.operation_id}: {what} dropped")

    def flush(self, timeout: float = 10.0) -> bool:
        """Waits (at most `timeout` seconds) until every row logged so far is acknowledged by the server, so that
        `should_stop` and `control` answer for them: the reply to an epoch carries the stop policy's decision on it.
        True when nothing is left pending; False when the server is away or slow (the rows are still delivered later)."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while self.pending:
            if self._sender.closed or self._sender.away is not None or time.monotonic() >= deadline:
                return False
            time.sleep(0.002)  # the sender posts an epoch at once: a few ms on loopback
        return True

    def set_labels(
        self,
        tags: Optional[Sequence[str]] = None,
        *,
        add_tags: Optional[Sequence[str]] = None,
        remove_tags: Optional[Sequence[str]] = None,
        group: Union[str, None, type(...)] = ...,
        timeout: float = 10.0,
    ) -> Optional[Dict[str, Any]]:
        """Changes the run's labels (`PATCH /operations/{id}/labels`), in any status: `tags` replaces them all,
        `add_tags` / `remove_tags` change some, `group` sets the group (None clears it; left out: unchanged). Returns
        the operation as the server has it now. Before the run is registered (the server was away at init) the labels
        go with the registration, and None is returned. ValueError for labels the server refuses (naming the field),
        TrainwatchError for another refusal or a server that does not answer."""
        body: Dict[str, Any] = {}
        if tags is not None:
            body["tags"] = _tag_list(tags, "tags")
        if add_tags is not None:
            body["add_tags"] = _tag_list(add_tags, "add_tags")
        if remove_tags is not None:
            body["remove_tags"] = _tag_list(remove_tags, "remove_tags")
        if group is not ...:
            body["group"] = None if group is None else str(group)
        if not body:
            raise ValueError("trainwatch: set_labels() needs tags, add_tags, remove_tags or group")
        register = self._sender._register
        if self.operation_id is None and register is not None:
            have = set(register.get("tags") or [])
            if "tags" in body:
                have = set(body["tags"])
            have |= set(body.get("add_tags") or [])
            have -= set(body.get("remove_tags") or [])
            register["tags"] = sorted(have)
            if "group" in body:
                register["group"] = body["group"]
            if self.operation_id is None:
                return None
            # Registered meanwhile (the sender thread): its registration may have gone without them; PATCH as well.
        api = Api(self.url, self._token, timeout=timeout)
        try:
            status, env = api.request("PATCH", f"/operations/{self.operation_id}/labels", _wire.dumps(body))
        except ServerAway as e:
            raise TrainwatchError(f"trainwatch: the server at {self.url} did not take the labels ({e})") from None
        finally:
            api.close()
        if status == 200:
            return env["data"]
        err = error_of(env, status)
        if status == 400:
            raise ValueError(f"trainwatch: the server refused the labels: {err.get('message')}")
        raise TrainwatchError(f"trainwatch: PATCH {self.url}/api/v1/operations/{self.operation_id}/labels → {status} {err.get('code')}: {err.get('message')}")

    @property
    def pending(self) -> int:
        """Rows logged but not yet acknowledged by the server (queued, in flight or spooled)."""
        return self._sender.pending()

    @property
    def spool_path(self) -> Optional[str]:
        return self._sender.spool_path

    def finish(
        self,
        status: str = "completed",
        error: Optional[str] = None,
        result: Optional[Mapping[str, Any]] = None,
        timeout: float = FINISH_TIMEOUT_S,
        failure_code: Optional[str] = None,
    ) -> bool:
        """Delivers what is queued (waiting at most `timeout` seconds), then completes the operation with `status`
        ("completed", "failed" with `error` and optionally `failure_code`: "trainer_error" or "terminated", or
        "cancelled"). Returns True when everything arrived; otherwise warns with what is left (the spool file keeps it
        for `init(resume=...)`). A second call does nothing."""
        if status not in ("completed", "failed", "cancelled"):
            raise ValueError(f"trainwatch: finish status must be completed, failed or cancelled, got {status!r}")
        if failure_code not in (None, "trainer_error", "terminated") or (failure_code and status != "failed"):
            raise ValueError(f"trainwatch: failure_code must be trainer_error or terminated, with status failed; got {failure_code!r}")
        sender = self._sender
        if sender.finishing is not None:
            return sender.done.wait(0) and not self.pending
        # The run says goodbye itself: no heartbeat after it (one in flight is answered 409 and ends the thread).
        self._heartbeat.stop(timeout=0)
        body: Dict[str, Any] = {"status": status}
        if failure_code is not None:
            body["failure_code"] = failure_code
        if error is not None:
            text = str(error)
            body["error_message"] = text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
        elif status == "failed":
            body["error_message"] = "failed"
        if result is not None:
            body["result"] = dict(result)
        _live.discard(self)
        if self._system is not None:
            # Its last samples go before the end: a finished operation takes no more.
            self._system.stop(min(timeout, 5.0))
        done = sender.finish(body, timeout)
        self._finished = True
        dropped = sender.unwarned_drops()
        if dropped:
            _warn(f"trainwatch: {dropped} row(s) logged after the operation {self.operation_id} was over were dropped")
        if not done:
            left = self.pending
            where = f"; they are kept in {self.spool_path} for trainwatch.init(resume={self.operation_id!r})" if self.spool_path and self.operation_id else ""
            _warn(f"trainwatch: the server at {self.url} did not take the run's end within {timeout:g} s ({sender.away or 'busy'}): {left} row(s) undelivered{where}")
        return done and not self.pending

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish("completed")
        else:
            code, text = _failure_of(exc_type, exc, tb)
            self.finish("failed", error=text, failure_code=code)

    # --- start ------------------------------------------------------------------------------------------------

    def _start(self, timeout: float) -> None:
        api = Api(self.url, self._token, timeout=timeout)
        try:
            if self.operation_id is None:
                self._sender.register_now(api)
            else:
                self._check_attach(api)
        except ServerAway as e:
            self._sender.went_away(str(e))
        finally:
            api.close()
        if self.operation_id is not None:
            self._sender.open_spool(adopt=True)
        _live.add(self)
        _install_hooks()
        self._sender.start()
        self._heartbeat.start()

    def _check_attach(self, api: Api) -> None:
        status, env = api.request("GET", f"/operations/{self.operation_id}")
        if status == 200:
            st = env["data"]["status"]
            if st in ("completed", "failed", "cancelled"):
                raise TrainwatchError(f"trainwatch: operation {self.operation_id} is already {st}; a finished operation takes no more epochs")
            if env["data"].get("control"):
                self._sender.take_control(env["data"]["control"])
            self._report_device(api)
            return
        if status >= 500:
            raise ServerAway(f"HTTP {status}")
        err = error_of(env, status)
        raise TrainwatchError(f"trainwatch: GET {self.url}/api/v1/operations/{self.operation_id} → {status} {err.get('code')}: {err.get('message')}")

    def _report_device(self, api: Api) -> None:
        """An operation Trainwatch started (a recipe) learns the GPU the script trains on: metadata.gpu."""
        device = _device()
        if not device:
            return
        status, env = api.request("PATCH", f"/operations/{self.operation_id}/metadata", _wire.dumps(device))
        if status != 200:
            err = error_of(env, status)
            _warn(f"trainwatch: reporting the GPU ({device['gpu']}) failed: {status} {err.get('code')}: {err.get('message')}")

    def _exit(self) -> None:
        """atexit: the script ended without run.finish(). Completed when it was told to stop or ran its plan (in steps
        when it logged steps and planned them, else in epochs), failed otherwise."""
        if self.total_steps is not None and self._last_step >= 0:
            done, planned, unit = self._last_step + 1, self.total_steps, "steps"
        else:
            done, planned, unit = (0 if self._last_epoch is None else self._last_epoch + 1), self.total_epochs, "epochs"
        if self.should_stop or planned is None or done >= planned:
            self.finish("completed", timeout=AT_EXIT_TIMEOUT_S)
        else:
            self.finish("failed", error=f"the script exited without run.finish() after {done} of {planned} {unit}", timeout=AT_EXIT_TIMEOUT_S)
