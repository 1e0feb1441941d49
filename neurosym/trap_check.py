"""The trap check and verdict as a hook on ``neurosym.train.fit``'s loop (what they mean: ``neurosym.trap``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from torch import nn

from neurosym.callbacks import TrainingCallback
from neurosym.checkpoint import seed_everything
from neurosym.distributed import broadcast_state
from neurosym.errors import ConfigError
from neurosym.loop import Loop
from neurosym.trap import RESTART_SEED_STRIDE, can_check, dropped_at_check, explained_share, verdict


class TrapCheck(TrainingCallback):
    """The check after epoch ``train.trap_check_at`` and the verdict after the last epoch.

    A start the check drops keeps its rows in the history (with ``check_explained``, the share it
    was judged on); ``restart()`` builds the next start, under seed ``train.seed + r *
    RESTART_SEED_STRIDE``, into the caller's model, with a new optimizer and schedule, and training
    begins again at epoch 0. Rows of start r > 0 say so in ``start``. The verdict goes to
    ``loop.verdict`` (rank 0, a finished run).
    """

    def __init__(self, loop: Loop, restart: Callable[[], nn.Module] | None) -> None:
        if loop.config.trap_restarts and not (can_check(loop.task) and restart is not None):
            raise ConfigError(f"train.trap_restarts needs a task labelled through a query (task.knowledge with groups) "
                              f"and a way to build the model again; {type(loop.task).__name__} cannot say how much "
                              f"of its labels a model explains")
        self.restart = restart

    def metrics(self, loop: Loop) -> dict[str, float]:
        return {"start": loop.attempt} if loop.attempt else {}

    def post_epoch(self, loop: Loop, row: dict[str, float]) -> None:
        config = loop.config
        if not (config.trap_restarts and loop.epoch + 1 == config.trap_check_at and loop.attempt < config.trap_restarts):
            return
        started = time.perf_counter()
        share = row["train_explained"] if "train_explained" in row else explained_share(loop.model, loop.task, loop.device)
        row["check_explained"] = share
        if not dropped_at_check(share, config.trap_check_threshold, loop.task.arity):
            return
        loop.attempt += 1
        loop.dropped_shares.append(share)
        self._fresh_start(loop)
        loop.bar.total += (loop.epoch + 1) * loop.steps_per_epoch
        loop.start_dropped = True
        loop.elapsed += time.perf_counter() - started  # the dropped start's check and its successor's set-up

    def post_train(self, loop: Loop) -> None:
        finished = bool(loop.history) and loop.history[-1]["epoch"] == loop.config.epochs
        if loop.lead and finished:
            share = loop.history[-1].get("train_explained")
            loop.verdict = verdict(explained_share(loop.model, loop.task, loop.device) if share is None else share,
                                   loop.config.trap_threshold, loop.attempt, tuple(loop.dropped_shares),
                                   stacklevel=4)  # the warning names fit's caller

    def _fresh_start(self, loop: Loop) -> None:
        """A new initialisation in the caller's model (which ``loop.model`` is), with a new optimizer."""
        seed_everything(loop.config.seed + RESTART_SEED_STRIDE * loop.attempt)
        loop.model.load_state_dict(self.restart().state_dict())
        broadcast_state(loop.model, loop.ranks.world)
        loop.start = loop.start.with_new_optimizer(loop.config, loop.device, loop.total_steps)
