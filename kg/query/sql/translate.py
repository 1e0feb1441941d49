"""SPARQL over the store's own assignment vocabulary answered in SQL, with Oxigraph as the fallback.

At a million assignments Oxigraph joins assignment nodes one index seek at a time (5-10 µs each), so
"the 10 most confident inputs of an entity" costs half a second and "inputs of a class above a
confidence" seconds; the same questions in SQL read one covering index. The RDF view is derived from
the SQL tables by a known mapping (``kg/sql/derive.py``), so a query that only uses that mapping can be
translated back. This module does so for the queries of ``kg.query.sql.subset`` whose patterns are
assignment nodes ``?a ns:input ?i ; ns:entity ?e ; ns:confidence ?c ; ns:slot ?s`` (``ns:input``
required, ``?a`` used nowhere else; ``ns:slot`` matches the slots other than 0, as the view states
them), the shortcut ``?i ns:hasConcept ?e`` and class membership (``?e a C``,
``?e rdf:type/rdfs:subClassOf* C``), with numeric FILTERs on confidence and slot, and answers ``None``
for anything else (the caller then asks Oxigraph).

Exactness is kept by refusing rather than guessing: the query falls back to Oxigraph when a loaded
graph also holds triples of the mapped predicates, when a class's subclass closure reaches a type
the view derives itself (``ns:Run``, ``skos:Concept``, ...), or when any part is outside the subset.
Terms come back as the view would print them (an ``xsd:double`` in Oxigraph's lexical form).
``tests/kg/test_sparql_sql.py`` checks every shape against Oxigraph on random stores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import Engine, bindparam, text

from kg.rdf import vocab
from kg.sql.answers import subclasses
from kg.query.guard import result_too_large
from kg.query.sql import explanations
from kg.query.sql.fetch import fetch_rows
from kg.query.sql.subset import (
    ASSIGNMENT_PREDICATES, HAS_CONCEPT, RDF_TYPE, TYPE_CLOSURE, XSD, Query, Unsupported, aggregate_alias,
    is_explanation_query, no_sql_predicates, parse, sql_predicates,
)
from kg.query.sql.terms import cyclic_gc_paused, fold_counts, order_key, to_terms
from kg.rdf.prefixes import PROV_NS, SKOS_NS

_NS = str(vocab.NS)
#: Types the view gives nodes it derives from the run tables; a class query reaching them falls back.
DERIVED_TYPES = frozenset({
    _NS + "Run", _NS + "Alignment", _NS + "Explanation", _NS + "Variable", PROV_NS + "Activity", SKOS_NS + "ConceptScheme", SKOS_NS + "Concept",
})
_NUMERIC = {XSD + t for t in ("integer", "decimal", "double", "float")}


# -- translation ------------------------------------------------------------------------------------
@dataclass
class _Sql:
    sqlite: bool = False
    tables: list = field(default_factory=list)
    where: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    exprs: dict = field(default_factory=dict)  # variable -> (kind, SQL expression)
    conditions: dict = field(default_factory=dict)  # AVG(IF(...)) alias -> its comparison in SQL

    def param(self, value) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def bind(self, name: str, kind: str, expr: str) -> None:
        known = self.exprs.get(name)
        if known is None:
            self.exprs[name] = (kind, expr)
        elif known[0] != kind:
            raise Unsupported(f"?{name} used as {known[0]} and {kind}")
        else:
            self.where.append(f"{known[1]} = {expr}")


class Translated(NamedTuple):
    """A query in SQL, and what is left to do with the rows it fetches."""
    body: str
    params: dict
    columns: list[tuple[str, object]]  # (variable, kind): how kg.query.sql.terms makes each column a term
    sort_here: bool  # ORDER BY, LIMIT and OFFSET happen after fetching, in Python
    fold: bool  # rows are per code (GROUP BY run, idx too): their counts are summed into the query's groups


def _substitute(term: tuple, values: dict) -> tuple:
    return values.get(term[1], term) if term[0] == "var" else term


def _check_shape(q: Query) -> None:
    aggregates = [p for p in q.projection if p[0] != "var"]
    plain = [p[1] for p in q.projection if p[0] == "var"]
    if (aggregates or q.group_by) and not set(plain) <= set(q.group_by):
        raise Unsupported("projected variable not grouped")
    names = plain + [aggregate_alias(p) for p in aggregates]
    if len(set(names)) != len(names) or set(names) & set(q.values):
        raise Unsupported("projection")
    if any(name not in names for name, _ in q.order_by):
        raise Unsupported("ORDER BY a variable that is not projected")


def translate(conn, q: Query) -> Translated:
    """What ``_select`` returns; raises ``Unsupported`` outside the subset."""
    _check_shape(q)
    sql = _Sql(sqlite=conn.dialect.name == "sqlite")
    patterns = [tuple(_substitute(t, q.values) for t in p) for p in q.patterns]
    nodes: dict[str, dict[str, tuple]] = {}
    others = []
    for s, p, o in patterns:
        if p in ASSIGNMENT_PREDICATES:
            if s[0] != "var":
                raise Unsupported("assignment node given as an IRI")
            if ASSIGNMENT_PREDICATES[p] in nodes.setdefault(s[1], {}):
                raise Unsupported("repeated predicate on an assignment node")
            nodes[s[1]][ASSIGNMENT_PREDICATES[p]] = o
        else:
            others.append((s, p, o))
    used = [t[1] for s, p, o in others for t in (s, o) if t[0] == "var"]
    used += [t[1] for left, _, right in q.comparisons for t in (left, right) if t[0] == "var"]
    used += [p[1] for p in q.projection if p[0] != "avg_if"] + q.group_by  # a variable, or the one COUNT counts
    for node, props in nodes.items():
        if "input" not in props or node in used or any(t == ("var", node) for ps in nodes.values() for t in ps.values()):
            raise Unsupported("assignment node")
    runs = _complete_runs(conn)
    run_ids = ", ".join(str(r) for r in runs) or "NULL"
    ranks = ", ".join(str(k) for k in sorted({k for shape in runs.values() for k in shape.ranks})) or "NULL"
    several_slots = any(shape.several_slots for shape in runs.values())
    for i, (node, props) in enumerate(nodes.items()):
        # Constant run and rank lists let the planner seek ix_assignment_code (run_id, rank, code, confidence).
        a = f"a{i}"
        tables, by_code = [f"assignment {a}"], _drive_by_code(sql, props["input"])
        sql.where.append(f"{a}.run_id IN ({run_ids}) AND {a}.rank IN ({ranks})")
        for prop, term in props.items():
            if prop == "entity":
                tables.insert(0 if by_code else 1, f"code c{i}")
                sql.where.append(f"c{i}.run_id = {a}.run_id AND c{i}.idx = {a}.code AND c{i}.entity_id IS NOT NULL")
            if prop == "slot":  # the view states a slot only when it is not 0 (kg/sql/derive.py)
                sql.where.append(f"{a}.slot <> 0")
            kind, expr = {"input": ("input", f"{a}.input_id"), "entity": ("entity", f"c{i}.entity_id"),
                          "confidence": ("double", f"{a}.confidence"), "slot": ("integer", f"{a}.slot")}[prop]
            _bind_term(sql, kind, expr, term)
        sql.tables += tables
    for i, (s, p, o) in enumerate(others):
        if p == HAS_CONCEPT:
            h, hc = f"h{i}", f"hc{i}"
            shortcut = f"{h}.run_id IN ({run_ids}) AND {h}.rank = 0 AND {hc}.run_id = {h}.run_id AND {hc}.idx = {h}.code AND {hc}.entity_id IS NOT NULL"
            if several_slots:
                # One triple per (run graph, input, entity), however many slots of the input share it.
                sql.tables.append(f"(SELECT DISTINCT {h}.run_id, {h}.input_id, {hc}.entity_id FROM assignment {h}, code {hc} WHERE {shortcut}) {h}")
            else:
                pair = [f"assignment {h}", f"code {hc}"]
                sql.tables += pair[::-1] if _drive_by_code(sql, s) else pair
                sql.where.append(shortcut)
            _bind_term(sql, "input", f"{h}.input_id", s)
            _bind_term(sql, "entity", f"{h if several_slots else hc}.entity_id", o)
        elif p in (RDF_TYPE, TYPE_CLOSURE):
            if s[0] != "var" or o[0] != "iri":
                raise Unsupported("class membership of a constant or of a variable class")
            # One row per rdf:type quad into the class (or a subclass): a sequence path is a join over
            # the intermediate class, and a triple held by two graphs counts twice, as in the view.
            classes = ", ".join(sql.param(c) for c in _class_closure(conn, o[1], closure=p == TYPE_CLOSURE))
            sql.tables.insert(0,
                f"(SELECT e.id AS entity_id FROM triple t JOIN entity e ON e.iri = t.s WHERE t.p = {sql.param(RDF_TYPE)}"
                f" AND t.s_kind = 'iri' AND t.o_kind = 'iri' AND t.o IN ({classes})) m{i}"
            )
            _bind_term(sql, "entity", f"m{i}.entity_id", s)
        else:
            raise Unsupported(f"predicate <{p}>")
    def numeric_comparison(left: tuple, op: str, right: tuple) -> str:
        sides = [_numeric(sql, _substitute(t, q.values)) for t in (left, right)]
        return f"{sides[0]} {op} {sides[1]}"  # SQLite and PostgreSQL both read != as <>

    sql.where += [numeric_comparison(*f) for f in q.filters]
    sql.conditions = {alias: numeric_comparison(*c) for alias, c in q.averaged.items()}
    return _select(sql, q)


def translate_explanations(conn, q: Query) -> Translated:
    """What ``_select`` returns, for a query over the explanation vocabulary (``kg.query.sql.explanations``)."""
    _check_shape(q)
    sql = _Sql(sqlite=conn.dialect.name == "sqlite")
    explanations.translate(q, sql, _bind_explained)

    def comparison(left: tuple, op: str, right: tuple) -> str:
        return explanations.compare(sql, _substitute(left, q.values), op, _substitute(right, q.values), _numeric)

    sql.where += [comparison(*f) for f in q.filters]
    sql.conditions = {alias: comparison(*c) for alias, c in q.averaged.items()}
    return _select(sql, q)


def _bind_explained(sql: _Sql, kind: str, expr: str, term: tuple) -> None:
    if term[0] == "var":
        sql.bind(term[1], kind, expr)
    else:
        explanations.bind_constant(sql, kind, expr, term)


def _drive_by_code(sql: _Sql, input_term: tuple) -> bool:
    """Whether to reach an assignment's rows from its code (index on run, rank, code) rather than from
    its input (primary key run, input): the latter when the input is already joined. (A constant input
    never gets here: ``sql_predicates`` leaves such a query to Oxigraph.)"""
    return input_term[1] not in sql.exprs


def _bind_term(sql: _Sql, kind: str, expr: str, term: tuple) -> None:
    if term[0] == "var":
        sql.bind(term[1], kind, expr)
    elif term[0] == "iri" and kind == "entity":
        sql.where.append(f"{expr} = (SELECT id FROM entity WHERE iri = {sql.param(term[1])})")
    else:  # an input IRI never gets here: sql_predicates leaves such a query to Oxigraph (one index seek)
        raise Unsupported(f"a constant {'IRI' if term[0] == 'iri' else 'literal'} where the subset takes a variable")


def _numeric(sql: _Sql, term: tuple) -> str:
    if term[0] == "var":
        kind, expr = sql.exprs.get(term[1], (None, None))
        if kind not in ("double", "integer"):
            raise Unsupported("FILTER on a non-numeric variable")
        return expr
    if term[0] == "lit" and term[2] in _NUMERIC:
        try:
            return sql.param(float(term[1]))
        except ValueError:
            raise Unsupported("ill-typed number") from None
    raise Unsupported("FILTER operand")


@dataclass(frozen=True)
class RunShape:
    """What the translation needs to know of a complete run's assignments."""

    ranks: tuple[int, ...]
    several_slots: bool  # some input has rank-0 symbols in more than one slot


_shapes: dict[tuple, RunShape] = {}


def _complete_runs(conn) -> dict[int, RunShape]:
    """Complete runs and their shapes, cached by the run graph's write counter (any write bumps it)."""
    rows = conn.execute(text(
        f"SELECT r.id, g.version FROM run r JOIN graph_version g ON g.graph = ('{vocab.RUN_BASE}' || CAST(r.id AS TEXT))"
        " WHERE r.complete ORDER BY r.id")).all()
    out = {}
    for run_id, version in rows:
        key = (str(conn.engine.url), run_id, version)
        if key not in _shapes:
            ranks, rank = [], -1
            while (rank := conn.execute(text("SELECT MIN(rank) FROM assignment WHERE run_id = :r AND rank > :k"),
                                        {"r": run_id, "k": rank}).scalar()) is not None:
                ranks.append(int(rank))
            several = conn.execute(text("SELECT 1 FROM assignment WHERE run_id = :r AND rank = 0 AND slot > 0 LIMIT 1"),
                                   {"r": run_id}).first() is not None
            _shapes[key] = RunShape(tuple(ranks), several)
        out[int(run_id)] = _shapes[key]
    return out


def _class_closure(conn, class_iri: str, closure: bool) -> list[str]:
    """The class and (with ``closure``) its subclasses, by ``rdfs:subClassOf`` triples of loaded graphs."""
    classes = subclasses(conn, class_iri) if closure else {class_iri}
    if classes & DERIVED_TYPES:
        raise Unsupported("class reaches a type the view derives")
    return sorted(classes)


def _expanding(name: str):
    return bindparam(name, expanding=True)


def _select(sql: _Sql, q: Query) -> Translated:
    columns, select = [], []
    for item in q.projection:
        if item[0] == "var":
            if item[1] not in sql.exprs:
                raise Unsupported(f"?{item[1]} is not bound by the pattern")
            kind, expr = sql.exprs[item[1]]
            columns.append((item[1], kind))
            select.append(expr)
        elif item[0] == "avg_if":
            # How many rows of the group satisfy the comparison, and how many rows: "k/n", which
            # kg.query.sql.terms turns into Oxigraph's decimal (a float would round differently).
            _, _, when, otherwise, alias = item
            select.append(f"CAST(COALESCE(SUM(CASE WHEN {sql.conditions[alias]} THEN 1 ELSE 0 END), 0) AS TEXT)"
                          " || '/' || CAST(COUNT(*) AS TEXT)")
            columns.append((alias, ("avg_if", when[1], otherwise[1])))
        else:
            _, counted, distinct, alias = item
            if counted == "*":
                if distinct:
                    raise Unsupported("COUNT(DISTINCT *)")
                select.append("COUNT(*)")
            else:
                if counted not in sql.exprs:
                    raise Unsupported(f"?{counted} is not bound by the pattern")
                select.append(f"COUNT({'DISTINCT ' if distinct else ''}{sql.exprs[counted][1]})")
            columns.append((alias, "count"))
    for name in q.group_by:
        if name not in sql.exprs:
            raise Unsupported(f"GROUP BY ?{name}")
    # SQLite joins CROSS JOIN operands in the order written (the order chosen above); others plan freely.
    tables = (" CROSS JOIN " if sql.sqlite else ", ").join(sql.tables)
    body = f"SELECT {'DISTINCT ' if q.distinct else ''}{', '.join(select)} FROM {tables}"
    if sql.where:
        body += " WHERE " + " AND ".join(sql.where)
    group = [sql.exprs[name][1] for name in q.group_by]
    fold = _fold_per_code(sql, q)
    if fold:
        # Count per code in the loop's own order (no sort of a million rows), then sum codes into entities.
        group = [e for expr in group for e in (expr.replace(".entity_id", ".run_id"), expr.replace(".entity_id", ".idx"), expr)]
    if group:
        body += " GROUP BY " + ", ".join(group)
    kinds = dict(columns)
    in_python = fold or not all(kinds[name] in ("double", "integer", "count") for name, _ in q.order_by)
    positions = {name: i + 1 for i, (name, _) in enumerate(columns)}
    if q.order_by and not in_python:
        body += " ORDER BY " + ", ".join(f"{positions[name]}{' DESC' if desc else ''}" for name, desc in q.order_by)
    if not in_python and (q.limit is not None or q.offset):
        body += f" LIMIT {q.limit if q.limit is not None else 2 ** 62} OFFSET {q.offset}"
    return Translated(body, sql.params, columns, in_python, fold)


def _fold_per_code(sql: _Sql, q: Query) -> bool:
    """Whether to group by code and fold: GROUP BY entities of code tables, plain COUNTs only."""
    counts_only = all(p[0] == "var" or p[0] == "count" and not p[2] for p in q.projection) and not q.distinct
    # The fold merges the fetched rows by their projected columns: a group left out of them would merge too.
    every_group_projected = set(q.group_by) <= {p[1] for p in q.projection if p[0] == "var"}
    return bool(q.group_by) and counts_only and every_group_projected and all(
        sql.exprs[name][0] == "entity" and re.fullmatch(r"h?c\d+\.entity_id", sql.exprs[name][1]) for name in q.group_by)


# -- answering ---------------------------------------------------------------------------------------
def answer(engine: Engine, query: str, prefixes: dict[str, str], max_rows: int | None = None,
           timeout_s: float | None = None):
    """The ``SparqlResult`` of ``query`` computed in SQL, or None when it is outside the subset."""
    found = attempt(engine, query, prefixes, max_rows, timeout_s)
    return None if isinstance(found, str) else found


def attempt(engine: Engine, query: str, prefixes: dict[str, str], max_rows: int | None = None,
            timeout_s: float | None = None):
    """The ``SparqlResult`` of ``query`` computed in SQL, or why the SQL translation leaves it to the view
    (one line, a ``str``: ``SparqlResult.why_not_sql`` tells a researcher why a query took the slow path)."""
    from kg.query.result import SparqlResult

    try:
        q = parse(query, prefixes)
    except Unsupported as outside:
        return f"outside the subset: {outside}"
    explained = is_explanation_query(q)
    mapped = sql_predicates(q)
    if not mapped and not explained:
        return no_sql_predicates(q)
    checks = explanations.shadow_checks(q) if explained else [("SELECT 1 FROM triple WHERE p IN :p LIMIT 1", {"p": mapped})]
    with engine.connect() as conn:
        for body, params in checks:
            lists = [name for name, value in params.items() if isinstance(value, list)]
            if conn.execute(text(body).bindparams(*map(_expanding, lists)), params).first() is not None:
                return "a loaded graph states the predicates the SQL tables hold: only the view sees both"
        try:
            translated = translate_explanations(conn, q) if explained else translate(conn, q)
        except Unsupported as outside:
            return f"outside the subset: {outside}"
        names = [aggregate_alias(p) for p in q.projection]
        body, params, columns, sort_here, fold = translated
        kinds = [kind for _, kind in columns]
        with cyclic_gc_paused():
            rows = fetch_rows(conn, body, params, None if sort_here else max_rows, timeout_s)
            if fold:
                rows = fold_counts(rows, kinds)
            rows = to_terms(conn, rows, kinds)
    if sort_here:
        for name, desc in reversed(q.order_by):
            i = names.index(name)
            rows.sort(key=lambda r: order_key(r[i]), reverse=desc)
        stop = None if q.limit is None else q.offset + q.limit
        rows = rows[q.offset:stop]
    if max_rows is not None and len(rows) > max_rows:
        raise result_too_large(max_rows)
    return SparqlResult(kind="select", vars=names, rows=rows, answered_by="sql")
