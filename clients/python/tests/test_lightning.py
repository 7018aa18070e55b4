"""Lightning 2.x: a real tiny fit through TrainwatchLogger + TrainwatchCallback."""

from __future__ import annotations

from conftest import require
from frameworks import EPOCHS, GAMMA, LR0, CancelInEpoch2, check_epochs, data

torch = require("torch")
L = require("lightning.pytorch")
from trainwatch.lightning import TrainwatchCallback, TrainwatchLogger  # noqa: E402


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
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True)
        self.log(f"{stage}_acc", acc, on_step=False, on_epoch=True)
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
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )


def test_lightning_logs_every_epoch_with_the_learning_rate_it_used(server):
    logger = TrainwatchLogger(name="lightning tiny")
    trainer(EPOCHS, logger).fit(Tiny(), *loaders())
    op, epochs = check_epochs(server, logger.version, EPOCHS, fields=("train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate", "duration"))
    assert op["name"] == "lightning tiny" and op["progress"]["total_epochs"] == EPOCHS
    assert op.get("config", {"lr": LR0, "hidden": 16}) == {"lr": LR0, "hidden": 16}  # log_hyperparams → config
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]  # it really trained


class Probe(L.Callback):
    def __init__(self, hook: CancelInEpoch2, logger: TrainwatchLogger):
        self.hook, self.logger = hook, logger

    def on_train_epoch_start(self, trainer, pl_module):
        self.hook.epoch_started(trainer.current_epoch, self.logger.run)


def test_a_cancel_during_epoch_2_stops_lightning_within_one_epoch(server):
    hook = CancelInEpoch2(server)
    logger = TrainwatchLogger(name="lightning cancel")
    fit = trainer(20, logger, Probe(hook, logger))
    fit.fit(Tiny(), *loaders())
    assert fit.should_stop is True
    hook.check(logger.version, logger.run.control)
