"""Every serialisation of a SPARQL result, for ``neurosym query``, ``Store.sparql`` and the endpoint.

SELECT and ASK results as the SPARQL 1.1 Query Results formats ``json``, ``xml``, ``csv``, ``tsv``
and a plain-text ``table``; CONSTRUCT and DESCRIBE graphs as ``turtle``, ``nt``, ``json-ld`` and
``xml`` (RDF/XML), with the project's prefixes bound. Which format a client gets is decided
elsewhere (``--format`` in the CLI, content negotiation in ``kg.endpoint.negotiation``).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Protocol
from xml.sax.saxutils import escape, quoteattr

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from kg.query.format_names import check_written
from kg.rdf.prefixes import XSD_STRING
from kg.rdf.terms import bind_prefixes


class Answer(Protocol):
    """What the writers read of a result (``kg.query.result.SparqlResult``)."""

    kind: str
    vars: list[str]
    rows: list[tuple[Node | None, ...]]
    askanswer: bool | None
    graph: Graph | None


def serialize(result: Answer, fmt: str) -> str:
    """``result`` in format ``fmt`` (one of ``SOLUTION_FORMATS`` or, for graphs, ``GRAPH_FORMATS``)."""
    check_written(result.kind, fmt)
    if result.kind == "graph":
        return bind_prefixes(result.graph).serialize(format=fmt)
    writers = {"json": results_json, "xml": results_xml, "csv": results_csv, "tsv": results_tsv, "table": results_table}
    return writers[fmt](result)


def results_json(result: Answer) -> str:
    """SPARQL 1.1 Query Results JSON."""
    if result.kind == "ask":
        return json.dumps({"head": {}, "boolean": result.askanswer})
    bindings = [{v: _json_term(t) for v, t in zip(result.vars, row) if t is not None} for row in result.rows]
    return json.dumps({"head": {"vars": result.vars}, "results": {"bindings": bindings}}, ensure_ascii=False)


def results_xml(result: Answer) -> str:
    """SPARQL Query Results XML."""
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">\n']
    if result.kind == "ask":
        out.append(f"<head/>\n<boolean>{'true' if result.askanswer else 'false'}</boolean>\n</sparql>\n")
        return "".join(out)
    out.append("<head>" + "".join(f"<variable name={quoteattr(v)}/>" for v in result.vars) + "</head>\n<results>\n")
    for row in result.rows:
        cells = "".join(
            f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>" for v, t in zip(result.vars, row) if t is not None
        )
        out.append(f"<result>{cells}</result>\n")
    out.append("</results>\n</sparql>\n")
    return "".join(out)


def results_csv(result: Answer) -> str:
    """SPARQL 1.1 Query Results CSV (CRLF line ends, as the format asks)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if result.kind == "ask":
        writer.writerow(["_askResult"])
        writer.writerow(["true" if result.askanswer else "false"])
        return out.getvalue()
    writer.writerow(result.vars)
    for row in result.rows:
        writer.writerow(["" if t is None else (f"_:{t}" if isinstance(t, BNode) else str(t)) for t in row])
    return out.getvalue()


def results_tsv(result: Answer) -> str:
    """SPARQL 1.1 Query Results TSV (terms in N-Triples form)."""
    if result.kind == "ask":
        return f"?_askResult\n{'true' if result.askanswer else 'false'}\n"
    lines = ["\t".join(f"?{v}" for v in result.vars)]
    lines += ["\t".join("" if t is None else t.n3() for t in row) for row in result.rows]
    return "\n".join(lines) + "\n"


def results_table(result: Answer) -> str:
    """A plain-text table with prefixed IRIs and a row count (``neurosym query``'s default)."""
    if result.kind == "ask":
        return "true\n" if result.askanswer else "false\n"
    graph = bind_prefixes(Graph())
    cells = [[("" if t is None else _short(t, graph)) for t in row] for row in result.rows]
    widths = [max([len(v)] + [len(r[i]) for r in cells]) for i, v in enumerate(result.vars)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    out = [line(result.vars), line(["-" * w for w in widths])] + [line(r) for r in cells]
    out.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(out) + "\n"


def _json_term(term: Node) -> dict:
    if isinstance(term, URIRef):
        return {"type": "uri", "value": str(term)}
    if isinstance(term, BNode):
        return {"type": "bnode", "value": str(term)}
    out = {"type": "literal", "value": str(term)}
    if term.language:
        out["xml:lang"] = term.language
    elif term.datatype is not None and str(term.datatype) != XSD_STRING:
        out["datatype"] = str(term.datatype)
    return out


def _xml_term(term: Node) -> str:
    if isinstance(term, URIRef):
        return f"<uri>{escape(str(term))}</uri>"
    if isinstance(term, BNode):
        return f"<bnode>{escape(str(term))}</bnode>"
    assert isinstance(term, Literal)
    if term.language:
        return f"<literal xml:lang={quoteattr(term.language)}>{escape(str(term))}</literal>"
    if term.datatype is not None and str(term.datatype) != XSD_STRING:
        return f"<literal datatype={quoteattr(str(term.datatype))}>{escape(str(term))}</literal>"
    return f"<literal>{escape(str(term))}</literal>"


def _short(term: Node, graph: Graph) -> str:
    if isinstance(term, URIRef):
        try:
            return graph.namespace_manager.normalizeUri(term)
        except Exception:
            return f"<{term}>"
    if isinstance(term, Literal):
        return str(term)
    return term.n3()
