"""Two CPU processes on the gloo backend: the torchrun path without GPUs."""

import queue as queues
import time

import pytest
import torch.multiprocessing as mp

from ddp_workers import codebooks_stay_equal, fit_two_ranks, free_port
from neurosym.errors import ConfigError


def _spawn(target, *args):
    """Run ``target`` on two ranks and return their results sorted by rank. The ranks are daemons and
    are killed on the way out, whatever happened: a rank that hangs fails this test, never the run."""
    context = mp.get_context("spawn")  # ddp_workers.py says why not fork
    queue = context.Queue()
    port = free_port()
    processes = [context.Process(target=target, args=(rank, 2, port, *args, queue), daemon=True) for rank in range(2)]
    try:
        for process in processes:
            process.start()
        results, deadline = [], time.monotonic() + 180
        while len(results) < len(processes):
            try:
                results.append(queue.get(timeout=1))
            except queues.Empty:
                codes = [process.exitcode for process in processes]
                if any(code not in (None, 0) for code in codes) or time.monotonic() > deadline:
                    pytest.fail(f"a rank failed or gave no result within 180 s (exit codes {codes}, None = running)")
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0
        return sorted(results)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)


def test_vq_codebooks_are_identical_on_every_rank_after_every_step():
    results = _spawn(codebooks_stay_equal)
    for _, differences, restarts in results:
        assert max(differences) == 0.0
    assert results[0][2] > 0  # dead-code restarts happened, and were synchronised too


def test_two_rank_training_keeps_weights_identical(tmp_path):
    results = _spawn(fit_two_ranks, str(tmp_path))
    assert all(difference == 0.0 for _, difference in results)
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "metrics.csv").exists()


def test_world_size_that_does_not_divide_the_data_is_an_error():
    from neurosym.tasks import check_divisible

    with pytest.raises(ConfigError, match="task.tuples_per_epoch = 63 is not divisible by the world size 2"):
        check_divisible("task.tuples_per_epoch", 63, 2)
