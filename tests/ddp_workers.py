"""The two-rank workers of ``tests/neurosym/test_ddp.py``, in a module a spawned process can import.

The workers start with ``spawn``, never ``fork``: a fork of the pytest process inherits torch's
OpenMP pool from the tests that ran before, and the child can hang at its first parallel kernel
(seen in CI: one rank never answered, and the group waited on it).
"""

from __future__ import annotations

import datetime
import os
import socket

import torch
import torch.distributed as dist

#: A collective that waits longer than this fails instead of hanging the test run.
GROUP_TIMEOUT = datetime.timedelta(seconds=60)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the group's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _init(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=GROUP_TIMEOUT)


def codebooks_stay_equal(rank: int, world: int, port: int, queue) -> None:
    """Put (rank, the largest codebook difference across ranks after each step, restarts) on ``queue``."""
    from neurosym.concepts import VectorQuantizer

    _init(rank, world, port)
    torch.manual_seed(0)  # same initial codebook on both ranks
    layer = VectorQuantizer(4, 32, decay=0.8, dead_code_threshold=0.5, recent_size=64)
    torch.manual_seed(100 + rank)  # different data and restart draws per rank
    differences = []
    for _ in range(12):
        layer(torch.randn(16, 2, 4) + rank * 3.0)  # the ranks see different inputs
        gathered = [torch.zeros_like(layer.codebook) for _ in range(world)]
        dist.all_gather(gathered, layer.codebook)
        differences.append(float((gathered[0] - gathered[1]).abs().max()))
    queue.put((rank, differences, int(layer.restarts)))
    dist.destroy_process_group()


def fit_two_ranks(rank: int, world: int, port: int, run_dir: str, queue) -> None:
    """Train a tiny model from a different init per rank; put (rank, largest weight difference) on ``queue``."""
    from neurosym.model import ConceptConfig, ConceptTransformer, ModelConfig
    from neurosym.tasks import RelationTask, SymbolData
    from neurosym.train import TrainConfig, fit

    _init(rank, world, port)
    generator = torch.Generator().manual_seed(0)
    symbols = torch.randint(0, 4, (32,), generator=generator)
    data = SymbolData(torch.rand(32, 8, 8, generator=generator), symbols)
    tuples = torch.tensor([(a, b, a + b) for a in range(4) for b in range(4)])
    task = RelationTask(data, data, tuples, 4, tuples_per_epoch=64, test_tuples=16)
    torch.manual_seed(rank)  # different init per rank: fit must broadcast rank 0's weights
    model = ConceptTransformer(ModelConfig(d_model=16, n_heads=2, concept=ConceptConfig(kind="vq", num_codes=4)))
    fit(model, task, TrainConfig(epochs=2, batch_size=16, device="cpu"), run_dir, progress=False)
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()] + [model.concept.codebook.reshape(-1)])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    queue.put((rank, float((gathered[0] - gathered[1]).abs().max())))
    dist.destroy_process_group()
