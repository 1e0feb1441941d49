"""Training under ``torchrun``: one process per GPU (or per CPU process with gloo), one store reader.

Each process joins the group ``torchrun`` describes (``init_distributed``). Rank 0 opens the store and
compiles the task (KG facts, the constraint, the dataset in its symbols); the other ranks receive the
compiled task from it, so that only one process touches the store. Every rank then trains
(``neurosym.train.fit`` keeps weights and codebooks identical, through ``neurosym.distributed``) and
rank 0 writes the run folder. With one process this is plain ``train``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import torch

from neurosym.distributed import distributed_context
from pipelines.config import ExperimentConfig
from pipelines.run_folder import RunResult
from pipelines.train_step import PreparedTask, prepare_task, train


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


def share_from_lead(prepared: PreparedTask | None, world: int) -> PreparedTask:
    """Rank 0's compiled task on every rank (``prepared`` is only read on rank 0)."""
    if world == 1:
        return prepared
    import torch.distributed as dist

    shared = [prepared]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def train_on_every_rank(config: ExperimentConfig, base: Path | None, open_store: Callable[[], AbstractContextManager],
                        run_dir: str | Path, resume: bool = True) -> RunResult | None:
    """Join the ``torchrun`` process group (if any) and train; returns the run's result on rank 0, None
    on the other ranks. ``open_store()`` opens the store and is called on rank 0 only."""
    rank, world = init_distributed()
    if world > 1 and config.train.device.startswith("cuda"):
        config.train.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"  # one GPU per local rank
    prepared = None
    if rank == 0:
        with open_store() as store:
            prepared = prepare_task(config, base, store)
    outcome = train(config, base, None, run_dir, resume=resume, prepared=share_from_lead(prepared, world))
    return outcome if rank == 0 else None
