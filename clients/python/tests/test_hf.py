"""Hugging Face Transformers: a tiny random-initialised BERT (built from a config: nothing downloaded) fine-tuned
by a real Trainer through TrainwatchCallback, one epoch of 60 steps with `logging_steps=10` and `eval_steps=20`."""

from __future__ import annotations

import pytest
from conftest import require, until
from frameworks import is_number

torch = require("torch")
transformers = require("transformers")
require("accelerate")  # the Trainer needs it
from trainwatch.hf import TrainwatchCallback  # noqa: E402

SEQ = 12
VOCAB = 64
BATCH = 8
TRAIN = 480  # 60 steps of 8
LOGGING_STEPS = 10
EVAL_STEPS = 20


def tiny_bert():
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=SEQ, num_labels=2)
    return transformers.BertForSequenceClassification(cfg)


def rows(n, seed):
    """Token sequences labelled by whether token 1 occurs more often than token 2: learnable, and tiny."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 3, (n, SEQ), generator=g)
    labels = ((ids == 1).sum(1) > (ids == 2).sum(1)).long()
    return [{"input_ids": ids[i], "attention_mask": torch.ones(SEQ, dtype=torch.long), "labels": int(labels[i])} for i in range(n)]


def accuracy(pred):
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def train(tmp_path, *callbacks, report_to="none"):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=1, per_device_train_batch_size=BATCH, per_device_eval_batch_size=32,
        learning_rate=5e-3, logging_steps=LOGGING_STEPS, eval_strategy="steps", eval_steps=EVAL_STEPS, save_strategy="no",
        report_to=report_to, use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, seed=0,
    )
    trainer = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=rows(TRAIN, 0), eval_dataset=rows(32, 1),
                                   compute_metrics=accuracy, callbacks=list(callbacks))
    trainer.train()
    return trainer


def test_hf_reports_every_logged_step_and_every_evaluation_on_its_step(step_server, tmp_path):
    cb = TrainwatchCallback(name="hf bert steps")
    train(tmp_path, cb)
    op_id = cb.last_run.operation_id
    op = step_server.operation(op_id)
    assert op["status"] == "completed" and op["name"] == "hf bert steps"
    assert op["progress"]["total_steps"] == 60
    steps = step_server.steps(op_id)
    # HF's global_step counts the steps done; the API numbers a step from 0: the 10th step is step 9.
    assert [s["step"] for s in steps] == [k - 1 for k in range(LOGGING_STEPS, 61, LOGGING_STEPS)]
    for s in steps:
        assert s["epoch"] == 0, s
        for f in ("train_loss", "learning_rate", "grad_norm"):
            assert is_number(s.get(f)), f"step {s['step']} lacks {f}: {s}"
    evaluated = [s["step"] for s in steps if "val_loss" in s]
    assert evaluated == [k - 1 for k in range(EVAL_STEPS, 61, EVAL_STEPS)]
    assert op["progress"]["steps_completed"] == 60
    assert all(is_number(s["val_accuracy"]) for s in steps if "val_loss" in s)
    assert steps[0]["learning_rate"] > steps[-1]["learning_rate"]  # the Trainer's linear decay, step by step


# The TensorBoard tag of each standard step field (src/tensorboard/metrics.ts STEP_TAGS, as HF's own callback names them).
TB_TAGS = {"train_loss": "train/loss", "learning_rate": "train/learning_rate", "grad_norm": "train/grad_norm",
           "val_loss": "eval/loss", "val_accuracy": "eval/accuracy"}


def test_hf_keeps_every_number_the_trainer_logs_as_tensorboards_own_callback_does(step_server, tmp_path, monkeypatch):
    """Run beside transformers' TensorBoardCallback: every scalar TensorBoard recorded (but HF's fractional epoch, which
    each row carries as the epoch it ran in) is stored, on the same step (HF's step s is the API's s − 1), with the same
    value: the evaluations' runtime and throughputs and the closing summary included."""
    require("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    cb = TrainwatchCallback(name="hf beside tensorboard")
    train(tmp_path, cb, report_to=["tensorboard"])
    ea = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    ea.Reload()
    recorded = {(tag, e.step): e.value for tag in ea.Tags()["scalars"] if tag != "train/epoch" for e in ea.Scalars(tag)}
    stored = {(TB_TAGS.get(k, k), s["step"] + 1): v for s in step_server.steps(cb.last_run.operation_id)
              for k, v in s.items() if k not in ("step", "epoch", "timestamp")}
    assert len(recorded) == 6 * 3 + 3 * 5 + 5  # 6 logs (loss, lr, grad_norm), 3 evaluations (2 + 3 speeds), the summary
    missing = sorted(set(recorded) - set(stored))
    assert not missing, f"TensorBoard recorded what Trainwatch did not store: {missing}"
    assert {k: stored[k] for k in recorded} == pytest.approx(recorded, rel=1e-6)  # TensorBoard's float32
    assert set(stored) == set(recorded)  # and nothing TensorBoard lacks
    summary = {k: v for (k, step), v in stored.items() if k.startswith("train/train_") or k == "train/total_flos"}
    assert set(summary) == {"train/train_runtime", "train/train_samples_per_second", "train/train_steps_per_second",
                            "train/train_loss", "train/total_flos"}


class StopAt(transformers.TrainerCallback):
    """At step `at`, cancels the operation as the dashboard does and holds the loop until the client has heard it."""

    def __init__(self, server, tw, at):
        self.server, self.tw, self.at = server, tw, at
        self.last_step = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.last_step = state.global_step
        if state.global_step == self.at:
            res = self.server.call("DELETE", f"/operations/{self.tw.run.operation_id}", {"by": "dashboard", "reason": "test"})
            assert res["status"] == 200, res
            until(lambda: self.tw.run.should_stop, what="the client to hear the cancel")


def test_a_cancel_mid_run_stops_hf_within_one_step(step_server, tmp_path):
    cb = TrainwatchCallback(name="hf cancel")
    probe = StopAt(step_server, cb, at=25)
    trainer = train(tmp_path, cb, probe)
    assert trainer.control.should_training_stop is True
    assert probe.last_step <= 26, f"trained to step {probe.last_step} after hearing the stop at step 25"
    run = cb.last_run
    assert run.control["action"] == "stop" and run.control["decided_by"] == "dashboard"
    assert step_server.operation(run.operation_id)["status"] == "cancelled"
    # Rows posted after the cancel are refused, but for the steps of the epoch in progress at the cancel: a cancelled
    # operation still takes those (the real server; the stand-in refuses them all).
    steps = step_server.steps(run.operation_id)
    in_progress = max((s.get("epoch", -1) for s in steps if s["step"] < 25), default=-1)
    assert all(s["step"] < 25 or s.get("epoch", -1) == in_progress for s in steps), steps
