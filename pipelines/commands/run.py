"""``neurosym run``, ``demo``, ``encode``, ``align`` and ``rules apply``: the pipeline and its steps."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipelines.commands.options import (config_overrides, data_path_option, ensure_parent, overrides, run_dir_option,
                                        store_option)


def _print_summary(result, store=None) -> None:
    summary = result.summary()
    click.echo(json.dumps(summary, indent=2))
    click.echo("\nalignment (code -> entity, confidence):")
    low = set(result.aligned.alignment.low_confidence())
    for code, entity, confidence in result.aligned.alignment.rows():
        flag = "  (low confidence)" if code in low else ""
        click.echo(f"  code {code:>3} -> {entity}  {confidence:.3f}{flag}")
    if store is not None:
        from pipelines.run import demo_queries

        for title, table in demo_queries(store).items():
            click.echo(f"\n# {title}\n{table}", nl=False)


@click.command("run")
@click.argument("config_path", required=False, type=click.Path(dir_okay=False))
@run_dir_option
@store_option
@config_overrides
@data_path_option
def run_command(config_path, run_dir, store, seed, epochs, device, data_path):
    """Run CONFIG end to end: load KG, train, encode, align, rules; print a summary."""
    from kg.store import Store
    from pipelines.config import load_config
    from pipelines.run import run
    from pipelines.run_folder import default_run_dir

    config, base = load_config(config_path, **overrides(seed, epochs, device, data_path))
    ensure_parent(store)
    with Store.open(store) as opened:
        result = run(config, base, opened, Path(run_dir or default_run_dir(config)))
        _print_summary(result)


@click.command("demo")
@click.option("--dir", "folder", type=click.Path(file_okay=False), default="neurosym-demo", show_default=True,
              help="Folder for the SQLite store, its RDF view and the run folder.")
@config_overrides
def demo_command(folder, seed, epochs, device):
    """Digit addition end to end on the embedded defaults (SQLite file, bundled data, CPU)."""
    from kg.store import Store
    from pipelines.config import load_config
    from pipelines.run import run
    from pipelines.run_folder import default_run_dir

    config, base = load_config(None, **overrides(seed, epochs, device or "cpu"))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with Store.open(folder / "neurosym.sqlite") as opened:
        result = run(config, base, opened, default_run_dir(config, folder), resume=False)
        _print_summary(result, opened)


def _prepared_from_run_dir(run_dir: Path, store):
    from pipelines.config import load_config
    from pipelines.train_step import prepare_task

    config, _ = load_config(run_dir / "config.toml")
    return config, prepare_task(config, None, store)


@click.command("encode")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--device", default="auto", show_default=True)
@store_option
def encode_command(run_dir, device, store):
    """Write the symbols of a trained RUN_DIR's model for every input to the store."""
    from kg.store import Store
    from pipelines.encode_step import encode

    with Store.open(store) as opened:
        config, prepared = _prepared_from_run_dir(run_dir, opened)
        encoded = encode(config, prepared, run_dir, opened, device=device)
    click.echo(f"run {encoded.run_id}: {sum(len(s.keys) for s in encoded.splits.values())} inputs encoded")


@click.command("align")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--method", type=click.Choice(["constraint", "majority", "hungarian", "label_free"]), default=None,
              help="Alignment method (default: the config's steps.align_method).")
@click.option("--device", default="auto", show_default=True)
@store_option
def align_command(run_dir, method, device, store):
    """Encode RUN_DIR's model into a new store run and align its codes to KG entities."""
    from kg.store import Store
    from pipelines.align_step import align
    from pipelines.encode_step import encode

    with Store.open(store) as opened:
        config, prepared = _prepared_from_run_dir(run_dir, opened)
        encoded = encode(config, prepared, run_dir, opened, device=device)
        outcome = align(config, prepared, encoded, opened, method)
    click.echo(json.dumps({"run_id": encoded.run_id, "method": outcome.alignment.method,
                           "alignment_acc": outcome.accuracy, "alignment": outcome.alignment.to_json()}, indent=2))


@click.group("rules")
def rules_group() -> None:
    """Horn rules over the KG and the model's symbols."""


@rules_group.command("apply")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--run", "run_id", type=int, default=None, help="Store run whose symbols the rules read (default: latest).")
@click.option("--combine", type=click.Choice(["product", "min"]), default="product", show_default=True,
              help="Confidence of a derivation from its premises'.")
@click.option("--max-iterations", type=int, default=100, show_default=True)
@store_option
def rules_apply(files, run_id, combine, max_iterations, store):
    """Evaluate rule FILES to a fixpoint; derived triples go to one named graph per rule (a name that is no
    file here may name a bundled rule file: 'digits.rules')."""
    from kg.store import Store
    from pipelines import bundled
    from pipelines.rules_step import apply_rules

    files = [bundled.local_or_bundled(name, "rules") for name in files]

    with Store.open(store) as opened:
        outcome = apply_rules(opened, list(files), run_id, combine, max_iterations)
        opened.sync_rdf()
    click.echo(json.dumps({"derived": outcome.derived, "per_rule": outcome.per_rule,
                           "iterations": outcome.iterations, "seconds": round(outcome.seconds, 3)}, indent=2))


COMMANDS = [run_command, demo_command, encode_command, align_command, rules_group]
