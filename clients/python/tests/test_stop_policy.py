"""A stop policy on divergence stops a training whose learning rate makes it explode (the server's judgement decides)."""

from __future__ import annotations

import trainwatch
from conftest import require, until

torch = require("torch")


def exploding_loop(run, epochs: int = 40):
    """Linear regression whose learning rate triples every epoch: it learns, then blows up. Returns the epochs run."""
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = x @ torch.randn(8, 1) + 0.1 * torch.randn(512, 1)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    ran = 0
    for epoch in range(epochs):
        lr = opt.param_groups[0]["lr"]
        total = 0.0
        for i in range(0, 512, 32):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x[i : i + 32]), y[i : i + 32])
            loss.backward()
            opt.step()
            total += loss.item()
        ran += 1
        run.log(epoch=epoch, train_loss=total / 16, learning_rate=lr)
        # A real epoch outlasts the reply's round trip; this one takes milliseconds, so it waits for the reply.
        until(lambda: run.pending == 0, what=f"epoch {epoch} delivered")
        if run.should_stop:
            break
        for g in opt.param_groups:
            g["lr"] = lr * 3
    return ran


def test_a_divergence_stop_policy_stops_an_exploding_training(server):
    run = trainwatch.init(name="explodes", total_epochs=40, stop_policy={"on": ["diverging"], "min_epochs": 2}, config={"lr": 0.01, "lr_growth": 3})
    ran = exploding_loop(run)
    assert run.finish() is True
    assert ran < 40, "the training ran to the end: the stop policy never stopped it"
    control = run.control
    assert control["action"] == "stop" and control["decided_by"] == "stop_policy", control
    assert control["epoch"] >= 2 and ran == control["epoch"] + 1  # stopped at the epoch whose reply carried the decision
    op = server.operation(run.operation_id)
    assert op["status"] == "completed"  # a policy stop is a normal end; the decision stays recorded
    assert op["control"]["decided_by"] == "stop_policy" and op["stop_policy"]["on"] == ["diverging"]
    assert op["config"] == {"lr": 0.01, "lr_growth": 3}
    assert len(server.epochs(run.operation_id)) == ran
