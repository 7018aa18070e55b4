"""System metrics (issue 24): a daemon thread of its own samples the process, the machine and the GPUs every
`interval` seconds (15 by default) and posts them to POST /operations/{id}/system: the first at once, then about once a
minute.

Sources, each tried once and kept: process and machine CPU/memory from psutil when importable, else from /proc
(Linux), else none; GPUs from NVML when `pynvml` (the nvidia-ml-py package) is importable and initialises, else from
`nvidia-smi --query-gpu=… --format=csv,noheader,nounits` when it is on PATH (a subprocess with a timeout), else none.
The training loop never waits for it and never sees its errors: a failure warns once, and sampling goes on (or stops,
when the server says the run is over or does not take system metrics).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional

from ._errors import warn as _warn
from ._http import Api, ServerAway, error_of

DEFAULT_INTERVAL_S = 15.0
#: Samples are posted together at most this often (and at the finish): one request a minute per run.
POST_EVERY_S = 60.0
#: Samples kept while the server is away or the run not yet registered (an hour at 15 s); the oldest go first.
MAX_HELD = 240
NVIDIA_SMI_TIMEOUT_S = 5.0
QUERY = "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw"
_MB = 1024 * 1024
_OFF = ("", "0", "false", "no", "off", "none")


def interval_of(system_metrics: Any) -> Optional[float]:
    """The sampling interval in seconds `init(system_metrics=…)` asks for, or None for off; TRAINWATCH_SYSTEM_METRICS,
    when set, overrides it ("0"/"false"/"off": off, a number: the interval)."""
    env = os.environ.get("TRAINWATCH_SYSTEM_METRICS")
    if env is not None:
        v = env.strip().lower()
        if v in _OFF:
            return None
        system_metrics = True if v in ("1", "true", "yes", "on") else v
    if system_metrics is None or system_metrics is False:
        return None
    if system_metrics is True:
        return DEFAULT_INTERVAL_S
    try:
        s = float(system_metrics)
    except (TypeError, ValueError):
        raise ValueError(f"trainwatch: system_metrics must be seconds between samples, True, or 0/False/None to turn it off; got {system_metrics!r}") from None
    if s != s or s <= 0:
        return None
    return max(s, 0.05)


def _clamp(v: Optional[float], hi: float) -> Optional[float]:
    """A reading rounded and within the server's bounds (a CPU % a hair over 100 from rounding is 100)."""
    if v is None or v != v:
        return None
    return round(min(max(v, 0.0), hi), 2)


def _number(cell: str) -> Optional[float]:
    """An nvidia-smi cell: a number, or None for "[N/A]", "[Not Supported]", "N/A" and the like."""
    try:
        return float(cell)
    except ValueError:
        return None


def parse_nvidia_smi(text: str) -> List[Dict[str, Any]]:
    """nvidia-smi's `--query-gpu=QUERY --format=csv,noheader,nounits` output as the API's GPU readings."""
    gpus: List[Dict[str, Any]] = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 7:
            continue
        # A name with a comma in it: the six numbers are the first and the last five cells.
        index, name, rest = cells[0], ", ".join(cells[1:-5]), cells[-5:]
        idx = _number(index)
        if idx is None:
            continue
        util, used, total, temp, power = (_number(c) for c in rest)
        gpus.append({
            "index": int(idx),
            "name": name[:128] or None,
            "utilization_percent": _clamp(util, 100),
            "memory_used_mb": _clamp(used, 1e9),
            "memory_total_mb": _clamp(total, 1e9),
            "temperature_c": None if temp is None else round(min(max(temp, -273.0), 1000.0), 1),
            "power_w": _clamp(power, 100_000),
        })
    return gpus[:64]


class _Proc:
    """Process and machine readings from /proc (Linux), for when psutil is not installed: CPU as the share of the
    time between two calls (the first call primes the counters and reports no CPU)."""

    def __init__(self) -> None:
        self._tick = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._last: Optional[tuple] = None

    def _cpu_times(self) -> tuple:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:]]
        idle = cpu[3] + (cpu[4] if len(cpu) > 4 else 0)
        return time.monotonic(), own, sum(cpu), idle

    def read(self) -> Dict[str, Any]:
        now = self._cpu_times()
        last, self._last = self._last, now
        out: Dict[str, Any] = {}
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * self._page / _MB
        proc: Dict[str, Any] = {"rss_mb": _clamp(rss, 1e9)}
        machine: Dict[str, Any] = {}
        if last is not None and now[0] > last[0]:
            proc["cpu_percent"] = _clamp((now[1] - last[1]) / (now[0] - last[0]) * 100, 409_600)
            total = now[2] - last[2]
            if total > 0:
                machine["cpu_percent"] = _clamp((total - (now[3] - last[3])) / total * 100, 100)
        mem: Dict[str, int] = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    mem[key] = int(rest.split()[0])
        if "MemTotal" in mem:
            machine["memory_total_mb"] = _clamp(mem["MemTotal"] / 1024, 1e9)
            if "MemAvailable" in mem:
                machine["memory_used_mb"] = _clamp((mem["MemTotal"] - mem["MemAvailable"]) / 1024, 1e9)
        out["process"] = proc
        out["machine"] = machine
        return out


class _Psutil:
    def __init__(self, psutil: Any) -> None:
        self._ps = psutil
        self._me = psutil.Process()
        # cpu_percent(None) compares with the previous call: prime both, so the first sample has a real value.
        self._me.cpu_percent(None)
        psutil.cpu_percent(None)

    def read(self) -> Dict[str, Any]:
        ps = self._ps
        vm = ps.virtual_memory()
        return {
            "process": {
                "cpu_percent": _clamp(self._me.cpu_percent(None), 409_600),
                "rss_mb": _clamp(self._me.memory_info().rss / _MB, 1e9),
            },
            "machine": {
                "cpu_percent": _clamp(ps.cpu_percent(None), 100),
                "memory_used_mb": _clamp((vm.total - vm.available) / _MB, 1e9),
                "memory_total_mb": _clamp(vm.total / _MB, 1e9),
            },
        }


class _Nvml:
    def __init__(self, nvml: Any) -> None:
        nvml.nvmlInit()
        self._nv = nvml
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(min(nvml.nvmlDeviceGetCount(), 64))]

    def read(self) -> List[Dict[str, Any]]:
        nv = self._nv
        out = []
        for i, h in enumerate(self._handles):
            def get(fn: Callable[[], Any]) -> Any:
                try:
                    return fn()
                except Exception:  # a reading this GPU does not support (NVMLError_NotSupported)
                    return None

            name = get(lambda: nv.nvmlDeviceGetName(h))
            util = get(lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu)
            mem = get(lambda: nv.nvmlDeviceGetMemoryInfo(h))
            temp = get(lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
            power = get(lambda: nv.nvmlDeviceGetPowerUsage(h))
            out.append({
                "index": i,
                "name": (name.decode() if isinstance(name, bytes) else name)[:128] if name else None,
                "utilization_percent": _clamp(util, 100),
                "memory_used_mb": None if mem is None else _clamp(mem.used / _MB, 1e9),
                "memory_total_mb": None if mem is None else _clamp(mem.total / _MB, 1e9),
                "temperature_c": None if temp is None else round(min(max(float(temp), -273.0), 1000.0), 1),
                "power_w": None if power is None else _clamp(power / 1000, 100_000),
            })
        return out


class _Smi:
    def __init__(self, path: str) -> None:
        self._cmd = [path, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"]

    def read(self) -> List[Dict[str, Any]]:
        done = subprocess.run(self._cmd, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True)
        return parse_nvidia_smi(done.stdout)


def host_source() -> Optional[Any]:
    """The process and machine source: psutil, else /proc, else None."""
    try:
        import psutil  # type: ignore

        return _Psutil(psutil)
    except Exception:
        pass
    if os.path.exists("/proc/self/stat"):
        try:
            src = _Proc()
            src.read()
            return src
        except Exception:
            pass
    return None


def gpu_source() -> Optional[Any]:
    """The GPU source: NVML through pynvml, else nvidia-smi on PATH, else None."""
    try:
        import pynvml  # type: ignore

        return _Nvml(pynvml)
    except Exception:  # not installed, or no driver to initialise
        pass
    path = shutil.which("nvidia-smi")
    return _Smi(path) if path else None


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Sampler:
    """Takes a sample every `interval` seconds on its own daemon thread and posts the first at once, then what it holds
    about once a minute (and at stop). `operation_id()` is the run's id once it is registered (None until then: samples are held)."""

    def __init__(self, url: str, token: Optional[str], operation_id: Callable[[], Optional[str]], interval: float, post_every: float = POST_EVERY_S) -> None:
        self.interval = interval
        self.post_every = max(post_every, interval)
        self._url = url
        self._token = token
        self._operation_id = operation_id
        self._held: List[Dict[str, Any]] = []
        self._stop = threading.Event()
        self._warned: set = set()
        self.posted = 0
        self._thread = threading.Thread(target=self._run, name="trainwatch-system", daemon=True)
        self._host: Optional[Any] = None
        self._gpus: Optional[Any] = None

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stops sampling and posts what is held (waiting at most `timeout` seconds)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def sample(self) -> Dict[str, Any]:
        """One sample now, of every source that answers."""
        s: Dict[str, Any] = {"timestamp": _now_iso()}
        if self._host is not None:
            try:
                s.update({k: v for k, v in self._host.read().items() if v})
                machine = s.get("machine")
                if machine is not None and hasattr(os, "getloadavg"):
                    machine["load_1m"] = _clamp(os.getloadavg()[0], 1e6)
            except Exception as e:
                if self._once("host"):
                    _warn(f"trainwatch: reading process and machine metrics failed ({type(e).__name__}: {e}); they are left out")
                self._host = None
        if self._gpus is not None:
            try:
                s["gpus"] = self._gpus.read()
            except Exception as e:
                if self._once("gpus"):
                    _warn(f"trainwatch: reading GPU metrics failed ({type(e).__name__}: {e}); they are left out")
                self._gpus = None
        return s

    def _run(self) -> None:
        try:
            self._host = host_source()
            self._gpus = gpu_source()
        except Exception as e:  # never into the training
            if self._once("sources"):
                _warn(f"trainwatch: system metrics are off ({type(e).__name__}: {e})")
            return
        api = Api(self._url, self._token, timeout=5.0)
        # The first sample goes at once: the page charts the run from its start, and a run that hangs or dies early
        # still has one for its hung reason and its page. Then about once a minute.
        last_post = time.monotonic() - self.post_every
        try:
            while not self._stop.wait(self.interval):
                try:
                    self._held.append(self.sample())
                    del self._held[:-MAX_HELD]
                    if time.monotonic() - last_post >= self.post_every - 1e-3:
                        last_post = time.monotonic()
                        if not self._post(api):
                            return
                except Exception as e:
                    if self._once("loop"):
                        _warn(f"trainwatch: system metrics failed ({type(e).__name__}: {e}); sampling goes on")
            self._post(api)
        finally:
            api.close()

    def _post(self, api: Api) -> bool:
        """Posts the held samples; False when sampling should end (the run is over, or the server takes none)."""
        op = self._operation_id()
        if not self._held or op is None:
            return True
        batch = self._held[:1000]
        try:
            status, env = api.request("POST", f"/operations/{op}/system", json.dumps({"samples": batch}).encode())
        except ServerAway as e:
            if self._once("away"):
                _warn(f"trainwatch: posting system metrics failed ({e}); held and retried")
            return True
        if status == 200:
            del self._held[: len(batch)]
            self.posted += len(batch)
            return True
        err = error_of(env, status)
        if status == 409 or status == 404:
            # Over (finished, or an older server without the route): nothing more to send.
            if self._once("over"):
                _warn(f"trainwatch: the server took no system metrics for {op}: {status} {err.get('code')}: {err.get('message')}; sampling stopped")
            self._held.clear()
            return False
        if self._once(f"refused{status}"):
            _warn(f"trainwatch: the server refused system metrics for {op}: {status} {err.get('code')}: {err.get('message')}; those samples are dropped")
        del self._held[: len(batch)]
        return True

    def _once(self, key: str) -> bool:
        """True the first time `key` is asked: each kind of failure warns once."""
        first = key not in self._warned
        self._warned.add(key)
        return first
