"""Content negotiation of the SPARQL endpoint (``kg/endpoint/server.py``): which format of
``kg.query.formats`` an ``Accept`` header gets, and the endpoint's HTTP error.

SELECT/ASK results as ``application/sparql-results+json`` (the default), ``+xml``, ``text/csv``,
``text/tab-separated-values``; CONSTRUCT/DESCRIBE results as ``text/turtle`` (the default),
``application/n-triples``, ``application/ld+json``, ``application/rdf+xml``.
"""

from __future__ import annotations


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
