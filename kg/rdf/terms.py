"""RDF terms and text in and out: the term encoding shared by SQL and N-Quads, rdflib/pyoxigraph
conversion (with validation), and export serialization.

A term is stored in SQL as ``(value, kind, datatype, lang)`` with kind ``iri``/``bnode``/``literal`` so
that blank nodes, datatyped and language-tagged literals survive a round trip unchanged. Export streams
N-Quads lines through pyoxigraph's serializers: Turtle and N-Triples (one graph), N-Quads and TriG
(named graphs kept). Loading lives in ``kg.sql.loading``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator
from typing import IO

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from kg.errors import KGError
from kg.rdf.prefixes import XSD_NS, XSD_STRING
from kg.rdf.vocab import PREFIXES

class _QuietIllTypedLiterals(logging.Filter):
    """rdflib logs a traceback each time it meets an ill-typed literal (``"abc"^^xsd:integer``) while
    converting query results; such literals are valid RDF, stored as written and reported once at load
    (``kg.sql.loading``), so the repeated tracebacks are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to convert Literal lexical form")


logging.getLogger("rdflib.term").addFilter(_QuietIllTypedLiterals())

#: Export format name (CLI and API) -> (pyoxigraph format, keeps named graphs).
OUTPUT_FORMATS = {
    "turtle": (ox.RdfFormat.TURTLE, False), "ttl": (ox.RdfFormat.TURTLE, False),
    "nt": (ox.RdfFormat.N_TRIPLES, False), "ntriples": (ox.RdfFormat.N_TRIPLES, False),
    "nquads": (ox.RdfFormat.N_QUADS, True), "nq": (ox.RdfFormat.N_QUADS, True),
    "trig": (ox.RdfFormat.TRIG, True),
}

def to_ox(term: Node | str):
    """An rdflib term (or a ``str`` IRI) as a pyoxigraph term; an IRI, language tag or datatype that the
    RDF view would refuse raises ``KGError`` naming it."""
    try:
        if isinstance(term, Literal):
            if term.language:
                return ox.Literal(str(term), language=term.language)
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)) if term.datatype else None)
        if isinstance(term, BNode):
            return ox.BlankNode(str(term))
        if isinstance(term, (URIRef, str)):
            return ox.NamedNode(str(term))
    except ValueError as exc:
        raise KGError(f"invalid RDF term {term!r}: {exc}") from None
    raise KGError(f"unsupported RDF term {term!r}")


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )


def nt_term(value: str, kind: str, datatype: str = "", lang: str = "") -> str:
    """The N-Triples form of a stored term."""
    if kind == "iri":
        return f"<{value}>"
    if kind == "bnode":
        return f"_:{value}"
    if lang:
        return f'"{_escape(value)}"@{lang}'
    if datatype and datatype != XSD_STRING:
        return f'"{_escape(value)}"^^<{datatype}>'
    return f'"{_escape(value)}"'


def nt_literal(value: object) -> str:
    """The N-Triples form of a Python value as a typed literal (str, int, float, bool)."""
    if isinstance(value, bool):
        return f'"{"true" if value else "false"}"^^<{XSD_NS}boolean>'
    if isinstance(value, int):
        return f'"{value}"^^<{XSD_NS}integer>'
    if isinstance(value, float):
        return f'"{value!r}"^^<{XSD_NS}double>'
    return f'"{_escape(str(value))}"'


def bind_prefixes(graph: Graph) -> Graph:
    """Bind the project prefixes on ``graph`` so that Turtle output stays short."""
    for prefix, iri in PREFIXES.items():
        graph.bind(prefix, iri, override=True)
    return graph


def output_format(fmt: str) -> tuple[ox.RdfFormat, bool]:
    """(pyoxigraph format, keeps named graphs) for an export format name."""
    if fmt not in OUTPUT_FORMATS:
        raise KGError(f"unknown export format {fmt!r}; expected one of {sorted(OUTPUT_FORMATS)}")
    return OUTPUT_FORMATS[fmt]


class ChunkReader(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks (what pyoxigraph's parsers accept)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._pending = chunks, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            self._pending = memoryview(next(self._chunks, b""))
            if not self._pending:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        # A view, not a copy: slicing bytes would copy the rest of a chunk of many MB for every read.
        self._pending = self._pending[size:]
        return size


def chunks(lines: Iterable[str], size: int = 1 << 16) -> Iterator[bytes]:
    """Join text lines into UTF-8 chunks of about ``size`` lines."""
    buffer: list[str] = []
    for line in lines:
        buffer.append(line)
        if len(buffer) >= size:
            yield "".join(buffer).encode()
            buffer.clear()
    if buffer:
        yield "".join(buffer).encode()


def serialize_lines(lines: Iterable[str], fmt: str, output: IO[bytes]) -> None:
    """Write N-Quads ``lines`` to ``output`` as ``fmt``, streaming (Turtle and TriG with the project prefixes)."""
    rdf_format, _ = output_format(fmt)
    quads = ox.parse(ChunkReader(chunks(lines)), format=ox.RdfFormat.N_QUADS)
    prefixes = PREFIXES if rdf_format in (ox.RdfFormat.TURTLE, ox.RdfFormat.TRIG) else None
    ox.serialize(quads, output, rdf_format, prefixes=prefixes)
