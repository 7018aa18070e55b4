#!/usr/bin/env python3
"""A plain PyTorch loop reporting every optimisation step to Trainwatch, in the habit of `wandb.log`.

    pip install "./clients/python[torch]"   # (or run from the repository: the example finds the package)
    TRAINWATCH_URL=http://127.0.0.1:8000 python3 examples/pytorch_steps.py --epochs 3 --eval-every 50

Every step is one `run.log({"loss": …, "lr": …, "grad_norm": …}, step=step, epoch=epoch)`: it costs a few
microseconds and never waits on the network (a background sender posts the steps in batches, every 0.5 s or 1,000
rows, and spools them while the server is away). Every `--eval-every` steps the evaluation lands on the step it was
taken at (`eval_loss`, `eval_accuracy`). The loop checks `run.should_stop` after every step, so a cancel from the
dashboard (or the stop policy given with --stop-on) ends it within about a second, at the step it is in. The server
derives each epoch's record from the steps' `epoch`. Exits 1 when the steps did not all arrive.
"""

from __future__ import annotations

import argparse
import os
import sys

try:
    import trainwatch
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
    import trainwatch

import torch
from torch import nn


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--samples", type=int, default=8000)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--name", default="pytorch steps example")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stop-on", nargs="*", default=None, metavar="FLAG", help="stop policy: diverging overfitting stalled plateau")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    x = torch.randn(args.samples, 16)
    y = (x[:, :4].sum(dim=1) > 0).long()
    split = int(0.9 * len(x))
    xt, yt, xv, yv = x[:split], y[:split], x[split:], y[split:]
    steps_per_epoch = (split + args.batch_size - 1) // args.batch_size
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()

    run = trainwatch.init(
        name=args.name,
        config=vars(args),
        total_epochs=args.epochs,
        total_steps=args.epochs * steps_per_epoch,  # progress is counted in steps
        stop_policy={"on": args.stop_on} if args.stop_on else None,
    )
    print(f"run {run.operation_id or '(registers when the server answers)'} at {run.url}: {args.epochs} epochs of {steps_per_epoch} steps")

    step = 0
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(split)
        for i in range(0, split, args.batch_size):
            idx = perm[i : i + args.batch_size]
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
            lr = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            run.log({"loss": loss.item(), "lr": lr, "grad_norm": grad_norm.item(), "samples": (step + 1) * args.batch_size}, step=step, epoch=epoch)
            if step % args.eval_every == args.eval_every - 1:
                model.eval()
                with torch.no_grad():
                    out = model(xv)
                    run.log({"eval_loss": loss_fn(out, yv).item(), "eval_accuracy": (out.argmax(1) == yv).float().mean().item()}, step=step)
                model.train()
            if run.should_stop:  # heard within about a second of a cancel, whatever the step rate
                break
            step += 1
        if run.should_stop:
            print(f"stopped by the server at step {step} (epoch {epoch}): {(run.control or {}).get('reason')}")
            break
        print(f"epoch {epoch}: step {step}, last loss {loss.item():.4f}")
    ok = run.finish()
    print(f"finished {run.operation_id}: {run.delivered} rows delivered{'' if ok else ' (some are still spooled)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
