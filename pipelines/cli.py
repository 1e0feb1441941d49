"""The ``neurosym`` command line: a thin click layer over the pipeline and store functions.

Every command opens what it needs, calls one library function and prints its result. Errors that a
user can fix (bad file, query, config, tensor) are ``ValueError``/``OSError`` subclasses raised where
the bad value is first seen; here they become one ``click.ClickException`` line and a non-zero exit,
unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import importlib

import click

from pipelines.commands.kg import STORE_HELP, VIEW_DIR_HELP

# Each module in pipelines/commands exposes COMMANDS, a list of click commands or groups.
COMMAND_MODULES = ("train", "kg", "run", "serve", "report", "sample")


class ErrorReportingGroup(click.Group):
    """A click group that turns user errors from the library into one-line CLI errors."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (ValueError, OSError, KeyError, LookupError) as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(str(exc) or type(exc).__name__) from None


@click.group(cls=ErrorReportingGroup)
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.option("--store", default=None, metavar="PATH_OR_URL", help=STORE_HELP + " Also accepted after the subcommand.")
@click.option("--view-dir", default=None, metavar="DIR", help=VIEW_DIR_HELP)
@click.version_option(package_name="neurosym")
def main(debug: bool, store: str | None, view_dir: str | None) -> None:
    """neurosym: discrete concept layers bridged to a knowledge graph."""
    # Subcommands read --store/--view-dir from here when not given after them (pipelines.commands.kg).


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(f"pipelines.commands.{_name}").COMMANDS:
        main.add_command(_command)


if __name__ == "__main__":
    main()
