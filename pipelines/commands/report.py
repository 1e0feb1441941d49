"""``neurosym report RUN``: an HTML page with the run's plots, config and provenance (see pipelines/report.py)."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.commands.options import store_option


@click.command("report")
@click.argument("run")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for report.html and the PNGs (default RUN_DIR/report).")
@store_option
def report_command(run: str, out_dir: Path | None, store: str) -> None:
    """Write RUN's report: training curves, codebook usage, alignment heatmap, confusion matrix, config.

    RUN is a run folder (runs/<name>-seed<k>, holding result.json) or a store run id (an integer); the
    per-input symbols come from --store.
    """
    from kg.errors import KGError
    from kg.store import Store
    from pipelines.report import resolve_run, write_report

    with Store.open(store) as opened:
        try:
            run_dir = resolve_run(run, opened)
        except ValueError as exc:  # resolve_run names a RUN it cannot find with a plain ValueError
            raise KGError(str(exc)) from None
        report = write_report(run_dir, opened, out_dir)
    click.echo(f"wrote {report.html} and {len(report.plots)} plot(s)")
    for note in report.notes:
        click.echo(f"note: {note}", err=True)


COMMANDS = [report_command]
