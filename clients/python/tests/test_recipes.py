"""Script trainings (issue 13) with a real PyTorch script and this client: the example recipe
(examples/recipes/tiny_torch.py) started through the API, on the server itself and through a GPU host process
(`bun run src/host`, the API on another port). Every epoch arrives; a cancel stops it and leaves no process of its
group; a crash ends it failed with the traceback's last line; bad params and undeclared recipes are 400s naming the
field; the logs route returns what the script printed. Runs in .ci/run's Python stage (CPU torch from the pip mirror)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import require, started, until
from server import ROOT, Server, bun

EXAMPLE = ROOT / "examples" / "recipes"


def recipe_file(tmp_path: Path) -> Path:
    """The example's recipe file, run by this interpreter (the venv with torch and trainwatch)."""
    f = json.loads((EXAMPLE / "trainwatch.recipes.json").read_text())
    for r in f["recipes"]:
        r["command"] = [sys.executable, str(EXAMPLE / "tiny_torch.py")]
        r["cwd"] = str(EXAMPLE)
    path = tmp_path / "recipes.json"
    path.write_text(json.dumps(f))
    return path


def alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def processes_of(op_id: str) -> list:
    """Every live process whose environment names the operation (the script and anything it started)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            env = Path(f"/proc/{p}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"TRAINWATCH_OPERATION_ID={op_id}".encode() in env and alive(int(p)):
            out.append(int(p))
    return out


@pytest.fixture()
def api(tmp_path, monkeypatch):
    """An API whose recipe file is the example's, with a short kill grace."""
    require("torch")
    monkeypatch.setenv("TRAINWATCH_RECIPES", str(recipe_file(tmp_path)))
    monkeypatch.setenv("TRAINWATCH_LOGS_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("TRAINWATCH_KILL_GRACE", "3")
    monkeypatch.setenv("TRAINWATCH_GPUS", "none")
    s = started(Server())
    yield s
    s.close()


class Host:
    """`bun run src/host` on a free port with the example's recipes."""

    def __init__(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("TRAINWATCH_URL", "TRAINWATCH_TOKEN", "TRAINWATCH_OPERATION_ID", "HOST")}
        env.update(
            TRAINWATCH_HOST_PORT="0",
            TRAINWATCH_HOST_DB=str(tmp_path / "host.db"),
            TRAINWATCH_MODELS_DIR=str(tmp_path / "host-models"),
            TRAINWATCH_LOGS_DIR=str(tmp_path / "host-logs"),
            TRAINWATCH_RECIPES=str(recipe_file(tmp_path)),
            TRAINWATCH_KILL_GRACE="3",
            TRAINWATCH_GPUS="none",
        )
        self.proc = subprocess.Popen([bun(), "run", "src/host"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list = []
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        until(lambda: self.url or self.proc.poll() is not None, 60, "the host to listen")
        if not self.url:
            pytest.fail("the host did not start:\n" + "".join(self.output))

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            m = re.search(r"host listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture()
def hosted(tmp_path, monkeypatch):
    """A GPU host process and an API on another port that sends every training to it."""
    require("torch")
    host = Host(tmp_path)
    monkeypatch.setenv("TRAINING_HOST_URL", host.url)
    monkeypatch.setenv("USE_TRAINING_HOST_SERVICE", "true")
    monkeypatch.setenv("TRAINWATCH_RECIPES", str(tmp_path / "none.json"))
    (tmp_path / "none.json").write_text('{"recipes": []}')
    s = started(Server())
    yield s, host
    s.close()
    host.close()


def start(api: Server, params: dict) -> str:
    r = api.call("POST", "/trainings", {"recipe": "tiny-torch", "params": params})
    assert r["status"] == 202, r
    return r["data"]["operation_id"]


def finished(api: Server, op_id: str, timeout: float = 180) -> dict:
    return until(lambda: (lambda o: o if o["status"] in ("completed", "failed", "cancelled") else None)(api.operation(op_id)), timeout, f"{op_id} to finish")


def logs(api: Server, op_id: str) -> str:
    return "\n".join(api.call("GET", f"/operations/{op_id}/logs?tail=500")["data"]["lines"])


def every_epoch_arrives(api: Server, where: str) -> None:
    op_id = start(api, {"epochs": 6, "samples": 256})
    op = finished(api, op_id)
    assert op["status"] == "completed", op
    assert op["metadata"]["location"] == where
    assert [e["epoch"] for e in api.epochs(op_id)] == [0, 1, 2, 3, 4, 5]
    assert op["result"]["device"] == "cpu"
    # The script finished the run itself (run.finish()); its process ends a moment later, and the log says how.
    text = until(lambda: (lambda t: t if "exited with code" in t else None)(logs(api, op_id)), 30, "the log's last line")
    assert "epoch 5: train_loss" in text
    assert "done: 6 epochs" in text
    assert "exited with code 0" in text


def cancel_leaves_nothing(api: Server) -> None:
    op_id = start(api, {"epochs": 1000, "epoch_delay": 0.1, "samples": 256})
    until(lambda: len(api.epochs(op_id)) >= 2, 180, f"{op_id}'s first epochs")
    pids = processes_of(op_id)
    assert pids, "the script runs"
    assert api.call("DELETE", f"/operations/{op_id}")["status"] == 200
    # Both, in one wait: a process on its way out no longer shows its environment (processes_of misses it) a few
    # milliseconds before it stops being alive, so asserting the second after waiting for the first was a race.
    until(lambda: not processes_of(op_id) and not any(alive(p) for p in pids), 30, f"every process of {op_id} to be gone")
    op = finished(api, op_id)
    assert op["status"] == "cancelled"
    text = until(lambda: (lambda t: t if "killed by SIGTERM" in t else None)(logs(api, op_id)), 30, "the log's last line")
    assert "stopping: SIGTERM to process group" in text


def crash_ends_failed(api: Server) -> None:
    op_id = start(api, {"epochs": 10, "crash_at": 2, "samples": 256})
    op = finished(api, op_id)
    assert op["status"] == "failed", op
    assert op["error_message"].rstrip().endswith("RuntimeError: crash_at=2: crashing on purpose at epoch 2")
    assert [e["epoch"] for e in api.epochs(op_id)] == [0, 1]
    assert "Traceback (most recent call last)" in logs(api, op_id)


def refusals(api: Server) -> None:
    for body, field in [
        ({"recipe": "tiny-torch", "params": {"epochs": 0}}, "body.params.epochs"),
        ({"recipe": "tiny-torch", "params": {"device": "tpu"}}, "body.params.device"),
        ({"recipe": "tiny-torch", "params": {"script": "rm -rf /"}}, "body.params.script"),
        ({"recipe": "not-declared", "params": {}}, "body.recipe"),
        ({"recipe": "tiny-torch", "command": ["sh", "-c", "id"]}, "body.command"),
    ]:
        r = api.call("POST", "/trainings", body)
        assert (r["status"], r["error"]["details"]["field"]) == (400, field), (body, r)


class TestOnTheServer:
    def test_every_epoch_arrives_and_the_logs_route_returns_the_output(self, api):
        every_epoch_arrives(api, "local")

    def test_cancel_stops_it_and_leaves_no_process(self, api):
        cancel_leaves_nothing(api)

    def test_a_crash_ends_failed_with_the_tracebacks_last_line(self, api):
        crash_ends_failed(api)

    def test_bad_params_and_undeclared_recipes_are_400s_naming_the_field(self, api):
        refusals(api)


class TestThroughAHostProcess:
    def test_every_epoch_arrives_through_the_relay_and_the_logs_come_from_the_host(self, hosted):
        api, host = hosted
        every_epoch_arrives(api, "host")

    def test_cancel_stops_it_on_the_host_and_leaves_no_process(self, hosted):
        api, _ = hosted
        cancel_leaves_nothing(api)

    def test_a_crash_ends_failed_with_the_tracebacks_last_line(self, hosted):
        api, _ = hosted
        crash_ends_failed(api)

    def test_bad_params_and_undeclared_recipes_are_400s_naming_the_field(self, hosted):
        api, _ = hosted
        refusals(api)
