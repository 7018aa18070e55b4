"""The sender: one run's delivery state machine, on a thread of its own. The run's `log()` appends encoded rows
(epochs and steps, _wire.py) to `queue`; the sender takes what has queued and posts it.

Delivery. Epochs go to POST …/metrics as `{"epochs": [...]}`, steps to POST …/steps as `{"steps": [...]}`, over one
keep-alive connection, at most 10,000 rows a batch (what the API takes), in the order they were logged. An epoch
wakes the sender at once (a slow loop sends each epoch as it comes). Steps come at step rate and are batched
(`post_due`): a post when 1,000 rows wait (`log()` wakes the sender then) or 0.5 s after the last post, whichever
comes first, so a loop of 100 steps a second makes two posts a second of about 50 rows. When the server cannot be
reached (or answers 5xx, or refuses the token) the sender warns once, moves everything queued to the spool file and
retries with a capped backoff (0.25 s doubling to 5 s); once the server answers it delivers the spool, oldest first,
then goes back to the queue. Order is kept, and a batch whose reply was lost is simply posted again: the API replaces
an epoch or a step it already has, so each is stored once. A run registered while the server was away is registered
by the sender once it answers.

The server's word. Every metrics and steps reply carries `control` ({"action": "continue"} or the recorded stop
decision: a cancel, the monitor, the run's stop policy); a 409 OPERATION_FINISHED says the operation is over and
carries the same in `error.details`. Either sets `should_stop` and `control` here (the run shows them); after a 409
nothing more is posted and the rows it refused are counted in a warning. A cancelled operation still takes the epoch
that was in progress when the cancel came (and a step run that epoch's steps): the epoch a loop finishes after the
stop arrives with a 200 carrying the stop, so it is stored and nothing is dropped; only an epoch begun later is a 409. When no reply came for `poll_s` (1 s: a loop
that logs rarely, or not at all during a long evaluation), the sender reads the operation (GET) for its control, so
a stop is heard within about a second whatever the step rate.

States: delivering the queue; away (spooling, retrying at `_retry_at`); delivering the spool; closed (the operation is
over or unknown: nothing more is posted); done (`finishing` was set and the operation completed, or closed).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import traceback
import uuid
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence

from . import _wire
from ._errors import TrainwatchError
from ._errors import warn as _warn
from ._http import Api, ServerAway, error_of
from ._spool import Spool

BACKOFF_START_S = 0.25
BACKOFF_CAP_S = 5.0
FLUSH_S = 0.5  # steps are posted at most this long after the last post …
BATCH_ROWS = 1000  # … or as soon as this many rows wait
POLL_S = 1.0  # with no reply for this long, the sender reads the operation's control
FINISHED = ("completed", "failed", "cancelled")

_logger = logging.getLogger("trainwatch")


def post_due(now: float, last_post: float, queued: int, flush_s: float = FLUSH_S, batch_rows: int = BATCH_ROWS) -> Optional[float]:
    """The batching rule for steps: seconds until the `queued` rows are due to be posted (0: now), None when nothing
    is queued. Due when `batch_rows` wait (default 1,000), or `flush_s` (default 0.5 s) after the last post."""
    if queued <= 0:
        return None
    if queued >= batch_rows:
        return 0.0
    return max(0.0, last_post + flush_s - now)


def _noun(lines: Sequence[str]) -> str:
    return "step(s)" if lines and _wire.kind(lines[0]) == "s" else "epoch(s)"


class Sender:
    """Delivers one run's epochs and steps to operation `operation_id` at `url`; with no id yet, registers it with `register`
    (the POST /operations body) first. Undelivered rows wait in a spool file under `spool_dir`. `clock` (monotonic
    seconds) times the batching, the backoff and the control poll."""

    def __init__(
        self,
        url: str,
        token: Optional[str],
        operation_id: Optional[str],
        register: Optional[Dict[str, Any]],
        spool_dir: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.operation_id: Optional[str] = operation_id
        #: True once the server said stop (a cancel, the monitor, the stop policy) or that the operation is over.
        self.should_stop = False
        #: The server's last word: {"action": "continue"} or the stop decision (reason, checkpoint_epoch, decided_by …).
        self.control: Optional[Dict[str, Any]] = None
        #: Rows logged and not yet taken: an epoch as its encoded line, a step as (step, epoch, metrics, time.time())
        #: that the sender encodes. `log()` appends, and sets `wake` for an epoch or a full batch.
        self.queue: Deque[str] = collections.deque()
        self.wake = threading.Event()
        #: Set once the sender has stopped: the run's end delivered, or nothing more could be.
        self.done = threading.Event()
        self.thread: Optional[threading.Thread] = None
        #: The POST /operations/{id}/complete body, once the run asked to finish.
        self.finishing: Optional[Dict[str, Any]] = None
        self.closed = False  # the sender gave up posting: the operation is over (409) or unknown (404)
        self.dropped = 0
        self.dropped_warned = 0
        self.away: Optional[str] = None  # why the server is not answering, while it is not
        self.delivered = 0  #: rows the server has acknowledged
        self.rejected = 0  #: rows the server refused as invalid (400), each batch in a warning
        self.flush_s = FLUSH_S
        self.batch_rows = BATCH_ROWS
        self.poll_s = POLL_S
        self.posts = 0  #: requests that carried rows (a bench counts them)
        self.epochs_logged = 0  #: epochs `log()` queued (only it writes this; the sender counts what it took)
        self._epochs_taken = 0
        self._clock = clock
        self._last_post = clock()
        self._last_reply = clock()
        self._token = token
        self._register = register
        self._spool_dir = spool_dir
        self._warned: set = set()
        self._retry_at = 0.0
        self._backoff = BACKOFF_START_S
        self._max_batch = _wire.MAX_EPOCHS_PER_BATCH
        self._inflight = 0  # rows taken from the queue for the request under way
        self._count_lock = threading.Lock()
        self._spool: Optional[Spool] = None
        self._spooling = False
        self._last_row: Optional[tuple] = None  # the last step encoded: (step, epoch, metrics)
        self._last_line = ""

    # --- what the run asks ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"trainwatch-sender-{self.operation_id or 'pending'}", daemon=True)
        self.thread.start()

    def pending(self) -> int:
        """Rows logged but not yet acknowledged by the server (queued, in flight or spooled)."""
        with self._count_lock:
            return len(self.queue) + self._inflight + (len(self._spool) if self._spool is not None else 0)

    @property
    def spool_path(self) -> Optional[str]:
        return self._spool.path if self._spool is not None else None

    def finish(self, body: Dict[str, Any], timeout: float) -> bool:
        """Delivers what is left, then completes the operation with `body`; True when that happened within `timeout`."""
        self.finishing = body
        self.wake.set()
        return self.done.wait(timeout)

    def unwarned_drops(self) -> int:
        """Rows dropped since the last warning that counted them; they count as warned now."""
        n = self.dropped - self.dropped_warned
        self.dropped_warned = self.dropped
        return n

    def register_now(self, api: Api) -> None:
        """POST /operations: the run's operation id, or ValueError (a bad argument), TrainwatchError (a refusal),
        ServerAway (the server is away or failing)."""
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

    def open_spool(self, adopt: bool = False) -> Spool:
        """The run's spool file; with `adopt`, one a previous process left for this operation is delivered first."""
        if self._spool is None:
            key = self.operation_id or f"unregistered-{uuid.uuid4().hex[:12]}"
            self._spool = Spool(os.path.join(self._spool_dir, f"{key}.jsonl"))
            if adopt and self._spool.adopt():
                self._spooling = True
                _logger.info("trainwatch: delivering %d row(s) a previous run left in %s", len(self._spool), self._spool.path)
        return self._spool

    def take_control(self, control: Any) -> None:
        """The server's word: a stop is kept (the first one logged); anything else only while no stop was heard."""
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

    def went_away(self, why: str) -> bool:
        """The server did not answer: spool from now on, retry after the backoff, warn the first time. Returns False."""
        first = self.away is None
        self.away = why
        self._spooling = True  # from now on everything queued goes to the spool first, in order
        self._retry_at = self._clock() + self._backoff
        self._backoff = min(BACKOFF_CAP_S, self._backoff * 2)
        if first and "away" not in self._warned:
            self._warned.add("away")
            spool = self.open_spool()
            _warn(f"trainwatch: the server at {self.url} is not answering ({why}); the training goes on, "
                  f"what it logs is spooled to {spool.path} and delivered when it is back")
        return False

    # --- the thread ---------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        api = Api(self.url, self._token)
        try:
            while True:
                self.wake.wait(self._wait_s())
                self.wake.clear()
                try:
                    if self._pump(api):
                        break
                except Exception as e:  # a bug here must be seen, and must not stop delivery for good
                    self.went_away(f"client error {type(e).__name__}: {e}")
                    if "bug" not in self._warned:
                        self._warned.add("bug")
                        _warn("trainwatch: sender error (retrying):\n" + traceback.format_exc())
        finally:
            api.close()
            self.done.set()

    def _wait_s(self) -> float:
        """How long the thread may sleep: until the retry while away; else until the queued steps are due (or one
        `flush_s` tick: steps queue without waking it) or the control is to be read."""
        now = self._clock()
        if self.away is not None:
            return max(0.0, self._retry_at - now)
        due = post_due(now, self._last_post, len(self.queue), self.flush_s, self.batch_rows)
        wait = self.flush_s if due is None else due
        if self._polling():
            wait = min(wait, max(0.0, self._last_reply + self.poll_s - now))
        return wait

    def _polling(self) -> bool:
        return self.operation_id is not None and not self.closed and self.finishing is None and self.away is None

    def _pump(self, api: Api) -> bool:
        """Delivers what it can; True once the run is over (finished, or nothing more can be posted)."""
        if self.closed:
            self.queue.clear()
            return self.finishing is not None
        if self._spooling:
            self._to_spool()
        if self.away is not None and self._clock() < self._retry_at:
            return False
        if self.operation_id is None:
            try:
                self.register_now(api)
            except ServerAway as e:
                return self.went_away(str(e))
            except (ValueError, TrainwatchError) as e:
                _warn(f"{e}; the run goes on unwatched")
                self._close_down()
                return self.finishing is not None
            self._back()
        while self._spooling:
            lines, token = self._spool.read(self._max_batch, _wire.kind)
            if not lines:
                if self.queue:
                    self._to_spool()
                    continue
                self._spooling = False
                break
            if not self._post(api, lines):
                return self.closed and self.finishing is not None
            self._spool.advance(token, len(lines))
        while self.queue and self._due():
            with self._count_lock:  # taken and counted as in flight at once: `pending` never dips below the truth
                lines = self._take(self._max_batch)
                self._inflight = len(lines)
            if not self._post(api, lines):
                if not self.closed:
                    self._to_spool(lines)
                self._inflight = 0
                return self.closed and self.finishing is not None
            self._inflight = 0
        if self.finishing is None:
            if self._polling() and self._clock() - self._last_reply >= self.poll_s:
                self._poll(api)
            return False
        return self._complete(api)

    def _poll(self, api: Api) -> None:
        """GET the operation for its control: the stop decision when nothing was posted for a while."""
        try:
            status, env = api.request("GET", f"/operations/{self.operation_id}")
        except ServerAway as e:
            self.went_away(str(e))
            return
        self._last_reply = self._clock()
        if status != 200:
            if status >= 500 or status in (401, 403):
                self.went_away(f"HTTP {status}")
            return
        data = (env or {}).get("data") or {}
        st = data.get("status")
        if data.get("control"):
            self.take_control(data["control"])
        if st in FINISHED and not self.should_stop:
            self.take_control({"action": "stop", "reason": f"operation is {st}"})

    def _due(self) -> bool:
        """Whether the queue is to be posted now: the run is finishing, an epoch waits (behind it, steps go first), or
        the steps are due (`post_due`): rows logged while a post was under way wait for the next 0.5 s, not one more
        post each."""
        if self.finishing is not None or self.epochs_logged > self._epochs_taken:
            return True
        return post_due(self._clock(), self._last_post, len(self.queue), self.flush_s, self.batch_rows) == 0.0

    def _take(self, n: int, same_kind: bool = True) -> List[str]:
        """Up to n of the oldest queued rows, encoded; with `same_kind`, only the epochs or only the steps at the front
        (one request's worth). Only this thread pops, so the front it peeks at is the one it takes."""
        out: List[str] = []
        q = self.queue
        if not q:
            return out
        epochs = type(q[0]) is str
        while q and len(out) < n:
            item = q[0]
            if type(item) is str:
                if same_kind and not epochs:
                    break
                out.append(q.popleft())
                self._epochs_taken += 1
            else:
                if same_kind and epochs:
                    break
                self._encode_step(q.popleft(), out)
        return out

    def _encode_step(self, item: tuple, out: List[str]) -> None:
        """Appends a queued step (step, epoch, metrics, time) to `out` as its line. A step logged again is one row with
        both (the later value of a field wins): it replaces the earlier line when that is still in `out`, and is sent
        again whole when it went before (the API replaces a re-posted step)."""
        step, epoch, row, t = item
        last = self._last_row
        same = last is not None and last[0] == step
        if same:
            row = {**last[2], **row}
            if epoch is None:
                epoch = last[1]
        line = _wire.encode_step(step, epoch, row, _wire.iso_now(t))
        if same and out and out[-1] is self._last_line:
            out[-1] = line
        else:
            out.append(line)
        self._last_row = (step, epoch, row)
        self._last_line = line

    def _to_spool(self, first: Sequence[str] = ()) -> None:
        with self._count_lock:
            lines = list(first) + self._take(1 << 62, same_kind=False)
            if not lines:
                return
            spool = self.open_spool()
            spool.append(lines)
            self._spooling = True
        if spool.write_error and "spool-write" not in self._warned:
            self._warned.add("spool-write")
            _warn(f"trainwatch: cannot write the spool file {spool.path} ({spool.write_error}); undelivered rows are held in memory")

    def _post(self, api: Api, lines: List[str]) -> bool:
        """Posts one batch (all epochs or all steps); True when the server stored it (or refused it as invalid: nothing
        to retry)."""
        steps = _wire.kind(lines[0]) == "s"
        path = f"/operations/{self.operation_id}/{'steps' if steps else 'metrics'}"
        self.posts += 1
        try:
            status, env = api.request("POST", path, _wire.steps_body(lines) if steps else _wire.batch_body(lines))
        except ServerAway as e:
            return self.went_away(str(e))
        finally:
            self._last_post = self._clock()
        self._last_reply = self._last_post
        if 200 <= status < 300:
            data = (env or {}).get("data") or {}
            if "control" in data:
                self.take_control(data["control"])  # before the count: whoever sees the row delivered sees its reply
            self.delivered += len(lines)
            self._back()
            return True
        err = error_of(env, status)
        code = err.get("code")
        if status == 409 and code == "OPERATION_FINISHED":
            details = err.get("details") or {}
            st = details.get("status", "finished")
            self.take_control(details.get("control") or {"action": "stop", "reason": f"operation is {st}"})
            self.dropped += len(lines) + self._close_down()
            self.dropped_warned = self.dropped
            _warn(f"trainwatch: operation {self.operation_id} is {st} ({(self.control or {}).get('reason', '')}): "
                  f"{self.dropped} {_noun(lines)} it refused were dropped; the training should stop")
            return False
        if status == 404:
            n = len(lines) + self._close_down()
            self.dropped += n
            self.dropped_warned = self.dropped
            _warn(f"trainwatch: {self.url} does not know operation {self.operation_id} ({err.get('message')}); {n} {_noun(lines)} dropped, nothing more is sent")
            return False
        if status == 413 and self._max_batch > 1:
            self._max_batch = max(1, self._max_batch // 2)
            self.away, self._retry_at = None, 0.0
            self.wake.set()  # at once, in halves
            return False
        if status in (401, 403) or status >= 500:
            return self.went_away(f"HTTP {status} {code}: {err.get('message')}")
        # 400 (or another refusal): these rows will never be taken; say which and go on with the next.
        self.rejected += len(lines)
        _warn(f"trainwatch: the server refused {len(lines)} {_noun(lines)} of {self.operation_id}: {status} {code}: {err.get('message')}")
        return True

    def _complete(self, api: Api) -> bool:
        if self.operation_id is None:
            return True
        try:
            status, env = api.request("POST", f"/operations/{self.operation_id}/complete", _wire.dumps(self.finishing))
        except ServerAway as e:
            self.went_away(str(e))
            return False
        if status >= 500 or status in (401, 403):
            self.went_away(f"HTTP {status}")
            return False
        if status == 409:
            # Finished already: the cancel (or the monitor) that stopped this training got there first.
            if not self.should_stop:
                self.take_control({"action": "stop", "reason": error_of(env, status).get("message")})
        elif status != 200:
            err = error_of(env, status)
            _warn(f"trainwatch: finishing {self.operation_id} failed: {status} {err.get('code')}: {err.get('message')}")
        return True

    def _close_down(self) -> int:
        """Nothing more can be posted: drops what is queued and spooled, returns how many."""
        self.closed = True
        n = len(self.queue)
        self.queue.clear()
        if self._spool is not None:
            n += self._spool.clear()
        self._spooling = False
        return n

    def _back(self) -> None:
        if self.away is not None:
            _logger.info("trainwatch: the server at %s answers again", self.url)
        self.away = None
        self._backoff = BACKOFF_START_S
