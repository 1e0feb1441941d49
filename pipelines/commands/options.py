"""Options that several commands share, each written once (sqlite-utils style).

This module and every command module import only click at module level: the library (the store, the
models) is imported inside the command that runs, so ``neurosym --version`` or ``neurosym query`` never
pay for torch.
"""

from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path

import click

DEFAULT_STORE = "runs/neurosym.sqlite"
STORE_HELP = "Store to use: a SQLite file path or any SQLAlchemy URL (env NEUROSYM_STORE; default runs/neurosym.sqlite)."
VIEW_DIR_HELP = ("Folder of the store's RDF view (env NEUROSYM_VIEW_DIR; default: beside a SQLite file, "
                 "~/.cache/neurosym/views/<store id> for a server).")


class ChoiceFrom(click.Choice):
    """A ``click.Choice`` over the names a library module defines (``ChoiceFrom("kg.query.format_names",
    "RESULT_FORMATS")``), read when the option is first shown or used rather than at start-up."""

    def __init__(self, module: str, name: str) -> None:
        self.source = (module, name)
        self.case_sensitive = True

    @functools.cached_property
    def choices(self) -> tuple[str, ...]:
        module, name = self.source
        return tuple(getattr(importlib.import_module(module), name))


def _remember_view_dir(ctx: click.Context, _param, value):
    if value:
        ctx.meta["neurosym.view_dir"] = value
    return value


def resolve_store(ctx: click.Context, _param, value):
    """The store named after the subcommand, else before it (``neurosym --store X kg load``), else the
    environment, else the default; it carries ``--view-dir`` along (a ``kg.sql.location.StoreLocation``)."""
    from kg.sql.location import StoreLocation

    root = ctx.find_root()
    target = value or root.params.get("store") or os.environ.get("NEUROSYM_STORE") or DEFAULT_STORE
    view_dir = ctx.meta.get("neurosym.view_dir") or root.params.get("view_dir") or os.environ.get("NEUROSYM_VIEW_DIR")
    return StoreLocation(target, view_dir)


def store_option(command):
    """The shared ``--store PATH_OR_URL`` and ``--view-dir DIR`` options; the command receives the store
    as its ``store`` argument (a ``StoreLocation``, which ``Store.open`` reads the view folder from)."""
    command = click.option("--store", "store", default=None, metavar="PATH_OR_URL", callback=resolve_store,
                           help=STORE_HELP)(command)
    return click.option("--view-dir", default=None, metavar="DIR", expose_value=False, is_eager=True,
                        callback=_remember_view_dir, help=VIEW_DIR_HELP)(command)


allow_service_option = click.option(
    "--allow-service", "allow_service", multiple=True, metavar="HOST[:PORT]",
    help="Let SERVICE clauses call this host (repeatable); without it no query reaches another host.",
)
"""The shared ``--allow-service`` allow-list of ``query`` and ``serve``."""


def config_overrides(command):
    """Options every training command shares: seed, epochs, device (merged into the config before it
    is validated, so ``--epochs 0`` is the same one-line error as ``epochs = 0`` in the file)."""
    for option in (
        click.option("--seed", type=int, default=None, help="Override train.seed."),
        click.option("--epochs", type=int, default=None, help="Override train.epochs."),
        click.option("--device", default=None, help="auto, cpu, cuda or cuda:N (overrides train.device)."),
    ):
        command = option(command)
    return command


data_path_option = click.option("--data-path", default=None,
                                help="Override task.data_path (the dataset's directory or file).")

run_dir_option = click.option("--run-dir", type=click.Path(file_okay=False), default=None,
                              help="Run folder (default runs/<name>-seed<seed>).")


def overrides(seed, epochs, device, data_path=None) -> dict:
    """The dotted config keys the shared options set."""
    return {"train.seed": seed, "train.epochs": epochs, "train.device": device, "task.data_path": data_path}


def ensure_parent(store) -> None:
    """A SQLite path's folder is created on first use; URLs are left alone."""
    if "://" not in str(store):
        Path(str(store)).parent.mkdir(parents=True, exist_ok=True)
