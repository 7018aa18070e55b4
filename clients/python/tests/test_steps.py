"""Steps through the client (the steps wire contract): the forms of `run.log`, batching by size and by time, the spool
while the server is away, and the server's stop heard from a steps reply, a 409, or a poll. What the client posts is
read from the stand-in server (tests/fake_server.py), which records every body; what is stored is read from each
step server (conftest.STEP_SERVERS: the stand-in, and the real one once it has the step routes)."""

from __future__ import annotations

import warnings

import pytest

import trainwatch
from conftest import until
from fake_server import FakeServer
from trainwatch._sender import post_due


@pytest.fixture()
def fake():
    s = FakeServer().start()
    yield s
    s.close()


def rows_posted(fake, op_id):
    return [row for body in fake.posts(op_id) for row in body["steps"]]


def without_time(rows):
    return [{k: v for k, v in r.items() if k != "timestamp"} for r in rows]


def test_every_form_of_log_becomes_the_step_row_the_contract_names(step_server):
    fake = step_server
    run = trainwatch.init(name="forms", url=fake.url, total_steps=100)
    run.log(step=0, train_loss=2.0, learning_rate=0.1, grad_norm=3.5, samples=32, tokens=4096)
    run.log(step=1, epoch=0, loss=1.9, lr=0.09)  # the wandb names as keywords too
    run.log({"loss": 1.8, "lr": 0.08, "train/ppl": 6.05}, step=2)  # wandb.log(dict, step=…): no ValueError
    run.log({"loss": 1.7})  # no step, no epoch: the previous step + 1
    run.log({"eval_loss": 1.75, "eval_accuracy": 0.6}, step=4, epoch=1)
    run.log({"eval/loss": 1.74, "eval/bleu": 12.5, "epoch": 1.5}, step=5)  # a fractional epoch in the dict: its floor
    assert run.step == 5
    assert run.finish() is True
    assert fake.operation(run.operation_id)["progress"]["total_steps"] == 100
    assert without_time(fake.steps(run.operation_id)) == [
        {"step": 0, "train_loss": 2.0, "learning_rate": 0.1, "grad_norm": 3.5, "samples": 32, "tokens": 4096},
        {"step": 1, "epoch": 0, "train_loss": 1.9, "learning_rate": 0.09},
        {"step": 2, "train_loss": 1.8, "learning_rate": 0.08, "train/ppl": 6.05},
        {"step": 3, "train_loss": 1.7},
        {"step": 4, "epoch": 1, "val_loss": 1.75, "val_accuracy": 0.6},
        {"step": 5, "epoch": 1, "val_loss": 1.74, "eval/bleu": 12.5},
    ]
    assert all(r["timestamp"].endswith("Z") for r in fake.steps(run.operation_id))


def test_an_epoch_alone_is_an_epoch_row_as_before_steps(fake):
    run = trainwatch.init(name="epochs and steps", url=fake.url)
    run.log(step=0, epoch=0, train_loss=2.0)
    run.log(epoch=0, train_loss=1.0)  # on POST …/metrics, as before steps
    run.log({"epoch": 1, "loss": 0.5, "eval_loss": 0.6, "lr": 0.01})  # a dict with an epoch and no step: the same
    run.finish()
    assert [r["step"] for r in rows_posted(fake, run.operation_id)] == [0]
    epochs = [e for b in fake.posts(run.operation_id, "metrics") for e in b["epochs"]]
    assert [(e["epoch"], e["train_loss"]) for e in epochs] == [(0, 1.0), (1, 0.5)]
    assert (epochs[1]["val_loss"], epochs[1]["learning_rate"]) == (0.6, 0.01)


def test_a_dict_with_an_epoch_and_no_step_is_an_epoch_row_read_with_the_wandb_names(step_server):
    run = trainwatch.init(name="dict epoch", url=step_server.url)
    run.log({"epoch": 3, "loss": 0.5, "eval_loss": 0.6, "lr": 0.01})
    run.finish()
    (row,) = step_server.epochs(run.operation_id)
    assert (row["epoch"], row["train_loss"], row["val_loss"], row["learning_rate"]) == (3, 0.5, 0.6, 0.01)
    assert step_server.steps(run.operation_id) == []


def test_logging_a_step_again_adds_to_its_row(fake):
    # A framework logs the training values and, on the same step, the evaluation: the API replaces a re-posted step,
    # so the client sends one row with both, whether the first was still queued or already delivered.
    run = trainwatch.init(name="merge", url=fake.url)
    run.log(step=10, epoch=0, train_loss=1.0, learning_rate=0.1)
    run.log(step=10, val_loss=1.2)  # still queued: replaced in the queue
    run.log(step=20, epoch=0, train_loss=0.9)
    until(lambda: run.delivered >= 2, what="steps 10 and 20 delivered")
    run.log(step=20, val_loss=1.1, train_loss=0.8)  # delivered already: posted again, whole
    run.finish()
    assert without_time(fake.steps(run.operation_id)) == [
        {"step": 10, "epoch": 0, "train_loss": 1.0, "learning_rate": 0.1, "val_loss": 1.2},
        {"step": 20, "epoch": 0, "train_loss": 0.8, "val_loss": 1.1},
    ]
    assert [r["step"] for r in rows_posted(fake, run.operation_id)] == [10, 20, 20]


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda run: run.log(step=-1, train_loss=1.0), "step"),
        (lambda run: run.log(step=2**31, train_loss=1.0), "step"),
        (lambda run: run.log(step="3", train_loss=1.0), "step"),
        (lambda run: run.log(step=1.0, train_loss=1.0), "step"),
        (lambda run: run.log(step=1, epoch=-2, train_loss=1.0), "epoch"),
        (lambda run: run.log({"loss": "0.3"}, step=1), "'loss'"),
        (lambda run: run.log({"bad name": 1.0}, step=1), "'bad name'"),
        (lambda run: run.log([1.0], step=1), "dict"),
    ],
)
def test_a_bad_step_or_value_raises_a_value_error_naming_it(step_server, call, named):
    fake = step_server
    run = trainwatch.init(name="bad step", url=fake.url)
    with pytest.raises((ValueError, TypeError), match=named):
        call(run)
    run.log(step=0, train_loss=1.0)  # the run is unharmed
    run.finish()
    assert [r["step"] for r in fake.steps(run.operation_id)] == [0]


def test_steps_are_due_at_1000_rows_or_half_a_second_after_the_last_post():
    assert post_due(now=10.0, last_post=10.0, queued=0) is None
    assert post_due(now=10.1, last_post=10.0, queued=999) == pytest.approx(0.4)
    assert post_due(now=10.1, last_post=10.0, queued=1000) == 0.0
    assert post_due(now=10.5, last_post=10.0, queued=1) == 0.0
    assert post_due(now=12.0, last_post=10.0, queued=5) == 0.0
    assert post_due(now=10.0, last_post=10.0, queued=5, flush_s=2.0, batch_rows=3) == 0.0


def test_steps_go_in_batches_of_at_least_1000_when_they_come_faster_than_the_timer(fake):
    run = trainwatch.init(name="by size", url=fake.url)
    run._sender.flush_s = run._sender.poll_s = 3600.0  # only the size can trigger a post
    for i in range(2500):
        run.log(step=i, train_loss=1.0 / (i + 1))
    until(lambda: run.delivered >= 2000, what="two full batches posted without finish()")
    run.finish()
    sizes = [len(b["steps"]) for b in fake.posts(run.operation_id)]
    assert sum(sizes) == 2500 and all(n >= 1000 for n in sizes[:-1]) and max(sizes) <= 10_000, sizes
    assert [r["step"] for r in rows_posted(fake, run.operation_id)] == list(range(2500))  # in order, each once


def test_steps_are_posted_by_the_timer_without_a_full_batch_or_finish(fake):
    run = trainwatch.init(name="by time", url=fake.url)
    run._sender.batch_rows = 10**9  # only the timer can trigger a post
    run._sender.flush_s = 0.05
    for i in range(5):
        run.log(step=i, train_loss=1.0)
    until(lambda: len(rows_posted(fake, run.operation_id)) == 5, what="5 steps posted by the timer")
    run.finish()


def test_an_away_server_spools_steps_and_epochs_and_delivers_them_in_order_once(fake):
    run = trainwatch.init(name="away", url=fake.url)
    for i in range(100):
        run.log(step=i, epoch=0, train_loss=1.0)
    until(lambda: run.delivered == 100, what="100 steps delivered")
    fake.stop()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for i in range(100, 3000):
            run.log(step=i, epoch=i // 1000, train_loss=1.0 / i)
            if i % 1000 == 999:
                run.log(epoch=i // 1000, train_loss=0.5)  # epochs between the steps: both kinds in one spool file
        until(lambda: run.spool_path and run._sender.away, what="the sender to find the server away")
        fake.start()  # back, on the same port
        assert run.finish(timeout=60) is True
    assert [w for w in record if "not answering" in str(w.message)], [str(w.message) for w in record]
    assert [r["step"] for r in rows_posted(fake, run.operation_id)] == list(range(3000))  # in order, none twice
    assert [e["epoch"] for e in fake.epochs(run.operation_id)] == [0, 1, 2]
    assert fake.ops[run.operation_id]["status"] == "completed"


def test_a_stop_in_a_steps_reply_sets_should_stop(fake):
    run = trainwatch.init(name="policy stop", url=fake.url)
    run.log(step=0, train_loss=1.0)
    until(lambda: run.delivered == 1, what="step 0 delivered")
    assert run.should_stop is False and run.control == {"action": "continue"}
    decision = {"action": "stop", "reason": "diverging", "decided_by": "stop_policy", "checkpoint_epoch": 0}
    fake.ops[run.operation_id]["control"] = decision  # the stop policy fired: the operation stays running
    run.log(step=1, train_loss=float("nan"))
    until(lambda: run.should_stop, what="should_stop from the reply")
    assert run.control == decision
    run.finish()
    assert fake.ops[run.operation_id]["status"] == "completed"


def test_a_cancel_refuses_the_next_steps_with_a_409_that_sets_should_stop(step_server):
    fake = step_server
    run = trainwatch.init(name="cancelled", url=fake.url)
    run.log(step=0, train_loss=1.0)
    until(lambda: run.delivered == 1, what="step 0 delivered")
    run._sender.poll_s = 3600.0  # heard from the refusal, not from a poll
    assert fake.call("DELETE", f"/operations/{run.operation_id}", {"by": "dashboard", "reason": "test"})["status"] == 200
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run.log(step=1, train_loss=0.9)
        until(lambda: run.should_stop, what="should_stop from the 409")
        run.finish()
    assert run.control["decided_by"] == "dashboard"
    assert any("1 step(s) it refused were dropped" in str(w.message) for w in record), [str(w.message) for w in record]
    assert [r["step"] for r in fake.steps(run.operation_id)] == [0]


def test_a_stop_is_heard_within_a_poll_when_nothing_is_posted(step_server):
    fake = step_server
    run = trainwatch.init(name="quiet", url=fake.url)
    run._sender.poll_s = 0.05
    run.log(step=0, train_loss=1.0)
    until(lambda: run.delivered == 1, what="step 0 delivered")
    fake.call("DELETE", f"/operations/{run.operation_id}", {"by": "dashboard", "reason": "during a long evaluation"})
    until(lambda: run.should_stop, what="should_stop from the poll, with no step logged")
    assert run.control["decided_by"] == "dashboard"
    run.finish()


def test_a_script_that_logs_its_planned_steps_and_exits_is_completed(step_server):
    fake = step_server
    from conftest import run_script

    code = (
        "import trainwatch\n"
        "run = trainwatch.init(name='steps, no finish', total_steps=50, total_epochs=9)\n"
        "print(run.operation_id, flush=True)\n"
        "for i in range({n}): run.log(step=i, train_loss=1.0)\n"
    )
    full = run_script(code.format(n=50), {"TRAINWATCH_URL": fake.url})
    short = run_script(code.format(n=20), {"TRAINWATCH_URL": fake.url})
    assert full.returncode == 0 and short.returncode == 0, full.stderr + short.stderr
    assert fake.operation(full.stdout.split()[0])["status"] == "completed"
    op = fake.operation(short.stdout.split()[0])
    assert op["status"] == "failed" and "after 20 of 50 steps" in op["error_message"], op
    assert len(fake.steps(full.stdout.split()[0])) == 50
