"""Two CPU processes on the gloo backend: the torchrun path without GPUs."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from neurosym.concepts import VectorQuantizer
from neurosym.errors import ConfigError


def _init(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)


def _codebooks_stay_equal(rank: int, world: int, port: int, queue) -> None:
    _init(rank, world, port)
    torch.manual_seed(0)  # same initial codebook on both ranks
    layer = VectorQuantizer(4, 32, decay=0.8, dead_code_threshold=0.5, recent_size=64)
    torch.manual_seed(100 + rank)  # different data and restart draws per rank
    differences = []
    for step in range(12):
        layer(torch.randn(16, 2, 4) + rank * 3.0)  # the ranks see different inputs
        gathered = [torch.zeros_like(layer.codebook) for _ in range(world)]
        dist.all_gather(gathered, layer.codebook)
        differences.append(float((gathered[0] - gathered[1]).abs().max()))
    queue.put((rank, differences, int(layer.restarts)))
    dist.destroy_process_group()


def _fit_two_ranks(rank: int, world: int, port: int, run_dir: str, queue) -> None:
    _init(rank, world, port)
    from neurosym.model import ConceptConfig, ConceptTransformer, ModelConfig
    from neurosym.tasks import RelationTask, SymbolData
    from neurosym.train import TrainConfig, fit

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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(target, *args):
    # fork, not spawn: the workers live in this test module, which spawn could not re-import.
    context = mp.get_context("fork")
    queue = context.Queue()
    port = _free_port()
    processes = [context.Process(target=target, args=(rank, 2, port, *args, queue)) for rank in range(2)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return sorted(results)


def test_vq_codebooks_are_identical_on_every_rank_after_every_step():
    results = _spawn(_codebooks_stay_equal)
    for _, differences, restarts in results:
        assert max(differences) == 0.0
    assert results[0][2] > 0  # dead-code restarts happened, and were synchronised too


def test_two_rank_training_keeps_weights_identical(tmp_path):
    results = _spawn(_fit_two_ranks, str(tmp_path))
    assert all(difference == 0.0 for _, difference in results)
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "metrics.csv").exists()


def test_world_size_that_does_not_divide_the_data_is_an_error():
    from neurosym.tasks import check_divisible

    with pytest.raises(ConfigError, match="task.tuples_per_epoch = 63 is not divisible by the world size 2"):
        check_divisible("task.tuples_per_epoch", 63, 2)
