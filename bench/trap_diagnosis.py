"""What trapped and healthy starts of multi-digit MNIST addition look like, epoch by epoch.

    python bench/trap_diagnosis.py --n 15 --seeds 0-9 --epochs 12 --images-per-step 240 \
        --set train.probe_starts=1 --json bench/trap_diagnosis_n15_transformer.json

Each run is the MNIST config (``data/configs/mnist_addition.toml``) at one N and seed, trained one
epoch at a time (``fit`` resumes bit for bit from its checkpoint), and read after every epoch:

- ``train_loss``, and ``train_perplexity`` / ``train_used_codes``: the codes the epoch's batches used;
- ``label_acc`` (test groups), ``train_explained`` (the share of a fixed slice of training groups
  whose label the model's most probable explanation reproduces: the trap verdict's figure);
- ``concept_acc`` (code i read as digit i) and ``concept_acc_hungarian`` (after the best renaming:
  the purity of the clusters, whatever their names);
- ``channel_gain``: nats per group by which the best fitted code -> symbol channel
  (``neurosym.regrounding.best_code_order``) explains the slice's labels better than the codes as
  named;
- ``explanation_agreement``: the share of the slice's inputs whose value in the most probable
  explanation of their group (given the label) is the same as after the previous epoch.

A run is *trapped* when its final ``label_acc`` is below ``--trapped-below`` (default 0.5). The JSON
holds every run's rows and, per setting, how many seeds trapped.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from kg.store import Store
from mnist_addition import ensure_mnist, experiment, parse_setting  # noqa: E402  (bench/ is on sys.path)
from neurosym.regrounding import best_code_order
from neurosym.tasks import encode_codes
from neurosym.train import fit, seed_everything
from pipelines.train_step import build_model, prepare_task
from _output import cpu_model, emit  # noqa: E402


def slice_state(task, model, device) -> tuple[torch.Tensor, float]:
    """The most probable explanation's input values of the check slice ``[G * A]`` and the channel's gain."""
    groups, labels = task.check_groups()
    model.eval()
    with torch.no_grad():
        log_probs = encode_codes(model, task.train.inputs[groups.reshape(-1)], device)[1]
    log_probs = log_probs[:, 0, :].reshape(len(groups), task.arity, -1)  # (G, A, K)
    constraint = task.constraint.to("cpu")
    explanation = constraint.explain(log_probs, labels)
    values = torch.stack([explanation.values[v] for v in constraint.inputs], 1).reshape(-1)
    order, fits = best_code_order(constraint.log_likelihood, log_probs, labels)
    with torch.no_grad():
        named = float(constraint.log_likelihood(log_probs, labels).clamp_min(-1e4).mean())
    return values, round(float(fits.max()) - named, 3)


def run_job(job: dict) -> dict:
    torch.set_num_threads(job["threads"])
    n, seed = job["n"], job["seed"]
    config, base = experiment(n, seed, Path(job["data"]), job["epochs"], job["images_per_step"], "cpu", job["settings"])
    config.train.eval_every = 1
    rows, previous = [], None
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "store.sqlite") as store:
        prepared = prepare_task(config, base, store)
        task = prepared.make_task(config)
        device = torch.device("cpu")
        for epoch in range(1, config.train.epochs + 1):
            seed_everything(config.train.seed)
            model = build_model(config, prepared)
            result = fit(model, task, config.train, Path(tmp) / "run", run_config=config, resume=True, progress=False,
                         stop_after_epoch=epoch, restart=lambda: build_model(config, prepared))
            row = {key: round(value, 4) if isinstance(value, float) else value for key, value in result.metrics.items()}
            values, row["channel_gain"] = slice_state(task, model, device)
            if previous is not None:
                row["explanation_agreement"] = round(float((values == previous).double().mean()), 4)
            previous = values
            rows.append(row)
    return {"setting": job["name"], "n": n, "seed": seed, "label_acc": rows[-1]["label_acc"], "epochs": rows}


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--seeds", default="0-9", help="0-9 or 0,3,5")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--images-per-step", type=int, default=240)
    parser.add_argument("--name", default="config", help="A name for this setting in the JSON.")
    parser.add_argument("--set", dest="settings", type=parse_setting, action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--trapped-below", type=float, default=0.5)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()
    data = ensure_mnist(args.data)
    jobs = [{"name": args.name, "n": args.n, "seed": seed, "data": str(data), "epochs": args.epochs,
             "images_per_step": args.images_per_step, "threads": args.threads, "settings": dict(args.settings)}
            for seed in parse_seeds(args.seeds)]
    runs = []
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        for run in pool.map(run_job, jobs):
            print(json.dumps({k: v for k, v in run.items() if k != "epochs"} | {"last": run["epochs"][-1]}), flush=True)
            runs.append(run)
    trapped = [run["seed"] for run in runs if run["label_acc"] < args.trapped_below]
    emit({"setting": args.name, "n": args.n, "config": dict(args.settings), "epochs": args.epochs,
          "images_per_step": args.images_per_step, "trapped_below": args.trapped_below,
          "trapped_seeds": trapped, "trapped": f"{len(trapped)} of {len(runs)}", "runs": runs,
          "machine": f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                     f"{args.jobs} runs side by side with {args.threads} thread(s) each"}, args.json_path)


if __name__ == "__main__":
    main()
