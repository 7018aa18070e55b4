"""The crash hooks: one set per process for every open run. An uncaught exception (sys.excepthook) finishes every open
run as failed with the exception text and failure_code `trainer_error`; SIGTERM and SIGINT (a scheduler's preemption,
a Ctrl-C) finish them as failed with failure_code `terminated` and "stopped by SIGTERM" / "stopped by SIGINT", so the
server tells a preemption from a crash, then the signal has its usual effect (the previous handler runs, or the
default one: SIGTERM ends the process, SIGINT raises KeyboardInterrupt). At exit (atexit) each open run finishes as
its `_exit()` decides (client.py). kill -9 leaves no goodbye: the server's `lost` covers it. A run joins `live` when
it starts and leaves it when it finishes."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import traceback
from typing import Any, Tuple, Type

AT_EXIT_TIMEOUT_S = 10.0
MAX_ERROR_CHARS = 10_000  # CompleteOperationInput.error_message maxLength

#: The failure codes the client reports (the server's CompleteOperationInput.failure_code).
TRAINER_ERROR = "trainer_error"
TERMINATED = "terminated"

#: The runs started and not finished yet (trainwatch.Run objects).
live: "set[Any]" = set()
_installed = False
_signals_installed = False


def exception_text(exc_type, exc, tb) -> str:
    """The exception line first (what a reader wants), then the traceback, cut to what the API keeps."""
    head = "".join(traceback.format_exception_only(exc_type, exc)).strip()
    full = "".join(traceback.format_exception(exc_type, exc, tb)).strip()
    text = f"{head}\n\n{full}"
    return text if len(text) <= MAX_ERROR_CHARS else head[:2000] + "\n\n…" + full[-(MAX_ERROR_CHARS - len(head[:2000]) - 3) :]


def failure_of(exc_type: Type[BaseException], exc, tb) -> Tuple[str, str]:
    """(failure_code, error_message) for an exception that ends a run: a KeyboardInterrupt is a SIGINT's stop
    (terminated), anything else the trainer's error (trainer_error) with its text."""
    if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
        return TERMINATED, "stopped by SIGINT"
    return TRAINER_ERROR, exception_text(exc_type, exc, tb)


def finish_all(code: str, text: str) -> None:
    """Finishes every open run as failed with `code` and `text`; a failure to report never hides the cause."""
    for run in list(live):
        try:
            run.finish("failed", error=text, failure_code=code, timeout=AT_EXIT_TIMEOUT_S)
        except Exception:
            pass


def install() -> None:
    """Chains the excepthook and registers the atexit handler, once per process; the signal handlers once, from the
    main thread (Python installs signal handlers only there)."""
    global _installed
    install_signals()
    if _installed:
        return
    _installed = True
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):
        # The traceback first: the person (or a script training's log) reads it at once, not after a network wait.
        previous(exc_type, exc, tb)
        finish_all(*failure_of(exc_type, exc, tb))

    sys.excepthook = excepthook
    atexit.register(at_exit)


def install_signals() -> None:
    """SIGTERM and SIGINT handlers that finish the open runs (terminated), then chain to the handler before them."""
    global _signals_installed
    if _signals_installed or threading.current_thread() is not threading.main_thread():
        return
    _signals_installed = True
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            _chain(sig, signal.getsignal(sig))
        except (ValueError, OSError):  # an embedded interpreter that does not let us: no goodbye, the server's lost
            pass


def _chain(sig: signal.Signals, previous: Any) -> None:
    name = sig.name

    def handler(signum, frame):
        finish_all(TERMINATED, f"stopped by {name}")
        if callable(previous):
            previous(signum, frame)  # SIGINT's default_int_handler raises KeyboardInterrupt here
        elif previous == signal.SIG_IGN:
            return
        else:
            # SIG_DFL (or a handler installed outside Python): the default action, as if we had never been here.
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)

    signal.signal(sig, handler)


def at_exit() -> None:
    for run in list(live):
        try:
            run._exit()
        except Exception:
            pass
