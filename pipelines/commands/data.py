"""``neurosym data ...``: fetch a dataset into the cache (``neurosym/data/download.py``), list the bundled files."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("data")
def data_group() -> None:
    """Datasets by name, and the data bundled with the package."""


@data_group.command("fetch")
@click.argument("name", type=click.Choice(["mnist"]))
@click.option("--to", "to", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to put the files in (default: $XDG_CACHE_HOME/neurosym/datasets/NAME, which a "
                   "config without task.data_path reads).")
@click.option("--from", "sources", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
              help="Copy from this local file or folder (IDX files, .gz or not, or mnist.pkl.gz) instead of "
                   "downloading; repeatable.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fetch_command(name: str, to: Path | None, sources: tuple[Path, ...], quiet: bool) -> None:
    """Download dataset NAME from its mirrors (SHA-256 checked), or copy it --from a local copy."""
    from neurosym.data.download import DATASETS, fetch, import_files

    dataset = DATASETS[name]
    if sources:
        outcome = import_files(dataset, sources, to)
        click.echo(f"{name}: copied {', '.join(outcome.fetched)} into {outcome.folder}")
        return
    outcome = fetch(dataset, to, progress=not quiet)
    done = f"downloaded {', '.join(outcome.fetched)}" if outcome.fetched else "nothing to download"
    kept = f"; already there: {', '.join(outcome.present)}" if outcome.present and outcome.fetched else ""
    click.echo(f"{name}: {done}{kept}; files in {outcome.folder}")


@data_group.command("list")
def list_command() -> None:
    """The bundled files (KG, vocabulary, configs, queries, rules) and where they are installed.

    Commands that take one of these accept its name from any folder: 'neurosym train mnist_addition.toml',
    'neurosym query -f 02_prime_numbers.rq', 'neurosym kg load arithmetic.ttl'.
    """
    from pipelines import bundled

    click.echo(f"bundled data in {bundled.root()}")
    for folder, files in bundled.listing().items():
        for path in files:
            click.echo(f"  {folder + '/' if folder else ''}{path.name}")


COMMANDS = [data_group]
