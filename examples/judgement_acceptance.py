#!/usr/bin/env python3
"""The step judgement's acceptance (issue 23), tried as a new user would, against the real server; re-runnable, prints
each figure beside its goal and exits 1 when one is missed.

    python3 examples/judgement_acceptance.py        # needs torch, transformers, accelerate

The Hugging Face fine-tuning of examples/steps_acceptance.py (a tiny random-initialised BERT from a config, nothing
downloaded), with logging_steps=1 so that every step is reported, eval_steps=EVAL_STEPS, a constant learning rate, and
a stop policy `{"on": ["diverging"]}` given to TrainwatchCallback at init:

1. a loss spike injected at one step (a corrupted batch: its labels flipped; the learning rate ×40 for one step was
   tried first and made this easy task's loss fall, not spike): GET …/analysis must
   list it in `spikes` with `recovered: true`, and the run must not be stopped (completed, no stop decision);
2. the same run with a learning rate that blows up (×BLOWUP_GROWTH a step from BLOWUP_AT), the Trainer saving a
   checkpoint every SAVE_STEPS steps: flagged `diverging` within one evaluation interval of the onset (as the step
   corpus labels it, bench/step_corpus.py: the first evaluation whose loss is ≥ 2× the best before it and stays
   ≥ 1.5× it; the learning rate starts growing earlier, and at first the loss falls faster), the run stopped
   within one step of the decision (the decision's `step` against the last step stored), and the advice naming a
   checkpoint the Trainer saved before the blow-up (Trainwatch does not know the trainer's checkpoints: the advice says
   "the last checkpoint taken before step N", and control.checkpoint_step is a step whose checkpoint to go back to);
3. the loss analyzer and the monitor agent print the spike and the decision.

Steps are the API's (from 0): HF's global_step g is the API's step g − 1, and HF's `checkpoint-g` holds the weights
after API step g − 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from datetime import datetime
from typing import Any, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import steps_acceptance as sa  # noqa: E402  (its tokenizer, rows, Table, spawn, bun: one home)

HF_STEPS = 300
EVAL_STEPS = 25
LR = 5e-4
SPIKE_AT = 150  # API step whose batch is corrupted (its labels flipped)
BLOWUP_AT = 150  # API step from which the lr grows ×BLOWUP_GROWTH a step
BLOWUP_GROWTH = 1.5
SAVE_STEPS = 20
POLICY = {"on": ["diverging"]}


def hf_train(a: argparse.Namespace) -> int:
    """The fine-tuning, with the learning-rate injection; prints `OPERATION <id>` once registered and `TRAINED <g>`."""
    import random

    import torch
    import transformers
    from trainwatch.hf import TrainwatchCallback

    torch.set_num_threads(1)
    with open(os.path.join(a.out, "vocab.txt"), "w") as f:
        f.write("\n".join(sa.VOCAB) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=os.path.join(a.out, "vocab.txt"))
    if tok.convert_tokens_to_ids("good") == tok.unk_token_id:
        tok = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(sa.VOCAB)})
    rnd = random.Random(0)

    def rows(n: int) -> List[Any]:
        out = []
        for _ in range(n):
            pos = rnd.random() < 0.5
            words = ["the", "movie", "was"] + rnd.choices(sa.WORDS[8:11] if pos else sa.WORDS[11:], k=2) + rnd.choices(sa.WORDS[:8], k=3)
            rnd.shuffle(words)
            out.append({**tok(" ".join(words), padding="max_length", max_length=sa.SEQ, truncation=True), "labels": int(pos)})
        return out

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(sa.VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=sa.SEQ, num_labels=2)
    model = transformers.BertForSequenceClassification(cfg)
    save = a.mode_kind == "blowup"
    args = transformers.TrainingArguments(
        output_dir=os.path.join(a.out, "out"), num_train_epochs=1, per_device_train_batch_size=sa.BATCH, per_device_eval_batch_size=64,
        learning_rate=LR, lr_scheduler_type="constant", logging_steps=1, eval_strategy="steps", eval_steps=EVAL_STEPS,
        save_strategy="steps" if save else "no", save_steps=SAVE_STEPS, report_to="none", use_cpu=True, disable_tqdm=True,
        dataloader_num_workers=0, seed=0,
    )
    tw = TrainwatchCallback(name=a.name, stop_policy=POLICY)
    trace = open(os.path.join(a.out, "trace.jsonl"), "w", buffering=1)  # each API step: its end, whether the stop was heard

    class Inject(transformers.TrainerCallback):
        """Sets this step's lr before its optimizer step (the constant scheduler puts LR back after it)."""

        def on_train_begin(self, args, state, control, **kw):
            print(f"OPERATION {tw.run.operation_id}", flush=True)

        def on_step_end(self, args, state, control, **kw):
            trace.write(json.dumps({"step": state.global_step - 1, "t": time.time(), "heard": tw.run.should_stop}) + "\n")

        def on_step_begin(self, args, state, control, optimizer=None, **kw):
            step = state.global_step  # the API number of the step about to be taken
            factor = BLOWUP_GROWTH ** (step - BLOWUP_AT + 1) if a.mode_kind == "blowup" and step >= BLOWUP_AT else 1.0
            for g in optimizer.param_groups:
                g["lr"] = LR * factor

    class Corrupting(transformers.Trainer):
        """Flips the labels of step SPIKE_AT's training batch (spike runs only)."""

        def compute_loss(self, model, inputs, *args, **kw):
            if a.mode_kind == "spike" and model.training and self.state.global_step == SPIKE_AT:
                inputs = {**inputs, "labels": 1 - inputs["labels"]}
            return super().compute_loss(model, inputs, *args, **kw)

    trainer = Corrupting(model=model, args=args, train_dataset=rows(HF_STEPS * sa.BATCH), eval_dataset=rows(128),
                                   callbacks=[tw, Inject()])
    trainer.train()
    print(f"TRAINED {trainer.state.global_step}", flush=True)
    return 0


def start(server, kind: str, tmp: str):
    import subprocess

    out = os.path.join(tmp, kind)
    os.makedirs(out)
    env = dict(os.environ, TRAINWATCH_URL=server.url, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "hf-train", "--out", out, "--kind", kind, "--name", f"judgement acceptance {kind}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log: List[str] = []
    op_id = sa.operation_of(proc, log)
    rc = proc.wait(600)
    trained = next((int(x.split()[1]) for x in log if x.startswith("TRAINED ")), None)
    if rc != 0:
        print("".join(log[-40:]))
    return op_id, out, rc, trained


def eval_onset(steps: List[dict]) -> Any:
    """The step corpus's divergence onset (bench/step_corpus.py diverged_onset), on val_loss: the first evaluation whose
    loss is non-finite or ≥ 2× the lowest finite one before it, and stays non-finite or ≥ 1.5× that best after."""
    ev = [(r["step"], r["val_loss"]) for r in steps if r.get("val_loss") is not None]
    val = [float(v) if not isinstance(v, str) else float(v.replace("Infinity", "inf")) for _, v in ev]
    bad = lambda v, best, k: not math.isfinite(v) or v >= k * best  # noqa: E731
    for i, (step, v) in enumerate(ev):
        before = [x for x in val[:i] if math.isfinite(x)]
        if before and bad(val[i], min(before), 2.0) and all(bad(x, min(before), 1.5) for x in val[i + 1:]):
            return step
    return None


def analysis(server, op_id: str) -> dict:
    return server.call("GET", f"/operations/{op_id}/analysis")["data"]


def agents(t: sa.Table, server, label: str, op_id: str, want: List[str]) -> None:
    """Both agents on the finished run; `want`: regexes each output must match."""
    for script, extra in (("agents/loss_analyzer.ts", ()), ("agents/training_monitor.ts", ("--interval", "1"))):
        r = sa.bun(script, op_id, *extra, url=server.url, timeout=60)
        print(f"--- {script} {op_id}\n{r.stdout[-2500:]}{r.stderr[-800:]}")
        missing = [w for w in want if not re.search(w, r.stdout, re.I)]
        t.add(f"{label}: {os.path.basename(script)} exit / prints {want}", f"{r.returncode} / missing {missing}", "0 / missing []",
              r.returncode == 0 and not missing)


def main_check() -> int:
    from server import Server

    t = sa.Table()
    tmp = tempfile.mkdtemp(prefix="judgement-acceptance-")
    server = Server().start()
    print(f"server {server.url} (database {server.dir})", flush=True)
    try:
        print(f"\n== 1. A loss spike injected at step {SPIKE_AT} (that batch's labels flipped), stop policy {POLICY}", flush=True)
        op_id, _, rc, trained = start(server, "spike", tmp)
        a = analysis(server, op_id)
        op = server.operation(op_id)
        spikes = a.get("spikes") or []
        print("   spikes:", json.dumps(spikes), "\n   flags:", a.get("flags"), "\n   recommendation:", a.get("recommendation"))
        losses = {r["step"]: r.get("train_loss") for r in server.steps(op_id)}
        print("   train_loss", {k: losses.get(k) for k in range(SPIKE_AT - 3, SPIKE_AT + 8)})
        near = [s for s in spikes if SPIKE_AT <= s["step"] <= SPIKE_AT + 3]
        t.add("spike: training exit / HF steps", f"{rc} / {trained}", f"0 / {HF_STEPS}", rc == 0 and trained == HF_STEPS)
        t.add("spike: in GET …/analysis spikes", json.dumps(near) if near else f"none near step {SPIKE_AT} ({len(spikes)} spikes)",
              f"one at step {SPIKE_AT}…{SPIKE_AT + 3}, recovered: true", len(near) >= 1 and all(s["recovered"] is True for s in near))
        t.add("spike: other spikes reported", [s["step"] for s in spikes if s not in near], "none (noise is no spike)", len(spikes) == len(near))
        ctl = op.get("control") or {"action": "continue"}
        t.add("spike: status / control / diverging", f"{op['status']} / {ctl.get('action')} / {(a.get('flags') or {}).get('diverging')}",
              "completed / continue / False", op["status"] == "completed" and ctl.get("action") == "continue" and not (a.get("flags") or {}).get("diverging"))
        spike_id = op_id

        print(f"\n== 2. The lr blows up from step {BLOWUP_AT} (×{BLOWUP_GROWTH:g} a step), checkpoints every {SAVE_STEPS} steps, stop policy {POLICY}", flush=True)
        op_id, out, rc, trained = start(server, "blowup", tmp)
        a = analysis(server, op_id)
        op = server.operation(op_id)
        ctl = op.get("control") or {}
        rec = a.get("recommendation") or {}
        print("   control:", json.dumps(ctl), "\n   flags:", a.get("flags"), "\n   spikes:", json.dumps(a.get("spikes")), "\n   recommendation:", json.dumps(rec))
        steps = server.steps(op_id)
        last = steps[-1]["step"] if steps else None
        print("   train_loss", {r["step"]: r.get("train_loss") for r in steps if BLOWUP_AT - 3 <= r["step"] <= BLOWUP_AT + 30})
        print("   val_loss", {r["step"]: r.get("val_loss") for r in steps if r.get("val_loss") is not None})
        decided = ctl.get("step")
        div = a.get("divergence") or {}
        judged = div.get("decided_step")
        onset = eval_onset(steps)
        t.add("blow-up: training exit", rc, "0", rc == 0)
        t.add("blow-up: flagged diverging / decided by", f"{(a.get('flags') or {}).get('diverging')} / {ctl.get('decided_by')}", "True / stop_policy",
              (a.get("flags") or {}).get("diverging") is True and ctl.get("decided_by") == "stop_policy")
        t.add("blow-up: judged diverging at step − onset", f"{judged} − {onset} = {None if judged is None or onset is None else judged - onset} "
              f"(lr growing from step {BLOWUP_AT}; the spike began at step {div.get('step')})",
              f"≤ {EVAL_STEPS} (one evaluation interval)", judged is not None and onset is not None and judged - onset <= EVAL_STEPS)
        t.add("blow-up: stop decision's step − judged step", f"{decided} − {judged} = {None if decided is None or judged is None else decided - judged}",
              "(the batch the flag came in: the client posts steps every 0.5 s)", decided is not None)
        trace = [json.loads(x) for x in open(os.path.join(out, "trace.jsonl"))]
        heard = next((x for x in trace if x["heard"]), None)
        at = datetime.fromisoformat(ctl["at"].replace("Z", "+00:00")).timestamp() if ctl.get("at") else None
        step_s = (trace[-1]["t"] - trace[0]["t"]) / max(1, len(trace) - 1)
        late = None if heard is None or at is None else heard["t"] - at
        travel = 0 if late is None else math.ceil(max(0.0, late) / step_s)
        t.add("blow-up: decision → the trainer heard it", "never" if heard is None else f"{late * 1000:.0f} ms, at the end of step {heard['step']} ({step_s * 1000:.0f} ms a step)",
              "≤ 1 s (the write's reply)", late is not None and late <= 1.0)
        t.add("blow-up: last step stored − step the trainer heard it", f"{last} − {heard['step'] if heard else None}", "0 … 1 (HF stops after the step it is in)",
              heard is not None and last is not None and 0 <= last - heard["step"] <= 1)
        t.add("blow-up: last step stored − decision step", f"{last} − {decided} = {None if decided is None or last is None else last - decided}",
              f"≤ 1 + the steps trained while the reply travelled ({travel})", decided is not None and last is not None and last - decided <= 1 + travel)
        t.add("blow-up: status / HF steps trained", f"{op['status']} / {trained}", f"stopped early / < {HF_STEPS}",
              trained is not None and trained < HF_STEPS and op["status"] in ("completed", "cancelled", "failed"))
        saved = sorted(int(d.split("-")[1]) - 1 for d in os.listdir(os.path.join(out, "out")) if d.startswith("checkpoint-"))
        cp = ctl.get("checkpoint_step")
        named = max([s for s in saved if cp is not None and s <= cp], default=None)
        m = re.search(r"last checkpoint taken before step (\d+)", ctl.get("reason") or "")
        text_step = int(m.group(1)) if m else None
        by_text = max([s for s in saved if text_step is not None and s < text_step], default=None)
        print(f"   checkpoints saved (API steps): {saved}")
        t.add("blow-up: control.checkpoint_step → the Trainer's checkpoint", f"{cp} → checkpoint at step {named}",
              f"a saved one before the onset ({onset})", named is not None and onset is not None and named < onset)
        t.add("blow-up: reason names 'the last checkpoint taken before step N' → checkpoint", f"N = {text_step} → step {by_text}",
              f"a saved one before the onset ({onset})", by_text is not None and onset is not None and by_text < onset)
        t.add("blow-up: analysis recommendation", f"{rec.get('action')} / checkpoint_step {rec.get('checkpoint_step')}", f"stop / < {onset}",
              rec.get("action") == "stop" and rec.get("checkpoint_step") is not None and onset is not None and rec["checkpoint_step"] < onset)
        blow_id = op_id

        print("\n== 3. The loss analyzer and the monitor", flush=True)
        agents(t, server, "spike run", spike_id, [rf"spike\D+{SPIKE_AT}", r"recovered"])
        agents(t, server, "blow-up run", blow_id, [r"diverg", r"stop", rf"before step \d+"])
    finally:
        server.close()
    t.print()
    return 0 if t.ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", default="check", choices=["check", "hf-train"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--kind", dest="mode_kind", default="spike", choices=["spike", "blowup"])
    ap.add_argument("--name", default="judgement acceptance")
    a = ap.parse_args()
    if a.mode == "hf-train":
        return hf_train(a)
    return main_check()


if __name__ == "__main__":
    sys.exit(main())
