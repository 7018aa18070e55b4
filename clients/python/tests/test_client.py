"""The core client against a real server: delivery, the wire format, bad input, the server's stop, outages, crashes."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
import warnings

import pytest

import trainwatch
from conftest import Server, run_script, until


def caught(record):
    return [w for w in record if issubclass(w.category, trainwatch.TrainwatchWarning)]


def test_every_epoch_arrives_in_order_with_its_fields(server):
    run = trainwatch.init(name="core", total_epochs=6)
    assert run.operation_id.startswith("op_training_")
    for e in range(6):
        run.log(epoch=e, train_loss=1.0 / (e + 1), val_loss=0.5 + e / 100, train_accuracy=0.5 + e / 20, val_accuracy=0.6, learning_rate=0.1 * 0.9**e, duration=0.25, **{"grad/norm": e * 2})
    assert run.finish() is True
    op = server.operation(run.operation_id)
    assert op["status"] == "completed" and op["name"] == "core" and op["progress"]["total_epochs"] == 6
    assert op["metadata"]["client"].startswith("trainwatch-python/")
    epochs = server.epochs(run.operation_id)
    assert [e["epoch"] for e in epochs] == list(range(6))
    assert epochs[3]["train_loss"] == pytest.approx(0.25)
    assert epochs[3]["learning_rate"] == pytest.approx(0.1 * 0.9**3)
    assert epochs[3]["duration"] == 0.25 and epochs[3]["grad/norm"] == 6
    assert run.delivered == 6 and run.pending == 0


def test_nan_and_infinity_travel_as_the_api_strings(server):
    run = trainwatch.init(name="diverged")
    run.log(train_loss=float("nan"), val_loss=float("inf"), custom_metric=-math.inf, missing=None)
    run.log(train_loss=2.0)  # epoch defaults to the previous + 1
    run.finish()
    first, second = server.epochs(run.operation_id)
    assert (first["epoch"], first["train_loss"], first["val_loss"], first["custom_metric"]) == (0, "NaN", "Infinity", "-Infinity")
    assert first["missing"] is None  # a custom metric with no value this epoch
    assert second["epoch"] == 1 and second["train_loss"] == 2.0 and second["duration"] >= 0  # duration: since the last log


@pytest.mark.parametrize(
    "metrics, named",
    [
        ({"val_loss": "0.3"}, "'val_loss'"),
        ({"my_metric": [1, 2]}, "'my_metric'"),
        ({"flag": True}, "'flag'"),
        ({"bad name": 1.0}, "'bad name'"),
        ({"__proto__": 1.0}, "'__proto__'"),
        ({"duration": -1.0}, "'duration'"),
    ],
)
def test_a_bad_value_raises_a_value_error_naming_the_key(server, metrics, named):
    run = trainwatch.init(name="bad input")
    with pytest.raises(ValueError, match=named):
        run.log(epoch=0, **metrics)
    with pytest.raises(ValueError, match="epoch"):
        run.log(epoch=-1, train_loss=1.0)
    run.log(epoch=0, train_loss=1.0)  # the run is unharmed
    run.finish()
    assert [e["epoch"] for e in server.epochs(run.operation_id)] == [0]


def test_a_bad_stop_policy_is_refused_at_init(server):
    with pytest.raises(ValueError, match="stop_policy"):
        trainwatch.init(name="x", stop_policy={"on": ["exploding"]})


def test_many_epochs_go_in_batches_and_arrive_exactly_once(server):
    run = trainwatch.init(name="batches")
    n = 25_000  # more than one batch of 10,000
    for e in range(n):
        run.log(epoch=e, train_loss=1.0 / (e + 1))
    assert run.finish(timeout=120) is True
    op = server.operation(run.operation_id)
    assert op["trends"]["total_epochs_completed"] == n and op["trends"]["latest_epoch"] == n - 1


def test_delete_sets_should_stop_the_epoch_in_progress_is_kept_and_a_later_one_dropped(server):
    run = trainwatch.init(name="cancel me")
    run.log(epoch=0, train_loss=1.0)
    until(lambda: run.delivered == 1, what="epoch 0 delivered")
    assert run.should_stop is False
    assert server.call("DELETE", f"/operations/{run.operation_id}")["status"] == 200
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run.log(epoch=1, train_loss=0.9)  # in progress at the cancel, logged before hearing it: stored, its reply says stop
        until(lambda: run.should_stop, what="should_stop after the cancel")
        assert run.delivered == 2
        run.log(epoch=2, train_loss=0.8)  # begun after the cancel: refused
        run.finish()
    assert run.control["action"] == "stop" and "cancel" in run.control["reason"]
    msgs = [str(w.message) for w in caught(record)]
    assert any("cancelled" in m and "1 epoch(s) it refused were dropped" in m for m in msgs), msgs
    assert server.operation(run.operation_id)["status"] == "cancelled"
    assert [e["epoch"] for e in server.epochs(run.operation_id)] == [0, 1]


# A script whose epoch 3 is long: it is under way when the test cancels over REST, hears the stop while still training
# (the sender reads the operation's control when nothing was posted for a second), finishes it, logs it and stops.
SLOW_EPOCH_SCRIPT = """
import sys, time, trainwatch
run = trainwatch.init(name="cancelled mid-epoch", total_epochs=10)
print(run.operation_id, flush=True)
for epoch in range(10):
    if epoch == 3:
        print("epoch 3 under way", flush=True)
        deadline = time.monotonic() + 30
        while not run.should_stop:  # the long epoch: it trains until the stop is heard
            if time.monotonic() > deadline:
                sys.exit("the stop never arrived")
            time.sleep(0.05)
    run.log(epoch=epoch, train_loss=1 / (epoch + 1), val_loss=1.5 / (epoch + 1))
    while run.pending:  # a real epoch outlasts the reply's round trip
        time.sleep(0.01)
    if run.should_stop:
        break
print("control", run.control.get("checkpoint_epoch"), flush=True)
run.finish()
"""


def test_a_cancel_mid_epoch_keeps_the_epoch_the_script_finishes_after_it_and_warns_of_nothing_dropped(server):
    proc = subprocess.Popen([sys.executable, "-c", SLOW_EPOCH_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        op_id = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "epoch 3 under way", proc.stderr.read() if proc.poll() is not None else ""
        assert server.call("DELETE", f"/operations/{op_id}", {"reason": "enough", "by": "test"})["status"] == 200
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "dropped" not in err, err
    assert out.split() == ["control", "3"], out  # the stop the script holds advises the epoch it finished after the cancel
    op = server.operation(op_id)
    assert op["status"] == "cancelled" and op["control"]["decided_by"] == "test"
    assert op["control"]["checkpoint_epoch"] == 3
    assert [e["epoch"] for e in server.epochs(op_id)] == [0, 1, 2, 3]
    analysis = server.call("GET", f"/operations/{op_id}/analysis")["data"]
    assert analysis["best_epoch"] == 3 and analysis["epochs_since_improvement"] == 0, analysis
    assert analysis["recommendation"]["checkpoint_epoch"] == 3, analysis["recommendation"]


def test_resume_continues_the_operation_and_replaces_reposted_epochs(server, monkeypatch):
    first = trainwatch.init(name="resumable", total_epochs=5)
    for e in range(3):
        first.log(epoch=e, train_loss=1.0)
    until(lambda: first.delivered == 3, what="3 epochs delivered")
    op_id = first.operation_id  # the process "restarts": this run is never finished
    again = trainwatch.init(resume=op_id)
    for e in range(2, 5):
        again.log(epoch=e, train_loss=0.5)
    again.finish()
    trainwatch.client._live.discard(first)  # (the first process is gone: it must not finish the operation at exit)
    epochs = server.epochs(op_id)
    assert [e["epoch"] for e in epochs] == [0, 1, 2, 3, 4] and epochs[2]["train_loss"] == 0.5
    # TRAINWATCH_OPERATION_ID attaches the same way (a training Trainwatch started sets it).
    op2 = server.call("POST", "/operations", {"operation_type": "training", "name": "started by trainwatch"})["data"]["operation_id"]
    monkeypatch.setenv("TRAINWATCH_OPERATION_ID", op2)
    attached = trainwatch.init(name="ignored")
    assert attached.operation_id == op2
    attached.log(epoch=0, train_loss=1.0)
    attached.finish()
    assert [e["epoch"] for e in server.epochs(op2)] == [0]


def test_resuming_a_finished_or_unknown_operation_is_refused(server):
    run = trainwatch.init(name="done")
    run.finish()
    with pytest.raises(trainwatch.TrainwatchError, match="already completed"):
        trainwatch.init(resume=run.operation_id)
    with pytest.raises(trainwatch.TrainwatchError, match="404"):
        trainwatch.init(resume="op_training_20000101_000000_deadbeef")


def test_a_wrong_token_is_refused_at_init():
    s = Server(token="s3cret").start()
    try:
        with pytest.raises(trainwatch.TrainwatchError, match="401"):
            trainwatch.init(name="x", url=s.url, token="wrong")
        run = trainwatch.init(name="x", url=s.url, token="s3cret")
        run.log(epoch=0, train_loss=1.0)
        assert run.finish() is True
        assert s.epochs(run.operation_id)[0]["train_loss"] == 1.0
    finally:
        s.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_never_raises_warns_once_spools_and_delivers_later(tmp_path):
    s = Server()
    s.port = free_port()  # nothing listens there yet
    url = f"http://127.0.0.1:{s.port}"
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            run = trainwatch.init(name="offline", total_epochs=40, url=url)
            for e in range(20):
                run.log(epoch=e, train_loss=1.0 / (e + 1), val_loss=float("nan") if e == 7 else 0.5)
            logging_s = time.perf_counter() - t0
            until(lambda: run.spool_path and os.path.exists(run.spool_path) and run.pending == 20, what="20 epochs spooled")
            s.start()  # the server comes (back)
            for e in range(20, 40):
                run.log(epoch=e, train_loss=1.0 / (e + 1))
            assert run.finish(timeout=60) is True
        away = [str(w.message) for w in caught(record)]
        assert len(away) == 1 and "not answering" in away[0] and run.spool_path in away[0], away
        assert logging_s < 2.0  # never waiting on the network (init tries once: the port refuses at once)
        assert not os.path.exists(run.spool_path)  # delivered, then removed
        epochs = s.epochs(run.operation_id)
        assert [e["epoch"] for e in epochs] == list(range(40)) and epochs[7]["val_loss"] == "NaN"
        assert s.operation(run.operation_id)["status"] == "completed"
    finally:
        s.close()


def test_server_stopped_for_5_s_mid_run_loses_and_duplicates_nothing(own_server):
    run = trainwatch.init(name="outage", total_epochs=120, url=own_server.url)
    stopped_at = restarted_at = None
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        t_stop = None
        for e in range(120):
            run.log(epoch=e, train_loss=1.0 / (e + 1), val_loss=1.2 / (e + 1))
            if e == 30:
                until(lambda: run.delivered == 31, what="31 epochs delivered before the outage")
                own_server.stop()  # SIGKILL: no goodbye
                stopped_at, t_stop = e, time.monotonic()
            if t_stop is not None and restarted_at is None and time.monotonic() - t_stop >= 5.0:
                own_server.start()
                restarted_at = e
            time.sleep(0.07)  # the "training"
        assert stopped_at == 30 and restarted_at is not None and restarted_at < 119
        assert run.finish(timeout=60) is True
    assert len([w for w in caught(record) if "not answering" in str(w.message)]) == 1
    epochs = own_server.epochs(run.operation_id)
    numbers = [e["epoch"] for e in epochs]
    assert numbers == list(range(120))  # none lost, none twice
    assert own_server.operation(run.operation_id)["trends"]["total_epochs_completed"] == 120
    assert epochs[60]["train_loss"] == pytest.approx(1 / 61)


def test_an_uncaught_exception_finishes_the_run_as_failed_with_its_text(server):
    res = run_script(
        "import trainwatch\n"
        "run = trainwatch.init(name='crashes', total_epochs=10)\n"
        "print(run.operation_id, flush=True)\n"
        "run.log(epoch=0, train_loss=1.0)\n"
        "raise RuntimeError('CUDA out of memory (pretend)')\n",
        {"TRAINWATCH_URL": server.url},
    )
    assert res.returncode == 1 and "RuntimeError" in res.stderr
    op = server.operation(res.stdout.split()[0])
    assert op["status"] == "failed" and op["failure_code"] == "trainer_error"
    assert op["error_message"].startswith("RuntimeError: CUDA out of memory (pretend)") and "Traceback" in op["error_message"]
    assert op["trends"]["total_epochs_completed"] == 1


def test_exiting_without_finish_completes_a_finished_plan_and_fails_a_short_one(server):
    code = (
        "import trainwatch\n"
        "run = trainwatch.init(name='no finish', total_epochs=3)\n"
        "print(run.operation_id, flush=True)\n"
        "for e in range({n}): run.log(epoch=e, train_loss=1.0)\n"
    )
    full = run_script(code.format(n=3), {"TRAINWATCH_URL": server.url})
    short = run_script(code.format(n=1), {"TRAINWATCH_URL": server.url})
    assert full.returncode == 0 and short.returncode == 0, full.stderr + short.stderr
    assert server.operation(full.stdout.split()[0])["status"] == "completed"
    op = server.operation(short.stdout.split()[0])
    assert op["status"] == "failed" and "after 1 of 3 epochs" in op["error_message"]
    assert op["trends"]["total_epochs_completed"] == 1


def _fake_cuda_torch(name: str):
    import types

    cuda = types.SimpleNamespace(is_available=lambda: True, current_device=lambda: 0, get_device_name=lambda i: name)
    return types.SimpleNamespace(cuda=cuda, __version__="2.13.0+cu128")


def test_a_script_on_a_gpu_reports_its_device_name_as_metadata_gpu(server, monkeypatch):
    # A script that has imported torch with CUDA available: a new run carries the GPU in its registration, and a run
    # attached to an operation Trainwatch started (a recipe) adds it with PATCH /operations/{id}/metadata.
    monkeypatch.setitem(__import__("sys").modules, "torch", _fake_cuda_torch("NVIDIA H200"))
    fresh = trainwatch.init(name="on-a-gpu")
    fresh.finish()
    assert server.operation(fresh.operation_id)["metadata"]["gpu"] == "NVIDIA H200"

    started = server.call("POST", "/operations", {"operation_type": "training", "name": "started-by-trainwatch"})["data"]
    attached = trainwatch.init(resume=started["operation_id"])
    attached.log(train_loss=1.0)
    attached.finish()
    meta = server.operation(started["operation_id"])["metadata"]
    assert (meta["gpu"], meta["torch"]) == ("NVIDIA H200", "2.13.0+cu128")


def test_without_cuda_no_gpu_is_reported(server, monkeypatch):
    import types

    cpu = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False), __version__="2.13.0+cpu")
    monkeypatch.setitem(__import__("sys").modules, "torch", cpu)
    run = trainwatch.init(name="on-a-cpu")
    run.finish()
    assert "gpu" not in server.operation(run.operation_id)["metadata"]


def test_the_public_names_import_from_where_they_always_have():
    # The sender (_sender.py) and the crash hooks (_hooks.py) have modules of their own; a script, an adapter or a
    # bench that imports from trainwatch or trainwatch.client finds the same objects there.
    import trainwatch.client as client
    from trainwatch import _hooks, _sender

    for name in ("init", "Run", "TrainwatchError", "TrainwatchWarning", "DEFAULT_URL"):
        assert getattr(trainwatch, name) is getattr(client, name)
    assert client._live is _hooks.live and client._install_hooks is _hooks.install
    assert (client.BACKOFF_START_S, client.BACKOFF_CAP_S) == (_sender.BACKOFF_START_S, _sender.BACKOFF_CAP_S)
    assert trainwatch.TrainwatchError.__module__ == "trainwatch.client"
    assert issubclass(trainwatch.TrainwatchWarning, UserWarning)
