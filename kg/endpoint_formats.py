"""Content negotiation and result serialisation of the SPARQL endpoint (``kg/endpoint.py``).

SELECT/ASK results as ``application/sparql-results+json`` (the default), ``+xml``, ``text/csv``,
``text/tab-separated-values``; CONSTRUCT/DESCRIBE results as ``text/turtle`` (the default),
``application/n-triples``, ``application/ld+json``, ``application/rdf+xml``.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from kg.rdf_io import bind_prefixes
from kg.sparql import SparqlResult


class HttpError(Exception):
    """An answer other than 200: HTTP status and a one-line message for the body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


#: Media type -> result format, in order of preference for ``*/*``.
RESULT_TYPES = {
    "application/sparql-results+json": "json", "application/json": "json",
    "application/sparql-results+xml": "xml", "application/xml": "xml",
    "text/csv": "csv", "text/tab-separated-values": "tsv", "text/xml": "xml",
}
GRAPH_TYPES = {
    "text/turtle": "turtle", "application/x-turtle": "turtle",
    "application/n-triples": "nt", "text/plain": "nt",
    "application/ld+json": "json-ld", "application/rdf+xml": "xml",
}


# -- content negotiation --------------------------------------------------------------------------
def negotiate(accept: str | None, kind: str) -> tuple[str, str]:
    """(media type, format) for an ``Accept`` header and a result kind (``select``/``ask``/``graph``)."""
    types = GRAPH_TYPES if kind == "graph" else RESULT_TYPES
    offers = []
    for position, part in enumerate((accept or "*/*").split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            offers.append((-q, position, media.lower()))
    for _, _, media in sorted(offers):
        if media in types:
            return media, types[media]
        if media in ("*/*", "application/*", "text/*"):
            for known, fmt in types.items():
                if media == "*/*" or known.startswith(media[:-1]):
                    return known, fmt
    wanted = "CONSTRUCT/DESCRIBE" if kind == "graph" else "SELECT/ASK"
    raise HttpError(406, f"no acceptable format in Accept: {accept!r}; {wanted} results come as {', '.join(dict.fromkeys(types))}")


# -- serialisation ----------------------------------------------------------------------------------
def results_xml(result: SparqlResult) -> str:
    """A SELECT or ASK result in the SPARQL Query Results XML Format."""
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


def _xml_term(term: Node) -> str:
    if isinstance(term, URIRef):
        return f"<uri>{escape(str(term))}</uri>"
    if isinstance(term, BNode):
        return f"<bnode>{escape(str(term))}</bnode>"
    assert isinstance(term, Literal)
    if term.language:
        return f"<literal xml:lang={quoteattr(term.language)}>{escape(str(term))}</literal>"
    if term.datatype is not None and str(term.datatype) != "http://www.w3.org/2001/XMLSchema#string":
        return f"<literal datatype={quoteattr(str(term.datatype))}>{escape(str(term))}</literal>"
    return f"<literal>{escape(str(term))}</literal>"


def serialize(result: SparqlResult, fmt: str) -> str:
    """The result in a negotiated format (see ``RESULT_TYPES`` and ``GRAPH_TYPES``)."""
    if result.kind == "graph":
        if fmt in ("turtle", "nt"):
            return result.serialize(fmt)
        return bind_prefixes(result.graph).serialize(format=fmt)
    return results_xml(result) if fmt == "xml" else result.serialize(fmt)
