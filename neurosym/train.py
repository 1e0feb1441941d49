"""The training loop: device choice, bf16 autocast, clipping, annealing, atomic checkpoints, resume.

A *task* supplies batches and the loss (see ``Task``); the loop owns everything else. Each epoch
ends with an atomic checkpoint (weights, optimizer, schedule, step, RNG states, config, code version,
history) and a row in ``metrics.csv``; a run killed at any point resumes from its last checkpoint
and continues bit for bit, because each epoch's data order is drawn from ``(seed, epoch)`` and the
global RNG state is restored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import torch
from torch import Tensor, nn

from neurosym.checkpoint import (CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, seed_everything,
                                 set_rng_state, write_metrics_csv)
from neurosym.config import dump_toml, to_dict
from neurosym.distributed import average_gradients, broadcast_state, distributed_context
from neurosym.errors import ConfigError, MemoryLimitError, NonFiniteError
from neurosym.regrounding import reorder_rows
from neurosym.train_config import TrainConfig
from neurosym.trap import RESTART_SEED_STRIDE, Verdict, can_check, dropped_at_check, explained_share, verdict
from neurosym.version import code_version

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


def _memory_error(exc: Exception, batch, config: TrainConfig, device: torch.device) -> MemoryLimitError:
    """One line: which batch did not fit, what the allocator could not get, what to change."""
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    shape = list(first.shape) if isinstance(first, torch.Tensor) else "?"
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return MemoryLimitError(f"a batch of inputs {shape} (train.batch_size = {config.batch_size}) does not fit in "
                            f"{device} memory: {detail.rstrip('.')}; lower train.batch_size")


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


def _lr_factor(step: int, total: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_fraction``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
    return config.min_lr_fraction + (1 - config.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def _make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, config: TrainConfig):
    """The warm-up + cosine schedule (``_lr_factor``) over ``total_steps``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, total_steps, config))


def _make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, fused=device.type == "cuda")


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
    like ``model`` (needed by ``config.probe_starts > 1``); the chosen start's weights end in ``model``.
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    rank, world = distributed_context()
    lead = rank == 0  # only rank 0 logs, evaluates and writes files
    if config.batch_size % world:
        raise ConfigError(f"train.batch_size {config.batch_size} is not divisible by the world size {world}")
    if lead:
        run_dir.mkdir(parents=True, exist_ok=True)
    device = select_device(config.device)
    if run_config is not None and lead:
        (run_dir / "config.toml").write_text(dump_toml(run_config if isinstance(run_config, dict) else to_dict(run_config)))
    seed_everything(config.seed)
    model.to(device)
    if world > 1:
        broadcast_state(model)
    optimizer = _make_optimizer(model, config, device)
    steps_per_epoch = task.steps_per_epoch(config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    reground_steps = {max(1, round(point * steps_per_epoch)) for point in config.reground_at}
    if config.trap_restarts and not (can_check(task) and restart is not None):
        raise ConfigError(f"train.trap_restarts needs a task labelled through a query (task.knowledge with groups) and a "
                          f"way to build the model again; {type(task).__name__} cannot say how much of its labels a model explains")
    if reground_steps and not hasattr(task, "reground"):
        raise ConfigError("train.reground_at needs a task labelled through a query (task.knowledge with groups); "
                          f"{type(task).__name__} has no code order to re-ground")
    scheduler = _make_scheduler(optimizer, total_steps, config)
    history: list[dict[str, float]] = []
    start_epoch, elapsed, attempt, dropped = 0, 0.0, 0, []
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if resume and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ConfigError(f"{checkpoint_path}: checkpoint does not fit this model ({str(exc).splitlines()[0]})") from None
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        start_epoch, history, elapsed = state["epoch"], state["history"], state["train_seconds"]
        attempt, dropped = state.get("attempt", 0), state.get("dropped_shares", [])
    step_model = model
    if config.compile:
        step_model = torch.compile(model)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and config.bf16)
    metrics: dict[str, float] = history[-1] if history else {}
    bar = tqdm(total=total_steps, initial=start_epoch * steps_per_epoch, disable=not (progress and lead),
               unit="step", leave=False)
    shard = {"rank": rank, "world": world} if world > 1 else {}
    probe_steps, probe_row, probe_reorders = 0, {}, 0
    if config.probe_starts > 1 and start_epoch == 0:
        if restart is None:
            raise ConfigError("train.probe_starts > 1 needs a way to build the model again (fit's restart argument)")
        started = time.perf_counter()
        winner, winner_optimizer, winner_scheduler, probe_steps, losses = _best_start(
            model, restart, task, config, device, steps_per_epoch, total_steps, autocast, world, shard)
        if winner is not model:  # the caller holds ``model``: the winner's state moves into it
            model.load_state_dict(winner.state_dict())
        optimizer.load_state_dict(winner_optimizer.state_dict())
        scheduler.load_state_dict(winner_scheduler.state_dict())
        if any(step <= probe_steps for step in reground_steps):
            probe_reorders = _reground(model, task, optimizer, device)
        elapsed += time.perf_counter() - started
        probe_row = {"probe_start": losses.index(min(losses)), "probe_loss": min(losses),
                     **{f"probe_loss_{start}": loss for start, loss in enumerate(losses)}}
        bar.update(probe_steps)
    epoch = start_epoch
    while epoch < config.epochs:
        started = time.perf_counter()
        model.train()
        for layer in _concept_layers(model):
            layer.usage.reset()
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        loss_sum = torch.zeros((), device=device)
        first = epoch == 0 and attempt == 0
        skip = probe_steps if first else 0  # the chosen start already took these batches
        reorders = probe_reorders if first else 0
        for index, batch in enumerate(task.batches(epoch, generator, config.batch_size, **shard)):
            if index < skip:
                continue
            if device.type == "cuda":
                batch = _pinned(batch)  # page-locked, so the task's non_blocking copies overlap
            step = epoch * steps_per_epoch + index
            if hasattr(model, "set_step"):
                model.set_step(step)
            loss_sum += _train_step(model, step_model, task, batch, optimizer, scheduler, config, device, autocast,
                                    world, f"epoch {epoch + 1}, batch {index + 1}")
            bar.update(1)
            if step + 1 in reground_steps:
                reorders += _reground(model, task, optimizer, device)
        train_loss = float(loss_sum) / max(1, steps_per_epoch - skip)
        if not math.isfinite(train_loss):
            raise NonFiniteError(f"training loss became {train_loss} in epoch {epoch + 1}; lower train.lr or check the inputs")
        elapsed += time.perf_counter() - started
        row: dict[str, float] = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch, "train_loss": train_loss,
                                 "lr": scheduler.get_last_lr()[0], "train_seconds": round(elapsed, 3)}
        for layer in _concept_layers(model):
            for key, value in layer.statistics().items():  # usage counts this epoch's training batches
                row[key if key == "temperature" else f"train_{key}"] = value
        if reground_steps:
            row["code_reorders"] = reorders
        if first:
            row.update(probe_row)
        if attempt:
            row["start"] = attempt
        if lead and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs):
            model.eval()
            with torch.no_grad(), autocast:
                row.update(task.evaluate(model, device))
        if config.trap_restarts and epoch + 1 == config.trap_check_at and attempt < config.trap_restarts:
            share = row["train_explained"] if "train_explained" in row else explained_share(model, task, device)
            row["check_explained"] = share
            if dropped_at_check(share, config.trap_check_threshold, task.arity):  # a new start begins at step 0
                history.append(row)
                attempt += 1
                dropped.append(share)
                optimizer, scheduler = _fresh_start(model, restart, config, attempt, device, world, total_steps)
                elapsed += time.perf_counter() - started
                bar.total += (epoch + 1) * steps_per_epoch
                epoch = 0
                continue
        history.append(row)
        metrics = row
        bar.set_postfix({k: round(v, 3) for k, v in row.items() if k in ("train_loss", "concept_acc", "label_acc")})
        if not lead:
            if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
                break
            epoch += 1
            continue
        save_checkpoint(checkpoint_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rng_state(), "epoch": epoch + 1, "history": history, "train_seconds": elapsed,
            "attempt": attempt, "dropped_shares": dropped,
            "config": to_dict(run_config) if run_config is not None and not isinstance(run_config, dict) else run_config,
            "code_version": code_version(),
        })
        write_metrics_csv(run_dir / "metrics.csv", history)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
        epoch += 1
    bar.close()
    finished = bool(history) and history[-1]["epoch"] == config.epochs
    judged = None
    if lead and finished and can_check(task):
        share = metrics.get("train_explained")
        judged = verdict(explained_share(model, task, device) if share is None else share, config.trap_threshold,
                         attempt, tuple(dropped))
    return TrainResult(run_dir=run_dir, metrics=metrics, history=history, train_seconds=elapsed,
                       resumed_from_epoch=start_epoch, verdict=judged)


def _pinned(batch: Any) -> Any:
    if isinstance(batch, Tensor):
        return batch.pin_memory()
    if isinstance(batch, (tuple, list)):
        return type(batch)(_pinned(item) for item in batch)
    return batch


def _train_step(model: nn.Module, step_model: nn.Module, task: Task, batch: Any, optimizer: torch.optim.Optimizer,
                scheduler, config: TrainConfig, device: torch.device, autocast, world: int, where: str) -> Tensor:
    """One optimizer step on ``batch``; returns the loss (detached). ``where`` names the batch in errors."""
    try:
        with autocast:
            loss = task.loss(step_model, batch, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    except NonFiniteError as exc:  # a layer saw NaN/inf: say where in training it happened
        raise NonFiniteError(f"{exc} ({where})") from None
    except torch.OutOfMemoryError as exc:
        raise _memory_error(exc, batch, config, device) from None
    except RuntimeError as exc:  # the CPU allocator's failure is a plain RuntimeError
        if "can't allocate memory" not in str(exc):
            raise
        raise _memory_error(exc, batch, config, device) from None
    if world > 1:
        average_gradients(model, world)
    if config.grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    scheduler.step()
    return loss.detach().float()


PROBE_SEED_STRIDE = 7_919  # start i > 0 is initialised under seed + i * this


def _best_start(model: nn.Module, restart, task: Task, config: TrainConfig, device: torch.device, steps_per_epoch: int,
                total_steps: int, autocast, world: int, shard: dict) -> tuple[nn.Module, Any, Any, int, list[float]]:
    """Train ``config.probe_starts`` initialisations (``model``, then ``restart()`` under other seeds)
    for the probe's steps on epoch 0's batches; returns the one with the lowest mean training loss over
    the probe's second half, with its optimizer and scheduler, the probe's step count and every start's loss.

    A start's fate is often settled early: a run on a constraint can fall into a near-symmetry of the
    task (clusters named by an off-by-one or a shift) that it never leaves, and by a quarter epoch such a
    start already explains the labels far worse than one on its way to the right names.
    """
    probe_steps = min(steps_per_epoch, max(2, round(config.probe_epochs * steps_per_epoch)))
    best, losses = None, []
    for start in range(config.probe_starts):
        candidate = model
        if start:
            seed_everything(config.seed + PROBE_SEED_STRIDE * start)
            candidate = restart().to(device)
            if world > 1:
                broadcast_state(candidate)
        optimizer = _make_optimizer(candidate, config, device)
        scheduler = _make_scheduler(optimizer, total_steps, config)
        step_model = torch.compile(candidate) if config.compile else candidate
        candidate.train()
        generator = torch.Generator().manual_seed(config.seed * 100_003)  # epoch 0's, as the main loop draws it
        run = []
        for index, batch in zip(range(probe_steps), task.batches(0, generator, config.batch_size, **shard)):
            if device.type == "cuda":
                batch = _pinned(batch)
            if hasattr(candidate, "set_step"):
                candidate.set_step(index)
            loss = _train_step(candidate, step_model, task, batch, optimizer, scheduler, config, device, autocast, world,
                               f"start {start + 1}, batch {index + 1}")
            run.append(loss)
        value = torch.stack(run[len(run) // 2:]).mean()
        if world > 1:
            import torch.distributed as dist

            dist.all_reduce(value)
            value /= world
        losses.append(float(value))
        if best is None or losses[-1] < best[0]:
            best = (losses[-1], candidate, optimizer, scheduler)
    return best[1], best[2], best[3], probe_steps, losses


def _fresh_start(model: nn.Module, restart: Callable[[], nn.Module], config: TrainConfig, attempt: int,
                 device: torch.device, world: int, total_steps: int):
    """Put a new initialisation (seed + ``attempt`` x ``RESTART_SEED_STRIDE``) into ``model``, which the
    caller holds; returns a new optimizer and schedule for it."""
    seed_everything(config.seed + RESTART_SEED_STRIDE * attempt)
    model.load_state_dict(restart().state_dict())
    if world > 1:
        broadcast_state(model)
    optimizer = _make_optimizer(model, config, device)
    return optimizer, _make_scheduler(optimizer, total_steps, config)


def _reground(model: nn.Module, task: Task, optimizer: torch.optim.Optimizer, device: torch.device) -> int:
    """Rename the codes to the order the task finds best (1), or leave them (0)."""
    order = task.reground(model, device)
    if order is None:
        return 0
    for layer in _concept_layers(model):
        reorder_rows(layer.code_tensors(), order, optimizer)
    return 1


def _concept_layers(model: nn.Module):
    from neurosym.concepts import ConceptLayer

    return [m for m in model.modules() if isinstance(m, ConceptLayer)]
