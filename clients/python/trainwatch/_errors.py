"""What the client raises and warns: shared by the run's public side (client.py) and its sender (_sender.py)."""

from __future__ import annotations

import warnings


class TrainwatchError(RuntimeError):
    """The server refused the run outright (a wrong token, an unknown or finished operation to resume)."""


class TrainwatchWarning(UserWarning):
    """Something the training goes on without: the server is away, the run was stopped, epochs were dropped."""


# Named where the public API imports them from (trainwatch.client, re-exported by trainwatch), as tracebacks show them.
TrainwatchError.__module__ = "trainwatch.client"
TrainwatchWarning.__module__ = "trainwatch.client"


def warn(message: str) -> None:
    """A TrainwatchWarning attributed to the caller of the client function that calls this (the training script)."""
    warnings.warn(message, TrainwatchWarning, stacklevel=3)
