"""Keras 3 (torch backend, so no TensorFlow): a real tiny fit through TrainwatchCallback, reported step by step."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import pytest  # noqa: E402

from conftest import require  # noqa: E402
from frameworks import EPOCHS, GAMMA, LR0, CancelAtStep, data, is_number, steps_by_number  # noqa: E402

keras = require("keras")
from trainwatch.keras import TrainwatchCallback  # noqa: E402

STEPS_PER_EPOCH = 12  # 192 rows in batches of 16


def fit(epochs, *callbacks):
    x, y = data()
    x, y = x.numpy(), y.numpy()
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LR0), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: LR0 * GAMMA**epoch)
    # The schedule is listed after Trainwatch's callback: the rate logged is still the one the epoch used.
    model.fit(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=epochs, batch_size=16, verbose=0, callbacks=[*callbacks, schedule])
    return model


def test_keras_reports_every_batch_as_a_step_and_validation_on_the_epochs_last_step(step_server):
    assert keras.backend.backend() == "torch"
    cb = TrainwatchCallback(name="keras tiny")
    fit(EPOCHS, cb)
    assert cb.run is None  # finished on on_train_end
    op_id = cb.last_run.operation_id
    steps = steps_by_number(step_server, op_id)
    n = EPOCHS * STEPS_PER_EPOCH
    assert sorted(steps) == list(range(n))
    op = step_server.operation(op_id)
    assert op["name"] == "keras tiny" and op["progress"]["total_steps"] == n
    for k, s in steps.items():
        epoch = k // STEPS_PER_EPOCH
        assert s["epoch"] == epoch and is_number(s["train_loss"]) and is_number(s["train_accuracy"]), s
        last = k % STEPS_PER_EPOCH == STEPS_PER_EPOCH - 1
        assert ("val_loss" in s and "val_accuracy" in s) == last, s  # the validation: on each epoch's last step only
        first = k % STEPS_PER_EPOCH == 0
        assert ("learning_rate" in s) == first, s
        if first:
            assert s["learning_rate"] == pytest.approx(LR0 * GAMMA**epoch)
    assert steps[n - 1]["val_loss"] < steps[STEPS_PER_EPOCH - 1]["val_loss"]  # it really trained
    assert op["progress"]["steps_completed"] == n


class Probe(keras.callbacks.Callback):
    def __init__(self, hook, tw):
        super().__init__()
        self.hook, self.tw, self.step = hook, tw, 0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.hook.step_ended(self.step, self.tw.run)


def test_a_cancel_mid_epoch_stops_keras_within_one_step(step_server):
    hook = CancelAtStep(step_server, at=30)  # epoch 2's 6th batch
    cb = TrainwatchCallback(name="keras cancel")
    model = fit(20, cb, Probe(hook, cb))
    assert model.stop_training is True
    hook.check(cb.last_run.operation_id, cb.last_run.control)
