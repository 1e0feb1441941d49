"""Result formats by name, and the checks of which format a result may take: one place for both.

Imports nothing heavy, so that ``neurosym query`` checks ``--format`` without loading rdflib.
"""

from __future__ import annotations

from kg.errors import KGError

#: What ``neurosym query --format`` and ``SparqlResult.serialize`` accept.
RESULT_FORMATS = ("table", "json", "csv", "tsv", "turtle", "nt")
#: The formats of SELECT/ASK answers written from plain terms, without rdflib (``kg.query.plain_formats``).
PLAIN_FORMATS = ("table", "json", "csv", "tsv")
#: What ``kg.query.formats`` writes (the endpoint offers them all): SELECT/ASK results, and graphs.
SOLUTION_FORMATS = ("json", "xml", "csv", "tsv", "table")
GRAPH_FORMATS = ("turtle", "nt", "json-ld", "xml")


def user_choice(kind: str, fmt: str) -> str:
    """The writer's format for a user's choice ``fmt`` of ``RESULT_FORMATS`` for a ``kind`` result
    (``select``, ``ask`` or ``graph``): a graph's ``table`` is Turtle; a mismatch is one line."""
    if fmt not in RESULT_FORMATS:
        raise KGError(f"unknown result format {fmt!r}; expected one of {list(RESULT_FORMATS)}")
    if kind == "graph" and fmt not in ("turtle", "nt", "table"):
        raise KGError(f"a CONSTRUCT/DESCRIBE result is a graph: use --format turtle or nt, not {fmt}")
    if kind != "graph" and fmt in ("turtle", "nt"):
        raise KGError(f"{fmt} is for CONSTRUCT/DESCRIBE results; use table, json, csv or tsv")
    return "turtle" if kind == "graph" and fmt == "table" else fmt


def check_written(kind: str, fmt: str, plain: bool = False) -> None:
    """Refuse a format the writers have no writer of for a ``kind`` result (``plain``: without rdflib)."""
    if kind == "graph":
        if plain:
            raise KGError(f"a {kind} result needs rdflib's serializers")
        if fmt not in GRAPH_FORMATS:
            raise KGError(f"a CONSTRUCT/DESCRIBE result comes as one of {list(GRAPH_FORMATS)}, not {fmt}")
        return
    offered = PLAIN_FORMATS if plain else SOLUTION_FORMATS
    if fmt not in offered:
        raise KGError(f"a SELECT/ASK result comes as one of {list(offered)}, not {fmt}")
