"""The example notebook (examples/notebooks/sweep_comparison.ipynb) cannot rot: a tiny sweep of the example study
(examples/optuna_study.py: a few trials of a few epochs, pruned by Trainwatch) against the real server, then the
notebook executed with nbclient with the server's URL and the sweep's group in its environment; every cell must run,
the runs table must list the sweep's runs, and both figures must be drawn."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import trainwatch
from conftest import require

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NOTEBOOK = EXAMPLES / "notebooks" / "sweep_comparison.ipynb"


def test_the_sweep_comparison_notebook_runs_against_a_sweep(server, monkeypatch):
    optuna = require("optuna")
    require("torch")
    require("matplotlib")
    nbformat = require("nbformat")
    nbclient = require("nbclient")
    sys.path.insert(0, str(EXAMPLES))
    try:
        import optuna_study
    finally:
        sys.path.remove(str(EXAMPLES))
    from trainwatch.optuna import TrainwatchPruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    group = f"nb-{uuid.uuid4().hex[:8]}"
    pruner = TrainwatchPruner(group=group, total_epochs=6)
    study = optuna.create_study(pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=1))
    data = optuna_study.make_data(1)
    study.optimize(lambda t: optuna_study.objective(t, pruner, data, 1, epochs=6), n_trials=4, callbacks=[pruner])

    monkeypatch.setenv("TRAINWATCH_GROUP", group)  # TRAINWATCH_URL is the session server's (conftest)
    # The kernel imports the client this test imports (an installed one could be older).
    client_dir = str(Path(trainwatch.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (client_dir, os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"group: {group}" in text and "4 runs" in text
    tables = [o for o in outputs if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert tables and all(f"trial-{n}" in tables[0]["data"]["text/html"] for n in range(4))
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(figures) == 2
