"""The ``torchrun`` process group as the training loop sees it: each rank's place and share of a
batch, rank 0's weights for everyone, averaged gradients and losses.

Joining the group (backend, one GPU per local rank) is the launcher's business: see
``pipelines/distributed.py``. Without a group, ``distributed_context`` sees one rank and
``broadcast_state`` and ``mean_over_ranks`` do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from neurosym.errors import ConfigError


def distributed_context() -> tuple[int, int]:
    """``(rank, world size)`` of the current ``torchrun`` process group, ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass(frozen=True)
class Ranks:
    """This process's place in the group: ``rank`` of ``world``."""

    rank: int = 0
    world: int = 1

    @property
    def lead(self) -> bool:
        """Only rank 0 logs, evaluates and writes files."""
        return self.rank == 0

    @property
    def shard(self) -> dict[str, int]:
        """The keywords a task's ``batches`` takes to give this rank its share of every batch."""
        return {"rank": self.rank, "world": self.world} if self.world > 1 else {}


def training_ranks(batch_size: int) -> Ranks:
    """The current group's ranks, checked against a batch that every rank takes an equal share of."""
    rank, world = distributed_context()
    if batch_size % world:
        raise ConfigError(f"train.batch_size {batch_size} is not divisible by the world size {world}")
    return Ranks(rank, world)


def broadcast_state(model: nn.Module, world: int) -> None:
    """Start every rank from rank 0's weights and buffers (nothing to do for ``world`` = 1)."""
    if world == 1:
        return
    import torch.distributed as dist

    for tensor in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(tensor.data, src=0)


def mean_over_ranks(value: Tensor, world: int) -> Tensor:
    """The mean of a 0-d ``value`` over the ranks (in place; ``value`` itself for one rank)."""
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(value)
        value /= world
    return value


def average_gradients(model: nn.Module, world: int) -> None:
    """All-reduce every gradient in one flat buffer (tasks call ``model.encode``, which a DDP wrapper
    would not see, so the averaging is explicit)."""
    import torch.distributed as dist

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()
