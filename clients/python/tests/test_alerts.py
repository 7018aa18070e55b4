"""`trainwatch.init(alerts=…)` sets the run's alert rules on the server: the events it adds and removes, its thresholds."""

from __future__ import annotations

import pytest

import trainwatch


def test_init_alerts_adds_events_and_the_server_records_the_alert(server):
    run = trainwatch.init(name="alerted", total_epochs=2, alerts=["completed"])
    run.log(epoch=0, train_loss=1.0)
    run.log(epoch=1, train_loss=0.5)
    assert run.finish() is True
    rules = server.call("GET", f"/operations/{run.operation_id}/alerts")["data"]
    assert rules["rules"] == {"on": ["completed"]}
    alerts = server.call("GET", f"/alerts?operation_id={run.operation_id}")["data"]
    assert [a["alert"]["event"] for a in alerts] == ["completed"]
    assert alerts[0]["alert"]["title"] == 'Run "alerted" completed'


def test_init_alerts_as_a_dict_with_off_and_a_threshold(server):
    run = trainwatch.init(
        name="thresholded",
        alerts={"off": ["failed"], "thresholds": [{"metric": "val_loss", "when": "above", "value": 2.0}]},
    )
    run.log(epoch=0, train_loss=1.0, val_loss=2.5)
    assert run.finish(status="failed", error="boom") is True
    alerts = server.call("GET", f"/alerts?operation_id={run.operation_id}")["data"]
    assert [a["alert"]["kind"] for a in alerts] == ["threshold"]
    assert alerts[0]["alert"]["threshold"]["observed"] == 2.5


def test_init_alerts_with_an_unknown_event_is_a_value_error_naming_it(server):
    with pytest.raises(ValueError, match="alerts"):
        trainwatch.init(name="bad", alerts=["bored"])
    with pytest.raises(ValueError, match="alerts must be"):
        trainwatch.init(name="bad", alerts=42)
