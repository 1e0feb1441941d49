"""The ``torchrun`` process group as the training loop sees it: joining it, each rank's place, rank
0's weights for everyone, and averaged gradients."""

from __future__ import annotations

import os

import torch
from torch import nn


def distributed_context() -> tuple[int, int]:
    """``(rank, world size)`` of the current ``torchrun`` process group, ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Join the process group ``torchrun`` describes in the environment (no-op for one process).

    Uses NCCL with one GPU per local rank when CUDA is present, gloo on CPU. Returns (rank, world).
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return distributed_context()


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
