"""RDF files in and out, through rdflib's parsers and serializers, and the term encoding shared by SQL,
N-Quads and rdflib.

Reading: Turtle, N-Triples, JSON-LD, RDF/XML (format from the file extension, or given). Errors name the
file, the line and the parser's message. Writing: Turtle and N-Triples. A term is stored in SQL as
``(value, kind, datatype, lang)`` with kind ``iri``/``bnode``/``literal`` so that blank nodes, datatyped
and language-tagged literals survive a round trip unchanged.
"""

from __future__ import annotations

import json
import xml.sax
from collections.abc import Iterable, Iterator
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.exceptions import ParserError
from rdflib.plugins.parsers.notation3 import BadSyntax
from rdflib.term import Node

from kg.errors import KGError, RDFParseError
from kg.vocab import PREFIXES

#: File extension -> rdflib parser name.
INPUT_FORMATS = {
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".nt": "nt",
    ".ntriples": "nt",
    ".jsonld": "json-ld",
    ".json": "json-ld",
    ".rdf": "xml",
    ".xml": "xml",
    ".owl": "xml",
}
#: Output format name (CLI and API) -> rdflib serializer name.
OUTPUT_FORMATS = {"turtle": "turtle", "ttl": "turtle", "nt": "nt", "ntriples": "nt"}

#: One stored term: (value, kind, datatype, lang); datatype and lang are '' when absent.
Row = tuple[str, str, str, str]


def guess_format(path: str | Path, fmt: str | None = None) -> str:
    """The rdflib parser name for ``path``, from ``fmt`` if given, else from the extension."""
    if fmt:
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise KGError(f"{path}: unknown RDF format for extension {suffix!r}; expected one of {sorted(INPUT_FORMATS)}")
    return INPUT_FORMATS[suffix]


def _nt_error_line(text: str) -> int | None:
    # rdflib's N-Triples parser does not report a line; re-parse line by line to find the first bad one.
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            Graph().parse(data=line + "\n", format="nt")
        except Exception:
            return number
    return None


def parse_file(path: str | Path, fmt: str | None = None) -> Graph:
    """Parse one RDF file completely into a new rdflib ``Graph`` (nothing is written anywhere).

    Raises ``RDFParseError`` naming the file, the line and the parser's message, or ``KGError`` for an
    unreadable file or unknown format.
    """
    path = Path(path)
    parser = guess_format(path, fmt)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KGError(f"{path}: cannot read: {exc}") from None
    graph = Graph()
    try:
        graph.parse(data=text, format=parser, publicID=path.resolve().as_uri())
    except BadSyntax as exc:
        raise RDFParseError(f"{path}:{exc.lines + 1}: Turtle syntax error: {exc._why}") from None
    except ParserError as exc:
        line = _nt_error_line(text) if parser == "nt" else None
        where = f"{path}:{line}" if line else str(path)
        raise RDFParseError(f"{where}: N-Triples syntax error: {exc.msg}") from None
    except json.JSONDecodeError as exc:
        raise RDFParseError(f"{path}:{exc.lineno}: JSON-LD syntax error: {exc.msg} (column {exc.colno})") from None
    except xml.sax.SAXParseException as exc:
        raise RDFParseError(
            f"{path}:{exc.getLineNumber()}: RDF/XML syntax error: {exc.getMessage()} (column {exc.getColumnNumber()})"
        ) from None
    except Exception as exc:  # other parser errors (e.g. RDF/XML structure, JSON-LD context): still one line
        raise RDFParseError(f"{path}: {parser} parse error: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    return graph


def term_to_row(term: Node) -> Row:
    """Encode an rdflib term as ``(value, kind, datatype, lang)``."""
    if isinstance(term, URIRef):
        return str(term), "iri", "", ""
    if isinstance(term, BNode):
        return str(term), "bnode", "", ""
    if isinstance(term, Literal):
        return str(term), "literal", str(term.datatype or ""), term.language or ""
    raise KGError(f"unsupported RDF term {term!r}")


def row_to_term(value: str, kind: str, datatype: str = "", lang: str = "") -> Node:
    """Decode a stored term back into an rdflib term (the lexical form is kept as stored)."""
    if kind == "iri":
        return URIRef(value)
    if kind == "bnode":
        return BNode(value)
    return Literal(value, datatype=URIRef(datatype) if datatype else None, lang=lang or None, normalize=False)


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
    if datatype and datatype != "http://www.w3.org/2001/XMLSchema#string":
        return f'"{_escape(value)}"^^<{datatype}>'
    return f'"{_escape(value)}"'


def nt_literal(value: object) -> str:
    """The N-Triples form of a Python value as a typed literal (str, int, float, bool)."""
    if isinstance(value, bool):
        return f'"{"true" if value else "false"}"^^<http://www.w3.org/2001/XMLSchema#boolean>'
    if isinstance(value, int):
        return f'"{value}"^^<http://www.w3.org/2001/XMLSchema#integer>'
    if isinstance(value, float):
        return f'"{value!r}"^^<http://www.w3.org/2001/XMLSchema#double>'
    return f'"{_escape(str(value))}"'


def bind_prefixes(graph: Graph) -> Graph:
    """Bind the project prefixes on ``graph`` so that Turtle output stays short."""
    for prefix, iri in PREFIXES.items():
        graph.bind(prefix, iri, override=True)
    return graph


def serialize_lines(lines: Iterable[str], fmt: str) -> str:
    """Serialize N-Triples lines as ``fmt`` (``turtle`` or ``nt``); Turtle goes through rdflib."""
    if fmt not in OUTPUT_FORMATS:
        raise KGError(f"unknown export format {fmt!r}; expected one of {sorted(OUTPUT_FORMATS)}")
    text = "".join(lines)
    if OUTPUT_FORMATS[fmt] == "nt":
        return text
    graph = bind_prefixes(Graph())
    graph.parse(data=text, format="nt")
    return graph.serialize(format="turtle")


def graph_rows(graph: Graph) -> Iterator[tuple[Row, str, Row]]:
    """The triples of an rdflib graph as (subject row, predicate IRI, object row)."""
    for s, p, o in graph:
        yield term_to_row(s), str(p), term_to_row(o)
