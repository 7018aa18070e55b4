"""Hugging Face Transformers: a real tiny Trainer run through TrainwatchCallback (a small torch module: no hub)."""

from __future__ import annotations

from conftest import require
from frameworks import EPOCHS, GAMMA, LR0, CancelInEpoch2, check_epochs, data

torch = require("torch")
transformers = require("transformers")
require("accelerate")  # the Trainer needs it
from trainwatch.hf import TrainwatchCallback  # noqa: E402

BATCH = 16
TRAIN = 192


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

    def forward(self, x, labels=None):
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


def accuracy(pred):
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def train(tmp_path, epochs, *callbacks):
    x, y = data()
    rows = [{"x": x[i], "labels": int(y[i])} for i in range(len(x))]
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=LR0)
    steps = TRAIN // BATCH
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: GAMMA ** (step // steps))  # halves every epoch
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=epochs, per_device_train_batch_size=BATCH, per_device_eval_batch_size=64,
        learning_rate=LR0, eval_strategy="epoch", logging_strategy="epoch", save_strategy="no", report_to="none",
        use_cpu=True, disable_tqdm=True, dataloader_num_workers=0,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=rows[:TRAIN], eval_dataset=rows[TRAIN:],
                                   optimizers=(opt, sched), compute_metrics=accuracy, callbacks=list(callbacks))
    trainer.train()
    return trainer


def test_hf_logs_every_epoch_with_the_learning_rate_it_used(server, tmp_path):
    cb = TrainwatchCallback(name="hf tiny")
    train(tmp_path, EPOCHS, cb)
    op, epochs = check_epochs(server, cb.last_run.operation_id, EPOCHS, fields=("train_loss", "val_loss", "val_accuracy", "learning_rate", "duration"))
    assert op["name"] == "hf tiny" and op["progress"]["total_epochs"] == EPOCHS
    assert op.get("config", {"learning_rate": LR0})["learning_rate"] == LR0
    assert "eval_runtime" not in epochs[0] and "grad_norm" in epochs[0]
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]


class Probe(transformers.TrainerCallback):
    def __init__(self, hook, tw):
        self.hook, self.tw = hook, tw

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.hook.epoch_started(int(round(state.epoch or 0)), self.tw.run)


def test_a_cancel_during_epoch_2_stops_hf_within_one_epoch(server, tmp_path):
    hook = CancelInEpoch2(server)
    cb = TrainwatchCallback(name="hf cancel")
    trainer = train(tmp_path, 20, cb, Probe(hook, cb))
    assert trainer.control.should_training_stop is True
    hook.check(cb.last_run.operation_id, cb.last_run.control)
