"""Labels and the notebook API against a real server: init(tags, group) and run.set_labels, trainwatch.Api's runs
(search, sort, paging, columns), history (epochs and steps, ranges, max_points), analysis; pandas stays optional."""

from __future__ import annotations

import math
import uuid
import warnings

import pytest

import trainwatch
from conftest import run_script


def group_name() -> str:
    return f"api-{uuid.uuid4().hex[:8]}"


def test_init_tags_and_group_label_the_run(server):
    run = trainwatch.init(name="labelled", tags=["bert", "baseline"], group="sweep 7", system_metrics=0)
    run.finish()
    op = server.operation(run.operation_id)
    assert op["tags"] == ["baseline", "bert"] and op["group"] == "sweep 7"


def test_set_labels_changes_tags_and_group_even_after_the_run_finished(server):
    run = trainwatch.init(name="relabel", tags=["a"], group="g1", system_metrics=0)
    op = run.set_labels(add_tags=["b"], group="g2")
    assert op["tags"] == ["a", "b"] and op["group"] == "g2"
    run.finish()
    op = run.set_labels(remove_tags=["a"], group=None)
    assert op["tags"] == ["b"] and op["group"] is None
    assert server.operation(run.operation_id)["tags"] == ["b"]


def test_labels_set_while_the_server_is_away_go_with_the_registration(own_server):
    own_server.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", trainwatch.TrainwatchWarning)  # "not answering": expected here
        run = trainwatch.init(name="away", tags=["a"], group="g1", url=own_server.url, system_metrics=0)
        assert run.operation_id is None and run.set_labels(add_tags=["b"], group="g2") is None
        own_server.start()
        run.log(epoch=0, train_loss=1.0)
        assert run.finish(timeout=60) is True
    op = own_server.operation(run.operation_id)
    assert op["tags"] == ["a", "b"] and op["group"] == "g2"


def test_a_bad_label_is_a_value_error_naming_the_field(server):
    run = trainwatch.init(name="bad-label", system_metrics=0)
    with pytest.raises(ValueError, match="tags"):
        run.set_labels(tags=["no spaces allowed"])
    with pytest.raises(ValueError, match="set_labels"):
        run.set_labels()
    run.finish()


def sweep(group: str, n: int = 5):
    """n runs in `group`: run i has lr 10^-i, i+3 epochs of a falling loss; run 0's losses turn NaN (diverging)."""
    ids = []
    for i in range(n):
        run = trainwatch.init(name=f"r{i}", config={"lr": 10.0**-i, "model": {"width": 32 * (i + 1)}}, group=group, tags=["t"], system_metrics=0)
        for e in range(i + 3):
            bad = i == 0 and e >= 2
            run.log(epoch=e, train_loss=float("nan") if bad else 1.0 / (e + 1 + i), val_loss=float("nan") if bad else 1.2 / (e + 1 + i))
        run.finish(result={"i": i})
        ids.append(run.operation_id)
    return ids


def test_runs_is_one_row_a_run_with_config_summary_and_flags(server):
    g = group_name()
    ids = sweep(g)
    df = trainwatch.Api().runs(q=f'group = "{g}"', sort="config.lr", order="asc")
    assert list(df.id) == ids[::-1]  # lr ascending: the last run first
    assert list(df.name) == [f"r{i}" for i in range(4, -1, -1)]
    assert (df.group == g).all() and all(t == ["t"] for t in df.tags)
    assert {"config.lr", "config.model.width", "best_val_loss", "best_epoch", "epochs_completed", "flags.diverging", "result.i"} <= set(df.columns)
    r4 = df[df.name == "r4"].iloc[0]
    assert r4["config.model.width"] == 160 and r4["epochs_completed"] == 7 and r4["best_val_loss"] == pytest.approx(1.2 / 11)
    assert bool(df[df.name == "r0"].iloc[0]["flags.diverging"]) and not bool(r4["flags.diverging"])
    assert str(df.created_at.dtype).startswith("datetime64")


def test_runs_pages_through_the_api_and_honours_limit(server, monkeypatch):
    import trainwatch.api as api_mod

    g = group_name()
    ids = sweep(g, n=5)
    monkeypatch.setattr(api_mod, "PAGE", 2)  # five runs in pages of two: three requests
    api = trainwatch.Api()
    assert sorted(api.runs(q=f'group = "{g}"').id) == sorted(ids)
    assert len(api.runs(q=f'group = "{g}"', limit=3)) == 3
    assert list(api.runs(q=f'group = "{g}" and not flags.diverging', sort="config.lr", order="desc").name) == ["r1", "r2", "r3", "r4"]


def test_runs_keeps_each_run_once_while_a_sweep_adds_runs_between_its_pages(server, monkeypatch):
    import trainwatch.api as api_mod

    g = group_name()
    ids = sweep(g, n=4)
    monkeypatch.setattr(api_mod, "PAGE", 2)
    api = trainwatch.Api()
    get = api.get
    added = []

    def get_then_add(path, params=None):
        env = get(path, params)
        if not added:  # a new run lands between the first page and the second: newest first, it pushes the others down
            added.append(trainwatch.init(name="late", group=g, system_metrics=0))
        return env

    monkeypatch.setattr(api, "get", get_then_add)
    got = list(api.runs(q=f'group = "{g}"').id)
    added[0].finish()
    assert len(got) == len(set(got))  # the run pushed onto the second page is not read twice
    assert set(ids) <= set(got)


def test_a_query_syntax_error_is_a_value_error_with_the_servers_position(server):
    with pytest.raises(ValueError, match="QUERY_SYNTAX: query.q at 11"):  # the end of the query: a value is missing
        trainwatch.Api().runs(q="config.lr <")


def test_history_reads_epochs_with_ranges_fields_and_max_points(server):
    run = trainwatch.init(name="history", system_metrics=0)
    for e in range(40):
        run.log(epoch=e, train_loss=1.0 / (e + 1), val_loss=float("nan") if e == 20 else 2.0 / (e + 1))
    run.finish()
    api = trainwatch.Api()
    h = api.history(run)  # a Run is a run reference too
    assert list(h.epoch) == list(range(40)) and h.train_loss[3] == pytest.approx(0.25)
    assert math.isnan(h.val_loss[20]) and str(h.timestamp.dtype).startswith("datetime64")
    part = api.history(run.operation_id, fields=["val_loss"], epochs=(10, 14))
    assert list(part.epoch) == [10, 11, 12, 13, 14] and "train_loss" not in part.columns
    reduced = api.history(run.operation_id, max_points=10)
    assert len(reduced) <= 12 and 20 in set(reduced.epoch)  # the NaN survives the reduction


def test_history_reads_steps_of_a_step_run(server):
    run = trainwatch.init(name="steps", system_metrics=0)
    for s in range(30):
        run.log({"loss": 1.0 / (s + 1)}, step=s, epoch=s // 10)
    run.finish()
    api = trainwatch.Api()
    h = api.history(run.operation_id)  # a run that logged steps: steps by default
    assert list(h.step) == list(range(30)) and h.train_loss[1] == pytest.approx(0.5)
    assert list(api.history(run.operation_id, steps=(5, 7)).step) == [5, 6, 7]
    assert list(api.history(run.operation_id, unit="epoch").epoch) == [0, 1, 2]


def test_analysis_is_the_servers_judgement(server):
    run = trainwatch.init(name="judged", system_metrics=0)
    for e in range(5):
        run.log(epoch=e, train_loss=float("nan") if e == 4 else 1.0 / (e + 1))
    run.finish()
    a = trainwatch.Api().analysis(run.operation_id)
    assert a["flags"]["diverging"] is True and a["recommendation"]["reason"]


def test_pandas_is_optional(server):
    code = """
import sys
sys.modules["pandas"] = None  # as if it were not installed
import trainwatch
api = trainwatch.Api()
try:
    api.runs()
except ImportError as e:
    print("ERR", e)
"""
    out = run_script(code, {})
    assert out.returncode == 0, out.stderr
    assert "ERR" in out.stdout and "pip install pandas" in out.stdout
