"""What the framework tests share: the data, the checks on the steps that arrived, and a cancel at a given step."""

from __future__ import annotations

from conftest import require, until

EPOCHS = 5
LR0 = 0.1
GAMMA = 0.5  # the learning rate halves every epoch, so each epoch's rate tells which epoch it was

# One intra-op thread: on a 2-core machine shared with other work, torch's default (one per core) spins against the
# other processes and a 64-row batch took 79 ms instead of 4.7 ms (measured while 15 processes were runnable).
require("torch").set_num_threads(1)


def data(n: int = 256, seed: int = 0):
    """A small separable binary task: label = sign of the sum of the first 4 features."""
    torch = require("torch")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, :4].sum(dim=1) > 0).long()
    return x, y


def is_number(v) -> bool:
    """A metric as the server returns it: JSON has one number type (1.0 comes back as 1)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def steps_by_number(server, op_id: str) -> dict:
    """The operation, completed, and its stored steps by step number."""
    op = server.operation(op_id)
    assert op["status"] == "completed", op
    return {s["step"]: s for s in server.steps(op_id)}


class CancelAtStep:
    """Framework-neutral test hook: at step `at` the operation is cancelled over HTTP, as the dashboard does, and the
    training is held until the client has heard it; afterwards the test reads the last step the training ran."""

    def __init__(self, server, at: int) -> None:
        self.server = server
        self.at = at
        self.last_step = 0

    def step_ended(self, step: int, run) -> None:
        self.last_step = step
        if step == self.at:
            res = self.server.call("DELETE", f"/operations/{run.operation_id}", {"by": "dashboard", "reason": "test"})
            assert res["status"] == 200, res
            until(lambda: run.should_stop, what="the client to hear the cancel")

    def check(self, op_id: str, control) -> None:
        assert control["action"] == "stop" and control["decided_by"] == "dashboard", control
        assert self.last_step <= self.at + 1, f"the training ran to step {self.last_step}: it did not stop within one step of hearing the cancel at {self.at}"
        assert self.server.operation(op_id)["status"] == "cancelled"
        assert all(s["step"] <= self.at for s in self.server.steps(op_id))  # later rows were refused
