"""``train_on_every_rank`` under two gloo processes: only rank 0 opens the store, both ranks train."""

import os
import socket
from contextlib import contextmanager

import torch.multiprocessing as mp

from kg.store import Store
from pipelines.config import load_config
from pipelines.distributed import train_on_every_rank


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank(rank: int, port: int, folder: str, queue) -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    opened = []

    @contextmanager
    def open_store():
        opened.append(rank)
        with Store.open(f"{folder}/s.sqlite") as store:
            yield store

    config, base = load_config(None, **{"train.epochs": 1, "train.device": "cpu", "task.tuples_per_epoch": 200,
                                        "task.test_tuples": 50, "model.d_model": 16, "model.n_heads": 2,
                                        "model.stem_channels": 4})
    outcome = train_on_every_rank(config, base, open_store, f"{folder}/run")
    queue.put((rank, opened, None if outcome is None else sorted(outcome.metrics)))


def test_rank_zero_compiles_the_task_and_writes_the_run(tmp_path):
    context = mp.get_context("fork")  # the worker lives in this module, which spawn could not re-import
    queue, port = context.Queue(), _free_port()
    processes = [context.Process(target=_rank, args=(rank, port, str(tmp_path), queue)) for rank in range(2)]
    for process in processes:
        process.start()
    results = sorted(queue.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    (lead, lead_opened, lead_metrics), (other, other_opened, other_metrics) = results
    assert (lead, lead_opened, other, other_opened) == (0, [0], 1, [])
    assert "label_acc" in lead_metrics and other_metrics is None
    assert (tmp_path / "run" / "result.json").exists()
