#!/usr/bin/env python3
"""Issue 24's acceptance (liveness and alerts), tried as a new user would, against the real server; re-runnable,
prints each check beside its goal and exits 1 when one is missed.

    python3 examples/alerts_acceptance.py [--shots DIR]     # needs torch; Chromium at /usr/bin/chromium

The server is `bun run src/server.ts` on a free port of 127.0.0.1 with a temporary database
(clients/python/tests/server.py) and short liveness limits (LIMITS below), its alerts sent to a receiver this script
runs on 127.0.0.1 (an http.server): the generic webhook at /hook, the Slack-format one at /slack. The trainings are
real PyTorch loops (a small MLP on synthetic data, torch on the CPU) reporting through the Python client, each a
process of its own (`train --kind …`), as a user's script would be:

1. killed with `kill -9` after a few epochs: the run reads `stale: true` (still running), then `failed` with
   failure_code `lost`; the generic body (event lost, the reason naming the silence and the last epoch) and the
   Slack message (text + blocks, the link `<server>/#/op/<id>`) arrive once each; kill → stale, → lost, → alert
   beside the configured limits;
2. a learning rate that blows up (×BLOWUP_GROWTH an epoch from epoch BLOWUP_AT), a checkpoint file saved every epoch:
   exactly one `diverging` alert, naming the epoch and the checkpoint to restore (the Python client cannot report
   checkpoints: the judgement's checkpoint_epoch), which must be a file the script saved before the blow-up;
3. two trainings that sleep inside a step after HANG_AT epochs, sampling system metrics every second, one of them
   with a stand-in `nvidia-smi` on PATH (a GPU at 0 %): `hung: true` and not lost, even past TRAINWATCH_LOST_AFTER,
   the analysis's liveness.utilisation citing the CPU (and the GPU), and the hung alert's reason citing it.

The dashboard: headless Chromium's `--screenshot` of the operation page while stale, once lost, and while hung, and
of the list page, saved under --shots (default: a new temporary folder, kept); and the page text through
`--dump-dom` (after the virtual-time budget, the hash route is rendered), checked for the chips
(data-badge="stale" / "lost" / "hung" and the hung chip's "hung · <utilisation>").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
# The checkout's client first, before one installed in the environment (which may be older: this checks this checkout).
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients", "python"))
sys.path.insert(0, HERE)
import steps_acceptance as sa  # noqa: E402  (Table, operation_of, and the paths to the client and the tests' server)

HEARTBEAT_S, STALE_S, LOST_S, HUNG_S = 0.5, 2.0, 8.0, 3.0
WATCHDOG_S = min(5.0, max(0.05, min(STALE_S, LOST_S, HUNG_S) / 4))  # src/operations/client_watchdog.ts watchdogPeriodMs
LIMITS = {
    "TRAINWATCH_CLIENT_HEARTBEAT": str(HEARTBEAT_S),
    "TRAINWATCH_STALE_AFTER": str(STALE_S),
    "TRAINWATCH_LOST_AFTER": str(LOST_S),
    "TRAINWATCH_HUNG_AFTER": str(HUNG_S),
    "TRAINWATCH_ALERT_ON": "diverging,failed,lost,hung",  # the defaults, said out loud
}
POLL_S = 0.1
EPOCH_S = 0.25  # added to each epoch: a training slow enough to watch
KILL_AFTER = 5  # epochs stored before kill -9
EPOCHS = 16
LR = 0.1
BLOWUP_AT = 10  # the first epoch trained with a raised learning rate
BLOWUP_GROWTH = 4.0
HANG_AT = 6  # epochs logged before the loop sleeps in a step
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The stand-in nvidia-smi's answer to the sampler's --query-gpu (index, name, utilisation %, memory used/total MiB,
# temperature °C, power W): one GPU, idle, as a deadlocked collective leaves it.
SMI_CSV = "0, NVIDIA H100 80GB HBM3, 0, 30412, 81559, 41, 88.20"


# ---------------------------------------------------------------------------------------------------------------------
# The trainings, each a process of its own (as a user's script is).


def train(a: argparse.Namespace) -> int:
    """A 20-64-2 MLP on a synthetic task, one epoch of 32 batches then a pause of EPOCH_S; prints `OPERATION <id>`,
    `EPOCH <e>` after each logged epoch, and `HANGING <time>` before a hung run sleeps in its step."""
    import torch
    import trainwatch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    w = torch.randn(20)
    x, xv = torch.randn(2048, 20), torch.randn(512, 20)
    y, yv = (x @ w > 0).long(), (xv @ w > 0).long()
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    kw: Dict[str, Any] = {"system_metrics": 1} if a.kind == "hung" else {}
    epochs = 1000 if a.kind == "killed" else EPOCHS
    run = trainwatch.init(name=a.name, total_epochs=epochs, config={"lr": LR, "kind": a.kind}, **kw)
    print(f"OPERATION {run.operation_id}", flush=True)
    saved: Dict[int, float] = {}
    for epoch in range(epochs):
        lr = LR * (BLOWUP_GROWTH ** (epoch - BLOWUP_AT + 1) if a.kind == "blowup" and epoch >= BLOWUP_AT else 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        total = 0.0
        for i, idx in enumerate(torch.randperm(len(x)).split(64)):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            if a.kind == "hung" and epoch == HANG_AT and i == 3:
                print(f"HANGING {time.time()}", flush=True)
                time.sleep(3600)  # a deadlocked collective, a data loader that stopped: the heartbeat thread goes on
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        model.eval()
        with torch.no_grad():
            out = model(xv)
            val = nn.functional.cross_entropy(out, yv).item()
            acc = (out.argmax(1) == yv).float().mean().item()
        run.log(epoch=epoch, train_loss=total / 32, val_loss=val, val_accuracy=acc, learning_rate=lr)
        if a.kind == "blowup":  # a checkpoint every epoch, as a careful user keeps them
            torch.save({"epoch": epoch, "model": model.state_dict()}, os.path.join(a.out, f"checkpoint-epoch-{epoch}.pt"))
            saved[epoch] = val
            with open(os.path.join(a.out, "checkpoints.json"), "w") as f:
                json.dump(saved, f)
        print(f"EPOCH {epoch} {time.time()}", flush=True)
        time.sleep(EPOCH_S)
    return 0 if run.finish() else 1


# ---------------------------------------------------------------------------------------------------------------------
# The receiver, the processes, the browser.


class Receiver:
    """A webhook receiver on 127.0.0.1: every POST's arrival time, path, headers and JSON body, in order; answers 200."""

    def __init__(self) -> None:
        self.got: List[Tuple[float, str, Dict[str, str], Any]] = []
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                got.append((time.time(), self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def about(self, op_id: str, path: str) -> List[Tuple[float, Dict[str, str], Any]]:
        """(time, headers, body) of each POST to `path` about `op_id` (a generic body names it, a Slack one links it)."""
        return [(t, h, b) for t, p, h, b in list(self.got) if p == path and op_id in json.dumps(b)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def until(fn: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """fn()'s first truthy value, polled every POLL_S; raises after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(POLL_S)
    raise TimeoutError(f"no {what} within {timeout:.0f} s")


class Runs:
    """The training processes started, killed on exit whatever happens."""

    def __init__(self, url: str, tmp: str) -> None:
        self.url, self.tmp = url, tmp
        self.procs: List[subprocess.Popen] = []

    def start(self, kind: str, name: str, path_dir: Optional[str] = None) -> Tuple[subprocess.Popen, str, str, List[str]]:
        out = tempfile.mkdtemp(prefix=f"{kind}-", dir=self.tmp)
        env = dict(os.environ, TRAINWATCH_URL=self.url, PYTHONUNBUFFERED="1")
        env.pop("TRAINWATCH_OPERATION_ID", None)
        if path_dir:
            env.update(PATH=os.pathsep.join([path_dir, *os.get_exec_path(env)]))  # the stand-in nvidia-smi first
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "train", "--kind", kind, "--out", out, "--name", name],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        log: List[str] = []
        op_id = sa.operation_of(proc, log)
        return proc, op_id, out, log

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)


def chromium(url: str, tmp: str, shot: Optional[str]) -> str:
    """Headless Chromium on `url` after an 8 s virtual-time budget: saves a screenshot to `shot`, or returns the DOM."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}", "--window-size=1280,900",
            "--virtual-time-budget=8000", f"--screenshot={shot}" if shot else "--dump-dom", url]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or (shot and not os.path.exists(shot)):
        raise RuntimeError(f"chromium exited {r.returncode} on {url}: {r.stderr[-600:]}")
    return r.stdout


def page(url: str, tmp: str, shot: str) -> str:
    """The screenshot and the DOM of `url`, taken at once (two browsers side by side); returns the DOM."""
    done: Dict[str, Any] = {}
    th = threading.Thread(target=lambda: done.update(shot=chromium(url, tmp, shot)), daemon=True)
    th.start()
    dom = chromium(url, tmp, None)
    th.join(150)
    if "shot" not in done:
        raise RuntimeError(f"no screenshot of {url}")
    print(f"   screenshot {shot}", flush=True)
    return dom


def chips(dom: str) -> List[Tuple[str, str]]:
    """(data-badge, text) of each badge in a DOM."""
    return [(m.group(1), re.sub(r"<[^>]+>|\s+", " ", m.group(2)).strip())
            for m in re.finditer(r'<span[^>]*data-badge="([^"]+)"[^>]*>(.*?)</span>', dom, re.S)]


def status_in(dom: str) -> List[str]:
    return re.findall(r'data-status="([^"]+)"', dom)


def card_in(dom: str) -> Tuple[List[str], Optional[str]]:
    """The operation page's judgement card as shown: its badges and the recommended action."""
    part = dom[dom.find('id="badges"'):]
    badges = [b for b, _ in chips(part[:part.find('id="recommendation"')] if 'id="recommendation"' in part else part)]
    action = re.search(r'data-action="([^"]+)"', dom)
    return badges, action.group(1) if action else None


def judgement_in(dom: str) -> str:
    badges, action = card_in(dom)
    return f"judgement card: badges {badges}, action {action}"


def alerts_of(server, op_id: str) -> List[Dict[str, Any]]:
    return server.call("GET", f"/alerts?operation_id={op_id}&limit=100")["data"]


def state(server, op_id: str, test: Callable[[Dict[str, Any]], bool]) -> Callable[[], Optional[Dict[str, Any]]]:
    def read():
        op = server.operation(op_id)
        return op if test(op) else None

    return read


def delivered(server, op_id: str, event: str) -> Callable[[], Optional[Dict[str, Any]]]:
    """The run's `event` alert once both channels say delivered."""

    def read():
        for a in alerts_of(server, op_id):
            if a["alert"]["event"] == event and a["deliveries"] and all(d["state"] == "delivered" for d in a["deliveries"]):
                return a
        return None

    return read


def slack_link(slack: Dict[str, Any]) -> List[str]:
    """The links to a run's page in a Slack message: `<url|name>` in its mrkdwn and its buttons' url."""
    text = json.dumps(slack)
    return re.findall(r"<(http[^|>]+)\|", text) + [e["url"] for b in slack.get("blocks", []) for e in b.get("elements", []) if "url" in e]


# ---------------------------------------------------------------------------------------------------------------------
# The checks.


def check_killed(t: sa.Table, server, runs: Runs, receiver: Receiver, tmp: str, shots: str) -> str:
    print(f"\n== 1. kill -9 of a training after {KILL_AFTER} epochs (stale after {STALE_S:g} s, lost after {LOST_S:g} s, "
          f"heartbeat every {HEARTBEAT_S:g} s, watchdog every {WATCHDOG_S:g} s)", flush=True)
    proc, op_id, _, log = runs.start("killed", "acceptance kill -9")
    until(lambda: len(server.epochs(op_id)) >= KILL_AFTER, f"{KILL_AFTER} epochs stored")
    killed = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    stored = server.epochs(op_id)
    last = stored[-1]["epoch"]
    print(f"   killed (exit {proc.returncode}) with {len(stored)} epochs stored, the last {last}", flush=True)
    stale = until(state(server, op_id, lambda op: op["stale"] or op["status"] != "running"), "stale", 60)
    t_stale = time.time() - killed
    # Both pages at once, while stale (LOST_S − STALE_S of room).
    dom = page(f"{server.url}/#/op/{op_id}", tmp, os.path.join(shots, "1-killed-stale-op.png"))
    seen = chips(dom)
    print(f"   page while stale: status {status_in(dom)}, chips {seen}; {judgement_in(dom)}", flush=True)
    badges, action = card_in(dom)
    t.add("kill -9: op page's advice while stale (action / 'no issues' badge)", f"{action} / {'none' in badges}", "check_trainer / False",
          action == "check_trainer" and "none" not in badges)
    t.add("kill -9: training process", proc.returncode, "-9 (no goodbye)", proc.returncode == -9)
    t.add("kill -9: API while stale (status / stale)", f"{stale['status']} / {stale['stale']}", "running / True", stale["status"] == "running" and stale["stale"] is True)
    t.add("kill -9: kill → stale (API)", f"{t_stale:.2f} s", f"{STALE_S - HEARTBEAT_S:g} … {STALE_S + WATCHDOG_S + POLL_S:g} s (limit − heartbeat … + watchdog + poll)",
          STALE_S - HEARTBEAT_S <= t_stale <= STALE_S + WATCHDOG_S + POLL_S)
    stale_chip = next((c for c in seen if c[0] == "stale"), None)
    t.add("kill -9: op page while stale: status pill / stale chip", f"{status_in(dom)[:1]} / {stale_chip}", "['running'] / ('stale', 'no heartbeat since …')",
          status_in(dom)[:1] == ["running"] and stale_chip is not None and stale_chip[1].startswith("no heartbeat since"))

    lost = until(state(server, op_id, lambda op: op["status"] != "running"), "lost", 60)
    t_lost = time.time() - killed
    msg = lost.get("error_message") or ""
    print(f"   lost: {msg}", flush=True)
    t.add("kill -9: API once lost (status / failure_code)", f"{lost['status']} / {lost['failure_code']}", "failed / lost", lost["status"] == "failed" and lost["failure_code"] == "lost")
    t.add("kill -9: kill → lost (API)", f"{t_lost:.2f} s", f"{LOST_S - HEARTBEAT_S:g} … {LOST_S + WATCHDOG_S + POLL_S:g} s", LOST_S - HEARTBEAT_S <= t_lost <= LOST_S + WATCHDOG_S + POLL_S)
    t.add("kill -9: error_message names the silence / the last epoch", msg[:60] + "…" + msg[-24:],
          f"'no heartbeat, epoch or step for N s' / 'its last epoch was {last}'",
          "no heartbeat, epoch or step for" in msg and msg.endswith(f"its last epoch was {last}"))

    hook = until(lambda: [x for x in receiver.about(op_id, "/hook") if x[2]["event"] == "lost"], "the lost webhook", 30)[0]
    t_hook, headers, body = hook
    slack_got = until(lambda: [x for x in receiver.about(op_id, "/slack") if body["id"] in json.dumps(x[2])], "the lost Slack message", 30)[0]
    t_slack, _, slack = slack_got
    link = f"{server.url}/#/op/{op_id}"
    print("   webhook body:", json.dumps(body, indent=None)[:900], "\n   Slack text:", slack.get("text"), flush=True)
    t.add("kill -9: webhook body (kind / event / failure_code)", f"{body['kind']} / {body['event']} / {body['failure_code']}", "status / lost / lost",
          (body["kind"], body["event"], body["failure_code"]) == ("status", "lost", "lost"))
    t.add("kill -9: webhook reason names the silence and the last epoch", body["reason"][-60:], f"… no heartbeat … its last epoch was {last}",
          "no heartbeat, epoch or step for" in body["reason"] and body["reason"].endswith(f"its last epoch was {last}"))
    t.add("kill -9: webhook link / X-Trainwatch-Alert-Id", f"{body['operation']['url']} / {headers.get('x-trainwatch-alert-id') == body['id']}", f"{link} / True",
          body["operation"]["url"] == link and headers.get("x-trainwatch-alert-id") == body["id"])
    links = slack_link(slack)
    blocks = [b.get("type") for b in slack.get("blocks", [])]
    t.add("kill -9: Slack message (text / blocks / links to the run)", f"{slack.get('text', '')[:48]!r}… / {blocks} / {sorted(set(links))}",
          f"text naming lost / blocks / [{link}]", "lost" in slack.get("text", "") and len(blocks) >= 3 and set(links) == {link})
    n_hook = sum(1 for x in receiver.about(op_id, "/hook") if x[2]["id"] == body["id"])
    n_slack = sum(1 for x in receiver.about(op_id, "/slack") if body["id"] in json.dumps(x[2]))
    t.add("kill -9: lost alert received (webhook / Slack)", f"{n_hook} / {n_slack}", "1 / 1", n_hook == 1 and n_slack == 1)
    t.add("kill -9: kill → alert received (webhook / Slack)", f"{t_hook - killed:.2f} s / {t_slack - killed:.2f} s",
          f"≤ {LOST_S + WATCHDOG_S + 1:g} s (lost + watchdog + 1 s delivery)", max(t_hook, t_slack) - killed <= LOST_S + WATCHDOG_S + 1)

    until(delivered(server, op_id, "lost"), "the lost alert delivered on both channels", 30)
    dom = page(f"{server.url}/#/op/{op_id}", tmp, os.path.join(shots, "2-killed-lost-op.png"))
    seen = chips(dom)
    print(f"   page once lost: status {status_in(dom)}, chips {seen}; {judgement_in(dom)}", flush=True)
    item = re.search(rf'data-alert="{body["id"]}".*?</li>', dom, re.S)
    sent = re.findall(r"(webhook|slack) (delivered|pending|failed)", item.group(0)) if item else []
    t.add("kill -9: op page once lost: status pill / lost chip", f"{status_in(dom)[:1]} / {[c for c in seen if c[0] == 'lost']}", "['failed'] / [('lost', 'lost')]",
          status_in(dom)[:1] == ["failed"] and ("lost", "lost") in seen)
    t.add("kill -9: op page lists the alert with its delivery log", sent or "no alert item", "[webhook delivered, slack delivered]",
          sorted(sent) == [("slack", "delivered"), ("webhook", "delivered")])
    return op_id


def check_blowup(t: sa.Table, server, runs: Runs, receiver: Receiver) -> str:
    print(f"\n== 2. A learning rate that blows up (×{BLOWUP_GROWTH:g} an epoch from epoch {BLOWUP_AT}), a checkpoint file every epoch", flush=True)
    proc, op_id, out, log = runs.start("blowup", "acceptance lr blow-up")
    rc = proc.wait(300)
    op = server.operation(op_id)
    epochs = server.epochs(op_id)
    print("   train_loss", {e["epoch"]: e.get("train_loss") for e in epochs}, "\n   val_loss", {e["epoch"]: e.get("val_loss") for e in epochs}, flush=True)
    t.add("blow-up: training exit / status", f"{rc} / {op['status']}", "0 / completed (no stop policy: it trains on)", rc == 0 and op["status"] == "completed")
    a = until(delivered(server, op_id, "diverging"), "the diverging alert delivered on both channels", 30)["alert"]
    everything = alerts_of(server, op_id)
    events = [x["alert"]["event"] for x in everything]
    hooks = [b for _, _, b in receiver.about(op_id, "/hook")]
    slacks = [b for _, _, b in receiver.about(op_id, "/slack")]
    print(f"   alert: {a['title']}\n   reason: {a['reason']}\n   advice: {a['advice']}\n   Slack text: {slacks[0].get('text') if slacks else None}", flush=True)
    t.add("blow-up: the run's alerts (API) / webhook bodies / Slack messages", f"{events} / {[b['event'] for b in hooks]} / {len(slacks)}",
          "['diverging'] / ['diverging'] / 1", events == ["diverging"] and [b["event"] for b in hooks] == ["diverging"] and len(slacks) == 1)
    adv = a.get("advice") or {}
    m = re.search(r"diverging at epoch (\d+)", a["title"])
    where = int(m.group(1)) if m else None
    last = epochs[-1]["epoch"]
    t.add("blow-up: the alert names the epoch (title / advice.epoch)", f"{where} / {adv.get('epoch')}", f"the same, {BLOWUP_AT} … {last} (after the lr rose)",
          where is not None and where == adv.get("epoch") and BLOWUP_AT <= where <= last)
    cp = adv.get("checkpoint_epoch")
    saved = {int(k): v for k, v in json.load(open(os.path.join(out, "checkpoints.json"))).items()}
    files = sorted(int(re.search(r"(\d+)", f).group(1)) for f in os.listdir(out) if f.startswith("checkpoint-epoch-"))
    t.add("blow-up: checkpoint to restore (advice.checkpoint_epoch) → the script's file", f"epoch {cp} → checkpoint-epoch-{cp}.pt {'saved' if cp in files else 'NOT saved'}",
          f"a saved file, before epoch {BLOWUP_AT} (the first with the raised lr)", cp in files and cp < BLOWUP_AT)
    before = {e: v for e, v in saved.items() if e < BLOWUP_AT}
    best = min(before, key=before.get)
    t.add("blow-up: that checkpoint's val_loss (the script's) / the best before the blow-up",
          f"{saved.get(cp, float('nan')):.4f} (epoch {cp}) / {before[best]:.4f} (epoch {best})", "the same epoch", cp == best)
    t.add("blow-up: reason / Slack 'Restore' name that checkpoint", f"{f'checkpoint of epoch {cp}' in a['reason']} / {f'checkpoint of epoch {cp}' in json.dumps(slacks[:1])}",
          "True / True", f"checkpoint of epoch {cp}" in a["reason"] and f"checkpoint of epoch {cp}" in json.dumps(slacks[:1]))
    return op_id


def write_smi(tmp: str) -> str:
    """A folder holding a stand-in `nvidia-smi` that answers any query with SMI_CSV."""
    d = os.path.join(tmp, "smi-bin")
    os.makedirs(d)
    path = os.path.join(d, "nvidia-smi")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\n# a stand-in: one idle GPU\necho '{SMI_CSV}'\n")
    os.chmod(path, 0o755)
    return d


def check_hung(t: sa.Table, server, runs: Runs, receiver: Receiver, tmp: str, shots: str) -> List[str]:
    print(f"\n== 3. Trainings that sleep in a step after {HANG_AT} epochs, system metrics every 1 s (hung past "
          f"max(10 × median interval, 1.5 × longest gap, {HUNG_S:g} s))", flush=True)
    smi = write_smi(tmp)
    started = [("CPU", *runs.start("hung", "acceptance hung (CPU)")), ("GPU", *runs.start("hung", "acceptance hung (stand-in GPU)", smi))]
    ids = []
    for label, proc, op_id, out, log in started:
        hanging = float(until(lambda: next((x.split()[1] for x in log if x.startswith("HANGING ")), None), "HANGING", 120))
        hung = until(state(server, op_id, lambda op: op["hung"] or op["status"] != "running"), f"{label} hung", 60)
        t_hung = time.time() - hanging
        a = server.call("GET", f"/operations/{op_id}/analysis")["data"]
        live = a.get("liveness") or {}
        util = live.get("utilisation") or ""
        print(f"   {label}: liveness {json.dumps(live)}", flush=True)
        expect = "GPU 0 utilisation 0 %" if label == "GPU" else "process CPU"
        t.add(f"hung ({label}): API (status / hung / stale)", f"{hung['status']} / {hung['hung']} / {hung['stale']}", "running / True / False",
              (hung["status"], hung["hung"], hung["stale"]) == ("running", True, False))
        t.add(f"hung ({label}): sleep → hung (API)", f"{t_hung:.2f} s (rows silent {live.get('rows_silent_s')} s, hung past {live.get('hung_after_s')} s)",
              f"≤ hung_after + the last epoch's {EPOCH_S:g} s pause + watchdog {WATCHDOG_S:g} s + poll",
              live.get("hung_after_s") is not None and t_hung <= live["hung_after_s"] + EPOCH_S + WATCHDOG_S + POLL_S + 0.2)
        t.add(f"hung ({label}): analysis flags (hung / stale)", f"{a['flags'].get('hung')} / {a['flags'].get('stale')}", "True / False",
              a["flags"].get("hung") is True and a["flags"].get("stale") is False)
        t.add(f"hung ({label}): analysis liveness.utilisation", util or None, f"'{expect} …, sampled N s before'", util.startswith(expect) and "sampled" in util)
        body = until(lambda: next((b for _, _, b in receiver.about(op_id, "/hook") if b["event"] == "hung"), None), f"the {label} hung webhook", 30)
        slack = until(lambda: next((b for _, _, b in receiver.about(op_id, "/slack") if body["id"] in json.dumps(b)), None), f"the {label} hung Slack message", 30)
        print(f"   {label}: hung alert reason: {body['reason']}", flush=True)
        t.add(f"hung ({label}): hung alert reason cites the utilisation", body["reason"][-70:], f"'hung: heartbeats arrive …; {expect} …'",
              body["reason"].startswith("hung: heartbeats arrive but no epoch or step") and expect in body["reason"] and expect in slack.get("text", "") + json.dumps(slack))
        dom = page(f"{server.url}/#/op/{op_id}", tmp, os.path.join(shots, f"3-hung-{label.lower()}-op.png"))
        chip = next((c[1] for c in chips(dom) if c[0] == "hung"), None)
        print(f"   {label}: page while hung: {judgement_in(dom)}", flush=True)
        t.add(f"hung ({label}): op page's hung chip", chip, f"'hung · {expect} …'", chip is not None and chip.startswith(f"hung · {expect}"))
        badges, action = card_in(dom)
        t.add(f"hung ({label}): op page's advice (action / 'no issues' badge)", f"{action} / {'none' in badges}", "check_trainer / False",
              action == "check_trainer" and "none" not in badges)
        ids.append(op_id)
    # Past the lost limit without a row, the heartbeats still arriving: hung, never lost.
    for (label, proc, op_id, out, log) in started:
        late = until(state(server, op_id, lambda op: (op["liveness"] or {}).get("rows_silent_s", 0) > LOST_S + 1 or op["status"] != "running"),
                     f"{label}: {LOST_S + 1:g} s without a row", 60)
        events = [x["alert"]["event"] for x in alerts_of(server, op_id)]
        t.add(f"hung ({label}): {late['liveness']['rows_silent_s']:.1f} s without a row (> lost {LOST_S:g} s): status / failure_code / alerts",
              f"{late['status']} / {late['failure_code']} / {events}", "running / None / ['hung']",
              late["status"] == "running" and late["failure_code"] is None and events == ["hung"])
    return ids


def check_list(t: sa.Table, server, tmp: str, shots: str, killed: str, blown: str, hung: List[str]) -> None:
    print("\n== 4. The list page and the bell", flush=True)
    dom = page(f"{server.url}/#/", tmp, os.path.join(shots, "4-list.png"))
    rows = {i: chips(m.group(0)) for i in [killed, blown, *hung] for m in [re.search(rf'<tr data-op="{i}".*?</tr>', dom, re.S)] if m}
    print("   list chips:", json.dumps(rows), flush=True)
    want = {killed: "lost", blown: "diverging", **{i: "hung" for i in hung}}
    got = {i: [c[0] for c in rows.get(i, [])] for i in want}
    t.add("list page: each run's chip (lost / diverging / hung / hung)", " / ".join(str(got[i]) for i in want), "each includes its own",
          all(want[i] in got[i] for i in want))
    count = re.search(r'id="bell"[^>]*>.*?<span class="count">([^<]*)</span>', dom, re.S)
    total = len(server.call("GET", "/alerts?limit=100")["data"])
    t.add("bell: count of unseen alerts (fresh browser) / alerts recorded", f"{count.group(1) if count else None} / {total}", "equal",
          count is not None and count.group(1) == str(total))


def main_check(a: argparse.Namespace) -> int:
    from server import Server

    if not os.path.exists(CHROMIUM):
        print(f"no Chromium at {CHROMIUM}", file=sys.stderr)
        return 1
    t = sa.Table()
    tmp = tempfile.mkdtemp(prefix="alerts-acceptance-")
    shots = os.path.abspath(a.shots) if a.shots else tempfile.mkdtemp(prefix="alerts-acceptance-shots-")
    os.makedirs(shots, exist_ok=True)
    receiver = Receiver()
    server = Server(env={**LIMITS, "TRAINWATCH_ALERT_WEBHOOK": f"{receiver.url}/hook", "TRAINWATCH_ALERT_SLACK_WEBHOOK": f"{receiver.url}/slack"})
    runs: Optional[Runs] = None
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so the finally below kills the trainings and the server.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.start()
        import trainwatch

        print(f"server {server.url} (database {server.dir}), receiver {receiver.url}, limits {LIMITS}\n"
              f"client {os.path.dirname(trainwatch.__file__)}, screenshots in {shots}", flush=True)
        runs = Runs(server.url, tmp)
        killed = check_killed(t, server, runs, receiver, tmp, shots)
        blown = check_blowup(t, server, runs, receiver)
        hung = check_hung(t, server, runs, receiver, tmp, shots)
        check_list(t, server, tmp, shots, killed, blown, hung)
    except (TimeoutError, RuntimeError) as e:
        t.add("the run of checks", f"{type(e).__name__}: {e}", "completes", False)
    finally:
        if runs:
            runs.close()
        server.close()
        receiver.close()
        shutil.rmtree(tmp, ignore_errors=True)
    t.print()
    print("\nscreenshots:\n" + "\n".join(f"  {os.path.join(shots, f)}" for f in sorted(os.listdir(shots)) if f.endswith(".png")))
    return 0 if t.ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", default="check", choices=["check", "train"])
    ap.add_argument("--shots", default=None, help="the folder for the screenshots (default: a new temporary one, kept)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--kind", default="killed", choices=["killed", "blowup", "hung"])
    ap.add_argument("--name", default="alerts acceptance")
    a = ap.parse_args()
    if a.mode == "train":
        return train(a)
    return main_check(a)


if __name__ == "__main__":
    sys.exit(main())
