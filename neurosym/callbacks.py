"""Hooks on the training loop, in the manner of PyKEEN's ``TrainingCallback``: what a run does beside
training (resume and checkpoints, evaluation, ``metrics.csv``, probe starts, re-grounding, the trap
check) is a callback, not a branch in ``neurosym.train.fit``.

``fit`` calls every callback's hooks in list order, each with the ``neurosym.loop.Loop`` it may read
and change:

- ``pre_train`` once, before the first epoch (resume);
- ``pre_epoch`` before an epoch's batches (the probe of several starts, before epoch 0);
- ``on_batch`` after each optimizer step, with its global step (re-grounding);
- ``metrics`` after the epoch's batches, for the callback's columns of the epoch's row (evaluation);
  the columns follow the list's order, and so do those of ``metrics.csv``;
- ``post_epoch`` with the finished row (the trap check, which may drop the start; checkpoint and
  ``metrics.csv`` for an epoch that stands);
- ``post_train`` once, after the last epoch (the trap verdict).

The callbacks for probe starts, re-grounding and the trap live with their ideas
(``neurosym.probe``, ``neurosym.regrounding``, ``neurosym.trap_check``); this module holds the base and
the run folder's: ``Checkpoint``, ``MetricsFile`` and ``Evaluation``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from neurosym.checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from neurosym.checkpoint import write_metrics_csv
from neurosym.config import to_dict
from neurosym.errors import ConfigError
from neurosym.version import code_version

if TYPE_CHECKING:
    from neurosym.loop import Loop


class TrainingCallback:
    """A hook on the training loop; every method does nothing unless overridden."""

    def pre_train(self, loop: Loop) -> None:
        """Before the first epoch (after the model, optimizer and schedule are built)."""

    def pre_epoch(self, loop: Loop) -> None:
        """Before epoch ``loop.epoch``'s batches."""

    def on_batch(self, loop: Loop, step: int) -> None:
        """After the optimizer step ``step`` (counted over the run, from 0)."""

    def metrics(self, loop: Loop) -> dict[str, float]:
        """This callback's columns of the row of epoch ``loop.epoch``."""
        return {}

    def post_epoch(self, loop: Loop, row: dict[str, float]) -> None:
        """After the epoch's row is complete and in ``loop.history``."""

    def post_train(self, loop: Loop) -> None:
        """After the last epoch (or the one ``fit`` was told to stop after)."""


class Checkpoint(TrainingCallback):
    """Resume from the run folder's checkpoint (when ``resume`` and one is there), and write one
    atomically after every epoch that stands: weights, optimizer, schedule, RNG states, epoch,
    history, time, the trap check's starts, the run's config and the code version.

    A run killed at any point goes on from its last checkpoint bit for bit: the data order of each
    epoch depends on (seed, epoch) only and the global RNG state is restored.
    """

    def __init__(self, resume: bool, run_config: Any = None) -> None:
        self.resume = resume
        self.config = to_dict(run_config) if run_config is not None and not isinstance(run_config, dict) else run_config

    def pre_train(self, loop: Loop) -> None:
        path = loop.run_dir / CHECKPOINT_NAME
        if not (self.resume and path.exists()):
            return
        state = load_checkpoint(path)
        try:
            loop.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ConfigError(f"{path}: checkpoint does not fit this model ({str(exc).splitlines()[0]})") from None
        loop.start.optimizer.load_state_dict(state["optimizer"])
        loop.start.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        loop.epoch = loop.start_epoch = state["epoch"]
        loop.history, loop.elapsed = state["history"], state["train_seconds"]
        loop.attempt, loop.dropped_shares = state.get("attempt", 0), state.get("dropped_shares", [])

    def post_epoch(self, loop: Loop, row: dict[str, float]) -> None:
        if loop.start_dropped or not loop.lead:
            return
        save_checkpoint(loop.run_dir / CHECKPOINT_NAME, {
            "model": loop.model.state_dict(), "optimizer": loop.start.optimizer.state_dict(),
            "scheduler": loop.start.scheduler.state_dict(), "rng": rng_state(), "epoch": loop.epoch + 1,
            "history": loop.history, "train_seconds": loop.elapsed, "attempt": loop.attempt,
            "dropped_shares": loop.dropped_shares, "config": self.config, "code_version": code_version(),
        })


class MetricsFile(TrainingCallback):
    """``metrics.csv`` in the run folder: the history so far, one row per epoch, after every epoch
    that stands (a dropped start's rows are written with the next one)."""

    def post_epoch(self, loop: Loop, row: dict[str, float]) -> None:
        if loop.lead and not loop.start_dropped:
            write_metrics_csv(loop.run_dir / "metrics.csv", loop.history)


class Evaluation(TrainingCallback):
    """The task's held-out metrics (model in eval mode, under the run's autocast), on rank 0, every
    ``train.eval_every`` epochs and after the last."""

    def metrics(self, loop: Loop) -> dict[str, float]:
        done, config = loop.epoch + 1, loop.config
        if not loop.lead or (done % config.eval_every and done != config.epochs):
            return {}
        loop.model.eval()
        with torch.no_grad(), loop.autocast:
            return loop.task.evaluate(loop.model, loop.device)
