"""Liveness of real Python-client scripts against a real server with short limits: the heartbeat thread, kill -9
(stale, then lost), the goodbyes (SIGTERM, SIGINT, an exception) and a loop stuck in a step (hung, not lost), each
alert received by a real webhook receiver (generic and Slack-format, an HTTP server in the test). Every wait is for a
state, with a deadline; nothing sleeps to prove that nothing happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import trainwatch
from conftest import Server, started, until

# Short limits, so a test takes seconds: heartbeat every 0.2 s, stale after 1 s of silence, lost after 3 s; hung past
# max(10 × median, 1.5 × longest gap, 1.5 s) without a row.
LIMITS = {
    "TRAINWATCH_CLIENT_HEARTBEAT": "0.2",
    "TRAINWATCH_STALE_AFTER": "1",
    "TRAINWATCH_LOST_AFTER": "3",
    "TRAINWATCH_HUNG_AFTER": "1.5",
}


class Receiver:
    """A webhook receiver on 127.0.0.1: every POST's path and JSON body, in arrival order; answers 200."""

    def __init__(self) -> None:
        self.bodies: list = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append((self.path, dict(self.headers), json.loads(raw)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def about(self, op_id: str, path: str) -> list:
        """The bodies posted to `path` about operation `op_id` (a generic body names it; a Slack one links to it)."""
        return [b for p, _, b in list(self.bodies) if p == path and op_id in json.dumps(b)]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def quick(receiver):
    """A server of this module's own, with the short limits, alerting to the receiver (generic and Slack)."""
    s = started(Server(env={**LIMITS, "TRAINWATCH_ALERT_WEBHOOK": f"{receiver.url}/hook", "TRAINWATCH_ALERT_SLACK_WEBHOOK": f"{receiver.url}/slack"}))
    yield s
    s.close()


def alert(receiver: Receiver, op_id: str, event: str) -> "tuple[dict, dict]":
    """The generic webhook body of `op_id`'s `event` alert and its Slack message, once both arrived (each once)."""
    body = until(lambda: next((b for b in receiver.about(op_id, "/hook") if b["event"] == event), None), what=f"the {event} alert of {op_id}")
    slack = until(lambda: next((b for b in receiver.about(op_id, "/slack") if body["id"] in json.dumps(b)), None), what=f"the Slack {event} alert")
    assert [b["id"] for b in receiver.about(op_id, "/hook")].count(body["id"]) == 1
    assert body["operation"]["url"].endswith(f"/#/op/{op_id}")
    assert body["operation"]["url"] in json.dumps(slack) and isinstance(slack["text"], str) and slack["blocks"]
    return body, slack


def spawn(code: str, server: Server) -> "tuple[subprocess.Popen, str]":
    """Starts `code` in a fresh interpreter; returns the process and the operation id it prints first."""
    env = dict(os.environ, TRAINWATCH_URL=server.url, PYTHONUNBUFFERED="1")
    env.pop("TRAINWATCH_OPERATION_ID", None)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.getcwd())
    line = proc.stdout.readline().strip()
    if not line.startswith("op_"):
        proc.kill()
        pytest.fail(f"the script printed no operation id: {line!r}\n{proc.stderr.read()}")
    return proc, line


# A training that logs two epochs, prints its id and then waits (heartbeating) until it is stopped.
WAITS = (
    "import time, trainwatch\n"
    "run = trainwatch.init(name='{name}', total_epochs=10)\n"
    "run.log(epoch=0, train_loss=1.0)\n"
    "run.log(epoch=1, train_loss=0.9)\n"
    "print(run.operation_id, flush=True)\n"
    "while True: time.sleep(0.05)\n"
)


def watched(server: Server, op_id: str) -> dict:
    """The operation once its heartbeat made it watched (it then carries `liveness`)."""
    return until(lambda: (lambda op: op if op["liveness"] is not None else None)(server.operation(op_id)), what=f"{op_id} watched")


def test_the_client_heartbeats_at_the_interval_the_server_names(quick, monkeypatch):
    monkeypatch.setenv("TRAINWATCH_URL", quick.url)
    run = trainwatch.init(name="heartbeats")
    until(lambda: run._heartbeat.beats >= 3, what="three heartbeats")
    assert run._heartbeat.interval_s == pytest.approx(0.2)
    op = quick.operation(run.operation_id)
    assert op["status"] == "running" and op["stale"] is False and op["liveness"]["silent_s"] < 1
    assert run.finish() is True
    assert quick.operation(run.operation_id)["status"] == "completed"


def test_kill_9_reads_stale_then_fails_lost_with_the_last_epoch(quick, receiver):
    proc, op_id = spawn(WAITS.format(name="killed"), quick)
    try:
        watched(quick, op_id)
        until(lambda: len(quick.epochs(op_id)) == 2, what="both epochs stored")
    finally:
        proc.kill()  # SIGKILL: no goodbye
        proc.wait(30)
    stale = until(lambda: (lambda op: op if op["stale"] else None)(quick.operation(op_id)), what="stale")
    assert stale["status"] == "running"
    lost = until(lambda: (lambda op: op if op["status"] == "failed" else None)(quick.operation(op_id)), what="lost")
    assert lost["failure_code"] == "lost"
    assert "no heartbeat, epoch or step for" in lost["error_message"] and "its last epoch was 1" in lost["error_message"]
    body, slack = alert(receiver, op_id, "lost")
    assert body["kind"] == "status" and body["failure_code"] == "lost" and "its last epoch was 1" in body["reason"]
    assert "lost" in slack["text"]


@pytest.mark.parametrize("sig, name, code", [(signal.SIGTERM, "SIGTERM", -signal.SIGTERM), (signal.SIGINT, "SIGINT", None)])
def test_a_signal_finishes_the_run_as_terminated_then_has_its_usual_effect(quick, receiver, sig, name, code):
    proc, op_id = spawn(WAITS.format(name=f"stopped by {name}"), quick)
    watched(quick, op_id)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    op = quick.operation(op_id)
    assert op["status"] == "failed" and op["failure_code"] == "terminated", err
    assert op["error_message"] == f"stopped by {name}"
    assert op["trends"]["total_epochs_completed"] == 2
    body, _ = alert(receiver, op_id, "failed")
    assert body["failure_code"] == "terminated" and f"stopped by {name}" in body["reason"]
    if code is not None:
        assert proc.returncode == code  # SIGTERM's default action: the process ends by the signal
    else:
        assert "KeyboardInterrupt" in err and proc.returncode != 0  # SIGINT: Python's KeyboardInterrupt, as without us


def test_a_handler_the_script_had_still_runs_after_the_goodbye(quick):
    code = (
        "import signal, sys, time, trainwatch\n"
        "signal.signal(signal.SIGTERM, lambda s, f: (print('own handler', flush=True), sys.exit(3)))\n"
        "run = trainwatch.init(name='own handler')\n"
        "print(run.operation_id, flush=True)\n"
        "while True: time.sleep(0.05)\n"
    )
    proc, op_id = spawn(code, quick)
    watched(quick, op_id)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "own handler" in out, err
    op = quick.operation(op_id)
    assert (op["status"], op["failure_code"], op["error_message"]) == ("failed", "terminated", "stopped by SIGTERM")


def test_an_exception_finishes_the_run_as_trainer_error(quick, receiver):
    code = (
        "import trainwatch\n"
        "run = trainwatch.init(name='raises')\n"
        "print(run.operation_id, flush=True)\n"
        "run.log(epoch=0, train_loss=1.0)\n"
        "raise ValueError('bad batch')\n"
    )
    proc, op_id = spawn(code, quick)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "ValueError" in err
    op = quick.operation(op_id)
    assert op["status"] == "failed" and op["failure_code"] == "trainer_error"
    assert op["error_message"].startswith("ValueError: bad batch")
    body, _ = alert(receiver, op_id, "failed")
    assert body["failure_code"] == "trainer_error" and "ValueError: bad batch" in body["reason"]


def test_a_loop_sleeping_in_a_step_while_heartbeating_is_hung_not_lost(quick, receiver):
    code = (
        "import time, trainwatch\n"
        "run = trainwatch.init(name='hangs', system_metrics=0.1)\n"
        "for e in range(6):\n"
        "    run.log(epoch=e, train_loss=1.0 / (e + 1))\n"
        "    time.sleep(0.05)\n"
        "print(run.operation_id, flush=True)\n"
        "time.sleep(600)  # a deadlocked collective: the heartbeat thread goes on\n"
    )
    proc, op_id = spawn(code, quick)
    try:
        watched(quick, op_id)
        hung = until(lambda: (lambda op: op if op["hung"] else None)(quick.operation(op_id)), what="hung")
        assert hung["status"] == "running" and hung["stale"] is False
        analysis = quick.call("GET", f"/operations/{op_id}/analysis")["data"]
        assert analysis["flags"]["hung"] is True and analysis["flags"]["stale"] is False
        live = analysis["liveness"]
        assert live["rows_silent_s"] > live["hung_after_s"] >= 1.5
        assert live["median_interval_s"] is not None and live["longest_gap_s"] >= live["median_interval_s"]
        # Past the lost limit without a row: still running, because the heartbeats arrive.
        late = until(lambda: (lambda op: op if op["liveness"]["rows_silent_s"] > 4 else None)(quick.operation(op_id)), what="4 s without a row")
        assert late["status"] == "running" and late["failure_code"] is None and late["hung"] is True
        # The hung alert cites the utilisation its sampler's first sample (posted at once) showed: no GPU here, so CPU.
        body, _ = alert(receiver, op_id, "hung")
        assert body["kind"] == "flag" and body["reason"].startswith("hung: heartbeats arrive but no epoch or step for")
        assert "CPU" in body["reason"] and "sampled" in body["reason"]
    finally:
        proc.kill()
        proc.wait(30)
