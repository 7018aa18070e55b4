#!/usr/bin/env python3
"""The Python client's system-metrics cost (issue 24): CPU seconds per hour of training at the default 15 s interval.

    python bench/system_sampling.py [--seconds=30]   # needs node_modules (a real server on loopback)

Two arms, each sampling back to back on one thread for `--seconds` (default 30): GPUs through a stand-in `nvidia-smi`
on PATH (a shell script printing 8 GPUs of fixed CSV: the subprocess a machine without NVML pays) and without GPUs
(psutil, else /proc, only). A sample's CPU is this thread's CPU time plus the CPU of the subprocesses it waited for
(RUSAGE_CHILDREN), over the samples taken. Then the post: 4 samples (a minute at 15 s) to POST …/system on a real
server, timed as the client's CPU per request. Scaled to an hour at 15 s: 240 samples and 60 posts.
Goal: at most 1 CPU-second per hour of training with the stand-in nvidia-smi (NVML is cheaper still: no process).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "clients", "python", "tests"))  # server.py: the tests' server process
from trainwatch import _system  # noqa: E402
from trainwatch._http import Api  # noqa: E402
from server import Server  # noqa: E402

GOAL_CPU_S_PER_HOUR = 1.0
SAMPLES_PER_HOUR = 3600 / _system.DEFAULT_INTERVAL_S
POSTS_PER_HOUR = 3600 / _system.POST_EVERY_S


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def sampling_cost(seconds: float, gpus: bool) -> tuple:
    """CPU seconds per sample, and the samples taken, sampling back to back for `seconds`."""
    s = _system.Sampler("http://127.0.0.1:9", None, lambda: None, 15)
    s._host = _system.host_source()
    s._gpus = _system.gpu_source() if gpus else None
    if gpus and not isinstance(s._gpus, _system._Smi):
        raise SystemExit(f"expected the stand-in nvidia-smi, got {type(s._gpus).__name__}")
    s.sample()  # warm
    n = 0
    cpu0, kids0, end = time.thread_time(), children_cpu(), time.monotonic() + seconds
    while time.monotonic() < end:
        s.sample()
        n += 1
    return (time.thread_time() - cpu0 + children_cpu() - kids0) / n, n


def post_cost(samples: list, rounds: int = 200) -> float:
    """The client's CPU seconds per POST …/system of `samples` to a real server."""
    server = Server().start()
    try:
        op = server.call("POST", "/operations", {"operation_type": "training", "name": "bench-system"})["data"]["operation_id"]
        api = Api(server.url, None)
        base = time.time()
        cpu0 = time.thread_time()
        for i in range(rounds):
            batch = [dict(s, timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + i * 60 + j * 15)) + ".000Z") for j, s in enumerate(samples)]
            status, _ = api.request("POST", f"/operations/{op}/system", json.dumps({"samples": batch}).encode())
            assert status == 200, status
        cpu = (time.thread_time() - cpu0) / rounds
        api.close()
        return cpu
    finally:
        server.close()


def main() -> None:
    seconds = 30.0
    for a in sys.argv[1:]:
        if a.startswith("--seconds="):
            seconds = float(a.split("=", 1)[1])
    with tempfile.TemporaryDirectory() as d:
        smi = os.path.join(d, "nvidia-smi")
        row = "{i}, NVIDIA H100 80GB HBM3, 87, 40312, 81559, 64, 312.45"
        with open(smi, "w") as f:
            f.write("#!/bin/sh\ncat <<'CSV'\n" + "\n".join(row.format(i=i) for i in range(8)) + "\nCSV\n")
        os.chmod(smi, 0o755)
        os.environ["PATH"] = d + os.pathsep + os.environ["PATH"]
        sys.modules["pynvml"] = None  # type: ignore[assignment]  # the nvidia-smi path, even where NVML is installed
        host = type(_system.host_source()).__name__.strip("_")
        with_smi, n1 = sampling_cost(seconds, gpus=True)
        without, n2 = sampling_cost(seconds, gpus=False)
        s = _system.Sampler("http://127.0.0.1:9", None, lambda: None, 15)
        s._host, s._gpus = _system.host_source(), _system.gpu_source()
        s.sample()
        four = [s.sample() for _ in range(4)]
    post = post_cost(four)
    print(f"host source: {host}; {seconds:g} s per arm; python {sys.version.split()[0]}")
    print(f"  sample with stand-in nvidia-smi (8 GPUs): {with_smi * 1e3:8.3f} ms CPU  ({n1} samples)")
    print(f"  sample without GPUs:                      {without * 1e3:8.3f} ms CPU  ({n2} samples)")
    print(f"  post of 4 samples (8 GPUs each):          {post * 1e3:8.3f} ms CPU  (client side)")
    for label, per in (("with nvidia-smi", with_smi), ("without GPUs", without)):
        hour = per * SAMPLES_PER_HOUR + post * POSTS_PER_HOUR
        verdict = "MET" if hour <= GOAL_CPU_S_PER_HOUR else "MISSED"
        print(f"  per hour at {_system.DEFAULT_INTERVAL_S:g} s, {label:16s} {hour:7.3f} CPU-s  (goal ≤ {GOAL_CPU_S_PER_HOUR:g}: {verdict})")


if __name__ == "__main__":
    main()
