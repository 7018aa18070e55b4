"""A tiny real PyTorch training, run by Trainwatch as a recipe (see trainwatch.recipes.json beside it).

A two-layer MLP learns two interleaved spirals (generated here, no download). Trainwatch starts it with its params as
`--key=value` arguments and TRAINWATCH_URL / TRAINWATCH_TOKEN / TRAINWATCH_OPERATION_ID in the environment, so
`trainwatch.init()` attaches to the operation the API created; every epoch goes out with `run.log()`, and the loop
stops early when the server says so (`run.should_stop`: a stop policy fired). Cancelling it from the API sends
SIGTERM to its process group: the default handler ends it at once, which is what a cancel asks for.

    python tiny_torch.py --epochs=20 --device=cpu        # also runs alone, registering an operation of its own
"""

import argparse
import math
import time

import torch
import trainwatch


def spirals(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g) * 3 * math.pi + 0.5
    label = torch.randint(0, 2, (n,), generator=g)
    sign = label.float() * 2 - 1
    x = torch.stack([sign * t * torch.cos(t), sign * t * torch.sin(t)], dim=1) / 10
    x += torch.randn(n, 2, generator=g) * 0.05
    return x, label


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epoch_delay", type=float, default=0.0, help="seconds to sleep after each epoch (to watch a short run live)")
    p.add_argument("--crash_at", type=int, default=-1, help="raise at this epoch (to see a failed run)")
    args = p.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    x, y = spirals(args.samples, args.seed)
    split = int(0.8 * len(x))
    train_x, train_y, val_x, val_y = x[:split].to(device), y[:split].to(device), x[split:].to(device), y[split:].to(device)
    model = torch.nn.Sequential(torch.nn.Linear(2, args.hidden), torch.nn.Tanh(), torch.nn.Linear(args.hidden, args.hidden), torch.nn.Tanh(), torch.nn.Linear(args.hidden, 2)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    run = trainwatch.init(name="tiny-torch", total_epochs=args.epochs, config=vars(args))
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    print(f"training on {device}{f' ({gpu})' if gpu else ''}: {args.samples} samples, {args.epochs} epochs, operation {run.operation_id}", flush=True)
    started = time.perf_counter()
    done = 0  # epochs trained to their end (and logged)
    for epoch in range(args.epochs):
        if epoch == args.crash_at:
            raise RuntimeError(f"crash_at={args.crash_at}: crashing on purpose at epoch {epoch}")
        model.train()
        perm = torch.randperm(split, device=device)
        total, correct, seen = 0.0, 0, 0
        for i in range(0, split, args.batch_size):
            if run.should_stop:  # the server's word arrives with the reply to the last epoch: heed it mid-epoch
                break
            idx = perm[i : i + args.batch_size]
            out = model(train_x[idx])
            loss = loss_fn(out, train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += (out.argmax(1) == train_y[idx]).sum().item()
            seen += len(idx)
        if run.should_stop:  # a part of an epoch is not logged
            print(f"stopping early, inside epoch {epoch}: {(run.control or {}).get('reason')}", flush=True)
            break
        done += 1
        model.eval()
        with torch.no_grad():
            out = model(val_x)
            val_loss = loss_fn(out, val_y).item()
            val_acc = (out.argmax(1) == val_y).float().mean().item()
        run.log(epoch=epoch, train_loss=total / seen, val_loss=val_loss, train_accuracy=correct / seen, val_accuracy=val_acc, learning_rate=args.lr)
        print(f"epoch {epoch}: train_loss {total / seen:.4f} val_loss {val_loss:.4f} val_accuracy {val_acc:.3f}", flush=True)
        if run.should_stop:
            print(f"stopping early: {(run.control or {}).get('reason')}", flush=True)
            break
        if args.epoch_delay > 0:
            time.sleep(args.epoch_delay)
    elapsed = time.perf_counter() - started
    print(f"done: {done} epochs in {elapsed:.2f} s ({done / elapsed:.1f} epochs/s)", flush=True)
    run.finish(result={"epochs_per_s": done / elapsed, "device": str(device), "gpu": gpu})


if __name__ == "__main__":
    main()
