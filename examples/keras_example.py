#!/usr/bin/env python3
"""A Keras 3 fit reporting to Trainwatch through TrainwatchCallback (torch backend: no TensorFlow needed).

    pip install "./clients/python[torch]" keras
    KERAS_BACKEND=torch TRAINWATCH_URL=http://127.0.0.1:8000 python3 examples/keras_example.py --epochs 20
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
try:
    import trainwatch  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

import keras
import numpy as np

from trainwatch.keras import TrainwatchCallback


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--name", default="keras example")
    ap.add_argument("--stop-on", nargs="*", default=None, metavar="FLAG")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.samples, 16)).astype("float32")
    y = (x[:, :4].sum(axis=1) + 0.5 * rng.normal(size=args.samples) > 0).astype("int64")
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=args.lr, momentum=0.9), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    tw = TrainwatchCallback(name=args.name, stop_policy={"on": args.stop_on} if args.stop_on else None)
    decay = keras.callbacks.LearningRateScheduler(lambda epoch, lr: args.lr * 0.97**epoch)
    model.fit(x, y, validation_split=0.2, epochs=args.epochs, batch_size=64, verbose=2, callbacks=[tw, decay])
    run = tw.last_run
    if run.should_stop:
        print(f"stopped by the server: {run.control.get('reason')}")
    print(f"{run.operation_id}: {run.delivered} rows (steps) delivered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
