#!/usr/bin/env python3
"""The steps acceptance (issue 22), tried as a new user would, against the real server; re-runnable, prints each
figure beside its goal and exits 1 when one is missed.

    python3 examples/steps_acceptance.py            # needs torch, transformers, accelerate, tensorboard; Chromium

1. A Hugging Face Trainer fine-tuning of a tiny random-initialised BERT (built from a config, tokenised by a
   BertTokenizerFast over a 19-word vocabulary written here: nothing downloaded), one epoch of 300 steps,
   logging_steps=10, eval_steps=50, with TrainwatchCallback beside transformers' own TensorBoardCallback. The points
   TensorBoard recorded (EventAccumulator: every tag's points) against the points Trainwatch stored (GET …/steps: the
   fields of every row, plus the derived epoch records); progress in steps while it runs.
2. The same fine-tuning, slowed to ~0.1 s a step so that a person could watch it: the operation page charts it live
   (the step chart has points and grows between two reads, scripts/steps_acceptance.ts), then Cancel is pressed
   mid-run: the steps trained after the click, after the trainer heard it, and the time from the click to the exit.
3. A plain PyTorch loop in the wandb.log habit: `run.log({"loss": l}, step=i)`, evaluated every 50 steps, with the
   monitor agent following it live.
4. On runs 1 and 3: the loss analyzer and the monitor agent, MCP's get_operation_metrics with a step range (the stdio
   server, `bun run src/mcp`), and GET …/tfevents read back by TensorBoard's EventAccumulator (every stored step and
   value, float32). Run 1's export also matches what TensorBoard's own callback wrote (HF counts steps from 1, the
   API from 0: HF's step s is the API's s − 1).

The server is `bun run src/server.ts` on a free port with a temporary database (clients/python/tests/server.py), the
trainings are subprocesses of this script (`hf-train`, `torch-train`), as a user's scripts would be.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "clients", "python", "tests"))  # server.py: the tests' server process
try:
    import trainwatch  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

HF_STEPS = 300
LOGGING_STEPS = 10
EVAL_STEPS = 50
BATCH = 8
SEQ = 16
WORDS = ["the", "movie", "plot", "was", "is", "very", "not", "a", "good", "great", "fine", "bad", "awful", "poor"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
TORCH_STEPS = 1000
TORCH_EVAL_EVERY = 50
CANCEL_AT = 100
# A step field's TensorBoard tag (src/tensorboard/metrics.ts STEP_TAGS: the names HF's own callback gives them).
TAGS = {"train_loss": "train/loss", "learning_rate": "train/learning_rate", "grad_norm": "train/grad_norm", "duration": "train/duration",
        "samples": "train/samples", "tokens": "train/tokens", "val_loss": "eval/loss", "val_accuracy": "eval/accuracy", "epoch": "train/epoch"}
CANCEL_STEP_S = 0.1  # run 2's added step time


# ---------------------------------------------------------------------------------------------------------------------
# The trainings, each a process of its own (as a user's script is).


def hf_train(a: argparse.Namespace) -> int:
    """One epoch of HF_STEPS steps of a tiny BERT; writes `trace.jsonl` (each step: HF's global_step, the time,
    whether the run had heard a stop) and prints `OPERATION <id>` once the run is registered."""
    import random

    import torch
    import transformers
    from trainwatch.hf import TrainwatchCallback

    torch.set_num_threads(1)  # a tiny model: threads only contend
    with open(os.path.join(a.out, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=os.path.join(a.out, "vocab.txt"))
    if tok.convert_tokens_to_ids("good") == tok.unk_token_id:  # transformers 5 ignores vocab_file: every word was [UNK]
        tok = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(VOCAB)})
    assert tok.convert_tokens_to_ids("good") != tok.unk_token_id, "the tokenizer did not take the vocabulary"
    rnd = random.Random(0)

    def rows(n: int) -> List[Dict[str, Any]]:
        out = []
        for _ in range(n):
            pos = rnd.random() < 0.5
            words = ["the", "movie", "was"] + rnd.choices(WORDS[8:11] if pos else WORDS[11:], k=2) + rnd.choices(WORDS[:8], k=3)
            rnd.shuffle(words)
            out.append({**tok(" ".join(words), padding="max_length", max_length=SEQ, truncation=True), "labels": int(pos)})
        return out

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=SEQ, num_labels=2)
    model = transformers.BertForSequenceClassification(cfg)
    if a.tensorboard:
        os.environ.update(TENSORBOARD_LOGGING_DIR=os.path.join(a.out, "tb"))  # transformers reads it: a write, not a setting of ours
    args = transformers.TrainingArguments(
        output_dir=os.path.join(a.out, "out"), num_train_epochs=1, per_device_train_batch_size=BATCH, per_device_eval_batch_size=64,
        learning_rate=5e-4, logging_steps=LOGGING_STEPS, eval_strategy="steps", eval_steps=EVAL_STEPS, save_strategy="no",
        report_to=["tensorboard"] if a.tensorboard else "none", use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, seed=0,
    )
    tw = TrainwatchCallback(name=a.name)
    trace = open(os.path.join(a.out, "trace.jsonl"), "w", buffering=1)

    class Trace(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            print(f"OPERATION {tw.run.operation_id}", flush=True)

        def on_step_end(self, args, state, control, **kw):
            trace.write(json.dumps({"step": state.global_step, "t": time.time(), "heard": tw.run.should_stop}) + "\n")
            if a.step_delay:
                time.sleep(a.step_delay)

    def accuracy(p):
        return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}

    trainer = transformers.Trainer(model=model, args=args, train_dataset=rows(HF_STEPS * BATCH), eval_dataset=rows(128),
                                   compute_metrics=accuracy, callbacks=[tw, Trace()])
    trainer.train()  # its on_train_end finishes the run
    print(f"TRAINED {trainer.state.global_step} {time.time()}", flush=True)
    return 0


def torch_train(a: argparse.Namespace) -> int:
    """A plain PyTorch loop in the habit of wandb.log: no epochs, `run.log({"loss": l}, step=i)`, an evaluation every
    TORCH_EVAL_EVERY steps."""
    import torch
    import trainwatch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(4096, 16)
    y = (x[:, :4].sum(1) > 0).long()
    xv = torch.randn(512, 16)
    yv = (xv[:, :4].sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    run = trainwatch.init(name=a.name, config={"lr": 0.05}, total_steps=TORCH_STEPS)
    print(f"OPERATION {run.operation_id}", flush=True)
    for i in range(TORCH_STEPS):
        idx = torch.randint(0, len(x), (32,))
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log({"loss": loss.item()}, step=i)
        if i % TORCH_EVAL_EVERY == TORCH_EVAL_EVERY - 1:
            with torch.no_grad():
                out = model(xv)
                run.log({"eval_loss": nn.functional.cross_entropy(out, yv).item(), "eval_accuracy": (out.argmax(1) == yv).float().mean().item()}, step=i)
        if a.step_delay:
            time.sleep(a.step_delay)
        if run.should_stop:
            break
    return 0 if run.finish() else 1


# ---------------------------------------------------------------------------------------------------------------------
# The checks.


class Table:
    """The printed figures, each beside its goal; `ok` False on any line makes the exit status 1."""

    def __init__(self) -> None:
        self.rows: List[Tuple[str, str, str, bool]] = []

    def add(self, figure: str, value: Any, goal: str, ok: bool) -> None:
        self.rows.append((figure, str(value), goal, bool(ok)))
        print(f"  {'ok ' if ok else 'BAD'} {figure}: {value}   (goal: {goal})", flush=True)

    def print(self) -> None:
        w = [max(len(r[i]) for r in self.rows) for i in range(3)]
        print(f"\n{'figure':<{w[0]}}  {'measured':<{w[1]}}  {'goal':<{w[2]}}  ")
        for f, v, g, ok in self.rows:
            print(f"{f:<{w[0]}}  {v:<{w[1]}}  {g:<{w[2]}}  {'ok' if ok else 'MISSED'}")

    @property
    def ok(self) -> bool:
        return all(r[3] for r in self.rows)


def spawn(mode: str, out: str, url: str, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, TRAINWATCH_URL=url, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), mode, "--out", out, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def operation_of(proc: subprocess.Popen, log: List[str]) -> str:
    """Reads the training's output up to its `OPERATION <id>` line (the rest is drained on a thread into `log`)."""
    for line in proc.stdout:
        log.append(line)
        if line.startswith("OPERATION "):
            threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True).start()
            return line.split()[1]
    raise RuntimeError("the training ended before registering:\n" + "".join(log[-40:]))


def watch_progress(server, op_id: str, stop: threading.Event, into: List[Tuple[int, Optional[int], Optional[float]]]) -> threading.Thread:
    """Samples the operation's progress every 0.25 s while the training runs."""

    def loop():
        while not stop.is_set():
            p = server.operation(op_id)["progress"]
            into.append((p.get("steps_completed") or 0, p.get("total_steps"), p.get("percentage")))
            stop.wait(0.25)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def bun(*args: str, url: str, timeout: float = 120) -> subprocess.CompletedProcess:
    exe = os.path.join(ROOT, "node_modules", ".bin", "bun")
    return subprocess.run([exe, *args], cwd=ROOT, env=dict(os.environ, TRAINWATCH_URL=url), capture_output=True, text=True, timeout=timeout)


def tb_scalars(logdir: str) -> Dict[str, List[Tuple[int, float]]]:
    """Every scalar tag TensorBoard reads under `logdir` (any run in it), as (step, value) lists."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: Dict[str, List[Tuple[int, float]]] = {}
    for run in sorted({os.path.dirname(p) for p in glob.glob(os.path.join(logdir, "**", "events.out.tfevents*"), recursive=True)}):
        ea = EventAccumulator(run, size_guidance={"scalars": 0})
        ea.Reload()
        for tag in ea.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in ea.Scalars(tag))
    return out


def points(rows: List[Dict[str, Any]], skip=("step", "timestamp")) -> int:
    return sum(1 for r in rows for k, v in r.items() if k not in skip and v is not None)


def f32(v: Any) -> float:
    import struct

    if isinstance(v, str):
        return float(v.replace("Infinity", "inf"))
    try:
        return struct.unpack("f", struct.pack("f", v))[0]
    except OverflowError:
        return math.copysign(math.inf, v)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def export_matches(server, op_id: str, tmp: str) -> Tuple[int, int, List[str]]:
    """GET …/tfevents into a folder of its own, read back by EventAccumulator: (values compared, steps, mismatches)."""
    with urllib.request.urlopen(f"{server.url}/api/v1/operations/{op_id}/tfevents") as res:
        data = res.read()
    d = os.path.join(tmp, f"export-{op_id}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "events.out.tfevents.0.trainwatch"), "wb") as f:
        f.write(data)
    tb = {tag: dict(pts) for tag, pts in tb_scalars(d).items()}
    rows = server.steps(op_id)
    bad: List[str] = []
    n = 0
    for r in rows:
        for k, v in r.items():
            if k in ("step", "timestamp") or v is None:
                continue
            tag = TAGS.get(k, k)
            got = tb.get(tag, {}).get(r["step"])
            n += 1
            if got is None or not same(got, f32(v)):
                bad.append(f"{tag}@{r['step']}: stored {v}, TensorBoard {got}")
    stored = sum(1 for r in rows for k, v in r.items() if k not in ("step", "timestamp") and v is not None)
    read = sum(len(v) for v in tb.values())
    if read != stored:
        bad.append(f"TensorBoard reads {read} points, {stored} stored")
    return n, len(rows), bad


def agents(t: Table, server, label: str, op_id: str) -> None:
    r = bun("agents/loss_analyzer.ts", op_id, url=server.url)
    print(r.stdout[-1500:], r.stderr[-800:])
    t.add(f"{label}: loss_analyzer exit / names the steps", f"{r.returncode} / {'steps' in r.stdout}", "0 / True", r.returncode == 0 and "steps" in r.stdout)
    r = bun("agents/training_monitor.ts", op_id, "--interval", "1", url=server.url, timeout=30)
    print(r.stdout[-1500:], r.stderr[-800:])
    t.add(f"{label}: training_monitor (finished run) exit", r.returncode, "0", r.returncode == 0 and "step" in r.stdout)


def mcp_range(t: Table, server, label: str, op_id: str, lo: int, hi: int) -> None:
    r = bun("scripts/steps_acceptance.ts", "mcp", op_id, str(lo), str(hi), "200", url=server.url)
    if r.returncode != 0:
        t.add(f"{label}: MCP get_operation_metrics {lo}…{hi}", f"exit {r.returncode}: {r.stderr[-300:]}", "rows of the range", False)
        return
    got = json.loads(r.stdout.strip().splitlines()[-1])
    want = [s for s in server.steps(op_id) if lo <= s["step"] <= hi]
    steps = [s["step"] for s in got.get("steps", [])]
    ok = got.get("resolution") == "step" and steps == [s["step"] for s in want] and got["steps"] == want
    t.add(f"{label}: MCP get_operation_metrics steps {lo}…{hi}", f"{len(steps)} rows ({steps[:1]}…{steps[-1:]})", f"the {len(want)} stored rows, equal", ok)


def main_check(a: argparse.Namespace) -> int:
    from server import Server

    t = Table()
    tmp = tempfile.mkdtemp(prefix="steps-acceptance-")
    server = Server().start()
    print(f"server {server.url} (database {server.dir})", flush=True)
    try:
        # 1. HF + TensorBoard, counted; progress sampled while it runs.
        print("\n== 1. Hugging Face Trainer, TrainwatchCallback + TensorBoardCallback", flush=True)
        out = os.path.join(tmp, "hf")
        os.makedirs(out)
        log: List[str] = []
        t0 = time.monotonic()
        proc = spawn("hf-train", out, server.url, "--tensorboard", "--name", "acceptance hf bert")
        hf_id = operation_of(proc, log)
        samples: List[Tuple[int, Optional[int], Optional[float]]] = []
        stop = threading.Event()
        watcher = watch_progress(server, hf_id, stop, samples)
        rc = proc.wait(600)
        stop.set()
        watcher.join()
        print(f"   trained in {time.monotonic() - t0:.1f} s; {''.join(log[-3:])}", end="")
        t.add("HF run exit status", rc, "0", rc == 0)
        tb = tb_scalars(os.path.join(out, "tb"))
        tb_points = sum(len(v) for v in tb.values())
        print("   TensorBoard:", {k: len(v) for k, v in sorted(tb.items())})
        steps = server.steps(hf_id)
        epochs = server.epochs(hf_id)
        fields: Dict[str, int] = {}
        for r in steps:
            for k, v in r.items():
                if k not in ("step", "timestamp") and v is not None:
                    fields[k] = fields.get(k, 0) + 1
        print("   Trainwatch steps:", dict(sorted(fields.items())), f"derived epochs: {epochs}")
        tw_points = points(steps) + points(epochs, skip=("epoch", "timestamp", "step"))
        unique = len({(tag, st) for tag, pts in tb.items() for st, _ in pts})
        t.add("HF: points TensorBoard recorded (tags x points)", f"{tb_points} in {len(tb)} tags ({unique} distinct tag/step)", "-", True)
        t.add("HF: points Trainwatch stored (step fields + derived epochs)", f"{tw_points} ({points(steps)} + {tw_points - points(steps)})", f">= {tb_points}", tw_points >= tb_points)
        logged = [k - 1 for k in range(LOGGING_STEPS, HF_STEPS + 1, LOGGING_STEPS)]
        evaluated = [k - 1 for k in range(EVAL_STEPS, HF_STEPS + 1, EVAL_STEPS)]
        t.add("HF: logged steps stored (train_loss)", sum(1 for s in steps if "train_loss" in s), f"{len(logged)} (every logging_steps)",
              [s["step"] for s in steps if "train_loss" in s] == logged)
        t.add("HF: evaluations stored on their step (val_loss)", sum(1 for s in steps if "val_loss" in s), f"{len(evaluated)} (every eval_steps)",
              [s["step"] for s in steps if "val_loss" in s] == evaluated)
        recorded = {(tag, st): v for tag, pts in tb.items() if tag != "train/epoch" for st, v in pts}
        stored = {(TAGS.get(k, k), s["step"] + 1): v for s in steps for k, v in s.items() if k not in ("step", "epoch", "timestamp")}
        missing = sorted(set(recorded) - set(stored))
        differ = [k for k in recorded if k in stored and not same(recorded[k], f32(stored[k]))]
        t.add("HF: TensorBoard's points (but its fractional epoch) stored, equal, at HF step = step + 1",
              f"{len(recorded) - len(missing)} of {len(recorded)}, {len(differ)} differ" + (f"; missing {missing[:4]}" if missing else ""), f"{len(recorded)} of {len(recorded)}, 0",
              not missing and not differ)
        op = server.operation(hf_id)
        running = [s for s in samples if s[0] > 0]
        t.add("HF: progress samples while running (steps_completed/total_steps)",
              f"{len(running)} samples, {running[0][:2] if running else None} ... {running[-1][:2] if running else None}",
              f"rising, of {HF_STEPS}", len(running) >= 2 and running[-1][0] > running[0][0] and all(s[1] == HF_STEPS for s in running))
        p = op["progress"]
        t.add("HF: final progress", f"{p.get('steps_completed')}/{p.get('total_steps')} steps, {p.get('percentage')} %, {op['status']}",
              f"{HF_STEPS}/{HF_STEPS}, 100 %, completed", p.get("steps_completed") == HF_STEPS and p.get("total_steps") == HF_STEPS and p.get("percentage") == 100 and op["status"] == "completed")

        # 2. The same, slowed; watched on the dashboard and cancelled there.
        print("\n== 2. The dashboard charts it live, and Cancel stops it", flush=True)
        out2 = os.path.join(tmp, "hf-cancel")
        os.makedirs(out2)
        log2: List[str] = []
        proc = spawn("hf-train", out2, server.url, "--step-delay", str(CANCEL_STEP_S), "--name", "acceptance hf cancel")
        cancel_id = operation_of(proc, log2)
        dash = bun("scripts/steps_acceptance.ts", "dashboard", server.url, cancel_id, "--cancel-at", str(CANCEL_AT), url=server.url, timeout=300)
        try:
            rc = proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "did not exit"
        exited = time.time()
        if dash.returncode != 0:
            print(dash.stdout[-2000:], dash.stderr[-3000:])
            t.add("dashboard script", f"exit {dash.returncode}", "0", False)
        else:
            d = json.loads(dash.stdout.strip().splitlines()[-1])
            print("   dashboard:", d)
            t.add("dashboard: step chart points, read 1 -> read 2", f"{d['first']['points']} (to step {d['first']['last_step']}) -> {d['second']['points']} (to step {d['second']['last_step']})",
                  "> 0 and growing", d["first"]["points"] > 0 and d["second"]["last_step"] > d["first"]["last_step"])
            t.add("dashboard: progress shown", d["progress"], "in steps", "steps" in (d["progress"] or ""))
            t.add("dashboard: page errors", len(d["errors"]), "0", not d["errors"])
            trace = [json.loads(x) for x in open(os.path.join(out2, "trace.jsonl"))]
            click = d["clicked_at"] / 1000
            at_click = max([s["step"] for s in trace if s["t"] <= click] or [0])
            heard = next((s for s in trace if s["heard"]), None)
            last = trace[-1]["step"]
            t.add("cancel: HF steps trained after the click", f"{last - at_click} (click at step {at_click}, stopped at {last}; {CANCEL_STEP_S} s/step)",
                  "heard <= ~1 s: <= 1 s / step time + 1", last - at_click <= math.ceil(1.5 / CANCEL_STEP_S) + 1)
            t.add("cancel: steps trained after the trainer heard it", f"{last - heard['step'] if heard else 'never heard'}", "<= 1 (HF checks every step)",
                  heard is not None and last - heard["step"] <= 1)
            t.add("cancel: click -> stop heard", f"{heard['t'] - click:.2f} s" if heard else "-", "<= ~1 s (the client's control poll)", heard is not None and heard["t"] - click <= 1.5)
            returned = next((float(x.split()[2]) for x in log2 if x.startswith("TRAINED ")), math.nan)
            t.add("cancel: click -> training process exited", f"{exited - click:.2f} s (last step {trace[-1]['t'] - click:.2f} s, train() returned {returned - click:.2f} s)",
                  "a few seconds", rc == 0 and exited - click <= 10)
            op = server.operation(cancel_id)
            t.add("cancel: operation status / decided by", f"{op['status']} / {(op.get('control') or {}).get('decided_by')}", "cancelled / dashboard",
                  op["status"] == "cancelled" and (op.get("control") or {}).get("decided_by") == "dashboard")

        # 3. A plain PyTorch loop in the wandb.log habit, the monitor following it live.
        print("\n== 3. Plain PyTorch, run.log({'loss': l}, step=i)", flush=True)
        out3 = os.path.join(tmp, "torch")
        os.makedirs(out3)
        log3: List[str] = []
        proc = spawn("torch-train", out3, server.url, "--step-delay", "0.005", "--name", "acceptance pytorch wandb habit")
        torch_id = operation_of(proc, log3)
        monitor = bun("agents/training_monitor.ts", torch_id, "--interval", "1", url=server.url, timeout=120)
        rc = proc.wait(120)
        print(monitor.stdout[-1200:], monitor.stderr[-500:])
        t.add("PyTorch run exit status", rc, "0 (no ValueError)", rc == 0)
        t.add("PyTorch: training_monitor, live, exit / lines", f"{monitor.returncode} / {monitor.stdout.count(chr(10))}", "0, one line a poll", monitor.returncode == 0 and "step" in monitor.stdout)
        steps = server.steps(torch_id)
        t.add("PyTorch: steps stored", len(steps), f"{TORCH_STEPS}", [s["step"] for s in steps] == list(range(TORCH_STEPS)))
        evals = [s["step"] for s in steps if "val_loss" in s]
        t.add("PyTorch: evaluations on their step", len(evals), f"{TORCH_STEPS // TORCH_EVAL_EVERY}", evals == list(range(TORCH_EVAL_EVERY - 1, TORCH_STEPS, TORCH_EVAL_EVERY)))
        op = server.operation(torch_id)
        t.add("PyTorch: progress / status", f"{op['progress'].get('steps_completed')}/{op['progress'].get('total_steps')} {op['status']}", f"{TORCH_STEPS}/{TORCH_STEPS} completed",
              op["progress"].get("steps_completed") == TORCH_STEPS and op["status"] == "completed")

        # 4. Agents, MCP, TensorBoard export on both runs.
        print("\n== 4. Agents, MCP, the TensorBoard export", flush=True)
        for label, op_id, lo, hi in (("HF", hf_id, 50, 149), ("PyTorch", torch_id, 50, 149)):
            agents(t, server, label, op_id)
            mcp_range(t, server, label, op_id, lo, hi)
            n, rows, bad = export_matches(server, op_id, tmp)
            t.add(f"{label}: tfevents export read back by EventAccumulator", f"{rows} steps, {n} values, {len(bad)} differ" + (f": {bad[:3]}" if bad else ""), "all equal", not bad and n > 0)
    finally:
        server.close()
    t.print()
    return 0 if t.ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", default="check", choices=["check", "hf-train", "torch-train"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--name", default="steps acceptance")
    ap.add_argument("--tensorboard", action="store_true")
    ap.add_argument("--step-delay", type=float, default=0.0, help="seconds added to each step (a training to watch)")
    a = ap.parse_args()
    if a.mode == "hf-train":
        return hf_train(a)
    if a.mode == "torch-train":
        return torch_train(a)
    return main_check(a)


if __name__ == "__main__":
    sys.exit(main())
