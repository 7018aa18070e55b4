"""The TensorBoard bridge checked against the real thing, in .ci/run's Python stage (CPU torch and tensorboard from the
pip mirror; a missing one fails, never skips):

- a logdir written by PyTorch's own `torch.utils.tensorboard.SummaryWriter` (NaN and ±Infinity among the values) is
  imported with `bun run src/cli.ts import-tensorboard`, and every value the API returns is the one written;
- the event files the server writes, live under TRAINWATCH_TENSORBOARD_DIR and from GET /operations/{id}/tfevents, are
  read with TensorBoard's own EventAccumulator: every value equal (NaN included), steps = epochs, wall time = the
  epoch's timestamp."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import require, started, until
from server import ROOT, Server, bun

torch = require("torch")
require("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402


def f32(v: float) -> float:
    """What a float32 simple_value holds."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def wire(v) -> float:
    """An API metric value as a Python float ("NaN", "Infinity" and "-Infinity" are strings on the wire)."""
    return float(v)


@pytest.fixture()
def tb_server(tmp_path, monkeypatch):
    """A server of the test's own that mirrors every operation's epochs into tmp_path/tb."""
    monkeypatch.setenv("TRAINWATCH_TENSORBOARD_DIR", str(tmp_path / "tb"))
    s = started(Server())
    yield s
    s.close()


def accumulate(path: Path) -> EventAccumulator:
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


# Per epoch: train_loss, val_loss (NaN at epoch 2), learning_rate, a custom metric (+Infinity at epoch 3).
EPOCHS = [
    {
        "epoch": e,
        "train_loss": 1.0 / (e + 1) + 0.001 * e,
        "val_loss": "NaN" if e == 2 else 1.3 / (e + 1),
        "train_accuracy": 0.5 + 0.1 * e,
        "learning_rate": 0.1 * 0.5**e,
        "grad_norm": "Infinity" if e == 3 else 2.0 + e,
        "timestamp": datetime(2026, 1, 2, 3, 4, 5 + e, 123000, tzinfo=timezone.utc).isoformat().replace("+00:00", "Z"),
    }
    for e in range(5)
]
METRICS = ["train_loss", "val_loss", "train_accuracy", "learning_rate", "grad_norm"]


def check_against_epochs(acc: EventAccumulator) -> None:
    """Every metric of EPOCHS is a scalar tag whose events are the epochs: step, value (float32) and wall time."""
    assert sorted(acc.Tags()["scalars"]) == sorted(METRICS)
    for tag in METRICS:
        events = acc.Scalars(tag)
        assert [ev.step for ev in events] == [e["epoch"] for e in EPOCHS], tag
        for ev, e in zip(events, EPOCHS):
            assert same(ev.value, f32(wire(e[tag]))), (tag, ev.step, ev.value, e[tag])
            stamp = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
            assert abs(ev.wall_time - stamp) < 1e-6, (tag, ev.wall_time, stamp)


def test_the_live_mirror_and_the_download_read_back_in_tensorboards_own_event_accumulator(tb_server, tmp_path):
    op = tb_server.call("POST", "/operations", {"operation_type": "training", "name": "mirrored run"})["data"]
    op_id = op["operation_id"]
    # Two writes: the file grows while the run goes on.
    assert tb_server.call("POST", f"/operations/{op_id}/metrics", {"epochs": EPOCHS[:2]})["status"] == 200
    assert tb_server.call("POST", f"/operations/{op_id}/metrics", {"epochs": EPOCHS[2:]})["status"] == 200
    assert tb_server.call("POST", f"/operations/{op_id}/complete", {"status": "completed"})["status"] == 200

    run_dir = tmp_path / "tb" / f"mirrored_run-{op_id}"
    until(lambda: run_dir.is_dir() and len(accumulate(run_dir).Scalars("train_loss")) == len(EPOCHS), what="every epoch in the live event file")
    files = list(run_dir.iterdir())
    assert len(files) == 1 and files[0].name.startswith("events.out.tfevents."), files
    acc = accumulate(run_dir)
    assert acc.FirstEventTimestamp() > 0
    check_against_epochs(acc)

    # The same run, downloaded: a file of its own, generated from the stored epochs.
    with urllib.request.urlopen(f"{tb_server.url}/api/v1/operations/{op_id}/tfevents", timeout=30) as res:
        assert res.headers["content-type"] == "application/octet-stream"
        disposition = res.headers["content-disposition"]
        body = res.read()
    name = disposition.split('filename="')[1].rstrip('"')
    download = tmp_path / "download" / "run"
    download.mkdir(parents=True)
    (download / name).write_bytes(body)
    check_against_epochs(accumulate(download))


# A step field's tag in a step run's event file (src/tensorboard/metrics.ts STEP_TAGS: the Hugging Face Trainer's names).
STEP_TAGS = {"train_loss": "train/loss", "learning_rate": "train/learning_rate", "grad_norm": "train/grad_norm",
             "val_loss": "eval/loss", "val_accuracy": "eval/accuracy", "epoch": "train/epoch"}


def test_a_step_run_logged_in_the_wandb_habit_reads_back_in_tensorboard_live_and_downloaded(tb_server, tmp_path, monkeypatch):
    """`run.log({"loss": l}, step=i)`, an evaluation every 50 steps (sparse), a NaN and an Infinity among the values:
    the live mirror and GET …/tfevents hold every stored step at its own step number, every value equal (float32)."""
    import trainwatch

    monkeypatch.setenv("TRAINWATCH_URL", tb_server.url)
    run = trainwatch.init(name="wandb habit", total_steps=200)
    for i in range(200):
        run.log({"loss": float("nan") if i == 77 else 2.0 / (i + 1), "lr": 0.01, "grad_norm": math.inf if i == 150 else 1.0 + i / 100}, step=i)
        if i % 50 == 49:
            run.log({"eval_loss": 2.2 / (i + 1), "eval_accuracy": i / 200}, step=i)
    assert run.finish()
    stored = tb_server.steps(run.operation_id)
    assert [s["step"] for s in stored] == list(range(200))
    want = {(STEP_TAGS[k], s["step"]): f32(wire(v)) for s in stored for k, v in s.items() if k not in ("step", "timestamp")}
    assert sum(1 for tag, _ in want if tag == "eval/loss") == 4  # the evaluations, only where they were taken

    def read(path: Path) -> dict:
        acc = accumulate(path)
        return {(tag, ev.step): ev.value for tag in acc.Tags()["scalars"] for ev in acc.Scalars(tag)}

    def check(got: dict) -> None:
        assert set(got) == set(want)
        assert [k for k in want if not same(got[k], want[k])] == []

    run_dir = tmp_path / "tb" / f"wandb_habit-{run.operation_id}"
    until(lambda: run_dir.is_dir() and len(read(run_dir)) == len(want), what="every step in the live event file")
    check(read(run_dir))
    with urllib.request.urlopen(f"{tb_server.url}/api/v1/operations/{run.operation_id}/tfevents", timeout=30) as res:
        body = res.read()
    download = tmp_path / "download" / "run"
    download.mkdir(parents=True)
    (download / "events.out.tfevents.0.trainwatch").write_bytes(body)
    check(read(download))


def test_a_logdir_written_by_pytorchs_summarywriter_imports_with_every_value(server):
    logdir = Path(server.dir) / "data" / "sw"
    writes = {}  # (run, tag) -> [(step, value)]
    for run, offset in (("baseline", 0.0), ("wider/lr0.1", 0.25)):
        writer = SummaryWriter(log_dir=str(logdir / run))
        for step in range(6):
            values = {
                "loss": 2.0 / (step + 1) + offset,
                "val_loss": float("nan") if step == 4 else 2.2 / (step + 1) + offset,
                "Accuracy/train": 0.1 * step,
                "lr": 0.01 * 0.9**step,
                "grad/norm": float("inf") if step == 5 else 1.5 + step,
            }
            for tag, v in values.items():
                writer.add_scalar(tag, v, global_step=step)
                writes.setdefault((run, tag), []).append((step, v))
        writer.add_text("notes", "not a scalar", 0)
        writer.add_histogram("weights", torch.arange(10.0), 0)
        writer.close()

    proc = subprocess.run(
        [bun(), "run", "src/cli.ts", "import-tensorboard", "sw", "--json", "--url", server.url],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "TRAINWATCH_TOKEN"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(proc.stdout)
    runs = {r["name"]: r for r in report["runs"]}
    assert sorted(runs) == ["baseline", "wider/lr0.1"]
    field = {"loss": "train_loss", "val_loss": "val_loss", "Accuracy/train": "train_accuracy", "lr": "learning_rate", "grad/norm": "grad/norm"}
    for name, run in runs.items():
        assert run["tags"] == field, run["tags"]
        assert run["epochs"] == 6
        assert run["skipped"] == {"events": 2, "values": 0, "steps": 0}, run["skipped"]  # the text and the histogram
        op = server.operation(run["operation_id"])
        assert op["name"] == name and op["status"] == "completed" and op["metadata"]["source"] == "tensorboard"
        epochs = server.epochs(run["operation_id"])
        assert [e["epoch"] for e in epochs] == list(range(6))
        for tag, target in field.items():
            for step, v in writes[(name, tag)]:
                got = wire(epochs[step][target])
                assert same(got, f32(v)), (name, tag, step, got, v)
    imp = server.operation(report["import_operation_id"])
    assert imp["operation_type"] == "import" and imp["status"] == "completed" and imp["progress"]["percentage"] == 100
