"""The ``torchrun`` process group as the training loop sees it: each rank's place, rank 0's weights
for everyone, and averaged gradients.

Joining the group (backend, one GPU per local rank) is the launcher's business: see
``pipelines/distributed.py``.
"""

from __future__ import annotations

import torch
from torch import nn


def distributed_context() -> tuple[int, int]:
    """``(rank, world size)`` of the current ``torchrun`` process group, ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def broadcast_state(model: nn.Module) -> None:
    """Start every rank from rank 0's weights and buffers."""
    import torch.distributed as dist

    for tensor in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(tensor.data, src=0)


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
