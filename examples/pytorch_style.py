#!/usr/bin/env python3
"""Push a PyTorch-style training loop's epochs to Trainwatch over REST.

Standard library only (urllib). If `import torch` works it trains a tiny real model
on synthetic data; otherwise it simulates one (a decaying loss plus noise). Either way
it registers an operation, posts every epoch (with retries: a re-posted epoch replaces
the stored one, so retrying is always safe) and completes the operation.

    TRAINWATCH_URL=http://127.0.0.1:8000 TRAINWATCH_TOKEN=... python3 examples/pytorch_style.py --epochs 20

Exits non-zero with a message when the server cannot be reached or refuses a request.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import urllib.error
import urllib.request

URL = os.environ.get("TRAINWATCH_URL", "http://127.0.0.1:8000").rstrip("/")
TOKEN = os.environ.get("TRAINWATCH_TOKEN")


class TrainwatchError(RuntimeError):
    pass


def call(method: str, path: str, body: dict | None = None, retries: int = 3, timeout: float = 10.0) -> dict:
    """One API call; retries connection errors and 5xx with backoff, returns `data` from the envelope."""
    headers = {"content-type": "application/json", "accept": "application/json"}
    if TOKEN:
        headers["authorization"] = f"Bearer {TOKEN}"
    payload = None if body is None else json.dumps(body, allow_nan=False).encode()
    for attempt in range(retries + 1):
        req = urllib.request.Request(f"{URL}/api/v1{path}", data=payload, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                return json.loads(res.read())["data"]
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())["error"]
                message = f"{err['code']}: {err['message']}"
            except Exception:
                message = e.reason
            if e.code < 500 or attempt == retries:
                raise TrainwatchError(f"{method} {path} -> {e.code} {message}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            if attempt == retries:
                raise TrainwatchError(f"{method} {path}: cannot reach {URL} ({e}); is `npm start` running?") from None
        time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def metric(v: float | None):
    """JSON has no NaN/Infinity: send them as the strings the API accepts (a diverged loss is data)."""
    if v is None or math.isfinite(v):
        return v
    if math.isnan(v):
        return "NaN"
    return "Infinity" if v > 0 else "-Infinity"


def simulated_training(epochs: int, seed: int):
    """A model whose loss decays with noise; val loss turns up late, like a mild overfit."""
    rng = random.Random(seed)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        time.sleep(0.01)  # the "work"
        train_loss = 2.3 * math.exp(-epoch / 6) + 0.1 + rng.gauss(0, 0.01)
        val_loss = 2.4 * math.exp(-epoch / 6) + 0.15 + max(0, epoch - 12) * 0.01 + rng.gauss(0, 0.015)
        yield {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "train_accuracy": min(1.0, 1 - train_loss / 2.6),
            "val_accuracy": min(1.0, 1 - val_loss / 2.7),
            "learning_rate": 0.01 * 0.9**epoch,
            "duration": time.perf_counter() - t0,
        }


def torch_training(epochs: int, seed: int):
    """A tiny real model: 2-layer MLP on a synthetic binary task, plain PyTorch loop."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    x = torch.randn(2000, 16)
    y = (x[:, :4].sum(dim=1) > 0).float().unsqueeze(1)
    xt, yt, xv, yv = x[:1600], y[:1600], x[1600:], y[1600:]
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        total, correct = 0.0, 0
        for i in range(0, len(xt), 64):
            xb, yb = xt[i : i + 64], yt[i : i + 64]
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
            correct += ((out > 0).float() == yb).sum().item()
        lr = opt.param_groups[0]["lr"]
        sched.step()
        model.eval()
        with torch.no_grad():
            out = model(xv)
            val_loss = loss_fn(out, yv).item()
            val_acc = ((out > 0).float() == yv).float().mean().item()
        yield {
            "epoch": epoch,
            "train_loss": total / len(xt),
            "val_loss": val_loss,
            "train_accuracy": correct / len(xt),
            "val_accuracy": val_acc,
            "learning_rate": lr,
            "duration": time.perf_counter() - t0,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--name", default="pytorch-style example")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--simulate", action="store_true", help="skip torch even if it is installed")
    args = ap.parse_args()

    try:
        if args.simulate:
            raise ImportError
        import torch  # noqa: F401

        loop, backend = torch_training(args.epochs, args.seed), "torch"
    except ImportError:
        loop, backend = simulated_training(args.epochs, args.seed), "simulated"

    try:
        op = call(
            "POST",
            "/operations",
            {"operation_type": "training", "name": args.name, "total_epochs_planned": args.epochs, "metadata": {"backend": backend}},
        )
        op_id = op["operation_id"]
        print(f"registered {op_id} ({backend}) at {URL}")
        try:
            for m in loop:
                body = {k: metric(v) if k != "epoch" else v for k, v in m.items()}
                trends = call("POST", f"/operations/{op_id}/metrics", body)["trends"]
                flags = [f for f in ("is_overfitting", "is_plateaued", "is_diverging") if trends[f]]
                print(
                    f"epoch {m['epoch']:3d}  train {m['train_loss']:.4f}  val {m['val_loss']:.4f}  "
                    f"best epoch {trends['best_epoch']}  {' '.join(flags)}"
                )
        except KeyboardInterrupt:
            call("POST", f"/operations/{op_id}/complete", {"status": "failed", "error_message": "interrupted"})
            print("interrupted; marked failed", file=sys.stderr)
            return 130
        except TrainwatchError:
            raise
        except Exception as e:  # the training itself failed: say so, then re-raise
            call("POST", f"/operations/{op_id}/complete", {"status": "failed", "error_message": repr(e)})
            raise
        done = call("POST", f"/operations/{op_id}/complete", {"status": "completed"})
        summary = call("GET", f"/operations/{op_id}/metrics?since_epoch={args.epochs}")["metrics"]
        best = summary["best_val_loss"]
        print(
            f"{done['status']}: {summary['total_epochs_completed']} epochs stored, best epoch {summary['best_epoch']} "
            f"({summary['monitor']} {best if best is None else round(best, 4)})"
        )
        if summary["total_epochs_completed"] != args.epochs:
            print(f"expected {args.epochs} epochs stored, found {summary['total_epochs_completed']}", file=sys.stderr)
            return 1
        return 0
    except TrainwatchError as e:
        print(f"trainwatch: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
