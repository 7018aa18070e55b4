#!/usr/bin/env python3
"""Step load through the real Python client, against the real server process on loopback (SQLite):

    python bench/steps_load.py [--seconds=60] [--runs=100] [--rate=100] [--procs=4] [--pollers=20]
                               [--million=1000000] [--million-seconds=120] [--server-prof=DIR]
    (needs trainwatch importable, e.g. the dev venv with `pip install ./clients/python`, and node_modules)

1. `--runs` concurrent step runs, each `trainwatch.init(total_steps=…)` on a thread of its own, split over `--procs`
   Python processes (each run has its own sender thread, as `init` makes it), each logging
   `run.log(step=i, loss=…, lr=…)` at `--rate` steps a second for `--seconds`: rate × seconds steps a run. Pacing:
   every run sleeps until its step's time on a fixed schedule (t0 + phase + i / rate, the runs' phases spread over
   one step period); a run that is late logs at once, so every step is logged and a slow generator shows up as
   lateness (printed), never as missing steps. Then every run `finish()`es (its sender delivers what is left).
   Meanwhile `--pollers` threads in this process, once a second each (spread over the second), read a run as the
   dashboard does: GET …/steps?max_points=1000, then GET the operation, each timed from the request sent to the
   body read (this process does nothing else, so its own share of the CPU is small; the JSON is not parsed).
2. `--million` steps logged as fast as a loop can into one run, timed until `finish()` returns (the server has
   acknowledged the last), stopping by itself after `--million-seconds` of logging.

Printed beside the goals (issue 22): every step stored once (per run, from the store: count = logged, step 0 … n−1,
no gaps; the primary key rules out duplicates, and the API's `progress.steps_completed` is checked too), client
errors (warnings, rejected, dropped, unfinished runs), the API's event-loop lag (bench/lag.ts preloaded into the
server), GET p99, the server's CPU per 1,000 steps and RSS at start and end, the load generator's own CPU, and the
machine's load average and the CPU taken by other work during the run: the GET goal is for a quiet machine, and a
figure from a busy one is labelled so. Asserts nothing.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import sqlite3
import subprocess
import sys
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "clients", "python", "tests"))  # server.py: the tests' server process
try:
    import trainwatch
except ImportError:
    sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
    import trainwatch
from trainwatch._http import Api  # noqa: E402

LAG_GOAL_MS = 20.0
GET_GOAL_MS = 20.0
TICK = os.sysconf("SC_CLK_TCK")


# --- measuring ------------------------------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all cores, /proc/stat: everything but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / TICK


def quantile(xs: list, q: float) -> float:
    """Nearest rank of ascending xs, as bench/lag.ts."""
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


class Poller(Api):
    """One keep-alive connection that GETs and reads the whole reply without parsing it."""

    def get(self, path: str) -> int:
        if self._sock is None:
            self._connect(10.0)
        self._sock.sendall(b"GET %s HTTP/1.1\r\n%s\r\n" % ((self._prefix + path).encode(), self._head))
        status, _, close = self._read_reply("GET")
        if close:
            self.close()
        return status


# --- the load generator (a child process) ---------------------------------------------------------------------------


def worker(url: str, runs: int, rate: float, seconds: float, index: int, nprocs: int) -> None:
    """`runs` step runs on threads of this process. Prints "ready" once every run is registered, waits for
    "go <t0>" on stdin (time.time()), logs, finishes, prints one JSON line of figures."""
    warned: list = []
    lock = threading.Lock()

    def count(message, category, *a, **k):  # every TrainwatchWarning is an error here (server away, refusal, drop)
        with lock:
            warned.append(f"{category.__name__}: {message}")

    warnings.showwarning = count
    warnings.simplefilter("always")
    n_steps = int(rate * seconds)
    handles = [trainwatch.init(name=f"steps-load-{index}-{k}", url=url, total_steps=n_steps) for k in range(runs)]
    print("ready " + json.dumps([r.operation_id for r in handles]), flush=True)
    t0 = float(sys.stdin.readline().split()[1])
    late: list = [None] * runs
    finished: list = [None] * runs
    log_end: list = [0.0] * runs
    cpu0 = time.process_time()

    def one(k: int) -> None:
        run = handles[k]
        period = 1.0 / rate
        phase = (index + k * nprocs) / (runs * nprocs) * period  # the runs' steps spread over one period
        max_late = 0.0
        late_steps = 0
        for i in range(n_steps):
            due = t0 + phase + i * period
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            elif wait < -period:
                late_steps += 1
                max_late = max(max_late, -wait)
            run.log(step=i, loss=2.0 / (1 + i * 0.001), lr=1e-3 * (1 - i / (n_steps + 1)))
        log_end[k] = time.time()
        late[k] = (late_steps, max_late)
        finished[k] = run.finish(timeout=120)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    senders = [r._sender for r in handles]
    print(
        json.dumps(
            {
                "ops": [r.operation_id for r in handles],
                "logged": n_steps * runs,
                "delivered": sum(s.delivered for s in senders),
                "rejected": sum(s.rejected for s in senders),
                "dropped": sum(s.dropped for s in senders),
                "posts": sum(s.posts for s in senders),
                "unfinished": sum(1 for f in finished if not f),
                "warnings": warned[:5],
                "n_warnings": len(warned),
                "late_steps": sum(x[0] for x in late),
                "max_late_s": max(x[1] for x in late),
                "log_end": max(log_end),
                "done": time.time(),
                "cpu_s": time.process_time() - cpu0,
            }
        ),
        flush=True,
    )


def million_worker(url: str, n: int, limit_s: float) -> None:
    """One run, `n` steps logged as fast as the loop goes (stopping after `limit_s`), then finish(); one JSON line."""
    warned: list = []
    warnings.showwarning = lambda message, category, *a, **k: warned.append(f"{category.__name__}: {message}")
    run = trainwatch.init(name="steps-load-million", url=url, total_steps=n)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    end = t0 + limit_s
    i = 0
    while i < n:
        run.log(step=i, loss=2.0 / (1 + i * 1e-5), lr=1e-3)
        i += 1
        if not i & 1023 and time.perf_counter() > end:
            break
    t_logged = time.perf_counter()
    ok = run.finish(timeout=120)
    t_done = time.perf_counter()
    s = run._sender
    print(
        json.dumps(
            {
                "op": run.operation_id,
                "logged": i,
                "log_s": t_logged - t0,
                "total_s": t_done - t0,
                "delivered": s.delivered,
                "posts": s.posts,
                "finished": ok,
                "warnings": warned[:5],
                "n_warnings": len(warned),
                "cpu_s": time.process_time() - cpu0,
            }
        ),
        flush=True,
    )


# --- the bench ------------------------------------------------------------------------------------------------------


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def stored(db: str, ops: list) -> dict:
    """Per public operation id: (rows, min step, max step) in the store."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute(
            "SELECT o.operation_id, count(*), min(s.step), max(s.step) FROM steps s JOIN operations o ON o.id = s.op GROUP BY s.op"
        ).fetchall()
    finally:
        con.close()
    found = {r[0]: r[1:] for r in rows}
    return {op: found.get(op, (0, None, None)) for op in ops}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--pollers", type=int, default=20)
    p.add_argument("--million", type=int, default=1_000_000, help="steps into one run afterwards (0: skip)")
    p.add_argument("--million-seconds", type=float, default=120)
    p.add_argument("--server-prof", metavar="DIR", help="write the server's CPU profile (bun --cpu-prof --cpu-prof-md) to DIR")
    p.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    p.add_argument("--million-worker", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        url, runs, rate, seconds, index, nprocs = a.worker
        return worker(url, int(runs), float(rate), float(seconds), int(index), int(nprocs))
    if a.million_worker:
        url, n, limit = a.million_worker
        return million_worker(url, int(n), float(limit))

    from server import Server  # the tests' server process: bun run src/server.ts on a free port, temporary DB

    total = a.runs * int(a.rate * a.seconds)
    print(f"Trainwatch step load — Python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before")
    print(
        f"{a.runs} step runs × {a.rate:g} steps/s in {a.procs} processes for {a.seconds:g} s ({total:,} steps), "
        f"{a.pollers} pollers (GET steps?max_points=1000 + GET operation, 1/s each)\n"
    )
    server = Server()
    lag_file = os.path.join(server.dir, "lag.json")
    os.environ["BUN_OPTIONS"] = f"--preload={os.path.join(HERE, 'lag.ts')}" + (
        f" --cpu-prof --cpu-prof-md --cpu-prof-dir={os.path.abspath(a.server_prof)}" if a.server_prof else ""
    )
    os.environ["BENCH_LAG_FILE"] = lag_file
    atexit.register(server.close)  # its temporary directory (the database, the lag file), however this ends
    server.start()
    del os.environ["BUN_OPTIONS"]  # the children are Python; nothing else should preload it
    db = os.path.join(server.dir, "tw.db")
    pid = server.proc.pid
    procs: list = []
    try:
        rss_start = rss_mb(pid)
        per = [a.runs // a.procs + (1 if i < a.runs % a.procs else 0) for i in range(a.procs)]
        procs = [spawn("--worker", server.url, str(n), str(a.rate), str(a.seconds), str(i), str(a.procs)) for i, n in enumerate(per)]
        ops: list = []
        for w in procs:
            line = w.stdout.readline()
            if not line.startswith("ready "):
                raise RuntimeError(f"a worker did not start: {line!r}")
            ops += json.loads(line[6:])
        # The clock starts a second from now, for every worker at once.
        t0 = time.time() + 1.0
        for w in procs:
            w.stdin.write(f"go {t0}\n")
            w.stdin.flush()
        time.sleep(max(0.0, t0 - time.time()))
        load0 = os.getloadavg()
        busy0, srv0, mono0 = machine_busy_s(), proc_cpu_s(pid), time.monotonic()

        lat: dict = {"GET steps": [], "GET operation": []}
        errors: dict = {}
        stop = threading.Event()
        lat_lock = threading.Lock()

        def poller(j: int) -> None:
            api = Poller(server.url, None)
            op = ops[j * len(ops) // max(1, a.pollers)]
            next_at = t0 + j / max(1, a.pollers)
            while not stop.is_set():
                wait = next_at - time.time()
                if wait > 0:
                    stop.wait(wait)
                    if stop.is_set():
                        break
                next_at += 1.0
                for kind, path in (("GET steps", f"/operations/{op}/steps?max_points=1000"), ("GET operation", f"/operations/{op}")):
                    t = time.perf_counter()
                    try:
                        status = api.get(path)
                    except OSError as e:
                        api.close()
                        status = type(e).__name__
                    ms = (time.perf_counter() - t) * 1000
                    with lat_lock:
                        if status == 200:
                            lat[kind].append(ms)
                        else:
                            errors[f"{kind} {status}"] = errors.get(f"{kind} {status}", 0) + 1
            api.close()

        pollers = [threading.Thread(target=poller, args=(j,), daemon=True) for j in range(a.pollers)]
        for t in pollers:
            t.start()
        results = []
        for w in procs:  # bounded: the schedule, then finish()'s 120 s at most (a hung worker raises, and is killed)
            out, _ = w.communicate(timeout=max(0.0, t0 + a.seconds - time.time()) + 180)
            results.append(json.loads(out.strip().splitlines()[-1]))
        stop.set()
        for t in pollers:
            t.join()
        t_end = time.time()
        busy1, srv1, mono1 = machine_busy_s(), proc_cpu_s(pid), time.monotonic()
        load1 = os.getloadavg()
        rss_end = rss_mb(pid)
        main_cpu = time.process_time()  # this process: the pollers (and the start-up, small)

        # Every step stored once: the store, and the API's progress.
        per_run = int(a.rate * a.seconds)
        reader = Poller(server.url, None)
        progress_bad = 0
        for op in ops:
            status, env = reader.request("GET", f"/operations/{op}")
            prog = (env or {}).get("data", {}).get("progress", {})
            if status != 200 or prog.get("steps_completed") != per_run:
                progress_bad += 1
        reader.close()

        million = None
        if a.million > 0:
            m_srv0, m_busy0, m_mono0 = proc_cpu_s(pid), machine_busy_s(), time.monotonic()
            m_load0 = os.getloadavg()[0]
            mw = spawn("--million-worker", server.url, str(a.million), str(a.million_seconds))
            procs.append(mw)  # (killed in the finally if this is interrupted)
            out, _ = mw.communicate(timeout=a.million_seconds + 180)
            million = json.loads(out.strip().splitlines()[-1])
            million["server_cpu_s"] = proc_cpu_s(pid) - m_srv0
            million["other_cores"] = (machine_busy_s() - m_busy0 - million["server_cpu_s"] - million["cpu_s"]) / (time.monotonic() - m_mono0)
            million["load"] = (m_load0, os.getloadavg()[0])
            million["rss_end"] = rss_mb(pid)
    finally:
        for w in procs:
            if w.poll() is None:
                w.kill()
        server.stop(15)  # SIGTERM: the server exits and the preloaded sampler writes its file

    # --- figures ---
    # The store, read once the server is gone (it holds its file in locking_mode=EXCLUSIVE).
    st = stored(db, ops + ([million["op"]] if million else []))
    if million:
        million["stored"] = st.pop(million["op"])
    bad = {op: v for op, v in st.items() if v != (per_run, 0, per_run - 1)}
    with open(lag_file) as f:
        samples = json.load(f)["samples"]
    lags = sorted(lag for at, lag in samples if t0 * 1000 <= at <= t_end * 1000)
    logged = sum(r["logged"] for r in results)
    delivered = sum(r["delivered"] for r in results)
    posts = sum(r["posts"] for r in results)
    wall = mono1 - mono0
    gen_cpu = sum(r["cpu_s"] for r in results)
    srv_cpu = srv1 - srv0
    other = (busy1 - busy0 - srv_cpu - gen_cpu - main_cpu) / wall
    log_span = max(r["log_end"] for r in results) - t0
    client_errors = sum(r["rejected"] + r["dropped"] + r["unfinished"] + r["n_warnings"] for r in results)
    get_errors = sum(errors.values())
    quiet = load1[0] < 2.5 and other < 0.3
    where = "quiet machine" if quiet else f"NOT a quiet machine: load {load0[0]:.1f}→{load1[0]:.1f}, other work {other:.2f} cores"
    gets = sorted(lat["GET steps"] + lat["GET operation"])

    def f(x: float, d: int = 1) -> str:
        return f"{x:,.{d}f}"

    print(f"logging: {logged:,} steps in {f(log_span)} s ({f(logged / log_span, 0)} steps/s offered, goal {f(a.runs * a.rate, 0)}); "
          f"{sum(r['late_steps'] for r in results):,} steps logged > 1 period late, latest {f(max(r['max_late_s'] for r in results) * 1000)} ms")
    print(f"delivery: {posts:,} POST …/steps ({f(posts / wall)} /s, {f(delivered / max(1, posts))} steps each); all delivered "
          f"{f(max(r['done'] for r in results) - t0)} s after t0\n")
    rows = [
        ("Steps stored once (store: count = logged, 0 … n−1; API progress)",
         f"{sum(v[0] for v in st.values()):,} of {logged:,}; {len(bad)} runs off, {progress_bad} progress off",
         "all, once", "PASS" if not bad and not progress_bad and logged == total else "MISS"),
        ("Errors (client warnings/rejected/dropped/unfinished; GET errors)", f"{client_errors}; {get_errors}" + (f" {errors}" if errors else ""),
         "0", "PASS" if client_errors + get_errors == 0 else "MISS"),
        ("API event-loop lag p50 / p99 / max", f"{f(quantile(lags, .5))} / {f(quantile(lags, .99))} / {f(lags[-1] if lags else 0)} ms ({len(lags):,} samples)",
         f"p99 ≤ {LAG_GOAL_MS:g} ms", "PASS" if quantile(lags, .99) <= LAG_GOAL_MS else "MISS"),
    ]
    for kind in ("GET steps", "GET operation"):
        xs = sorted(lat[kind])
        rows.append((f"{kind} p50 / p99 / max ({len(xs):,})", f"{f(quantile(xs, .5))} / {f(quantile(xs, .99))} / {f(xs[-1] if xs else 0)} ms", "—", "—"))
    rows.append(("GET p99, both kinds", f"{f(quantile(gets, .99))} ms ({where})", f"≤ {GET_GOAL_MS:g} ms on a quiet machine",
                 ("PASS" if quantile(gets, .99) <= GET_GOAL_MS else "MISS") + ("" if quiet else " (busy)")))
    rows += [
        ("Server CPU per 1,000 steps (GETs included) / cores", f"{f(srv_cpu / max(1, delivered) * 1000 * 1000)} ms / {f(srv_cpu / wall, 2)}", "—", "—"),
        ("Server RSS start → end", f"{f(rss_start)} → {f(rss_end)} MB", "—", "—"),
        ("Load generator CPU (loggers' processes; the pollers' one)", f"{f(gen_cpu / wall, 2)} cores ({f(gen_cpu / max(1, logged) * 1e6)} µs/step); {f(main_cpu / wall, 2)} cores", "—", "—"),
        ("Machine: load average start → end; other work", f"{f(load0[0], 2)} → {f(load1[0], 2)}; {f(other, 2)} cores", "quiet", "quiet" if quiet else "busy"),
    ]
    if million:
        m = million
        ok = m["stored"] == (m["logged"], 0, m["logged"] - 1) and m["finished"] and not m["n_warnings"]
        rows += [
            (f"{a.million:,} steps into one run: logged / stored, time to finish(), steps/s",
             f"{m['logged']:,} / {m['stored'][0]:,}, {f(m['total_s'])} s, {f(m['logged'] / m['total_s'], 0)}/s "
             f"(log loop {f(m['logged'] / m['log_s'], 0)}/s; {m['posts']:,} posts)",
             "—", "all stored" if ok else "MISS"),
            ("Same: client CPU / server CPU per 1,000 steps; other work; server RSS after",
             f"{f(m['cpu_s'] / m['logged'] * 1e6)} / {f(m['server_cpu_s'] / m['logged'] * 1e6)} ms; {f(m['other_cores'], 2)} cores (load {f(m['load'][0], 1)}→{f(m['load'][1], 1)}); {f(m['rss_end'])} MB",
             "—", "—"),
        ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for r in rows:
        print(f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]:<24}  {r[3]}")
    for r in results:
        for wmsg in r["warnings"]:
            print("warning:", wmsg)
    if million and million["warnings"]:
        print("million warnings:", million["warnings"])


if __name__ == "__main__":
    main()
