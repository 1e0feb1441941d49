"""The training loop's moving parts: the state its callbacks see, the one batch loop, one step.

``Loop`` is what ``neurosym.train.fit`` and its callbacks (``neurosym.callbacks``) share: the model
and its optimizer, where the run stands (epoch, start, history, time) and how it runs (device,
autocast, ranks). ``train_batches`` is the only loop over a task's batches: the main loop and the
probe of several starts both train through it, so both see each epoch's data order as
``epoch_seed`` draws it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from neurosym.concepts import ConceptLayer
from neurosym.distributed import Ranks, average_gradients
from neurosym.errors import MemoryLimitError, NonFiniteError
from neurosym.train_config import TrainConfig

if TYPE_CHECKING:
    from neurosym.trap import Verdict


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s data order: a function of the run's seed and the epoch only, so
    that a resumed run, a new start and the probe's starts all draw the batches the loop draws."""
    return seed * 100_003 + epoch


@dataclass
class Start:
    """One initialisation in training: the model, the module its steps call (``torch.compile``'d
    when asked), its optimizer and its learning-rate schedule."""

    model: nn.Module
    step_model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler

    def with_new_optimizer(self, config: TrainConfig, device: torch.device, total_steps: int) -> Start:
        """The same model with a fresh optimizer and schedule (a new initialisation put into it)."""
        optimizer = make_optimizer(self.model, config, device)
        return replace(self, optimizer=optimizer, scheduler=make_scheduler(optimizer, total_steps, config))


def make_start(model: nn.Module, config: TrainConfig, device: torch.device, total_steps: int) -> Start:
    optimizer = make_optimizer(model, config, device)
    step_model = torch.compile(model) if config.compile else model
    return Start(model, step_model, optimizer, make_scheduler(optimizer, total_steps, config))


@dataclass
class Loop:
    """Where a run in training stands, as ``fit`` and its callbacks read and change it.

    ``epoch`` is the epoch being trained (0-based); ``skip`` the batches of it that a probe's winner
    has already taken; ``attempt`` the start training now (0, then 1, 2, ... after each start the trap
    check drops); ``start_dropped`` says that this epoch's start was just dropped, so the epoch is not
    saved and training begins again at epoch 0.
    """

    task: Any
    config: TrainConfig
    device: torch.device
    run_dir: Path
    ranks: Ranks
    start: Start
    steps_per_epoch: int
    autocast: Any
    bar: Any = None
    epoch: int = 0
    start_epoch: int = 0
    skip: int = 0
    attempt: int = 0
    dropped_shares: list[float] = field(default_factory=list)
    start_dropped: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    elapsed: float = 0.0
    verdict: Verdict | None = None

    @property
    def model(self) -> nn.Module:
        """The caller's model: every start's weights end in it."""
        return self.start.model

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    @property
    def lead(self) -> bool:
        return self.ranks.lead


def train_batches(loop: Loop, start: Start, epoch: int, skip: int = 0, name: str | None = None
                  ) -> Iterator[tuple[int, Tensor]]:
    """Train ``start`` on epoch ``epoch``'s batches from batch ``skip`` on; yields ``(step, loss)``
    after each optimizer step (``loss`` a detached 0-d tensor). ``name`` says where in training the
    batches are, in errors ("epoch 3" unless given). Stops drawing batches when the caller stops."""
    config = loop.config
    generator = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))
    name = name or f"epoch {epoch + 1}"
    for index, batch in enumerate(loop.task.batches(epoch, generator, config.batch_size, **loop.ranks.shard)):
        if index < skip:
            continue
        if loop.device.type == "cuda":
            batch = _pinned(batch)  # page-locked, so the task's non_blocking copies overlap
        step = epoch * loop.steps_per_epoch + index
        if hasattr(start.model, "set_step"):
            start.model.set_step(step)
        yield step, train_step(loop, start, batch, f"{name}, batch {index + 1}")


def train_step(loop: Loop, start: Start, batch: Any, where: str) -> Tensor:
    """One optimizer step on ``batch``; returns the loss (detached). ``where`` names the batch in errors."""
    config, device = loop.config, loop.device
    try:
        with loop.autocast:
            loss = loop.task.loss(start.step_model, batch, device)
        start.optimizer.zero_grad(set_to_none=True)
        loss.backward()
    except NonFiniteError as exc:  # a layer saw NaN/inf: say where in training it happened
        raise NonFiniteError(f"{exc} ({where})") from None
    except torch.OutOfMemoryError as exc:
        raise _memory_error(exc, batch, config, device) from None
    except RuntimeError as exc:  # the CPU allocator's failure is a plain RuntimeError
        if "can't allocate memory" not in str(exc):
            raise
        raise _memory_error(exc, batch, config, device) from None
    if loop.ranks.world > 1:
        average_gradients(start.model, loop.ranks.world)
    if config.grad_clip:
        nn.utils.clip_grad_norm_(start.model.parameters(), config.grad_clip)
    start.optimizer.step()
    start.scheduler.step()
    return loss.detach().float()


def lr_factor(step: int, total: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_fraction``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
    return config.min_lr_fraction + (1 - config.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, config: TrainConfig):
    """The warm-up + cosine schedule (``lr_factor``) over ``total_steps``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, config))


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, fused=device.type == "cuda")


def concept_layers(model: nn.Module) -> list[ConceptLayer]:
    return [m for m in model.modules() if isinstance(m, ConceptLayer)]


def _memory_error(exc: Exception, batch, config: TrainConfig, device: torch.device) -> MemoryLimitError:
    """One line: which batch did not fit, what the allocator could not get, what to change."""
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    shape = list(first.shape) if isinstance(first, torch.Tensor) else "?"
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return MemoryLimitError(f"a batch of inputs {shape} (train.batch_size = {config.batch_size}) does not fit in "
                            f"{device} memory: {detail.rstrip('.')}; lower train.batch_size")


def _pinned(batch: Any) -> Any:
    if isinstance(batch, Tensor):
        return batch.pin_memory()
    if isinstance(batch, (tuple, list)):
        return type(batch)(_pinned(item) for item in batch)
    return batch
