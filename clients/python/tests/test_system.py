"""System metrics (issue 24): the sampler's sources (a stand-in nvidia-smi on PATH, /proc), the interval setting, and
samples arriving at a real server while a run trains, posted at its finish, and read back."""

from __future__ import annotations

import os
import stat
import sys
import warnings

import pytest

import trainwatch
from trainwatch import _system
from conftest import until

SMI_CSV = """0, NVIDIA H100 80GB HBM3, 87, 40312, 81559, 64, 312.45
1, NVIDIA H100 80GB HBM3, [N/A], 1, 81559, [N/A], [Not Supported]
"""


@pytest.fixture()
def stand_in_smi(tmp_path, monkeypatch):
    """A stand-in `nvidia-smi` first on PATH, printing SMI_CSV when asked the query the sampler sends; NVML hidden."""
    script = tmp_path / "bin" / "nvidia-smi"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = "--query-gpu={_system.QUERY}" ] && [ "$2" = "--format=csv,noheader,nounits" ] || exit 9\n'
        f"cat <<'CSV'\n{SMI_CSV}CSV\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    return script


def test_nvidia_smi_output_is_parsed_with_missing_readings_as_null(stand_in_smi):
    src = _system.gpu_source()
    assert isinstance(src, _system._Smi)
    assert src.read() == [
        {"index": 0, "name": "NVIDIA H100 80GB HBM3", "utilization_percent": 87.0, "memory_used_mb": 40312.0, "memory_total_mb": 81559.0, "temperature_c": 64.0, "power_w": 312.45},
        {"index": 1, "name": "NVIDIA H100 80GB HBM3", "utilization_percent": None, "memory_used_mb": 1.0, "memory_total_mb": 81559.0, "temperature_c": None, "power_w": None},
    ]


def test_no_nvml_and_no_nvidia_smi_means_no_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert _system.gpu_source() is None


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="the /proc source is Linux's")
def test_the_proc_source_reads_process_and_machine_without_psutil():
    src = _system._Proc()
    src.read()
    # Some CPU between the two reads, until the machine's tick counters have moved (a tick is 10 ms: a fixed amount of
    # work can finish inside one, and then there is no share to report).
    primed = src._last[2]
    while src._cpu_times()[2] == primed:
        sum(i * i for i in range(20_000))
    got = src.read()
    assert got["process"]["rss_mb"] > 1
    assert 0 <= got["process"]["cpu_percent"]
    assert 0 <= got["machine"]["cpu_percent"] <= 100
    assert 0 < got["machine"]["memory_used_mb"] < got["machine"]["memory_total_mb"]


def test_the_interval_setting_and_its_environment_override(monkeypatch):
    monkeypatch.delenv("TRAINWATCH_SYSTEM_METRICS", raising=False)
    assert _system.interval_of(15) == 15
    assert _system.interval_of(True) == 15
    for off in (0, False, None):
        assert _system.interval_of(off) is None
    with pytest.raises(ValueError, match="system_metrics"):
        _system.interval_of("often")
    monkeypatch.setenv("TRAINWATCH_SYSTEM_METRICS", "off")
    assert _system.interval_of(15) is None
    monkeypatch.setenv("TRAINWATCH_SYSTEM_METRICS", "2.5")
    assert _system.interval_of(None) == 2.5


def test_samples_arrive_while_the_run_trains_and_the_finish_posts_the_rest(server, stand_in_smi, monkeypatch):
    monkeypatch.delenv("TRAINWATCH_SYSTEM_METRICS", raising=False)
    run = trainwatch.init(name="system", system_metrics=0.1)
    run._system.post_every = 0.3  # post often, so samples arrive before the finish
    run.log(epoch=0, train_loss=1.0)
    arrived = until(lambda: server.call("GET", f"/operations/{run.operation_id}/system")["data"]["samples"], what="system samples")
    first = arrived[0]
    assert first["gpus"][0] == {"index": 0, "name": "NVIDIA H100 80GB HBM3", "utilization_percent": 87, "memory_used_mb": 40312, "memory_total_mb": 81559, "temperature_c": 64, "power_w": 312.45}
    assert first["gpus"][1]["utilization_percent"] is None
    assert first["process"]["rss_mb"] > 1 and first["machine"]["memory_total_mb"] > 0
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert run.finish() is True
    assert not [w for w in record if issubclass(w.category, trainwatch.TrainwatchWarning)]
    stored = server.call("GET", f"/operations/{run.operation_id}/system?max_points=2000")["data"]["samples"]
    assert len(stored) == run._system.posted >= len(arrived)
    assert not run._system._thread.is_alive()


def test_system_metrics_off_posts_nothing(server, monkeypatch):
    monkeypatch.setenv("TRAINWATCH_SYSTEM_METRICS", "0")
    run = trainwatch.init(name="no-system", system_metrics=0.1)
    assert run._system is None
    run.log(epoch=0, train_loss=1.0)
    assert run.finish() is True
    assert server.call("GET", f"/operations/{run.operation_id}/system")["data"]["samples"] == []
