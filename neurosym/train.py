"""The training loop: device choice, bf16 autocast, clipping, annealing, atomic checkpoints, resume.

A *task* supplies batches and the loss (see ``Task``); ``fit`` owns the loop over epochs and batches,
and everything a run does beside training is a callback on it (``neurosym.callbacks``): resume and
checkpoints, evaluation, ``metrics.csv``, the probe of several starts, re-grounding and the trap
check. Each epoch ends with an atomic checkpoint (weights, optimizer, schedule, step, RNG states,
config, code version, history) and a row in ``metrics.csv``; a run killed at any point resumes from
its last checkpoint and continues bit for bit, because each epoch's data order is drawn from
``(seed, epoch)`` (``neurosym.loop.epoch_seed``) and the global RNG state is restored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import torch
from torch import Tensor, nn

from neurosym.callbacks import Checkpoint, Evaluation, MetricsFile, TrainingCallback
from neurosym.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint, seed_everything
from neurosym.config import dump_toml, to_dict
from neurosym.distributed import broadcast_state, training_ranks
from neurosym.errors import ConfigError, NonFiniteError
from neurosym.loop import Loop, concept_layers, make_start, train_batches
from neurosym.probe import ProbeStarts
from neurosym.regrounding import Regrounding
from neurosym.train_config import TrainConfig
from neurosym.trap import Verdict, can_check
from neurosym.trap_check import TrapCheck

__all__ = ["Task", "TrainConfig", "TrainResult", "fit", "load_checkpoint", "save_checkpoint", "seed_everything",
           "select_device"]


class Task(Protocol):
    """What the loop needs from a learning problem."""

    def batches(self, epoch: int, generator: torch.Generator, batch_size: int, **shard: int) -> Iterable[Any]:
        """This epoch's batches, in an order drawn from ``generator`` only. Under ``torchrun`` the
        loop passes ``rank`` and ``world``: every rank draws the same order and keeps its share of
        each batch (``batch_size / world`` examples)."""

    def steps_per_epoch(self, batch_size: int) -> int: ...

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> Tensor:
        """Scalar training loss of one batch."""

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Metrics on held-out data (the model is in eval mode)."""


@dataclass
class TrainResult:
    """What a finished run leaves: its folder, last metrics, per-epoch history and timing."""

    run_dir: Path
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    resumed_from_epoch: int = 0
    verdict: Verdict | None = None  # the trap verdict, for tasks that can tell (neurosym.trap)

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME


def select_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA if present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; errors if CUDA is absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif device.type != "cpu":
        raise ConfigError(f"device {name!r} is not auto, cpu, cuda or cuda:N")
    return device


def fit(
    model: nn.Module,
    task: Task,
    config: TrainConfig,
    run_dir: str | Path,
    run_config: Any = None,
    resume: bool = True,
    progress: bool = True,
    stop_after_epoch: int | None = None,
    restart: Callable[[], nn.Module] | None = None,
) -> TrainResult:
    """Train ``model`` on ``task``; write checkpoint, ``metrics.csv`` and ``config.toml`` to ``run_dir``.

    ``run_config`` (a dataclass or dict) is the whole experiment's config saved beside the results.
    With ``resume``, an existing checkpoint in ``run_dir`` is continued. ``stop_after_epoch`` ends
    the process early as a kill would (used to test exact resume). ``restart`` builds a fresh model
    like ``model`` (needed by ``config.probe_starts > 1`` and ``config.trap_restarts``); the weights
    that go on end in ``model``.
    """
    from tqdm.auto import tqdm

    loop = _loop(model, task, config, Path(run_dir), run_config)
    callbacks = _callbacks(loop, run_config, resume, restart)
    for callback in callbacks:
        callback.pre_train(loop)
    loop.bar = tqdm(total=loop.total_steps, initial=loop.epoch * loop.steps_per_epoch, unit="step", leave=False,
                    disable=not (progress and loop.lead))
    while loop.epoch < config.epochs:
        started = time.perf_counter()
        loop.skip = 0
        for callback in callbacks:
            callback.pre_epoch(loop)
        train_loss = _train_epoch(loop, callbacks)
        loop.elapsed += time.perf_counter() - started
        row = _training_row(loop, train_loss)
        for callback in callbacks:
            row.update(callback.metrics(loop))
        loop.history.append(row)
        for callback in callbacks:
            callback.post_epoch(loop, row)
        if loop.start_dropped:  # the trap check put a new start in: it begins at epoch 0
            loop.epoch, loop.start_dropped = 0, False
            continue
        loop.bar.set_postfix({k: round(v, 3) for k, v in row.items() if k in ("train_loss", "concept_acc", "label_acc")})
        loop.epoch += 1
        if stop_after_epoch is not None and loop.epoch >= stop_after_epoch:
            break
    loop.bar.close()
    for callback in callbacks:
        callback.post_train(loop)
    return TrainResult(run_dir=loop.run_dir, metrics=loop.history[-1] if loop.history else {}, history=loop.history,
                       train_seconds=loop.elapsed, resumed_from_epoch=loop.start_epoch, verdict=loop.verdict)


def _loop(model: nn.Module, task: Task, config: TrainConfig, run_dir: Path, run_config: Any) -> Loop:
    """Ranks, run folder, device, seed and the first start (``model`` on the device, every rank from
    rank 0's weights, its optimizer and schedule)."""
    ranks = training_ranks(config.batch_size)
    if ranks.lead:
        run_dir.mkdir(parents=True, exist_ok=True)
    device = select_device(config.device)
    if run_config is not None and ranks.lead:
        (run_dir / "config.toml").write_text(dump_toml(run_config if isinstance(run_config, dict) else to_dict(run_config)))
    seed_everything(config.seed)
    model.to(device)
    broadcast_state(model, ranks.world)
    steps_per_epoch = task.steps_per_epoch(config.batch_size)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and config.bf16)
    start = make_start(model, config, device, steps_per_epoch * config.epochs)
    return Loop(task, config, device, run_dir, ranks, start, steps_per_epoch, autocast)


def _callbacks(loop: Loop, run_config: Any, resume: bool, restart: Callable[[], nn.Module] | None
               ) -> list[TrainingCallback]:
    """The hooks a run's config asks for, in the order of their columns in the epoch's row (the trap
    check's ``start`` before the evaluation's); the trap check acts before the checkpoint is written,
    so that a dropped start is not saved. Errors in the config's training settings are raised here."""
    config = loop.config
    trap = TrapCheck(loop, restart) if config.trap_restarts or can_check(loop.task) else None
    regrounding = Regrounding(loop) if config.reground_at else None
    probe = ProbeStarts(restart, regrounding) if config.probe_starts > 1 else None
    hooks = [regrounding, probe, trap, Evaluation(), Checkpoint(resume, run_config), MetricsFile()]
    return [hook for hook in hooks if hook is not None]


def _train_epoch(loop: Loop, callbacks: list[TrainingCallback]) -> float:
    """Epoch ``loop.epoch``'s steps (after the ``loop.skip`` a probe took); its mean training loss."""
    loop.model.train()
    for layer in concept_layers(loop.model):
        layer.usage.reset()
    loss_sum = torch.zeros((), device=loop.device)
    for step, loss in train_batches(loop, loop.start, loop.epoch, skip=loop.skip):
        loss_sum += loss
        loop.bar.update(1)
        for callback in callbacks:
            callback.on_batch(loop, step)
    train_loss = float(loss_sum) / max(1, loop.steps_per_epoch - loop.skip)
    if not math.isfinite(train_loss):
        raise NonFiniteError(f"training loss became {train_loss} in epoch {loop.epoch + 1}; lower train.lr or check the inputs")
    return train_loss


def _training_row(loop: Loop, train_loss: float) -> dict[str, float]:
    """The epoch's own columns: where it ends, its loss, learning rate and time, and the concept
    layers' figures over its training batches."""
    row = {"epoch": loop.epoch + 1, "step": (loop.epoch + 1) * loop.steps_per_epoch, "train_loss": train_loss,
           "lr": loop.start.scheduler.get_last_lr()[0], "train_seconds": round(loop.elapsed, 3)}
    for layer in concept_layers(loop.model):
        for key, value in layer.statistics().items():
            row[key if key == "temperature" else f"train_{key}"] = value
    return row
