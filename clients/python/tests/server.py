"""A real Trainwatch server process for the Python tests and bench/python_client.py: `bun run src/server.ts` on a
free port (or a given one) with a temporary database, which can be stopped (SIGKILL by default: no goodbye) and
started again on the same port and database, plus a tiny urllib client to read it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional

# The repository whose server runs; TRAINWATCH_SERVER_ROOT points at another checkout (a branch's, to try this client
# against a server that is not merged yet).
ROOT = Path(os.environ.get("TRAINWATCH_SERVER_ROOT") or Path(__file__).resolve().parents[3])
LISTENING = re.compile(r"trainwatch listening on (http://\S+)")


def bun() -> str:
    local = ROOT / "node_modules" / ".bin" / "bun"
    if local.exists():
        return str(local)
    found = shutil.which("bun")
    if not found:
        raise RuntimeError(f"no bun: neither {local} (run `npm ci` in {ROOT}) nor bun on PATH")
    return found


class ApiReader:
    """The tiny urllib client the tests read a server with (this one, or tests/fake_server.py's)."""

    url = ""
    token: Optional[str] = None

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """One API call; returns {"status": code, **envelope}."""
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/api/v1{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                return {"status": res.status, **json.loads(res.read())}
        except urllib.error.HTTPError as e:
            return {"status": e.code, **json.loads(e.read() or b"{}")}

    def operation(self, op_id: str) -> Dict[str, Any]:
        return self.call("GET", f"/operations/{op_id}")["data"]

    def epochs(self, op_id: str) -> list:
        return self.call("GET", f"/operations/{op_id}/metrics")["data"]["metrics"]["epochs"]

    def steps(self, op_id: str) -> list:
        """Every stored step, oldest first (read page by page with the `since_step` cursor)."""
        out: list = []
        path = f"/operations/{op_id}/steps"
        while True:
            page = self.call("GET", path if not out else f"{path}?since_step={out[-1]['step']}")["data"]["steps"]
            if not page:
                return out
            out.extend(page)


class Server(ApiReader):
    """One server process; `stop()` and `start()` again keep its port and database."""

    def __init__(self, token: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="trainwatch-server-")
        self.token = token
        self.env = dict(env or {})  # extra variables (short liveness limits, say)
        self.port = 0
        self.url = ""
        self.proc: Optional[subprocess.Popen] = None
        self.output: list = []

    def start(self, timeout: float = 60.0) -> "Server":
        env = dict(os.environ)
        for k in ("TRAINWATCH_URL", "TRAINWATCH_OPERATION_ID", "TRAINWATCH_TOKEN"):
            env.pop(k, None)
        env.update(
            PORT=str(self.port),
            HOST="127.0.0.1",
            TRAINWATCH_DB=os.path.join(self.dir, "tw.db"),
            TRAINWATCH_MODELS_DIR=os.path.join(self.dir, "models"),
            TRAINWATCH_DATA_DIR=os.path.join(self.dir, "data"),
        )
        if self.token:
            env["TRAINWATCH_TOKEN"] = self.token
        env.update(self.env)
        self.proc = subprocess.Popen([bun(), "run", "src/server.ts"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        found = threading.Event()

        def read(proc=self.proc):
            for line in proc.stdout:
                self.output.append(line)
                m = LISTENING.search(line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    self.port = int(self.url.rsplit(":", 1)[1])
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Trainwatch server did not start:\n" + "".join(self.output[-30:]))
        return self

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.proc = None

    def close(self) -> None:
        self.stop(signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)
