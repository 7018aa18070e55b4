"""The crash hooks: one set per process for every open run. An uncaught exception (sys.excepthook) finishes every open
run as failed with the exception text; at exit (atexit) each open run finishes as its `_exit()` decides (client.py).
A run joins `live` when it starts and leaves it when it finishes."""

from __future__ import annotations

import atexit
import sys
import traceback
from typing import Any

AT_EXIT_TIMEOUT_S = 10.0
MAX_ERROR_CHARS = 10_000  # CompleteOperationInput.error_message maxLength

#: The runs started and not finished yet (trainwatch.Run objects).
live: "set[Any]" = set()
_installed = False


def exception_text(exc_type, exc, tb) -> str:
    """The exception line first (what a reader wants), then the traceback, cut to what the API keeps."""
    head = "".join(traceback.format_exception_only(exc_type, exc)).strip()
    full = "".join(traceback.format_exception(exc_type, exc, tb)).strip()
    text = f"{head}\n\n{full}"
    return text if len(text) <= MAX_ERROR_CHARS else head[:2000] + "\n\n…" + full[-(MAX_ERROR_CHARS - len(head[:2000]) - 3) :]


def install() -> None:
    """Chains the excepthook and registers the atexit handler, once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):
        # The traceback first: the person (or a script training's log) reads it at once, not after a network wait.
        previous(exc_type, exc, tb)
        text = exception_text(exc_type, exc, tb)
        for run in list(live):
            try:
                run.finish("failed", error=text, timeout=AT_EXIT_TIMEOUT_S)
            except Exception:  # the crash being reported matters more than this one
                pass

    sys.excepthook = excepthook
    atexit.register(at_exit)


def at_exit() -> None:
    for run in list(live):
        try:
            run._exit()
        except Exception:
            pass
