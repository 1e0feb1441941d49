"""``neurosym explain RUN [GROUP...]``: a run's test groups as the model explained them (pipelines/explain.py)."""

from __future__ import annotations

import click

from pipelines.commands.options import store_option


@click.command("explain")
@click.argument("run")
@click.argument("groups", nargs=-1, type=int)
@click.option("--wrong", is_flag=True, help="Only the groups whose predicted label is wrong.")
@click.option("--format", "format_", type=click.Choice(["table", "json", "turtle"]), default="table", show_default=True)
@store_option
def explain_command(run: str, groups: tuple[int, ...], wrong: bool, format_: str, store) -> None:
    """Print test GROUPs of RUN (default all): the inputs' values, the latent values and the label,
    predicted against true, each with its probability.

    RUN is a store run id, or a run folder whose result.json names one; GROUP numbers a test group
    (0, 1, ...).
    """
    from kg.store import Store
    from pipelines.explain import explain, render

    run_id = _run_id(run)
    with Store.open(store) as opened:
        explained = explain(opened, run_id, groups, wrong)
        click.echo(render(explained, format_, opened, run_id).rstrip("\n"))


def _run_id(run: str) -> int:
    import json
    from pathlib import Path

    if run.isdigit():
        return int(run)
    result = Path(run) / "result.json"
    if result.is_file():
        run_id = json.loads(result.read_text()).get("store_run_id")
        if isinstance(run_id, int):
            return run_id
        raise click.ClickException(f"{run}: result.json names no store run; run the pipeline (neurosym run) first")
    raise click.ClickException(f"{run}: not a store run id or a run folder")


COMMANDS = [explain_command]
