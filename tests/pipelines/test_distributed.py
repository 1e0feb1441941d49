"""``train_on_every_rank`` as ``torchrun`` starts it: two fresh processes (gloo), told their rank by the
environment. Only rank 0 opens the store; both train; rank 0 writes the run."""

import json
import os
import subprocess
import sys
from pathlib import Path

from ddp_workers import free_port

ROOT = Path(__file__).resolve().parents[2]

RANK = """
import json, sys
from contextlib import contextmanager
import torch
from kg.store import Store
from pipelines.config import load_config
from pipelines.distributed import train_on_every_rank

torch.set_num_threads(1)
folder, opened = sys.argv[1], []

@contextmanager
def open_store():
    opened.append(True)
    with Store.open(folder + "/s.sqlite") as store:
        yield store

config, base = load_config(None, **{"train.epochs": 1, "train.device": "cpu", "task.tuples_per_epoch": 200,
                                    "task.test_tuples": 50, "model.d_model": 16, "model.n_heads": 2,
                                    "model.stem_channels": 4})
outcome = train_on_every_rank(config, base, open_store, folder + "/run")
print(json.dumps({"opened": len(opened), "metrics": None if outcome is None else sorted(outcome.metrics)}))
"""


def test_rank_zero_compiles_the_task_and_writes_the_run(tmp_path):
    port = free_port()
    ranks = []
    for rank in range(2):
        env = os.environ | {"PYTHONPATH": str(ROOT), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                            "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"}
        ranks.append(subprocess.Popen([sys.executable, "-c", RANK, str(tmp_path)], env=env, cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    answers = []
    try:
        for process in ranks:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            answers.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in ranks:  # a rank that failed leaves the other waiting in a collective
            process.kill()
    lead, other = answers
    assert (lead["opened"], other["opened"]) == (1, 0)
    assert "label_acc" in lead["metrics"] and other["metrics"] is None
    assert (tmp_path / "run" / "result.json").exists()
