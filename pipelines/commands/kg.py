"""``neurosym kg ...`` (load, export, rebuild the RDF view, list runs) and ``neurosym query``.

Each command opens the store named by ``--store`` (or ``$NEUROSYM_STORE``), calls one ``kg.store.Store``
method and prints its result; errors are ``ValueError``s that the top-level group prints as one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rdflib import Graph
from rdflib.util import from_n3

from kg.query_guard import QueryLimits
from kg.rdf_io import bind_prefixes
from kg.sparql import RESULT_FORMATS
from kg.store import Store

DEFAULT_STORE = "runs/neurosym.sqlite"

store_option = click.option(
    "--store",
    "store",
    default=DEFAULT_STORE,
    envvar="NEUROSYM_STORE",
    show_default=True,
    metavar="PATH_OR_URL",
    help="Store to use: a SQLite file path or any SQLAlchemy URL (env NEUROSYM_STORE).",
)
"""The shared ``--store PATH_OR_URL`` option; the command receives it as the ``store`` argument."""

allow_service_option = click.option(
    "--allow-service", "allow_service", multiple=True, metavar="HOST[:PORT]",
    help="Let SERVICE clauses call this host (repeatable); without it no query reaches another host.",
)
"""The shared ``--allow-service`` allow-list of ``query`` and ``serve``."""


@click.group("kg")
def kg_group() -> None:
    """Knowledge store: load and export RDF, rebuild the RDF view, list runs."""


@kg_group.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--graph", default=None, help="Named graph IRI to load into (default graph:kg).")
@click.option("--format", "fmt", default=None, type=click.Choice(["turtle", "nt", "json-ld", "xml"]),
              help="RDF format (default: from each file's extension).")
@store_option
def load(files: tuple[Path, ...], graph: str | None, fmt: str | None, store: str) -> None:
    """Load RDF FILES (Turtle, N-Triples, JSON-LD, RDF/XML) into the store: all files or nothing."""
    with Store.open(store) as st:
        added = st.load_rdf(files, graph=graph, format=fmt)
        st.sync_rdf()
    click.echo(f"loaded {added} new triples from {len(files)} file(s) into {store}")


@kg_group.command("export")
@click.option("--format", "fmt", default="turtle", show_default=True, type=click.Choice(["turtle", "nt"]))
@click.option("--run", "run_id", type=int, default=None, help="Export only this run's graph.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@store_option
def export(fmt: str, run_id: int | None, output: Path | None, store: str) -> None:
    """Export the whole store (KG graphs and runs), or one run, as Turtle or N-Triples."""
    with Store.open(store) as st:
        text = st.export(format=fmt, run_id=run_id, path=output)
    if output is None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {output}", err=True)


@kg_group.command("rebuild")
@store_option
def rebuild(store: str) -> None:
    """Rebuild the RDF view from SQL (it is derived data; this is always safe)."""
    with Store.open(store) as st:
        graphs = st.rebuild_rdf()
    click.echo(f"rebuilt the RDF view: {len(graphs)} graph(s)")


@kg_group.command("runs")
@store_option
def runs(store: str) -> None:
    """List the runs in the store as JSON lines."""
    with Store.open(store) as st:
        for run in st.runs():
            click.echo(json.dumps(run, sort_keys=True))


def _parse_binding(text: str):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r}: expected NAME=VALUE, e.g. e=arith:n7 or min=0.9", param_hint="--bind")
    nsm = bind_prefixes(Graph()).namespace_manager
    try:
        return name.lstrip("?"), from_n3(value, nsm=nsm)
    except Exception as exc:
        raise click.BadParameter(f"{text!r}: {value!r} is not an RDF term in N3 syntax ({exc})", param_hint="--bind") from None


@click.command("query")
@click.argument("sparql", required=False)
@click.option("-f", "--file", "query_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the query from this file.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(list(RESULT_FORMATS)),
              help="table, SPARQL 1.1 results json/csv/tsv; turtle or nt for CONSTRUCT/DESCRIBE.")
@click.option("--bind", "binds", multiple=True, metavar="NAME=VALUE",
              help="Bind ?NAME to an RDF term in N3 syntax (arith:n7, 0.9, '\"x\"@en'); repeatable.")
@click.option("--timeout", "timeout_s", default=QueryLimits.timeout_s, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Seconds the query may run; then it is stopped.")
@allow_service_option
@store_option
def query(sparql: str | None, query_file: Path | None, fmt: str, binds: tuple[str, ...], timeout_s: float,
          allow_service: tuple[str, ...], store: str) -> None:
    """Run a read-only SPARQL query (SELECT, ASK, CONSTRUCT, DESCRIBE) over the store's RDF view.

    All project prefixes (ns:, arith:, run:, input:, rdf:, rdfs:, skos:, prov:, xsd:, owl:) are predeclared.
    """
    if (sparql is None) == (query_file is None):
        raise click.UsageError("give the query either as an argument or with -f FILE")
    text = sparql if sparql is not None else query_file.read_text(encoding="utf-8")
    bindings = dict(_parse_binding(b) for b in binds)
    with Store.open(store) as st:
        result = st.sparql(text, bindings, QueryLimits(timeout_s=timeout_s, allow_service=allow_service))
    if fmt == "table" and result.kind == "graph":
        fmt = "turtle"
    click.echo(result.serialize(fmt), nl=False)


COMMANDS = [kg_group, query]
