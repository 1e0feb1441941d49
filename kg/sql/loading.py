"""Streaming RDF loads: files parsed by the RDF view's own Rust parser, written in batches, one transaction.

``pyoxigraph.parse`` reads N-Triples, N-Quads, Turtle, TriG, RDF/XML and JSON-LD as a stream, so a
load holds one batch of rows in memory, whatever the file's size. It is also the reference for what
the view accepts: an IRI or language tag it refuses is a ``file:line`` error, and since everything is
written inside one transaction that only commits after the last file's last triple, a bad term
anywhere means nothing is written. Hostile files are refused before they cost anything: RDF/XML that
declares entities (the "billion laughs") through ``defusedxml``, and JSON-LD whose ``@context`` names
a document (a URL or ``file:``), which the parser is never given a loader to fetch.

A file that ends early is refused whole. The line-based formats' parsers see a statement, literal or
graph block cut off at the end; Oxigraph's RDF/XML parser does not (it yields the triples of the
elements it closed and stops quietly at the end of the file), so an RDF/XML file is first read to its
end as XML (expat, the same pass that refuses entities), which reports unclosed elements with their
position. That pass costs about a fifth of an RDF/XML load (1.6 s of 8.4 s for 400k triples, 29 MB,
on 2 CPU cores; raw expat would take 0.5 s, but defusedxml is the reviewed guard against entities).

Ill-typed literals (``"abc"^^xsd:integer``) are valid RDF: they are stored as written, and the load
warns once (``IllTypedLiteralWarning``) with their number and an example.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import warnings
import xml.sax
import xml.sax.handler
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import defusedxml.sax
import pyoxigraph as ox
from defusedxml import DefusedXmlException
from sqlalchemy import Connection, Engine, func, select, update

from kg.errors import KGError, RDFParseError
from kg.sql.schema import Entity, GraphVersion, Triple
from kg.sql.writes import bump, insert_rows
from kg.rdf.prefixes import RDF_LANG_STRING, RDF_TYPE, RDFS_LABEL, XSD_NS, XSD_STRING

#: Format name (CLI and API) -> pyoxigraph format.
FORMATS = {
    "turtle": ox.RdfFormat.TURTLE,
    "nt": ox.RdfFormat.N_TRIPLES,
    "nquads": ox.RdfFormat.N_QUADS,
    "trig": ox.RdfFormat.TRIG,
    "xml": ox.RdfFormat.RDF_XML,
    "json-ld": ox.RdfFormat.JSON_LD,
}
DISPLAY_NAMES = {"turtle": "Turtle", "nt": "N-Triples", "nquads": "N-Quads", "trig": "TriG", "xml": "RDF/XML",
                 "json-ld": "JSON-LD"}
#: File extension -> format name.
EXTENSIONS = {
    ".ttl": "turtle", ".turtle": "turtle", ".nt": "nt", ".ntriples": "nt", ".nq": "nquads",
    ".nquads": "nquads", ".trig": "trig", ".rdf": "xml", ".xml": "xml", ".owl": "xml",
    ".jsonld": "json-ld", ".json": "json-ld",
}
TRIPLE_COLUMNS = ("graph", "s", "s_kind", "p", "o", "o_kind", "o_datatype", "o_lang", "confidence")

_PLAIN = {XSD_STRING, RDF_LANG_STRING}
_INTEGER = r"[+-]?[0-9]+"
_DECIMAL = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
_DOUBLE = r"([+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?INF|NaN)"
_DATE = r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?"
_DATETIME = r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?"
#: Lexical forms (XML Schema 1.1) of the datatypes whose values SPARQL compares; others are not checked.
LEXICAL = {
    XSD_NS + name: re.compile(pattern)
    for names, pattern in [
        (("integer", "int", "long", "short", "byte", "nonNegativeInteger", "positiveInteger",
          "nonPositiveInteger", "negativeInteger", "unsignedInt", "unsignedLong", "unsignedShort",
          "unsignedByte"), _INTEGER),
        (("decimal",), _DECIMAL), (("double", "float"), _DOUBLE), (("boolean",), r"true|false|1|0"),
        (("date",), _DATE), (("dateTime",), _DATETIME),
    ]
    for name in names
}


class IllTypedLiteralWarning(UserWarning):
    """A loaded literal's lexical form does not match its datatype; it is stored as written."""


def format_of(path: str | Path, fmt: str | None = None) -> str:
    """The format name for ``path``: ``fmt`` if given, else from the file extension."""
    if fmt:
        if fmt not in FORMATS:
            raise KGError(f"unknown RDF format {fmt!r}; expected one of {sorted(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise KGError(f"{path}: unknown RDF format for extension {suffix!r}; expected one of {sorted(EXTENSIONS)}")
    return EXTENSIONS[suffix]


class _LocatingHandler(xml.sax.handler.ContentHandler):
    def setDocumentLocator(self, locator) -> None:
        self.locator = locator


def check_xml(path: Path) -> None:
    """Read an XML file to its end; raise ``RDFParseError`` with ``file:line`` and the column if it
    declares entities or names external ones, or is not well-formed (e.g. ends before its elements
    are closed)."""
    handler = _LocatingHandler()
    try:
        defusedxml.sax.parse(str(path), handler, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        line = handler.locator.getLineNumber() if getattr(handler, "locator", None) else None
        where = f"{path}:{line}" if line else str(path)
        what = f"declares entity {exc.name!r}" if getattr(exc, "name", None) else str(exc)
        raise RDFParseError(f"{where}: RDF/XML refused: the file {what}; XML entities are not accepted "
                            "(they can expand without bound)") from None
    except xml.sax.SAXParseException as exc:
        message = exc.getMessage()
        if message in ("no element found", "unclosed token"):
            message += " (the file ends before its elements are closed: truncated?)"
        raise RDFParseError(f"{path}:{exc.getLineNumber()}: RDF/XML syntax error: column "
                            f"{exc.getColumnNumber() + 1}: {message}") from None


def parse_quads(path: str | Path, fmt: str | None = None) -> Iterator[ox.Quad]:
    """The quads of one RDF file as a stream; errors are ``RDFParseError`` with ``file:line``."""
    path = Path(path)
    name = format_of(path, fmt)
    if not path.is_file():
        raise KGError(f"{path}: cannot read: no such file")
    if name == "xml":
        check_xml(path)
    try:
        # Blank nodes are renamed so that two files' (or two loads') "_:b0" stay different nodes.
        yield from ox.parse(path=str(path), format=FORMATS[name], base_iri=path.resolve().as_uri(),
                            rename_blank_nodes=True)
    except SyntaxError as exc:
        raise _parse_error(path, name, exc) from None
    except OSError as exc:
        raise KGError(f"{path}: cannot read: {exc}") from None


def _parse_error(path: Path, name: str, exc: SyntaxError) -> RDFParseError:
    message = str(exc.msg or exc)
    if "LoadDocumentCallback" in message:
        return RDFParseError(f"{path}: JSON-LD @context names a document (a URL or file); contexts are never "
                             "fetched: put the context inline in the file")
    # "Parser error at line 3 between columns 1 and 28: ..." / "... between line 3 column 11 and line 5 ...: ..."
    message = re.sub(r"^Parser error (?:at|between) line \d+ (?:between )?columns? (\d+)[^:]*: ", r"column \1: ", message)
    where = f"{path}:{exc.lineno}" if exc.lineno else str(path)
    return RDFParseError(f"{where}: {DISPLAY_NAMES[name]} syntax error: {message}".splitlines()[0])


def term_row(term) -> tuple[str, str, str, str]:
    """A pyoxigraph term as the stored ``(value, kind, datatype, lang)`` ('' for a plain literal's datatype)."""
    if isinstance(term, ox.NamedNode):
        return term.value, "iri", "", ""
    if isinstance(term, ox.BlankNode):
        return term.value, "bnode", "", ""
    if isinstance(term, ox.Literal):
        datatype = term.datatype.value
        return term.value, "literal", "" if datatype in _PLAIN else datatype, term.language or ""
    raise KGError(f"unsupported RDF term {term!r} (RDF-star triples are not stored)")


class _Batch:
    """Rows of one batch, entity candidates and ill-typed literals seen; the quads themselves when a
    view feed wants them."""

    def __init__(self, keep_quads: bool = False) -> None:
        self.rows: list[tuple] = []
        self.labels: dict[str, tuple[int, str | None]] = {}
        self.ill_typed = 0
        self.example: str | None = None
        # Default-graph quads are kept as parsed (a new ox.Quad per triple would cost more than parsing it).
        self.quads: list[ox.Quad] | None = [] if keep_quads else None
        self.default_quads: list[ox.Quad] | None = [] if keep_quads else None

    def add(self, graph: str, s, p: str, o, confidence: float | None = None) -> None:
        # The hot loop of a load: type() checks and no helper calls for the common terms.
        kind = type(s)
        if kind is ox.NamedNode:
            sv, sk = s.value, "iri"
        else:
            sv, sk, _, _ = term_row(s)
        kind = type(o)
        if kind is ox.Literal:
            ov, ok, od, ol = o.value, "literal", o.datatype.value, o.language or ""
            if od in _PLAIN:
                od = ""
            elif od in LEXICAL and not LEXICAL[od].fullmatch(ov):
                self.ill_typed += 1
                self.example = self.example or f'"{ov}"^^<{od}>'
        elif kind is ox.NamedNode:
            ov, ok, od, ol = o.value, "iri", "", ""
        else:
            ov, ok, od, ol = term_row(o)
        self.rows.append((graph, sv, sk, p, ov, ok, od, ol, confidence))
        if (p == RDF_TYPE or p == RDFS_LABEL) and sk == "iri":
            # An entity is an IRI that the KG labels or types: what alignments may point at. Prefer an
            # untagged or English label.
            rank, label = (0 if ol in ("", "en") else 1, ov) if p == RDFS_LABEL else (2, None)
            if sv not in self.labels or rank < self.labels[sv][0]:
                self.labels[sv] = (rank, label)


def write_entities(conn: Connection, labels: dict[str, tuple[int, str | None]]) -> None:
    """Insert new entities; give a label to those without one, or replace it by an untagged/English one."""
    items = list(labels.items())
    for start in range(0, len(items), 5000):
        chunk = dict(items[start : start + 5000])
        existing = dict(conn.execute(select(Entity.iri, Entity.label).where(Entity.iri.in_(list(chunk)))).all())
        new = [(iri, label) for iri, (_, label) in chunk.items() if iri not in existing]
        insert_rows(conn, Entity.__table__, ("iri", "label"), new)
        for iri, (rank, label) in chunk.items():
            if iri in existing and label is not None and existing[iri] != label and (rank == 0 or existing[iri] is None):
                conn.execute(update(Entity).where(Entity.iri == iri).values(label=label))


def graph_counts(conn: Connection, graphs: Iterable[str]) -> dict[str, int]:
    return {g: conn.execute(select(func.count()).select_from(Triple).where(Triple.graph == g)).scalar_one() for g in graphs}


class LoadOutcome(NamedTuple):
    added: int  #: triples new to the store
    versions: dict[str, tuple[int | None, int | None]]  #: graph -> write counter (before, after) the load


def _version(conn: Connection, graph: str) -> int | None:
    return conn.execute(select(GraphVersion.version).where(GraphVersion.graph == graph)).scalar_one_or_none()


class _TransactionWriter:
    """Writes batches to SQL in a thread of its own, inside one transaction that it begins and commits.

    SQLite and psycopg release the GIL while they insert, so the caller parses and builds the next
    batch (Python work) while this thread writes the last one. ``put`` blocks while one batch waits,
    which keeps memory at two batches whatever the file's size.
    """

    _END, _ABORT = object(), object()

    def __init__(self, engine: Engine, graph: str, feed) -> None:
        self.engine, self.graph, self.feed = engine, graph, feed
        self.error: BaseException | None = None
        self.outcome: LoadOutcome | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._work, name="kg-load-writer", daemon=True)
        self._thread.start()

    def put(self, batch: _Batch) -> None:
        while True:
            if self.error is not None or not self._thread.is_alive():
                self._thread.join()
                raise self.error or KGError("the load's SQL writer stopped")
            try:
                self._queue.put(batch, timeout=0.2)
                return
            except queue.Full:
                continue

    def commit(self) -> LoadOutcome:
        """Write the last batch's companions, commit, and return the outcome (or raise the writer's error)."""
        self.put(self._END)
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.outcome

    def abort(self) -> None:
        """Roll the transaction back (the caller failed); returns once nothing more is written."""
        if self._thread.is_alive():
            with contextlib.suppress(BaseException):  # a writer that already failed has nothing to undo
                self.put(self._ABORT)
            self._thread.join()

    def _work(self) -> None:
        try:
            with self.engine.begin() as conn:
                counts: dict[str, int] = {}
                versions: dict[str, int | None] = {}
                while (batch := self._queue.get()) is not self._END:
                    if batch is self._ABORT:
                        raise _Aborted
                    graphs = {row[0] for row in batch.rows}
                    for g in graphs - counts.keys():
                        counts.update(graph_counts(conn, [g]))
                        versions[g] = _version(conn, g)
                    insert_rows(conn, Triple.__table__, TRIPLE_COLUMNS, batch.rows, ignore=True)
                    write_entities(conn, batch.labels)
                    if self.feed is not None:
                        self.feed(graphs, batch.quads, batch.default_quads, self.graph)
                after = graph_counts(conn, counts)
                bump(conn, *sorted(g for g in counts if after[g] != counts[g]))
                self.outcome = LoadOutcome(sum(after[g] - counts[g] for g in counts),
                                           {g: (versions[g], _version(conn, g)) for g in counts})
        except _Aborted:
            pass
        except BaseException as exc:  # handed to the caller's thread by put/commit
            self.error = exc


class _Aborted(Exception):
    pass


def load_files(engine: Engine, paths: list[Path], graph: str, fmt: str | None, batch_size: int,
               feed: Callable[[set[str], list[ox.Quad], list[ox.Quad], str], None] | None = None) -> LoadOutcome:
    """Stream ``paths`` into SQL in one transaction; default-graph triples go to ``graph``, named graphs
    of N-Quads/TriG keep their names. Only graphs that gained triples get their write counter bumped.

    ``feed``, if given, receives each batch's graphs, its named-graph quads, its default-graph quads and
    ``graph`` (where the latter belong) once the batch is in SQL, so that the RDF view can load them
    while the next batch is parsed.
    """
    ill_typed, example = 0, None
    writer = _TransactionWriter(engine, graph, feed)
    try:
        batch = _Batch(feed is not None)
        for path in paths:
            for quad in parse_quads(path, fmt):
                name = quad.graph_name
                named = type(name) is ox.NamedNode
                batch.add(name.value if named else graph, quad.subject, quad.predicate.value, quad.object)
                if batch.quads is not None:
                    (batch.quads if named else batch.default_quads).append(quad)
                if len(batch.rows) >= batch_size:
                    writer.put(batch)
                    ill_typed, example = ill_typed + batch.ill_typed, example or batch.example
                    batch = _Batch(feed is not None)
        writer.put(batch)
        ill_typed, example = ill_typed + batch.ill_typed, example or batch.example
        outcome = writer.commit()
    except BaseException:
        writer.abort()
        raise
    if ill_typed:
        warnings.warn(IllTypedLiteralWarning(
            f"{', '.join(map(str, paths))}: {ill_typed} ill-typed literal(s) stored as written, e.g. {example}"
        ), stacklevel=2)
    return outcome


def write_triples(conn: Connection, triples: Iterable[tuple], graph: str, confidence: list[float] | None,
                  batch_size: int) -> None:
    """Write (subject, predicate, object) pyoxigraph terms to ``graph`` inside the caller's transaction."""
    batch = _Batch()
    for index, (s, p, o) in enumerate(triples):
        batch.add(graph, s, p.value, o, confidence[index] if confidence is not None else None)
        if len(batch.rows) >= batch_size:
            insert_rows(conn, Triple.__table__, TRIPLE_COLUMNS, batch.rows, ignore=True)
            write_entities(conn, batch.labels)
            batch = _Batch()
    insert_rows(conn, Triple.__table__, TRIPLE_COLUMNS, batch.rows, ignore=True)
    write_entities(conn, batch.labels)
