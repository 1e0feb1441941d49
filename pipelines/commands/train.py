"""``neurosym train``: train and evaluate one experiment config (also under ``torchrun``)."""

from __future__ import annotations

import json

import click

from pipelines.commands.options import (config_overrides, data_path_option, ensure_parent, overrides, run_dir_option,
                                        store_option)


@click.command("train")
@click.argument("config_path", required=False, type=click.Path(dir_okay=False))
@run_dir_option
@click.option("--fresh", is_flag=True, help="Start over instead of resuming a checkpoint in the run folder.")
@store_option
@config_overrides
@data_path_option
def train_command(config_path, run_dir, fresh, store, seed, epochs, device, data_path):
    """Train CONFIG (default: the bundled digit-addition config) and print its metrics."""
    from kg.store import Store
    from pipelines.config import load_config
    from pipelines.distributed import train_on_every_rank
    from pipelines.run_folder import default_run_dir

    config, base = load_config(config_path, **overrides(seed, epochs, device, data_path))
    ensure_parent(store)
    outcome = train_on_every_rank(config, base, lambda: Store.open(store), run_dir or default_run_dir(config),
                                  resume=not fresh)
    if outcome is not None:  # rank 0 prints
        click.echo(json.dumps({k: round(v, 4) for k, v in outcome.metrics.items()}, indent=2))
        if "trap" in outcome.extra:
            click.echo(f"trap verdict: {outcome.extra['trap']['verdict']} (explained share "
                       f"{outcome.extra['trap']['explained_share']:.4f}, threshold {outcome.extra['trap']['threshold']:g})")
        click.echo(f"run folder: {outcome.run_dir}")


COMMANDS = [train_command]
