"""``neurosym train``: train and evaluate one experiment config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from pipelines.commands.kg import store_option


def config_overrides(command):
    """Options every training command shares: seed, epochs, device."""
    for option in (
        click.option("--seed", type=int, default=None, help="Override train.seed."),
        click.option("--epochs", type=int, default=None, help="Override train.epochs."),
        click.option("--device", default=None, help="auto, cpu, cuda or cuda:N (overrides train.device)."),
    ):
        command = option(command)
    return command


data_path_option = click.option("--data-path", default=None,
                                help="Override task.data_path (the dataset's directory or file).")


def overrides(seed, epochs, device, data_path=None) -> dict:
    return {"train.seed": seed, "train.epochs": epochs, "train.device": device, "task.data_path": data_path}


def ensure_parent(store: str) -> None:
    """A SQLite path's folder is created on first use; URLs are left alone."""
    if "://" not in store:
        Path(store).parent.mkdir(parents=True, exist_ok=True)


@click.command("train")
@click.argument("config_path", required=False, type=click.Path(dir_okay=False))
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Run folder (default runs/<name>-seed<seed>).")
@click.option("--fresh", is_flag=True, help="Start over instead of resuming a checkpoint in the run folder.")
@store_option
@config_overrides
@data_path_option
def train_command(config_path, run_dir, fresh, store, seed, epochs, device, data_path):
    """Train CONFIG (default: the bundled digit-addition config) and print its metrics."""
    from kg.store import Store
    from pipelines.config import load_config
    from pipelines.train_step import prepare_task, train

    from neurosym.train import init_distributed

    config, base = load_config(config_path, **overrides(seed, epochs, device, data_path))
    rank, world = init_distributed()  # under torchrun: one process per GPU, rank 0 writes
    if world > 1 and config.train.device.startswith("cuda"):
        config.train.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    run_dir = Path(run_dir or f"runs/{config.name}-seed{config.train.seed}")
    prepared = None
    if rank == 0:  # one process holds the store; the others get the compiled task from it
        ensure_parent(store)
        with Store.open(store) as opened:
            prepared = prepare_task(config, base, opened)
    if world > 1:
        import torch.distributed as dist

        shared = [prepared]
        dist.broadcast_object_list(shared, src=0)
        prepared = shared[0]
    outcome = train(config, base, None, run_dir, resume=not fresh, prepared=prepared)
    if rank == 0:
        click.echo(json.dumps({k: round(v, 4) for k, v in outcome.metrics.items()}, indent=2))
        click.echo(f"run folder: {outcome.run_dir}")


COMMANDS = [train_command]
