"""Best of several starts: ``train.probe_starts`` initialisations each train the first
``train.probe_epochs`` of epoch 0, on the same batches; the one with the lowest training loss over
the probe's second half goes on, in the caller's model, and skips the batches it has taken.

A start's fate is often settled early: a run on a constraint can fall into a near-symmetry of the
task (clusters named by an off-by-one or a shift) that it never leaves, and by a quarter epoch such a
start already explains the labels far worse than one on its way to the right names.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

import torch
from torch import nn

from neurosym.callbacks import TrainingCallback
from neurosym.checkpoint import seed_everything
from neurosym.distributed import broadcast_state, mean_over_ranks
from neurosym.errors import ConfigError
from neurosym.loop import Loop, Start, make_start, train_batches
from neurosym.regrounding import Regrounding
from neurosym.train_config import TrainConfig

PROBE_SEED_STRIDE = 7_919  # start i > 0 is initialised under seed + i * this


def probe_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """How many of epoch 0's steps each start trains: ``probe_epochs`` of it, at least 2."""
    return min(steps_per_epoch, max(2, round(config.probe_epochs * steps_per_epoch)))


class ProbeStarts(TrainingCallback):
    """Before epoch 0 of a fresh run, train every start for the probe's steps and put the winner's
    weights, optimizer and schedule in the loop's; the winner is re-grounded once if one of
    ``regrounding``'s points falls within the probe (each start could not be renamed on its own).

    ``restart()`` builds a new model like the caller's; start i > 0 is built under seed
    ``train.seed + i * PROBE_SEED_STRIDE``. The epoch's row gets ``probe_start`` (the winner),
    ``probe_loss`` and each start's ``probe_loss_i``.
    """

    def __init__(self, restart: Callable[[], nn.Module] | None, regrounding: Regrounding | None = None) -> None:
        self.restart, self.regrounding = restart, regrounding
        self.row: dict[str, float] = {}

    def pre_epoch(self, loop: Loop) -> None:
        if loop.epoch or loop.attempt:  # a resumed run, or a new start after the trap check
            return
        if self.restart is None:
            raise ConfigError("train.probe_starts > 1 needs a way to build the model again (fit's restart argument)")
        steps = probe_steps(loop.config, loop.steps_per_epoch)
        losses, best = [], None
        for index in range(loop.config.probe_starts):
            start = self._start(loop, index)
            losses.append(self._probe(loop, start, index, steps))
            if best is None or losses[-1] < losses[best[0]]:
                best = (index, start)
        winner = best[1]
        if winner.model is not loop.model:  # the caller holds ``loop.model``: the winner's state moves into it
            loop.model.load_state_dict(winner.model.state_dict())
        loop.start.optimizer.load_state_dict(winner.optimizer.state_dict())
        loop.start.scheduler.load_state_dict(winner.scheduler.state_dict())
        if self.regrounding is not None:
            self.regrounding.after_steps(loop, steps)
        loop.skip = steps
        loop.bar.update(steps)
        self.row = {"probe_start": best[0], "probe_loss": min(losses),
                    **{f"probe_loss_{index}": loss for index, loss in enumerate(losses)}}

    def metrics(self, loop: Loop) -> dict[str, float]:
        row, self.row = self.row, {}
        return row

    def _start(self, loop: Loop, index: int) -> Start:
        model = loop.model
        if index:
            seed_everything(loop.config.seed + PROBE_SEED_STRIDE * index)
            model = self.restart().to(loop.device)
            broadcast_state(model, loop.ranks.world)
        return make_start(model, loop.config, loop.device, loop.total_steps)

    @staticmethod
    def _probe(loop: Loop, start: Start, index: int, steps: int) -> float:
        """Train ``start`` on the first ``steps`` batches of epoch 0; its mean loss over the second half."""
        start.model.train()
        run = [loss for _, loss in islice(train_batches(loop, start, 0, name=f"start {index + 1}"), steps)]
        return float(mean_over_ranks(torch.stack(run[len(run) // 2:]).mean(), loop.ranks.world))
