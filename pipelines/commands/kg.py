"""``neurosym kg ...`` (load, export, rebuild the RDF view, list runs), ``neurosym runs ...`` (delete,
prune) and ``neurosym query``.

Each command opens the store named by ``--store`` (before or after the subcommand, or
``$NEUROSYM_STORE``), calls one ``kg.store.Store`` method and prints its result; errors are
``KGError``s that the top-level group prints as one line. The store is imported inside each command.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import click

from pipelines.commands.options import ChoiceFrom, allow_service_option, store_option


@click.group("kg")
def kg_group() -> None:
    """Knowledge store: load and export RDF, rebuild the RDF view, list runs."""


def _new_store_files(store: str):
    """What a load creates for a store that does not exist yet (``kg.sql.location``), to remove if it fails."""
    from kg.sql.engine import store_url
    from kg.sql.location import NewStoreFiles

    _, sqlite_file = store_url(store)
    return NewStoreFiles(sqlite_file, getattr(store, "view_dir", None))


@kg_group.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--graph", default=None, help="Named graph IRI for default-graph triples (default graph:kg).")
@click.option("--format", "fmt", default=None, type=ChoiceFrom("kg.sql.loading", "FORMATS"),
              help="RDF format (default: from each file's extension).")
@store_option
def load(files: tuple[Path, ...], graph: str | None, fmt: str | None, store) -> None:
    """Load RDF FILES (Turtle, N-Triples, N-Quads, TriG, RDF/XML, JSON-LD) into the store: all files or nothing.

    A name that is no file here may name a bundled KG file ('arithmetic.ttl'; 'neurosym data list').
    """
    from kg.sql.loading import IllTypedLiteralWarning
    from kg.view.rdf_view import ViewBusyError
    from kg.store import Store
    from pipelines import bundled

    files = tuple(path if path.is_file() else bundled.find(path) or path for path in files)

    created = _new_store_files(store)
    try:
        with Store.open(store) as st, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", IllTypedLiteralWarning)
            try:
                st.sync_rdf()  # a current view is fed the new triples while SQL takes them
                busy = False
            except ViewBusyError:
                busy = True
            added = st.load_rdf(files, graph=graph, format=fmt)
            for warning in caught:
                click.echo(f"warning: {warning.message}", err=True)
            if busy:
                click.echo(f"loaded {added} new triples from {len(files)} file(s) into {store} (SQL); the RDF view is "
                           "held by another process (a 'neurosym serve'?), which shows them from its next query on")
                return
            st.sync_rdf()
    except BaseException:
        created.remove()  # a load that failed on a new store leaves no empty store behind
        raise
    click.echo(f"loaded {added} new triples from {len(files)} file(s) into {store}")


@kg_group.command("export")
@click.option("--format", "fmt", default="turtle", show_default=True, type=ChoiceFrom("kg.rdf.terms", "OUTPUT_FORMATS"),
              help="turtle/nt: one graph; nquads/trig: named graphs kept.")
@click.option("--run", "run_id", type=int, default=None, help="Export only this run's graph.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (streamed) instead of standard output.")
@store_option
def export(fmt: str, run_id: int | None, output: Path | None, store) -> None:
    """Export the whole store (KG graphs and complete runs), or one run."""
    from kg.store import Store

    with Store.open(store, shared_view=True) as st:
        text = st.export(format=fmt, run_id=run_id, path=output)
    if output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {output}", err=True)


@kg_group.command("rebuild")
@store_option
def rebuild(store) -> None:
    """Rebuild the RDF view from SQL into a new folder and switch to it (derived data: always safe)."""
    from kg.store import Store

    with Store.open(store) as st:
        graphs = st.rebuild_rdf()
        skipped = st.view.skipped
    click.echo(f"rebuilt the RDF view: {len(graphs)} graph(s)")
    if skipped:
        click.echo(f"warning: skipped {len(skipped)} stored triple(s) that the RDF view refuses, e.g. {skipped[0]}", err=True)


@kg_group.command("runs")
@click.option("--all", "show_all", is_flag=True, help="Also list incomplete runs (written by a command that did not finish).")
@store_option
def runs(show_all: bool, store) -> None:
    """List the runs in the store as JSON lines."""
    from kg.store import Store

    with Store.open(store) as st:
        for run in st.runs(include_incomplete=show_all):
            click.echo(json.dumps(run, sort_keys=True))


@click.group("runs")
def runs_group() -> None:
    """Remove runs from the store (SQL and RDF view together)."""


@runs_group.command("delete")
@click.argument("run_ids", nargs=-1, required=True, type=int)
@store_option
def delete_runs(run_ids: tuple[int, ...], store) -> None:
    """Delete runs RUN_IDS with their codes, assignments, alignments and rule graphs."""
    from kg.store import Store

    with Store.open(store) as st:
        for run_id in run_ids:
            st.delete_run(run_id)
        _sync_or_say(st)
    click.echo(f"deleted run(s) {', '.join(map(str, run_ids))}")


@runs_group.command("prune")
@store_option
def prune_runs(store) -> None:
    """Delete every incomplete run (left by a command that was killed); run it when no encode is running."""
    from kg.store import Store

    with Store.open(store) as st:
        deleted = st.prune_runs()
        _sync_or_say(st)
    click.echo(f"deleted {len(deleted)} incomplete run(s){': ' + ', '.join(map(str, deleted)) if deleted else ''}")


def _sync_or_say(st) -> None:
    from kg.view.rdf_view import ViewBusyError

    try:
        st.sync_rdf()
    except ViewBusyError:
        click.echo("the RDF view is held by another process, which drops the deleted runs at its next query", err=True)


def _parse_binding(text: str):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r}: expected NAME=VALUE, e.g. e=arith:n7 or min=0.9", param_hint="--bind")
    from rdflib import Graph
    from rdflib.util import from_n3

    from kg.rdf.terms import bind_prefixes

    nsm = bind_prefixes(Graph()).namespace_manager
    try:
        return name.lstrip("?"), from_n3(value, nsm=nsm)
    except Exception as exc:
        raise click.BadParameter(f"{text!r}: {value!r} is not an RDF term in N3 syntax ({exc})", param_hint="--bind") from None


def _answer_from_fresh_view(store, text: str, limits, fmt: str) -> bool:
    """Print the answer of a SQLite store's current RDF view without opening the store (``kg.query.fresh_view``:
    no SQLAlchemy, rdflib or worker process, a fraction of the start-up time); False where the full
    path must answer."""
    from kg.query import fresh_view, plain_formats
    from kg.query.format_names import PLAIN_FORMATS

    if fmt not in PLAIN_FORMATS:
        return False  # graph formats (and their errors) are rdflib's
    answered = fresh_view.answer(store, text, limits, getattr(store, "view_dir", None))
    if answered is None:
        return False
    click.echo(plain_formats.serialize(*answered, fmt), nl=False)
    return True


@click.command("query")
@click.argument("sparql", required=False)
@click.option("-f", "--file", "query_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the query from this file (or a bundled query of this name: 'neurosym data list').")
@click.option("--format", "fmt", default="table", show_default=True, type=ChoiceFrom("kg.query.format_names", "RESULT_FORMATS"),
              help="table, SPARQL 1.1 results json/csv/tsv; turtle or nt for CONSTRUCT/DESCRIBE.")
@click.option("--bind", "binds", multiple=True, metavar="NAME=VALUE",
              help="Bind ?NAME to an RDF term in N3 syntax (arith:n7, 0.9, '\"x\"@en'); repeatable.")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Seconds the query may run; then it is stopped.")
@allow_service_option
@store_option
def query(sparql: str | None, query_file: Path | None, fmt: str, binds: tuple[str, ...], timeout_s: float,
          allow_service: tuple[str, ...], store) -> None:
    """Run a read-only SPARQL query (SELECT, ASK, CONSTRUCT, DESCRIBE) over the store's RDF view.

    All project prefixes (ns:, arith:, run:, input:, rdf:, rdfs:, skos:, prov:, xsd:, owl:) are predeclared.
    Works beside a running 'neurosym serve' on the same store while its view is current. On a SQLite
    store whose view is current, the view answers without the store being opened (see docs/store.md).
    """
    from kg.query.guard import QueryLimits

    if (sparql is None) == (query_file is None):
        raise click.UsageError("give the query either as an argument or with -f FILE")
    if query_file is not None:
        from pipelines import bundled

        query_file = bundled.local_or_bundled(query_file, "queries")
    text = sparql if sparql is not None else query_file.read_text(encoding="utf-8")
    limits = QueryLimits(timeout_s=timeout_s, allow_service=allow_service)
    if not binds and _answer_from_fresh_view(store, text, limits, fmt):  # bindings are parsed by rdflib
        return

    from kg.store import Store

    bindings = dict(_parse_binding(b) for b in binds)
    with Store.open(store, shared_view=True) as st:
        result = st.sparql(text, bindings, limits)
    if fmt == "table" and result.kind == "graph":
        fmt = "turtle"
    click.echo(result.serialize(fmt), nl=False)


COMMANDS = [kg_group, runs_group, query]
