"""The ``neurosym`` command line: a thin click layer over the pipeline and store functions.

Every command opens what it needs, calls one library function and prints its result. The commands
are found, not listed: each module in ``pipelines/commands`` exposes ``COMMANDS``, a list of click
commands or groups, and a new module there is a new command. Errors a user can fix are the project's
own types (``neurosym.errors.NeurosymError``, ``kg.errors.KGError``) or the operating system's word
on a file or port they named (``OSError``); here they become one ``click.ClickException`` line and a
non-zero exit, unless ``--debug`` asks for the traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings

import click

import pipelines.commands
from kg.errors import KGError
from neurosym.errors import NeurosymError
from pipelines.commands.options import STORE_HELP, VIEW_DIR_HELP

USER_ERRORS = (NeurosymError, KGError, OSError)


class ErrorReportingGroup(click.Group):
    """A click group that turns user errors from the library into one-line CLI errors."""

    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warning  # a warning (a trapped run's) is one line, not a source dump
                return super().invoke(ctx)
        except USER_ERRORS as exc:
            if ctx.params.get("debug"):
                if getattr(exc, "detail", None):  # what the one line left out, e.g. a parser's whole report
                    click.echo(f"{exc}\nin full:\n{exc.detail}", err=True)
                raise
            raise click.ClickException(str(exc) or type(exc).__name__) from None


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


@click.group(cls=ErrorReportingGroup)
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.option("--store", default=None, metavar="PATH_OR_URL", help=STORE_HELP + " Also accepted after the subcommand.")
@click.option("--view-dir", default=None, metavar="DIR", help=VIEW_DIR_HELP)
@click.version_option(package_name="neurosym")
def main(debug: bool, store: str | None, view_dir: str | None) -> None:
    """neurosym: discrete concept layers bridged to a knowledge graph."""
    # Subcommands read --store/--view-dir from here when not given after them (pipelines.commands.options).


def command_modules() -> list[str]:
    """The modules of ``pipelines/commands`` that define commands (those with ``COMMANDS``)."""
    names = [f"pipelines.commands.{info.name}" for info in pkgutil.iter_modules(pipelines.commands.__path__)]
    return [name for name in sorted(names) if hasattr(importlib.import_module(name), "COMMANDS")]


for _module in command_modules():
    for _command in importlib.import_module(_module).COMMANDS:
        main.add_command(_command)


if __name__ == "__main__":
    main()
