"""What the three framework tests share: the data, the checks on what arrived, and the cancel during epoch 2."""

from __future__ import annotations

import pytest

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


def check_epochs(server, op_id: str, n: int, fields=("train_loss", "val_loss", "learning_rate", "duration"), lr=True):
    """Every epoch 0 … n-1 arrived once, with the fields, and the learning rate each epoch really used."""
    op = server.operation(op_id)
    assert op["status"] == "completed", op
    epochs = server.epochs(op_id)
    assert [e["epoch"] for e in epochs] == list(range(n)), epochs
    for e in epochs:
        missing = [f for f in fields if not isinstance(e.get(f), (int, float))]
        assert not missing, f"epoch {e['epoch']} lacks {missing}: {e}"
        assert e["duration"] > 0
        if lr:
            assert e["learning_rate"] == pytest.approx(LR0 * GAMMA ** e["epoch"]), e
    return op, epochs


class CancelInEpoch2:
    """Framework-neutral test hook: at the start of epoch 2 (epochs 0 and 1 delivered) the operation is cancelled
    over HTTP, as the dashboard does; afterwards the test reads which epochs the training began."""

    def __init__(self, server) -> None:
        self.server = server
        self.started: list = []
        self.run = None

    def epoch_started(self, epoch: int, run) -> None:
        self.started.append(epoch)
        if epoch == 2:
            until(lambda: run.delivered >= 2, what="epochs 0 and 1 delivered")
            res = self.server.call("DELETE", f"/operations/{run.operation_id}", {"by": "dashboard", "reason": "test"})
            assert res["status"] == 200, res

    def check(self, op_id: str, control) -> None:
        assert control["action"] == "stop" and control["decided_by"] == "dashboard", control
        assert max(self.started) <= 3, f"the training began epochs {self.started}: it did not stop within one epoch of the cancel"
        op = self.server.operation(op_id)
        assert op["status"] == "cancelled", op
        assert [e["epoch"] for e in self.server.epochs(op_id)] == [0, 1]  # the epochs it had; later ones were refused
