"""Temperature schedules for the Gumbel-softmax concept layer, annealed per optimizer step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from neurosym.errors import ConfigError


@dataclass(frozen=True)
class TemperatureSchedule:
    """``tau(step)`` from ``start`` to ``end`` over ``steps`` optimizer steps, then held at ``end``.

    kinds: ``constant`` (always ``start``), ``exponential`` (geometric decay), ``cosine``
    (half-cosine from start to end).
    """

    kind: Literal["constant", "exponential", "cosine"] = "exponential"
    start: float = 1.0
    end: float = 0.5
    steps: int = 1000

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "exponential", "cosine"):
            raise ConfigError(f"temperature schedule kind {self.kind!r} is not constant, exponential or cosine")
        for name in ("start", "end"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"temperature {name} must be > 0, got {value}")
        if self.steps < 1:
            raise ConfigError(f"temperature schedule steps must be >= 1, got {self.steps}")

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.start
        progress = min(max(step, 0), self.steps) / self.steps
        if self.kind == "exponential":
            return self.start * (self.end / self.start) ** progress
        return self.end + 0.5 * (self.start - self.end) * (1 + math.cos(math.pi * progress))
