"""SQL rows of the translated queries as the RDF terms the view would print (``kg.query.sql.translate``)."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from decimal import Decimal
from fractions import Fraction

from rdflib import Literal, URIRef
from sqlalchemy import bindparam, text

from kg.rdf import vocab
from kg.rdf.prefixes import XSD_NS
from kg.sql.explanations import is_iri

XSD = XSD_NS


def double_lexical(value: float) -> str:
    """An ``xsd:double`` as Oxigraph prints it: plain decimal notation, no trailing ``.0``."""
    out = repr(float(value))
    if "e" in out or "n" in out:  # 1e-07, inf, nan: Decimal spells out the exponent (and keeps inf/nan)
        out = format(Decimal(out), "f")
    return out[:-2] if out.endswith(".0") else out


def decimal_lexical(value: Fraction) -> str:
    """An ``xsd:decimal`` as Oxigraph computes and prints it: 18 fractional digits, cut toward zero, no
    trailing zeros and no point for a whole number (``2/3`` -> ``0.666666666666666666``)."""
    scaled = abs(value.numerator) * 10 ** 18 // value.denominator
    whole, fraction = divmod(scaled, 10 ** 18)
    text = str(whole) + ("." + f"{fraction:018d}".rstrip("0") if fraction else "")
    return "-" + text if value < 0 and scaled else text


def average_of_if(kind: tuple, value: str):
    """``AVG(IF(condition, x, y))`` from the SQL's "k/n" (k of the n rows satisfy the condition): the
    exact mean as an ``xsd:decimal``, or ``0`` (an ``xsd:integer``) for no rows, as in Oxigraph."""
    _, when, otherwise = kind
    satisfied, rows = (int(part) for part in value.split("/"))
    if rows == 0:
        return Literal("0", datatype=_INTEGER, normalize=False)
    mean = (Fraction(when) * satisfied + Fraction(otherwise) * (rows - satisfied)) / rows
    return Literal(decimal_lexical(mean), datatype=_DECIMAL, normalize=False)


_DOUBLE, _INTEGER, _BOOLEAN, _DECIMAL = (URIRef(XSD + t) for t in ("double", "integer", "boolean", "decimal"))  # made once
_NUMBERS = {XSD + t for t in ("integer", "decimal", "double", "float")}


def order_key(term):
    """SPARQL's order for the terms of the subset: unbound, then IRIs by text, then literals (numbers by
    value; strings and booleans by text)."""
    if term is None:
        return (0, "")
    if isinstance(term, URIRef):
        return (2, str(term))
    if str(term.datatype) in _NUMBERS:
        return (3, float(term))
    return (4, str(term))


def fold_counts(rows: list[tuple], kinds: list[str]) -> list[tuple]:
    """Rows of finer groups (one per code) merged into the query's groups: their counts summed."""
    merged: dict[tuple, list] = {}
    for row in rows:
        key = tuple(v for v, k in zip(row, kinds) if k != "count")
        if key not in merged:
            merged[key] = list(row)
        else:
            for i, k in enumerate(kinds):
                if k == "count":
                    merged[key][i] += row[i]
    return [tuple(r) for r in merged.values()]


@contextmanager
def cyclic_gc_paused():
    """CPython's cyclic collector paused (and restored) while a large acyclic result is built.

    A translated answer makes tens of thousands of tuples and terms; each 700 new objects start a
    collection, and every few of those a full one over the whole heap (torch and rdflib included),
    which cannot find garbage in rows that hold no cycles. Paused, the N = 15 query over all of a run's
    explanations (20 000 rows) takes about half the time (docs/store.md)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def to_terms(conn, rows: list[tuple], kinds: list[str]) -> list[tuple]:
    """Rows of ids and numbers as rdflib terms (IRIs looked up once per distinct id).

    Column by column: rows repeat their runs, groups, names and values, so each column makes each
    of its terms once, and ``zip`` puts the rows back together."""
    if not rows:
        return []
    columns = list(zip(*rows))
    names: dict[str, dict[int, str]] = {"input": {}, "entity": {}}
    for kind in ("input", "entity"):
        ids = sorted({v for column, k in zip(columns, kinds) if k == kind for v in column if v is not None})
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            if kind == "input":
                found = conn.execute(text('SELECT id, dataset, split, "key" FROM input WHERE id IN :ids')
                                     .bindparams(bindparam("ids", expanding=True)), {"ids": chunk})
                names[kind].update((i, vocab.input_iri(d, s, k)) for i, d, s, k in found)
            else:
                found = conn.execute(text("SELECT id, iri FROM entity WHERE id IN :ids").bindparams(bindparam("ids", expanding=True)), {"ids": chunk})
                names[kind].update(found.all())

    def column_terms(kind: str, values: tuple) -> list:
        made = {value: term(kind, value, names) for value in set(values)}
        return [made[value] for value in values]

    return list(zip(*(column_terms(kind, values) for kind, values in zip(kinds, columns))))


def term(kind: str, value, names: dict | None = None):
    if value is None:
        return None
    if kind in ("input", "entity"):
        return URIRef(names[kind][value])
    if isinstance(kind, tuple):
        return average_of_if(kind, value)
    if kind == "term":  # an explained value: an IRI, or a plain literal (kg/sql/explanations.py)
        return URIRef(value) if is_iri(value) else Literal(value)
    if kind == "string":
        return Literal(value)
    if kind == "boolean":
        return Literal("true" if value else "false", datatype=_BOOLEAN, normalize=False)
    if kind == "run":
        return URIRef(vocab.run_iri(value))
    if kind == "double":
        return Literal(double_lexical(value), datatype=_DOUBLE, normalize=False)
    return Literal(str(int(value)), datatype=_INTEGER, normalize=False)
