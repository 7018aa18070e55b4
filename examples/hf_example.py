#!/usr/bin/env python3
"""A Hugging Face Trainer run reporting to Trainwatch through TrainwatchCallback.

    pip install "./clients/python[torch]" transformers accelerate
    TRAINWATCH_URL=http://127.0.0.1:8000 python3 examples/hf_example.py --epochs 10

Every 10th step is reported (`logging_steps`: loss, learning rate, grad norm) and every 50th carries an evaluation
(`eval_steps`); the server derives the per-epoch records. The model is a small torch module (the Trainer takes any nn.Module returning a loss), so nothing is downloaded;
with a hub model the callback is used the same way: `Trainer(..., callbacks=[TrainwatchCallback(name=...)])`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

try:
    import trainwatch  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

import torch
from transformers import Trainer, TrainingArguments

from trainwatch.hf import TrainwatchCallback


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))

    def forward(self, x, labels=None):
        logits = self.net(x)
        return {"logits": logits, "loss": torch.nn.functional.cross_entropy(logits, labels)} if labels is not None else {"logits": logits}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--name", default="hf example")
    ap.add_argument("--stop-on", nargs="*", default=None, metavar="FLAG")
    args = ap.parse_args()

    torch.manual_seed(0)
    x = torch.randn(args.samples, 16)
    y = (x[:, :4].sum(dim=1) > 0).long()
    rows = [{"x": x[i], "labels": int(y[i])} for i in range(args.samples)]
    split = int(args.samples * 0.8)
    tw = TrainwatchCallback(name=args.name, stop_policy={"on": args.stop_on} if args.stop_on else None)
    with tempfile.TemporaryDirectory() as out:
        training = TrainingArguments(output_dir=out, num_train_epochs=args.epochs, learning_rate=args.lr, per_device_train_batch_size=64,
                                     logging_steps=10, eval_strategy="steps", eval_steps=50, save_strategy="no", report_to="none", use_cpu=True)
        Trainer(model=Classifier(), args=training, train_dataset=rows[:split], eval_dataset=rows[split:], callbacks=[tw]).train()
    run = tw.last_run
    if run.should_stop:
        print(f"stopped by the server: {run.control.get('reason')}")
    print(f"{run.operation_id}: {run.delivered} rows delivered (a step every 10, an evaluation every 50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
