"""Lightning 2.x: a real tiny fit through TrainwatchLogger + TrainwatchCallback, reported step by step."""

from __future__ import annotations

import pytest

from conftest import require
from frameworks import EPOCHS, GAMMA, LR0, CancelAtStep, data, steps_by_number

torch = require("torch")
L = require("lightning.pytorch")
from trainwatch.lightning import TrainwatchCallback, TrainwatchLogger  # noqa: E402

STEPS_PER_EPOCH = 12  # 192 rows in batches of 16
LOG_EVERY = 4
VAL_EVERY = 6


class Tiny(L.LightningModule):
    def __init__(self, lr: float = LR0, hidden: int = 16):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))

    def _step(self, batch, stage):
        x, y = batch
        logits = self.net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        self.log(f"{stage}_loss", loss, on_step=stage == "train", on_epoch=True)
        self.log(f"{stage}_acc", acc, on_step=stage == "train", on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(opt, gamma=GAMMA)}


def loaders():
    x, y = data()
    ds = torch.utils.data.TensorDataset(x, y)
    train, val = torch.utils.data.random_split(ds, [192, 64], generator=torch.Generator().manual_seed(0))
    return torch.utils.data.DataLoader(train, batch_size=16), torch.utils.data.DataLoader(val, batch_size=64)


def trainer(epochs, logger, *callbacks):
    return L.Trainer(
        max_epochs=epochs, logger=logger, callbacks=[TrainwatchCallback(), *callbacks], accelerator="cpu", devices=1,
        log_every_n_steps=LOG_EVERY, val_check_interval=VAL_EVERY, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )


def test_lightning_reports_every_logged_step_and_every_validation_on_its_step(step_server):
    logger = TrainwatchLogger(name="lightning tiny")
    trainer(EPOCHS, logger).fit(Tiny(), *loaders())
    steps = steps_by_number(step_server, logger.version)
    n = EPOCHS * STEPS_PER_EPOCH
    logged = [k for k in range(n) if (k + 1) % LOG_EVERY == 0]
    validated = [k for k in range(n) if (k + 1) % VAL_EVERY == 0]
    assert sorted(steps) == sorted(set(logged) | set(validated))
    for k, s in steps.items():
        epoch = k // STEPS_PER_EPOCH
        assert s["epoch"] == epoch, s
        assert ("train_loss" in s and "train_accuracy" in s) == (k in logged), s
        assert ("val_loss" in s and "val_accuracy" in s) == (k in validated), s
        assert s["learning_rate"] == pytest.approx(LR0 * GAMMA**epoch), s
    assert not any(key.endswith(("_epoch", "_step")) for s in steps.values() for key in s)
    op = step_server.operation(logger.version)
    assert op["name"] == "lightning tiny" and op["progress"]["total_steps"] == n
    assert steps[validated[-1]]["val_loss"] < steps[validated[0]]["val_loss"]  # it really trained


class Probe(L.Callback):
    def __init__(self, hook: CancelAtStep, logger: TrainwatchLogger):
        self.hook, self.logger = hook, logger

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.hook.step_ended(trainer.global_step, self.logger.run)


def test_a_cancel_mid_epoch_stops_lightning_within_one_step(step_server):
    hook = CancelAtStep(step_server, at=30)
    logger = TrainwatchLogger(name="lightning cancel")
    fit = trainer(20, logger, Probe(hook, logger))
    fit.fit(Tiny(), *loaders())
    assert fit.should_stop is True
    hook.check(logger.version, logger.run.control)
