"""The answer to one SPARQL query, whichever engine gave it (the RDF view or the SQL translation)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rdflib import Graph
from rdflib.term import Node

from kg.query import format_names, formats


@dataclass
class SparqlResult:
    """The answer to one query: ``kind`` is ``select``, ``ask`` or ``graph`` (CONSTRUCT/DESCRIBE).

    ``vars`` and ``rows`` (tuples of rdflib terms, None where unbound) for SELECT; ``askanswer`` for ASK;
    ``graph`` (an rdflib ``Graph``) for CONSTRUCT and DESCRIBE. ``answered_by``: ``sql`` (the SQL
    translation, ``kg.query.sql.translate``) or ``view`` (Oxigraph); ``why_not_sql``: for a query the store
    could have answered either way, why the translation left it to the view (one line), else None.
    """

    kind: str
    vars: list[str] = field(default_factory=list)
    rows: list[tuple[Node | None, ...]] = field(default_factory=list)
    askanswer: bool | None = None
    graph: Graph | None = None
    answered_by: str = "view"
    why_not_sql: str | None = None

    def __len__(self) -> int:
        if self.kind == "select":
            return len(self.rows)
        if self.kind == "graph":
            return len(self.graph)
        return 1

    def __iter__(self):
        if self.kind == "select":
            return iter(self.rows)
        if self.kind == "graph":
            return iter(self.graph)
        return iter([self.askanswer])

    def records(self) -> list[dict[str, object]]:
        """SELECT rows as dicts of Python values (``toPython``), unbound variables left out."""
        return [{v: t.toPython() for v, t in zip(self.vars, row) if t is not None} for row in self.rows]

    def serialize(self, format: str = "table") -> str:
        """The result as ``json``/``csv``/``tsv`` (SPARQL 1.1 result formats), ``table``, or for graphs
        ``turtle``/``nt`` (see ``kg.query.formats``)."""
        return formats.serialize(self, format_names.user_choice(self.kind, format))
