"""The optimisation settings of a run (``[train]`` in a config), checked where they are read."""

from __future__ import annotations

from dataclasses import dataclass, field

from neurosym.errors import ConfigError


@dataclass
class TrainConfig:
    """Optimisation settings (saved with every run)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    min_lr_fraction: float = 0.05
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    bf16: bool = True
    compile: bool = False
    eval_every: int = 1
    # Points (in epochs, e.g. 0.25 = a quarter into the first) where a query-labelled task renames the
    # codes to the order that best explains its labels (neurosym.regrounding); [] = never.
    reground_at: list[float] = field(default_factory=list)
    # Best of several starts: probe_starts initialisations each train probe_epochs (a fraction of the
    # first epoch, on the same batches); the one with the lowest training loss over the probe's second
    # half goes on. 1 = the one start the seed gives.
    probe_starts: int = 1
    probe_epochs: float = 0.25
    # The trap verdict (neurosym.trap): a run whose explanations reproduce less than trap_threshold of
    # a slice of its training labels ends "trapped", with a warning. After epoch trap_check_at (0 = no
    # check) a start that explains less than trap_check_threshold ** A of them (A inputs per group:
    # what inputs each right with that probability would explain) is dropped and training starts over
    # from a new initialisation, at most trap_restarts times.
    trap_threshold: float = 0.5
    trap_check_at: int = 0
    trap_check_threshold: float = 0.9
    trap_restarts: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        if self.probe_starts < 1:
            raise ConfigError(f"train.probe_starts must be >= 1, got {self.probe_starts}")
        if self.probe_starts > 1 and not 0 < self.probe_epochs <= 1:
            raise ConfigError(f"train.probe_epochs must be in (0, 1] (a part of the first epoch), got {self.probe_epochs}")
        for point in self.reground_at:
            if not 0 < point <= self.epochs:
                raise ConfigError(f"train.reground_at: {point} is not within the run's epochs (0, {self.epochs}]")
        if not 0 < self.trap_threshold < 1:
            raise ConfigError(f"train.trap_threshold must be in (0, 1) (a share of training labels), got {self.trap_threshold}")
        if not 0 < self.trap_check_threshold < 1:
            raise ConfigError(f"train.trap_check_threshold must be in (0, 1) (a rate per input), got {self.trap_check_threshold}")
        if self.trap_restarts < 0:
            raise ConfigError(f"train.trap_restarts must be >= 0, got {self.trap_restarts}")
        if self.trap_restarts and not 0 < self.trap_check_at < self.epochs:
            raise ConfigError(f"train.trap_check_at = {self.trap_check_at} does not fit a run of {self.epochs} epoch(s): "
                              f"train.trap_restarts = {self.trap_restarts} needs a check after an epoch in "
                              f"[1, epochs - 1], with training left after it (or set train.trap_restarts = 0)")
        if self.trap_check_at and not self.trap_restarts:
            raise ConfigError(f"train.trap_check_at = {self.trap_check_at} checks for nothing to do: set train.trap_restarts >= 1")
