#!/usr/bin/env python3
"""A PyTorch Lightning 2.x fit reporting to Trainwatch: TrainwatchLogger + TrainwatchCallback.

    pip install ./clients/python lightning
    TRAINWATCH_URL=http://127.0.0.1:8000 python3 examples/lightning_example.py --epochs 30

The training loss is reported as a step every `log_every_n_steps` (Lightning's default, 50) and each epoch's
validation on its last step; the server derives the per-epoch records. Each epoch takes about a second (--samples
sets the size), long enough to cancel it from the dashboard (or `curl -X DELETE .../api/v1/operations/<id>`): the fit
stops within about a second, at the step it is in. --stop-on diverging with a large --lr
shows the stop policy doing the same on its own.
"""

from __future__ import annotations

import argparse
import os
import sys

try:
    import trainwatch  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

import lightning.pytorch as L
import torch
from torch import nn

from trainwatch.lightning import TrainwatchCallback, TrainwatchLogger


class Classifier(L.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 64):
        super().__init__()
        self.save_hyperparameters()  # → the operation's config
        self.net = nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def step(self, batch, stage):
        x, y = batch
        logits = self.net(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.log(f"{stage}_loss", loss, on_step=stage == "train", on_epoch=True)  # training: a step row every log_every_n_steps
        self.log(f"{stage}_acc", (logits.argmax(1) == y).float().mean(), on_step=stage == "train", on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self.step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self.step(batch, "val")

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.97)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--samples", type=int, default=40_000)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--name", default="lightning example")
    ap.add_argument("--stop-on", nargs="*", default=None, metavar="FLAG")
    args = ap.parse_args()

    torch.manual_seed(0)
    x = torch.randn(args.samples, 16)
    y = (x[:, :4].sum(dim=1) + 0.5 * torch.randn(args.samples) > 0).long()
    split = int(args.samples * 0.8)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:split], y[:split]), batch_size=64, shuffle=True)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[split:], y[split:]), batch_size=1024)

    logger = TrainwatchLogger(name=args.name, stop_policy={"on": args.stop_on} if args.stop_on else None)
    trainer = L.Trainer(max_epochs=args.epochs, logger=logger, callbacks=[TrainwatchCallback()], accelerator="cpu",
                        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False)
    trainer.fit(Classifier(lr=args.lr), train, val)
    run = logger.run
    if run.should_stop:
        print(f"stopped by the server after epoch {trainer.current_epoch - 1}: {run.control.get('reason')}")
    print(f"{run.operation_id}: {run.delivered} rows (steps) delivered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
