"""The trap verdict: does the knowledge, read through the model's symbols, explain the training labels?

A concept layer trained only through a knowledge program can settle into symbols that the program
cannot reconcile with the labels (impure clusters, or clusters named off by one) and stay there:
its loss keeps falling slowly and nothing else in the run looks wrong. Its figure here is the
*explained share*: the share of a fixed slice of training groups whose label the model's most
probable explanation reproduces in every position (``GroupTask.explained_share``). A healthy run
explains most of its own labels; a trapped one almost none (at 30-digit groups, 0.85 against 0.00).

Two uses, both made by ``TrapCheck``, a hook on ``neurosym.train.fit``'s loop:

- the **verdict** at the end of training: ``healthy`` at or above ``train.trap_threshold``, else
  ``trapped``, with a warning line (``TrapWarning``) and the figure, saved with the run;
- the **check** after epoch ``train.trap_check_at``: a start is dropped, and training starts again from
  a new initialisation (up to ``train.trap_restarts`` times), when it explains less than
  ``train.trap_check_threshold ** A`` of the slice (A inputs per group). Early in training even a
  healthy start explains few long groups (at N = 15 after one epoch, 0.15-0.24 of 30-digit groups,
  against 0.000 for a trapped start), so the check's bar is a rate per input, which holds for any A:
  0.9 asks 0.81 of pairs, 0.43 of 8-digit groups and 0.042 of 30-digit ones.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from neurosym.callbacks import TrainingCallback
from neurosym.checkpoint import seed_everything
from neurosym.distributed import broadcast_state
from neurosym.errors import ConfigError
from neurosym.loop import Loop

RESTART_SEED_STRIDE = 104_729  # restart r > 0 is initialised under seed + r * this (probes use 7_919)


class TrapWarning(UserWarning):
    """Training ended where the knowledge explains the training labels poorly."""


@dataclass
class Verdict:
    """``verdict``: ``healthy`` or ``trapped``; ``explained_share``: the figure it rests on;
    ``threshold``: the share it was held against; ``restarts``: starts dropped by the check;
    ``dropped_shares``: each dropped start's share at the check."""

    verdict: str
    explained_share: float
    threshold: float
    restarts: int = 0
    dropped_shares: tuple[float, ...] = ()

    @property
    def trapped(self) -> bool:
        return self.verdict == "trapped"

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"dropped_shares": list(self.dropped_shares)}

    def message(self) -> str:
        return (f"training ended trapped: the model's explanations reproduce {self.explained_share:.1%} of the "
                f"checked training labels (train.trap_threshold = {self.threshold:g}) after {self.restarts} "
                f"restart(s); its symbols are not the ones the knowledge needs, so its results are not to be "
                f"trusted (try another train.seed, more train.trap_restarts, or a lower train.lr)")


def can_check(task: Any) -> bool:
    """Whether ``task`` can say how much of its training labels a model explains."""
    return hasattr(task, "explained_share")


def explained_share(model: nn.Module, task: Any, device: torch.device) -> float:
    return float(task.explained_share(model, device))


def dropped_at_check(share: float, per_input: float, arity: int) -> bool:
    """Whether a start explaining ``share`` of its groups of ``arity`` inputs is below ``per_input ** arity``."""
    return share < per_input ** arity


def verdict(share: float, threshold: float, restarts: int = 0, dropped: tuple[float, ...] = (),
            stacklevel: int = 3) -> Verdict:
    """The verdict on a finished run whose explained share is ``share``; warns when it is trapped (the
    warning names the line ``stacklevel`` - 1 calls up)."""
    result = Verdict("healthy" if share >= threshold else "trapped", round(share, 4), threshold, restarts,
                     tuple(round(value, 4) for value in dropped))
    if result.trapped:
        warnings.warn(result.message(), TrapWarning, stacklevel=stacklevel)
    return result


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
