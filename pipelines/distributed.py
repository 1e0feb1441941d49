"""Training under ``torchrun``: one process per GPU (or per CPU process with gloo), one store reader.

Rank 0 opens the store and compiles the task (KG facts, the constraint, the dataset in its symbols);
the other ranks receive the compiled task from it, so that only one process touches the store. Every
rank then trains (``neurosym.train.fit`` keeps weights and codebooks identical) and rank 0 writes the
run folder. With one process this is plain ``train``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from pipelines.config import ExperimentConfig
from pipelines.run_folder import RunResult
from pipelines.train_step import PreparedTask, prepare_task, train


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
    from neurosym.distributed import init_distributed

    rank, world = init_distributed()
    if world > 1 and config.train.device.startswith("cuda"):
        config.train.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"  # one GPU per local rank
    prepared = None
    if rank == 0:
        with open_store() as store:
            prepared = prepare_task(config, base, store)
    outcome = train(config, base, None, run_dir, resume=resume, prepared=share_from_lead(prepared, world))
    return outcome if rank == 0 else None
