"""Keras 3 (torch backend, so no TensorFlow): a real tiny fit through TrainwatchCallback."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

from conftest import require  # noqa: E402
from frameworks import EPOCHS, GAMMA, LR0, CancelInEpoch2, check_epochs, data  # noqa: E402

keras = require("keras")
from trainwatch.keras import TrainwatchCallback  # noqa: E402


def fit(epochs, *callbacks):
    x, y = data()
    x, y = x.numpy(), y.numpy()
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LR0), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: LR0 * GAMMA**epoch)
    # The schedule is listed after Trainwatch's callback: the rate logged is still the one the epoch used.
    model.fit(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=epochs, batch_size=16, verbose=0, callbacks=[*callbacks, schedule])
    return model


def test_keras_logs_every_epoch_with_the_learning_rate_it_used(server):
    assert keras.backend.backend() == "torch"
    cb = TrainwatchCallback(name="keras tiny")
    fit(EPOCHS, cb)
    assert cb.run is None  # finished on on_train_end
    op, epochs = check_epochs(server, cb.last_run.operation_id, EPOCHS, fields=("train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate", "duration"))
    assert op["name"] == "keras tiny" and op["progress"]["total_epochs"] == EPOCHS
    assert op.get("config", {"optimizer": "SGD"})["optimizer"] == "SGD"
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]


class Probe(keras.callbacks.Callback):
    def __init__(self, hook, tw):
        super().__init__()
        self.hook, self.tw = hook, tw

    def on_epoch_begin(self, epoch, logs=None):
        self.hook.epoch_started(epoch, self.tw.run)


def test_a_cancel_during_epoch_2_stops_keras_within_one_epoch(server):
    hook = CancelInEpoch2(server)
    cb = TrainwatchCallback(name="keras cancel")
    model = fit(20, cb, Probe(hook, cb))
    assert model.stop_training is True
    hook.check(cb.last_run.operation_id, cb.last_run.control)
