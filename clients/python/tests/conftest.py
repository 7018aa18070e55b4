"""Fixtures: a real Trainwatch server process (tests/server.py) shared by the session, one of a test's own for tests
that stop it, the environment every test starts from, and helpers to wait for a condition (never a fixed sleep
before an assertion) and to run a script in a fresh interpreter."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict

import pytest

from server import Server  # noqa: E402  (tests/ is on sys.path)


def until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition", interval: float = 0.02) -> Any:
    """Polls `check` until it returns something truthy; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


def started(s: Server) -> Server:
    try:
        return s.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


def require(module: str):
    """Imports a framework the test needs; a missing one fails the test saying so (never a silent skip)."""
    try:
        return importlib.import_module(module)
    except Exception as e:  # ImportError, or a broken install
        pytest.fail(f"{module} cannot be imported ({type(e).__name__}: {e}); .ci/run installs it from the pip mirror", pytrace=False)


@pytest.fixture(scope="session")
def server():
    s = started(Server())
    yield s
    s.close()


@pytest.fixture()
def own_server():
    """A server of the test's own, for tests that stop it."""
    s = started(Server())
    yield s
    s.close()


# The servers the step tests run against: the stand-in of the steps contract (tests/fake_server.py) and the real one
# (TRAINWATCH_STEP_SERVERS=fake or =real picks one).
STEP_SERVERS = os.environ.get("TRAINWATCH_STEP_SERVERS", "fake,real").split(",")


@pytest.fixture(params=STEP_SERVERS)
def step_server(request, server, monkeypatch):
    """A server that takes steps, and TRAINWATCH_URL pointing at it."""
    if request.param == "real":
        yield server
        return
    from fake_server import FakeServer

    fake = FakeServer().start()
    monkeypatch.setenv("TRAINWATCH_URL", fake.url)
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def _env(server, monkeypatch, tmp_path):
    """Every test talks to the session server unless it says otherwise, and spools into its own folder."""
    monkeypatch.setenv("TRAINWATCH_URL", server.url)
    monkeypatch.delenv("TRAINWATCH_TOKEN", raising=False)
    monkeypatch.delenv("TRAINWATCH_OPERATION_ID", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield


def run_script(code: str, env: Dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter (for crashes and exits) that imports trainwatch as this one does."""
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=timeout)
