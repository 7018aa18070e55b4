"""The core client: `trainwatch.init()` registers (or attaches to) an operation and returns a Run; `run.log()` queues
one epoch and returns at once; a background sender delivers the queue in batches; `run.finish()` flushes and
completes the operation.

Delivery. The sender posts `{"epochs": [...]}` (at most 10,000 a batch: what the API takes) over one keep-alive
connection, as many epochs as have queued since the last reply, so a fast loop sends few large batches and a slow
one sends each epoch as it comes. When the server cannot be reached (or answers 5xx, or refuses the token) the
sender warns once, moves everything queued to the spool file and retries with a capped backoff (0.25 s doubling to
5 s); once the server answers it delivers the spool, oldest first, then goes back to the queue. Epoch order is kept,
and a batch whose reply was lost is simply posted again: the API replaces an epoch it already has, so each epoch is
stored once.

The server's word. Every metrics reply carries `control` ({"action": "continue"} or the recorded stop decision: a
cancel, the monitor, the run's stop policy); a 409 OPERATION_FINISHED says the operation is over and carries the same
in `error.details`. Either sets `run.should_stop` and `run.control`; after a 409 nothing more is posted and the epochs
it refused are counted in a warning. The training loop only reads an attribute: there is no extra request.

Crashes. An uncaught exception (sys.excepthook) finishes every open run as failed with the exception text; at exit
(atexit) an open run is finished as completed when it was told to stop, ran its planned epochs or had no plan, and as
failed otherwise.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import platform
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
import warnings
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, Union

from . import _wire
from ._http import Api, ServerAway, error_of
from ._spool import Spool

__all__ = ["init", "Run", "TrainwatchError", "TrainwatchWarning", "DEFAULT_URL"]

DEFAULT_URL = "http://127.0.0.1:8000"
VERSION = "0.1.0"
BACKOFF_START_S = 0.25
BACKOFF_CAP_S = 5.0
FINISH_TIMEOUT_S = 30.0
AT_EXIT_TIMEOUT_S = 10.0
MAX_ERROR_CHARS = 10_000  # CompleteOperationInput.error_message maxLength
STOP_FLAGS = ("diverging", "overfitting", "stalled", "plateau")

_logger = logging.getLogger("trainwatch")


class TrainwatchError(RuntimeError):
    """The server refused the run outright (a wrong token, an unknown or finished operation to resume)."""


class TrainwatchWarning(UserWarning):
    """Something the training goes on without: the server is away, the run was stopped, epochs were dropped."""


def _warn(message: str) -> None:
    warnings.warn(message, TrainwatchWarning, stacklevel=3)


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


def init(
    name: Optional[str] = None,
    config: Optional[Mapping[str, Any]] = None,
    total_epochs: Optional[int] = None,
    url: Optional[str] = None,
    token: Optional[str] = None,
    resume: Optional[str] = None,
    stop_policy: Any = None,
    *,
    metadata: Optional[Mapping[str, Any]] = None,
    operation_type: str = "training",
    spool_dir: Optional[str] = None,
    timeout: float = 5.0,
) -> "Run":
    """Registers an operation for this training and returns its Run.

    url / token default to TRAINWATCH_URL (else http://127.0.0.1:8000) and TRAINWATCH_TOKEN. `resume=<operation_id>`
    continues that operation instead (after a restart; re-posted epochs replace the stored ones), and so does
    TRAINWATCH_OPERATION_ID when it is set (a training Trainwatch started itself). `stop_policy` asks the server to
    stop the run when its judgement raises one of the flags: {"on": ["diverging", "overfitting", "stalled",
    "plateau"], "min_epochs": 5}.

    An unreachable server does not raise: the run warns, spools its epochs and registers once the server answers.
    A refusal does: ValueError for a bad argument the server names, TrainwatchError for a wrong token or an
    operation to resume that is unknown or already finished.
    """
    url = url or os.environ.get("TRAINWATCH_URL") or DEFAULT_URL
    token = token or os.environ.get("TRAINWATCH_TOKEN") or None
    attach = resume or os.environ.get("TRAINWATCH_OPERATION_ID") or None
    if total_epochs is not None:
        total_epochs = _wire.check_epoch(total_epochs)
        if total_epochs < 1:
            raise ValueError("trainwatch: total_epochs must be ≥ 1")
    body: Optional[Dict[str, Any]] = None
    if not attach:
        body = {"operation_type": operation_type}
        if name is not None:
            body["name"] = str(name)
        if total_epochs is not None:
            body["total_epochs_planned"] = total_epochs
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
    run = Run(url, token, attach, body, name=name, total_epochs=total_epochs, spool_dir=spool_dir)
    run._start(timeout)
    return run


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
        spool_dir: Optional[str] = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.name = name
        self.total_epochs = total_epochs
        self.operation_id: Optional[str] = operation_id
        #: True once the server said stop (a cancel, the monitor, the stop policy) or that the operation is over.
        self.should_stop = False
        #: The server's last word: {"action": "continue"} or the stop decision (reason, checkpoint_epoch, decided_by …).
        self.control: Optional[Dict[str, Any]] = None
        self._token = token
        self._register = register
        self._spool_dir = spool_dir or os.path.join(tempfile.gettempdir(), "trainwatch-spool")
        self._queue: Deque[str] = collections.deque()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._last_epoch: Optional[int] = None
        self._last_log_t = time.perf_counter()
        self._finishing: Optional[Dict[str, Any]] = None
        self._finished = False
        self._closed = False  # the sender gave up posting: the operation is over (409) or unknown (404)
        self._dropped = 0
        self._dropped_warned = 0
        self._warned: set = set()
        self._away: Optional[str] = None  # why the server is not answering, while it is not
        self._retry_at = 0.0
        self._backoff = BACKOFF_START_S
        self._max_batch = _wire.MAX_EPOCHS_PER_BATCH
        self._inflight = 0  # epochs taken from the queue for the request under way
        self._count_lock = threading.Lock()
        self._spool: Optional[Spool] = None
        self._spooling = False
        self.delivered = 0  #: epochs the server has acknowledged
        self.rejected = 0  #: epochs the server refused as invalid (400), each in a warning

    def __repr__(self) -> str:
        return f"<trainwatch.Run {self.operation_id or '(not registered yet)'} at {self.url}{' stop' if self.should_stop else ''}>"

    # --- the training side: cheap, never touches the network ---------------------------------------------------

    def log(self, epoch: Optional[int] = None, **metrics: Any) -> None:
        """Queues one epoch and returns at once.

        Standard fields: train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration (seconds; by
        default the time since the previous log), timestamp (default now); any other keyword is a custom numeric
        metric. NaN and ±Infinity are data (a diverged loss). `epoch` defaults to the previous one + 1, from 0.
        Raises ValueError naming the key for a value that is not a number (or None) or a name the API refuses.
        """
        now = time.perf_counter()
        e = (0 if self._last_epoch is None else self._last_epoch + 1) if epoch is None else _wire.check_epoch(epoch)
        if "duration" not in metrics:
            metrics["duration"] = now - self._last_log_t
        line = _wire.encode_epoch(e, metrics)
        self._last_epoch = e
        self._last_log_t = now
        if self._finishing is not None or self._closed:
            self._dropped += 1
            if self._finishing is not None and "after-finish" not in self._warned:
                self._warned.add("after-finish")
                _warn(f"trainwatch: run.log() after run.finish() on {self.operation_id}: epoch {e} dropped")
            return
        self._queue.append(line)
        if not self._wake.is_set():  # set() takes a lock and notifies: a quarter of log()'s time when done every call
            self._wake.set()

    @property
    def pending(self) -> int:
        """Epochs logged but not yet acknowledged by the server (queued, in flight or spooled)."""
        with self._count_lock:
            return len(self._queue) + self._inflight + (len(self._spool) if self._spool is not None else 0)

    @property
    def spool_path(self) -> Optional[str]:
        return self._spool.path if self._spool is not None else None

    def finish(self, status: str = "completed", error: Optional[str] = None, result: Optional[Mapping[str, Any]] = None, timeout: float = FINISH_TIMEOUT_S) -> bool:
        """Delivers what is queued (waiting at most `timeout` seconds), then completes the operation with `status`
        ("completed", "failed" with `error`, or "cancelled"). Returns True when everything arrived; otherwise warns
        with what is left (the spool file keeps it for `init(resume=...)`). A second call does nothing."""
        if status not in ("completed", "failed", "cancelled"):
            raise ValueError(f"trainwatch: finish status must be completed, failed or cancelled, got {status!r}")
        if self._finishing is not None:
            return self._done.wait(0) and not self.pending
        body: Dict[str, Any] = {"status": status}
        if error is not None:
            text = str(error)
            body["error_message"] = text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
        elif status == "failed":
            body["error_message"] = "failed"
        if result is not None:
            body["result"] = dict(result)
        self._finishing = body
        _live.discard(self)
        self._wake.set()
        done = self._done.wait(timeout)
        self._finished = True
        if self._dropped > self._dropped_warned:
            _warn(f"trainwatch: {self._dropped - self._dropped_warned} epoch(s) logged after the operation {self.operation_id} was over were dropped")
            self._dropped_warned = self._dropped
        if not done:
            left = self.pending
            where = f"; they are kept in {self.spool_path} for trainwatch.init(resume={self.operation_id!r})" if self.spool_path and self.operation_id else ""
            _warn(f"trainwatch: the server at {self.url} did not take the run's end within {timeout:g} s ({self._away or 'busy'}): {left} epoch(s) undelivered{where}")
        return done and not self.pending

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish("completed")
        else:
            self.finish("failed", error=_exception_text(exc_type, exc, tb))

    # --- start ------------------------------------------------------------------------------------------------

    def _start(self, timeout: float) -> None:
        api = Api(self.url, self._token, timeout=timeout)
        try:
            if self.operation_id is None:
                self._register_now(api)
            else:
                self._check_attach(api)
        except ServerAway as e:
            self._went_away(str(e))
        finally:
            api.close()
        if self.operation_id is not None:
            self._open_spool(adopt=True)
        _live.add(self)
        _install_hooks()
        self._thread = threading.Thread(target=self._sender, name=f"trainwatch-sender-{self.operation_id or 'pending'}", daemon=True)
        self._thread.start()

    def _register_now(self, api: Api) -> None:
        status, env = api.request("POST", "/operations", _wire.dumps(self._register))
        if status == 201:
            self.operation_id = env["data"]["operation_id"]
            return
        err = error_of(env, status)
        if status == 400:
            raise ValueError(f"trainwatch: the server refused the run: {err.get('message')}")
        if status >= 500:
            raise ServerAway(f"HTTP {status} {err.get('code')}")
        raise TrainwatchError(f"trainwatch: POST {self.url}/api/v1/operations → {status} {err.get('code')}: {err.get('message')}")

    def _check_attach(self, api: Api) -> None:
        status, env = api.request("GET", f"/operations/{self.operation_id}")
        if status == 200:
            st = env["data"]["status"]
            if st in ("completed", "failed", "cancelled"):
                raise TrainwatchError(f"trainwatch: operation {self.operation_id} is already {st}; a finished operation takes no more epochs")
            if env["data"].get("control"):
                self._take_control(env["data"]["control"])
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

    def _open_spool(self, adopt: bool = False) -> Spool:
        if self._spool is None:
            key = self.operation_id or f"unregistered-{uuid.uuid4().hex[:12]}"
            self._spool = Spool(os.path.join(self._spool_dir, f"{key}.jsonl"))
            if adopt and self._spool.adopt():
                self._spooling = True
                _logger.info("trainwatch: delivering %d epoch(s) a previous run left in %s", len(self._spool), self._spool.path)
        return self._spool

    # --- the sender thread --------------------------------------------------------------------------------------

    def _sender(self) -> None:
        api = Api(self.url, self._token)
        try:
            while True:
                wait = None
                if self._away is not None:
                    wait = max(0.0, self._retry_at - time.monotonic())
                self._wake.wait(wait)
                self._wake.clear()
                try:
                    if self._pump(api):
                        break
                except Exception as e:  # a bug here must be seen, and must not stop delivery for good
                    self._went_away(f"client error {type(e).__name__}: {e}")
                    if "bug" not in self._warned:
                        self._warned.add("bug")
                        _warn("trainwatch: sender error (retrying):\n" + traceback.format_exc())
        finally:
            api.close()
            self._done.set()

    def _pump(self, api: Api) -> bool:
        """Delivers what it can; True once the run is over (finished, or nothing more can be posted)."""
        if self._closed:
            self._queue.clear()
            return self._finishing is not None
        if self._spooling:
            self._to_spool()
        if self._away is not None and time.monotonic() < self._retry_at:
            return False
        if self.operation_id is None:
            try:
                self._register_now(api)
            except ServerAway as e:
                return self._went_away(str(e))
            except (ValueError, TrainwatchError) as e:
                _warn(f"{e}; the run goes on unwatched")
                self._close_down()
                return self._finishing is not None
            self._back()
        while self._spooling:
            lines, token = self._spool.read(self._max_batch)
            if not lines:
                if self._queue:
                    self._to_spool()
                    continue
                self._spooling = False
                break
            if not self._post(api, lines):
                return self._closed and self._finishing is not None
            self._spool.advance(token, len(lines))
        while self._queue:
            with self._count_lock:  # taken and counted as in flight at once: `pending` never dips below the truth
                lines = self._take(self._max_batch)
                self._inflight = len(lines)
            if not self._post(api, lines):
                if not self._closed:
                    self._to_spool(lines)
                self._inflight = 0
                return self._closed and self._finishing is not None
            self._inflight = 0
        if self._finishing is None:
            return False
        return self._complete(api)

    def _take(self, n: int) -> List[str]:
        out: List[str] = []
        q = self._queue
        try:
            while len(out) < n:
                out.append(q.popleft())
        except IndexError:
            pass
        return out

    def _to_spool(self, first: Sequence[str] = ()) -> None:
        with self._count_lock:
            lines = list(first) + self._take(1 << 62)
            if not lines:
                return
            spool = self._open_spool()
            spool.append(lines)
            self._spooling = True
        if spool.write_error and "spool-write" not in self._warned:
            self._warned.add("spool-write")
            _warn(f"trainwatch: cannot write the spool file {spool.path} ({spool.write_error}); undelivered epochs are held in memory")

    def _post(self, api: Api, lines: List[str]) -> bool:
        """Posts one batch; True when the server stored it (or refused it as invalid: nothing to retry)."""
        try:
            status, env = api.request("POST", f"/operations/{self.operation_id}/metrics", _wire.batch_body(lines))
        except ServerAway as e:
            return self._went_away(str(e))
        if 200 <= status < 300:
            data = (env or {}).get("data") or {}
            if "control" in data:
                self._take_control(data["control"])  # before the count: whoever sees the epoch delivered sees its reply
            self.delivered += len(lines)
            self._back()
            return True
        err = error_of(env, status)
        code = err.get("code")
        if status == 409 and code == "OPERATION_FINISHED":
            details = err.get("details") or {}
            st = details.get("status", "finished")
            self._take_control(details.get("control") or {"action": "stop", "reason": f"operation is {st}"})
            self._dropped += len(lines) + self._close_down()
            self._dropped_warned = self._dropped
            _warn(f"trainwatch: operation {self.operation_id} is {st} ({(self.control or {}).get('reason', '')}): "
                  f"{self._dropped} epoch(s) it refused were dropped; the training should stop")
            return False
        if status == 404:
            n = len(lines) + self._close_down()
            self._dropped += n
            self._dropped_warned = self._dropped
            _warn(f"trainwatch: {self.url} does not know operation {self.operation_id} ({err.get('message')}); {n} epoch(s) dropped, nothing more is sent")
            return False
        if status == 413 and self._max_batch > 1:
            self._max_batch = max(1, self._max_batch // 2)
            self._away, self._retry_at = None, 0.0
            self._wake.set()  # at once, in halves
            return False
        if status in (401, 403) or status >= 500:
            return self._went_away(f"HTTP {status} {code}: {err.get('message')}")
        # 400 (or another refusal): these epochs will never be taken; say which and go on with the next.
        self.rejected += len(lines)
        _warn(f"trainwatch: the server refused {len(lines)} epoch(s) of {self.operation_id}: {status} {code}: {err.get('message')}")
        return True

    def _complete(self, api: Api) -> bool:
        if self.operation_id is None:
            return True
        try:
            status, env = api.request("POST", f"/operations/{self.operation_id}/complete", _wire.dumps(self._finishing))
        except ServerAway as e:
            self._went_away(str(e))
            return False
        if status >= 500 or status in (401, 403):
            self._went_away(f"HTTP {status}")
            return False
        if status == 409:
            # Finished already: the cancel (or the monitor) that stopped this training got there first.
            if not self.should_stop:
                self._take_control({"action": "stop", "reason": error_of(env, status).get("message")})
        elif status != 200:
            err = error_of(env, status)
            _warn(f"trainwatch: finishing {self.operation_id} failed: {status} {err.get('code')}: {err.get('message')}")
        return True

    def _close_down(self) -> int:
        """Nothing more can be posted: drops what is queued and spooled, returns how many."""
        self._closed = True
        n = len(self._queue)
        self._queue.clear()
        if self._spool is not None:
            n += self._spool.clear()
        self._spooling = False
        return n

    def _went_away(self, why: str) -> bool:
        first = self._away is None
        self._away = why
        self._spooling = True  # from now on everything queued goes to the spool first, in order
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(BACKOFF_CAP_S, self._backoff * 2)
        if first and "away" not in self._warned:
            self._warned.add("away")
            spool = self._open_spool()
            _warn(f"trainwatch: the server at {self.url} is not answering ({why}); the training goes on, "
                  f"epochs are spooled to {spool.path} and delivered when it is back")
        return False

    def _back(self) -> None:
        if self._away is not None:
            _logger.info("trainwatch: the server at %s answers again", self.url)
        self._away = None
        self._backoff = BACKOFF_START_S

    def _take_control(self, control: Any) -> None:
        if not isinstance(control, dict):
            return
        if control.get("action") == "stop":
            first = not self.should_stop
            self.control = control
            self.should_stop = True
            if first:
                _logger.warning("trainwatch: the server asks this training to stop: %s", control.get("reason"))
        elif not self.should_stop:
            self.control = control

    def _exit(self) -> None:
        """atexit: the script ended without run.finish()."""
        if self.should_stop or self.total_epochs is None or (self._last_epoch is not None and self._last_epoch + 1 >= self.total_epochs):
            self.finish("completed", timeout=AT_EXIT_TIMEOUT_S)
        else:
            done = 0 if self._last_epoch is None else self._last_epoch + 1
            self.finish("failed", error=f"the script exited without run.finish() after {done} of {self.total_epochs} epochs", timeout=AT_EXIT_TIMEOUT_S)


def _exception_text(exc_type, exc, tb) -> str:
    """The exception line first (what a reader wants), then the traceback, cut to what the API keeps."""
    head = "".join(traceback.format_exception_only(exc_type, exc)).strip()
    full = "".join(traceback.format_exception(exc_type, exc, tb)).strip()
    text = f"{head}\n\n{full}"
    return text if len(text) <= MAX_ERROR_CHARS else head[:2000] + "\n\n…" + full[-(MAX_ERROR_CHARS - len(head[:2000]) - 3) :]


# --- process hooks: one set for every open run ----------------------------------------------------------------

_live: "set[Run]" = set()
_hooks_installed = False


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):
        # The traceback first: the person (or a script training's log) reads it at once, not after a network wait.
        previous(exc_type, exc, tb)
        text = _exception_text(exc_type, exc, tb)
        for run in list(_live):
            try:
                run.finish("failed", error=text, timeout=AT_EXIT_TIMEOUT_S)
            except Exception:  # the crash being reported matters more than this one
                pass

    sys.excepthook = excepthook
    atexit.register(_at_exit)


def _at_exit() -> None:
    for run in list(_live):
        try:
            run._exit()
        except Exception:
            pass
