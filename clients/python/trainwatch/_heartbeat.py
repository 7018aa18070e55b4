"""The heartbeat: one run's proof of life, on a thread of its own. It POSTs …/operations/{id}/heartbeat right after
the run is registered and then every `heartbeat_interval_s` the server's reply names (TRAINWATCH_CLIENT_HEARTBEAT on
the server, default 15 s), so the client and the server always agree on the interval. It runs beside the training
loop, not in it: a step or an evaluation that takes an hour still heartbeats, so the server tells a slow run (alive,
maybe `hung`) from a dead one (`stale`, then `lost`). It does not go through the row queue (a full queue or a spool
being delivered never delays it), and it has its own connection. While the server is away it keeps trying, with the
sender's capped backoff (0.25 s doubling to 5 s, never past the interval). It stops when the run finishes, or when the
server says the operation is over (409) or unknown (404).
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from ._http import Api, ServerAway

DEFAULT_INTERVAL_S = 15.0  # until the server's first reply says otherwise
BACKOFF_START_S = 0.25
BACKOFF_CAP_S = 5.0
REQUEST_TIMEOUT_S = 10.0


class Heartbeat:
    """Heartbeats for the operation `operation_id()` names (None until a run started while the server was away is
    registered: then it waits) at `url`."""

    def __init__(self, url: str, token: Optional[str], operation_id: Callable[[], Optional[str]]) -> None:
        self._api = Api(url, token, timeout=REQUEST_TIMEOUT_S)
        self._operation_id = operation_id
        self._backoff = BACKOFF_START_S
        self._stop = threading.Event()
        self.thread: Optional[threading.Thread] = None
        #: Seconds between heartbeats: the server's `heartbeat_interval_s`, once it answered.
        self.interval_s = DEFAULT_INTERVAL_S
        self.beats = 0  #: heartbeats the server took
        self.failures = 0  #: attempts that got no answer (the server away) or a 5xx
        #: Why the heartbeat stopped on its own (the operation is over or unknown); None while it runs.
        self.ended: Optional[str] = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="trainwatch-heartbeat", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stops the thread (a heartbeat under way is left to finish, waiting at most `timeout`)."""
        self._stop.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def beat(self) -> Optional[float]:
        """One heartbeat now: seconds until the next one (the interval, or the backoff after a failure), or None
        when the heartbeat should end (the operation is over or unknown)."""
        op_id = self._operation_id()
        if op_id is None:
            return BACKOFF_START_S  # not registered yet: the sender registers it once the server answers
        try:
            status, env = self._api.request("POST", f"/operations/{op_id}/heartbeat", b"{}")
        except ServerAway:
            return self._failed()
        if status == 200:
            self.beats += 1
            self._backoff = BACKOFF_START_S
            data = (env or {}).get("data") or {}
            interval = data.get("heartbeat_interval_s")
            if isinstance(interval, (int, float)) and interval > 0:
                self.interval_s = float(interval)
            return self.interval_s
        if status in (404, 409):
            self.ended = f"HTTP {status}"
            return None
        return self._failed()  # 5xx, 401 (a token being fixed): keep trying

    def _failed(self) -> float:
        self.failures += 1
        wait = min(self._backoff, self.interval_s)
        self._backoff = min(BACKOFF_CAP_S, self._backoff * 2)
        return wait

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.beat()
            except Exception:  # never let the heartbeat take the training down
                wait = self._failed()
            if wait is None:
                break
            self._stop.wait(wait)
        self._api.close()
