"""A real PyTorch recipe on Slurm (issue 25): the example `tiny-torch-slurm` (examples/recipes/tiny_torch.py) started
through the API with the Slurm executor, on the one-node cluster .ci/run starts (TRAINWATCH_TEST_SLURM*, from
.ci/slurm.sh). The job runs this venv's packages (torch, trainwatch) as the cluster's job user; every
epoch arrives through the client, the operation completes, and the job's output is its log. Without a cluster: a
failure in CI, a skip saying why elsewhere (never a silent one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require, started, until
from server import ROOT, Server

EXAMPLE = ROOT / "examples" / "recipes"
VARS = ["TRAINWATCH_TEST_SLURM", "TRAINWATCH_TEST_SLURM_USER", "TRAINWATCH_TEST_SLURM_TOKEN_FILE", "TRAINWATCH_TEST_SLURM_WORKDIR"]


def cluster() -> dict:
    missing = [v for v in VARS if not os.environ.get(v)]
    if missing:
        why = f"{', '.join(missing)} unset: start a one-node cluster with .ci/slurm.sh start DIR (as root; .ci/run does it)"
        if os.environ.get("CI") in ("true", "1"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return {v: os.environ[v] for v in VARS}


def job_python() -> "tuple[str, list]":
    """The interpreter the job user can run, and the extra PYTHONPATH it needs for this venv's packages. The venv's own
    interpreter may live where the job user cannot reach (pyenv under /root, mode 700: CI's venv is built from it); then
    the system's python3 of the same minor version runs the job with this venv's site-packages on its path (their
    compiled parts are built for that minor version)."""
    real = os.path.realpath(sys.executable)
    if not real.startswith("/root/"):
        return sys.executable, []
    system = "/usr/bin/python3"
    out = subprocess.run([system, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    if out.returncode != 0 or out.stdout.strip() != str(sys.version_info[:2]):
        pytest.fail(f"this interpreter ({real}) is out of the job user's reach and {system} is not Python {sys.version_info[0]}.{sys.version_info[1]}: build the venv from an interpreter outside /root", pytrace=False)
    return system, [p for p in sys.path if p.endswith("site-packages")]


def test_the_example_pytorch_recipe_runs_on_slurm_its_epochs_through_the_client(tmp_path: Path):
    require("torch")
    c = cluster()
    f = json.loads((EXAMPLE / "trainwatch.recipes.json").read_text())
    recipe = next(r for r in f["recipes"] if r["name"] == "tiny-torch-slurm")
    # An interpreter the job user can run with this venv's packages (job_python), and the example's own folder.
    python, packages = job_python()
    recipe["command"] = [python, str(EXAMPLE / "tiny_torch.py")]
    recipe["cwd"] = str(EXAMPLE)
    # The client of this checkout, as the other tests use it (CI's venv has it installed too).
    recipe["env"] = {**recipe.get("env", {}), "PYTHONPATH": os.pathsep.join([str(ROOT / "clients" / "python"), *packages])}
    (tmp_path / "recipes.json").write_text(json.dumps({"recipes": [recipe]}))
    os.chmod(tmp_path, 0o755)
    s = started(
        Server(
            env={
                "TRAINWATCH_RECIPES": str(tmp_path / "recipes.json"),
                "TRAINWATCH_SLURM_URL": c["TRAINWATCH_TEST_SLURM"],
                "TRAINWATCH_SLURM_USER": c["TRAINWATCH_TEST_SLURM_USER"],
                "TRAINWATCH_SLURM_TOKEN_FILE": c["TRAINWATCH_TEST_SLURM_TOKEN_FILE"],
                "TRAINWATCH_SLURM_LOG_DIR": c["TRAINWATCH_TEST_SLURM_WORKDIR"],
                "TRAINWATCH_SLURM_POLL": "0.2",
            }
        )
    )
    try:
        res = s.call("POST", "/trainings", {"recipe": "tiny-torch-slurm", "params": {"epochs": 4}})
        assert res["status"] == 202, res
        op = res["data"]
        assert (op["executor"], op["status"], op["metadata"]["location"]) == ("slurm", "pending", "cluster")
        done = until(lambda: (o := s.operation(op["operation_id"]))["status"] not in ("pending", "running") and o, 120, "the job to end", 0.2)
        assert (done["status"], done["failure_code"]) == ("completed", None), done
        epochs = s.epochs(op["operation_id"])
        assert [e["epoch"] for e in epochs] == [0, 1, 2, 3]
        assert all(e["train_loss"] > 0 for e in epochs)
        lines = s.call("GET", f"/operations/{op['operation_id']}/logs")["data"]["lines"]
        assert any(line.startswith("epoch 3: train_loss") for line in lines), lines
    finally:
        s.close()
