"""Digit addition benchmark: train the default config per seed, report concept/sum accuracy and time.

    python bench/digits_addition.py --seeds 0,1,2 --json PATH

Prints and writes a JSON object: ``seeds`` (one object per seed) and ``median``, each with
``concept_acc`` (grounded: code i read as the constraint's i-th symbol), ``concept_acc_hungarian``,
``sum_acc``, ``supervised_concept_acc`` (same network trained on digit labels: the ceiling),
``train_seconds`` and ``codebook_perplexity``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from kg.store import Store
from pipelines.config import load_config
from pipelines.train_step import prepare_task, supervised_ceiling, train
from _output import emit  # noqa: E402  (bench/ is on sys.path when a script runs)


def run_seed(config_path: str | None, seed: int, workdir: Path, ceiling: bool) -> dict:
    config, base = load_config(config_path, **{"train.seed": seed})
    with Store.open(workdir / f"seed{seed}.sqlite") as store:
        prepared = prepare_task(config, base, store)
        outcome = train(config, base, store, workdir / f"seed{seed}", progress=False, resume=False, prepared=prepared)
    row = {
        "seed": seed,
        "concept_acc": outcome.metrics["concept_acc"],
        "concept_acc_hungarian": outcome.metrics["concept_acc_hungarian"],
        "sum_acc": outcome.metrics["label_acc"],
        "train_seconds": round(outcome.train_seconds, 2),
        "codebook_perplexity": outcome.metrics["train_codebook_perplexity"],
    }
    if ceiling:
        row["supervised_concept_acc"] = supervised_ceiling(config, prepared, workdir / f"supervised{seed}").metrics["concept_acc"]
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--config", default=None, help="Experiment TOML (default: bundled digit addition).")
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--no-ceiling", action="store_true", help="Skip the supervised ceiling runs.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_seed(args.config, seed, Path(tmp), not args.no_ceiling) for seed in seeds]
    keys = [k for k in rows[0] if k != "seed"]
    result = {
        "seeds": rows,
        "median": {k: statistics.median(r[k] for r in rows) for k in keys},
        "torch_threads": args.threads,
    }
    emit(result, args.json_path)


if __name__ == "__main__":
    main()
