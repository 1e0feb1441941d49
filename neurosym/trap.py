"""The trap verdict: does the knowledge, read through the model's symbols, explain the training labels?

A concept layer trained only through a knowledge program can settle into symbols that the program
cannot reconcile with the labels (impure clusters, or clusters named off by one) and stay there:
its loss keeps falling slowly and nothing else in the run looks wrong. Its figure here is the
*explained share*: the share of a fixed slice of training groups whose label the model's most
probable explanation reproduces in every position (``GroupTask.explained_share``). A healthy run
explains most of its own labels; a trapped one almost none (at 30-digit groups, 0.85 against 0.00).

Two uses, both made by ``TrapCheck`` (``neurosym.trap_check``), a hook on ``neurosym.train.fit``'s loop:

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

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


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
