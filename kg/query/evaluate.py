"""SPARQL over the RDF view: read-only queries and their bindings, answered as ``SparqlResult``s
(``kg.query.result``). ``evaluate`` is the one function that runs a checked query, for ``Store.sparql``,
``neurosym query`` and the endpoint alike: dataset options, deadline, row limit, the SQL path of
``kg.query.sql.translate``, and the one place where the engine's errors become the project's.

Bindings are RDF terms joined into the query's top-level group as a ``VALUES`` block built from the
terms' N-Triples serialisation (escaped by the serializer, never by string pasting), which is what
rdflib's ``initBindings`` means; Oxigraph's own substitution only accepts projected variables.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node
from sqlalchemy import Engine

from kg.query.sql import translate
from kg.errors import KGError, ReadOnlyQueryError
from kg.query.lexer import TOKEN
from kg.query.result import SparqlResult
from kg.query.guard import QueryLimits, check_query, engine_error
from kg.query.worker_pool import QueryRunner, runner_for
from kg.rdf.prefixes import XSD_STRING
from kg.rdf.vocab import PREFIXES


def to_rdflib_term(value) -> Node:
    """A binding value as an rdflib term: terms pass through, Python scalars become typed literals."""
    if isinstance(value, Node):
        return value
    if isinstance(value, (bool, int, float, str)):
        return Literal(value)
    raise KGError(f"binding value {value!r}: expected an rdflib term or str/int/float/bool")


# -- bindings ---------------------------------------------------------------------------------------
_FORM = re.compile(r"\b(SELECT|ASK|CONSTRUCT|DESCRIBE)\b", re.I)


def _top_groups(query: str) -> list[int]:
    """Offsets just after each top-level ``{`` of the query, skipping comments, strings and IRIs."""
    depth, starts = 0, []
    for match in TOKEN.finditer(query):
        if match.lastgroup not in ("open", "close"):
            continue
        token = match.group()
        if token == "{":
            if depth == 0:
                starts.append(match.end())
            depth += 1
        elif token == "}":
            depth -= 1
    return starts


def inject_bindings(query: str, bindings: dict) -> str:
    """The query with ``VALUES (?v ...) { (term ...) }`` opening its WHERE group."""
    if not bindings:
        return query
    names, terms = [], []
    for name, value in bindings.items():
        name = str(name).lstrip("?$")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise KGError(f"binding name {name!r} is not a SPARQL variable name")
        names.append(f"?{name}")
        terms.append(to_rdflib_term(value).n3())
    groups = _top_groups(query)
    form = _FORM.search(query)
    is_template = form and form.group(1).upper() == "CONSTRUCT" and not re.match(r"\s*WHERE\b", query[form.end():], re.I)
    where = groups[1] if is_template and len(groups) > 1 else (groups[0] if groups else None)
    if where is None:
        raise KGError("bindings need a query with a WHERE { ... } group")
    values = f" VALUES ({' '.join(names)}) {{ ({' '.join(terms)}) }} "
    return query[:where] + values + query[where:]


# -- running ----------------------------------------------------------------------------------------
def _term(value) -> Node | None:
    """A term as a query worker encodes it (see ``kg/query/worker.py``) as an rdflib term."""
    if value is None:
        return None
    if type(value) is str:
        return URIRef(value)
    if value[0] == "l":
        _, text, datatype, language = value
        if language:
            return Literal(text, lang=language)
        if datatype == XSD_STRING:
            return Literal(text)  # a simple literal, as rdflib's parsers produce it
        return Literal(text, datatype=URIRef(datatype), normalize=False)
    return BNode(value[1])


def evaluate(runner: QueryRunner, text: str, limits: QueryLimits, options: dict | None = None,
             prepare: Callable[[], object] | None = None, sql_engine: Engine | None = None) -> SparqlResult:
    """Evaluate a query that passed ``check_query`` in ``runner``'s workers, within ``limits``.

    ``options`` are pyoxigraph's dataset options (default: the union of all graphs as default graph,
    graph IRIs as strings); raises ``SparqlSyntaxError``, ``ResultTooLargeError``,
    ``QueryTimeoutError``, ``QueryCrashError`` or ``QueryEvaluationError``. With ``sql_engine`` (the
    store's SQL) a query over the union of all graphs that ``kg.query.sql.translate`` can translate is
    answered in SQL instead, with the same answer.
    """
    why_not_sql = None
    if sql_engine is not None and options is None:
        answered = translate.attempt(sql_engine, text, PREFIXES, limits.max_rows, limits.timeout_s)
        if not isinstance(answered, str):
            return answered
        why_not_sql = answered
    options = {"prefixes": PREFIXES, **(options or {"use_default_graph_as_union": True})}
    status, kind, payload = runner.run(text, options, limits.max_rows, limits.timeout_s, prepare)
    if status == "error":
        raise engine_error(kind, payload, limits.max_rows, text, PREFIXES)
    if kind == "ask":
        result = SparqlResult(kind="ask", askanswer=payload)
    elif kind == "graph":
        graph = Graph()
        for s, p, o in payload:
            graph.add((_term(s), _term(p), _term(o)))
        result = SparqlResult(kind="graph", graph=graph)
    else:
        names, rows = payload
        result = SparqlResult(kind="select", vars=names, rows=[tuple(map(_term, row)) for row in rows])
    result.why_not_sql = why_not_sql
    return result


def run_query(view, query: str, bindings: dict | None = None, limits: QueryLimits | None = None,
              sql_engine: Engine | None = None, prepare: Callable[[], object] | None = None) -> SparqlResult:
    """Run a read-only query on an ``RdfView`` within ``limits`` (default ``QueryLimits()``: 60 s, no
    SERVICE); updates, syntax errors and queries over a limit raise ``KGError``s. ``sql_engine`` and
    ``prepare`` (run only when the view answers): see ``evaluate``."""
    limits = limits or QueryLimits()
    if not isinstance(query, str):
        raise KGError(f"a SPARQL query is a str, not {type(query).__name__}")
    form = check_query(query, limits, PREFIXES).form
    if form == "empty":
        raise KGError("empty SPARQL query")
    if form == "update":
        raise ReadOnlyQueryError("SPARQL updates are not allowed here: the RDF view is derived from SQL; write through the store API")
    text = inject_bindings(query, bindings or {})
    return evaluate(runner_for(view, network=bool(limits.allow_service)), text, limits, prepare=prepare, sql_engine=sql_engine)
