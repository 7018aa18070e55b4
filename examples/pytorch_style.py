#!/usr/bin/env python3
"""A plain PyTorch training loop reporting to Trainwatch through the `trainwatch` client.

    pip install ./clients/python        # (or run from the repository: the example finds the package)
    TRAINWATCH_URL=http://127.0.0.1:8000 python3 examples/pytorch_style.py --epochs 20

If `import torch` works it trains a tiny real model on synthetic data; otherwise (or with --simulate) it simulates
one (a decaying loss plus noise). `run.log()` never waits on the network: a background sender batches the epochs,
and spools them while the server is away. The loop stops early when the server says so (a cancel from the
dashboard, an agent or the monitor, or the stop policy given with --stop-on).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time

try:
    import trainwatch
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
    import trainwatch


def simulated_training(epochs: int, seed: int, lr: float):
    """A model whose loss decays with noise; val loss turns up late, like a mild overfit."""
    rng = random.Random(seed)
    for epoch in range(epochs):
        time.sleep(0.05)  # the "work"
        train_loss = 2.3 * math.exp(-epoch / 6) + 0.1 + rng.gauss(0, 0.01)
        val_loss = 2.4 * math.exp(-epoch / 6) + 0.15 + max(0, epoch - 12) * 0.01 + rng.gauss(0, 0.015)
        yield {
            "train_loss": train_loss,
            "val_loss": val_loss,
            "train_accuracy": min(1.0, 1 - train_loss / 2.6),
            "val_accuracy": min(1.0, 1 - val_loss / 2.7),
            "learning_rate": lr * 0.9**epoch,
        }


def torch_training(epochs: int, seed: int, lr: float, stop=lambda: False):
    """A tiny real model: 2-layer MLP on a synthetic binary task, plain PyTorch loop. `stop()` is checked every batch:
    the server's word comes with the reply to the last epoch's log, so it is heeded inside the next epoch (which is
    then not logged), not after it."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    x = torch.randn(2000, 16)
    y = (x[:, :4].sum(dim=1) > 0).float().unsqueeze(1)
    xt, yt, xv, yv = x[:1600], y[:1600], x[1600:], y[1600:]
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        model.train()
        total, correct = 0.0, 0
        lr_used = opt.param_groups[0]["lr"]
        for i in range(0, len(xt), 64):
            if stop():
                return
            xb, yb = xt[i : i + 64], yt[i : i + 64]
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
            correct += ((out > 0).float() == yb).sum().item()
        sched.step()
        model.eval()
        with torch.no_grad():
            out = model(xv)
            val_loss = loss_fn(out, yv).item()
            val_acc = ((out > 0).float() == yv).float().mean().item()
        yield {"train_loss": total / len(xt), "val_loss": val_loss, "train_accuracy": correct / len(xt), "val_accuracy": val_acc, "learning_rate": lr_used}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--name", default="pytorch-style example")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--simulate", action="store_true", help="skip torch even if it is installed")
    ap.add_argument("--stop-on", nargs="*", default=None, metavar="FLAG", help="stop policy: diverging overfitting stalled plateau")
    args = ap.parse_args()

    try:
        if args.simulate:
            raise ImportError
        import torch  # noqa: F401

        loop, backend = torch_training(args.epochs, args.seed, args.lr, stop=lambda: run.should_stop), "torch"
    except ImportError:
        loop, backend = simulated_training(args.epochs, args.seed, args.lr), "simulated"

    run = trainwatch.init(
        name=args.name,
        config={"lr": args.lr, "seed": args.seed, "backend": backend},
        total_epochs=args.epochs,
        stop_policy={"on": args.stop_on} if args.stop_on else None,
    )
    print(f"run {run.operation_id or '(registers when the server answers)'} ({backend}) at {run.url}")
    for epoch, m in enumerate(loop):
        run.log(epoch=epoch, **m)
        print(f"epoch {epoch:3d}  train {m['train_loss']:.4f}  val {m['val_loss']:.4f}  lr {m['learning_rate']:.4g}")
        if run.should_stop:
            break
    if run.should_stop:  # here, or inside the next epoch (torch_training's stop())
        print(f"stopped by the server: {run.control.get('reason')}")
    ok = run.finish()
    print(f"finished {run.operation_id}: {run.delivered} epochs delivered{'' if ok else ' (some are still spooled)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
