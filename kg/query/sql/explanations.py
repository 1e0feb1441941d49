"""SPARQL over the explanation vocabulary answered in SQL (the explanation tables), Oxigraph as the fallback.

Oxigraph joins a run's 20 000 bindings (N = 15: 333 groups x 61 variables) one index seek at a time,
about a second for a query over all of them; the tables answer in milliseconds. The view's triples
come from the tables by the mapping of ``kg/sql/explanations.py``, so a query that only uses that
mapping is translated back, as ``kg.query.sql.translate`` does for assignments. Its subjects are
variables, each a node of one kind, told by the predicates it has:

- an explanation (``a ns:Explanation``, ``ns:group``, ``ns:correct``, ``ns:binding``, and
  ``prov:wasGeneratedBy``): a row of ``explanation``;
- a binding (``ns:variable``, ``ns:value``, ``ns:probability``, ``ns:trueValue``): a row of
  ``explained_value``;
- a variable (``a ns:Variable``, ``ns:role``, ``ns:next``, ``rdfs:label``, ``prov:wasGeneratedBy``):
  a row of ``explained_variable``; also the object of ``ns:variable`` and ``ns:next``.

Node variables join and are counted but not projected; ``ns:member`` and ``ns:column`` (a JSON list in
SQL) are left to the view. FILTERs compare numbers, and values, names, roles and booleans with ``=``
and ``!=``. Only complete runs are read. A loaded graph that states one of these predicates about a
run's IRIs (or any of the vocabulary's own predicates at all) sends the query to the view.
"""

from __future__ import annotations

from kg.rdf import vocab
from kg.sql.explanations import is_iri
from kg.rdf.prefixes import PROV_NS, RDF_TYPE, RDFS_NS, XSD_NS
from kg.query.sql.subset import EXPLANATION_PREDICATES, Query, Unsupported

_NS = str(vocab.NS)
EXPLANATION, VARIABLE = _NS + "Explanation", _NS + "Variable"
GENERATED, LABEL = PROV_NS + "wasGeneratedBy", RDFS_NS + "label"
#: predicate -> (node kind of the subject, SQL column, kind of the object)
COLUMNS = {
    _NS + "group": ("x", "group_idx", "integer"), _NS + "correct": ("x", "correct", "boolean"),
    _NS + "binding": ("x", None, "b"),
    _NS + "variable": ("b", None, "v"), _NS + "value": ("b", "value", "term"),
    _NS + "probability": ("b", "probability", "double"), _NS + "trueValue": ("b", "true_value", "term"),
    _NS + "role": ("v", "role", "string"), LABEL: ("v", "name", "string"), _NS + "next": ("v", None, "v"),
}
#: The vocabulary's own predicates: a loaded graph using any of them sends a query to the view.
OWN = sorted(EXPLANATION_PREDICATES)
_TABLES = {"x": "explanation", "b": "explained_value", "v": "explained_variable"}


def shadow_checks(q: Query) -> list[tuple[str, dict]]:
    """SQL that finds a loaded triple the translation would not see (any row: answer in the view)."""
    used = sorted({p for _, p, _ in q.patterns} & set(OWN))
    checks = [("SELECT 1 FROM triple WHERE p IN :p LIMIT 1", {"p": used})] if used else []
    run_base = vocab.RUN_BASE.replace("%", r"\%").replace("_", r"\_") + "%"
    checks.append(("SELECT 1 FROM triple WHERE s LIKE :base ESCAPE '\\' AND (p IN (:label, :generated) OR "
                   "(p = :type AND o IN (:x, :v))) LIMIT 1",
                   {"base": run_base, "label": LABEL, "generated": GENERATED, "type": RDF_TYPE,
                    "x": EXPLANATION, "v": VARIABLE}))
    return checks


def _kinds(q: Query, patterns: list[tuple]) -> dict[str, str]:
    """Each subject variable's node kind, from its predicates and from the objects that point at it."""
    kinds: dict[str, str] = {}

    def give(name: str, kind: str) -> None:
        if kinds.setdefault(name, kind) != kind:
            raise Unsupported(f"?{name} is two kinds of node")

    for s, p, o in patterns:
        if s[0] != "var":
            raise Unsupported("a constant subject")
        if p == RDF_TYPE:
            if o not in (("iri", EXPLANATION), ("iri", VARIABLE)):
                raise Unsupported("another type")
            give(s[1], "x" if o[1] == EXPLANATION else "v")
        elif p in COLUMNS:
            kind, _, target = COLUMNS[p]
            give(s[1], kind)
            if target in ("b", "v"):
                if o[0] != "var":
                    raise Unsupported("a constant node")
                give(o[1], target)
        elif p != GENERATED:
            raise Unsupported(f"predicate <{p}>")
    for s, p, _ in patterns:
        if p == GENERATED and s[1] not in kinds:
            raise Unsupported("prov:wasGeneratedBy of an unknown node")
        if p == GENERATED and kinds[s[1]] == "b":
            raise Unsupported("a binding has no prov:wasGeneratedBy")
    return kinds


def translate(q: Query, sql, term_binder) -> None:
    """Fill ``sql`` (``kg.query.sql.translate._Sql``) with the tables, joins and terms of ``q``'s
    patterns; ``term_binder(sql, kind, expr, term)`` binds a variable or compares with a constant."""
    patterns = [tuple(q.values.get(t[1], t) if t[0] == "var" else t for t in p) for p in q.patterns]
    kinds = _kinds(q, patterns)
    alias = {name: f"{kind}{i}" for i, (name, kind) in enumerate(kinds.items())}
    seen: set[tuple[str, str]] = set()
    for name, kind in kinds.items():
        a = alias[name]
        sql.exprs[name] = ("node", f"{a}.run_id")  # counted as rows; never projected (checked below)
        sql.tables.append(f"{_TABLES[kind]} {a}")
        sql.where.append(f"{a}.run_id IN (SELECT id FROM run WHERE complete)")
    for s, p, o in patterns:
        a = alias[s[1]]
        if (s[1], p) in seen and p not in (RDF_TYPE,):
            raise Unsupported("a predicate twice on one node")
        seen.add((s[1], p))
        if p == RDF_TYPE:
            continue
        if p == GENERATED:
            term_binder(sql, "run", f"{a}.run_id", o)
            continue
        _, column, target = COLUMNS[p]
        if target == "b":  # x ns:binding b
            b = alias[o[1]]
            sql.where.append(f"{b}.run_id = {a}.run_id AND {b}.group_idx = {a}.group_idx")
        elif target == "v" and p == _NS + "variable":
            v = alias[o[1]]
            sql.where.append(f"{v}.run_id = {a}.run_id AND {v}.position = {a}.position")
        elif target == "v":  # v ns:next w
            w = alias[o[1]]
            sql.where.append(f"{w}.run_id = {a}.run_id AND {w}.position = {a}.next_position")
        else:
            if column in ("correct", "true_value"):  # NULL: the view states no such triple
                sql.where.append(f"{a}.{column} IS NOT NULL")
            term_binder(sql, target, f"{a}.{column}", o)
    node_vars = set(kinds)
    projected = {p[1] for p in q.projection if p[0] == "var"} | set(q.group_by) | {n for n, _ in q.order_by}
    counted_distinct = {p[1] for p in q.projection if p[0] == "count" and p[2]}
    filtered = {t[1] for left, _, right in q.comparisons for t in (left, right) if t[0] == "var"}
    if node_vars & (projected | counted_distinct | filtered):
        raise Unsupported("a node variable projected, grouped, ordered, filtered or counted distinct")


def compare(sql, left: tuple, op: str, right: tuple, numeric) -> str:
    """One FILTER comparison as SQL: numbers through ``numeric``; values, names, roles, booleans and runs
    by ``=`` and ``!=`` with each other or with a constant of their kind."""
    kinds = [sql.exprs.get(t[1], (None, None))[0] if t[0] == "var" else None for t in (left, right)]
    if any(k in ("double", "integer") for k in kinds) or (None in kinds and kinds == [None, None]):
        sides = [numeric(sql, t) for t in (left, right)]
        return f"{sides[0]} {'<>' if op == '!=' else op} {sides[1]}"
    if op not in ("=", "!="):
        raise Unsupported("ordering of terms")
    sides = []
    known = next(k for k in kinds if k is not None)
    for term, kind in zip((left, right), kinds):
        if term[0] == "var":
            if kind not in ("term", "string", "boolean", "run") or kind != known and {kind, known} != {"term"}:
                raise Unsupported("comparison of unlike terms")
            sides.append(sql.exprs[term[1]][1])
        else:
            sides.append(_constant(sql, known, term))
    if None in sides:  # a constant no value equals: = never holds, != always does
        return "1 = 0" if op == "=" else "1 = 1"
    return f"{sides[0]} {'<>' if op == '!=' else op} {sides[1]}"


def _constant(sql, kind: str, term: tuple) -> str | None:
    """The SQL of a constant compared with a column of ``kind``; None where no stored value can equal it."""
    if kind == "term" and term[0] == "iri":
        return sql.param(term[1])
    if kind == "term" and term[0] == "lit" and term[2] == XSD_NS + "string":
        # values are stated as IRIs exactly when their text is one (kg.sql.explanations.is_iri)
        return None if is_iri(term[1]) else sql.param(term[1])
    if kind == "string" and term[0] == "lit" and term[2] == XSD_NS + "string":
        return sql.param(term[1])
    if kind == "boolean" and term[0] == "lit" and term[2] == XSD_NS + "boolean" and term[1] in ("true", "false"):
        return "TRUE" if term[1] == "true" else "FALSE"
    if kind == "run" and term[0] == "iri":
        rest = term[1][len(vocab.RUN_BASE):] if term[1].startswith(vocab.RUN_BASE) else ""
        return str(int(rest)) if rest.isdigit() and vocab.run_iri(int(rest)) == term[1] else None
    raise Unsupported("a constant of another kind")


def bind_constant(sql, kind: str, expr: str, term: tuple) -> None:
    """``expr`` (a column of the given kind) equals the constant ``term``, or no row matches."""
    try:
        value = _constant(sql, kind, term)
    except Unsupported:
        if kind in ("integer", "double") and term[0] == "lit":
            raise
        sql.where.append("1 = 0")  # an IRI where a number is, a string where an IRI is: never equal
        return
    sql.where.append(f"{expr} = {value}" if value is not None else "1 = 0")
