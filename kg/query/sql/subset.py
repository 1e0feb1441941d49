"""The subset of SPARQL that ``kg.query.sql.translate`` answers in SQL, parsed into a small query object.

A hand-written parser over ``kg.query.guard``'s tokens (microseconds for the queries it accepts,
where rdflib's parser takes 25 ms): ``SELECT [DISTINCT]`` of variables, ``COUNT([DISTINCT] ?v |
*) AS ?n`` and ``AVG(IF(comparison, number, number)) AS ?share``, one group of triple patterns
(``;`` and ``,`` lists, ``a``, the path ``rdf:type/rdfs:subClassOf*``), ``FILTER`` comparisons
joined by ``&&``, one row of ``VALUES``, ``GROUP BY``, ``ORDER BY [ASC|DESC]``, ``LIMIT``, ``OFFSET``.
Anything else raises ``Unsupported``: the caller then asks Oxigraph, which also reports syntax errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from kg.rdf.prefixes import PREFIXES, RDF_TYPE, RDFS_SUBCLASS_OF, XSD_NS
from kg.query import lexer

SUBCLASS, XSD = RDFS_SUBCLASS_OF, XSD_NS
#: The predicate a ``rdf:type/rdfs:subClassOf*`` path is parsed into.
TYPE_CLOSURE = "type-closure"
_COMPARISONS = {"=", "!=", "<", ">", "<=", ">="}
_NS = PREFIXES["ns"]
INPUT, ENTITY, CONFIDENCE, SLOT, HAS_CONCEPT = (_NS + p for p in ("input", "entity", "confidence", "slot", "hasConcept"))
#: The predicates of assignment nodes, by the ``assignment`` column they come from.
ASSIGNMENT_PREDICATES = {INPUT: "input", ENTITY: "entity", CONFIDENCE: "confidence", SLOT: "slot"}
#: The explanation vocabulary's own predicates and types (``kg/sql/explanations.py``).
EXPLANATION_PREDICATES = frozenset(_NS + p for p in ("group", "correct", "binding", "variable", "value", "probability",
                                                     "trueValue", "role", "next", "member", "column"))
EXPLANATION_TYPES = frozenset({_NS + "Explanation", _NS + "Variable"})


class Unsupported(Exception):
    """The query is outside the translated subset (never shown to a user: Oxigraph answers instead)."""


# -- the query object ----------------------------------------------------------------------------------------
@dataclass
class Query:
    distinct: bool = False
    # ("var", name) | ("count", name or "*", distinct, alias) | ("avg_if", (left, op, right), x, y, alias)
    projection: list = field(default_factory=list)
    patterns: list = field(default_factory=list)  # (subject, predicate, object); terms: ("var", n) | ("iri", s) | ("lit", value, datatype)
    filters: list = field(default_factory=list)  # (left, op, right)
    values: dict = field(default_factory=dict)  # name -> term
    group_by: list = field(default_factory=list)
    order_by: list = field(default_factory=list)  # (name, descending)
    limit: int | None = None
    offset: int = 0

    @property
    def averaged(self) -> dict[str, tuple]:
        """Each ``AVG(IF(comparison, x, y)) AS ?alias``'s comparison, by alias."""
        return {p[-1]: p[1] for p in self.projection if p[0] == "avg_if"}

    @property
    def comparisons(self) -> list[tuple]:
        """Every comparison of the query: its FILTERs' and those inside its ``AVG(IF(...))``."""
        return self.filters + list(self.averaged.values())


class _Tokens:
    def __init__(self, query: str, prefixes: dict[str, str]):
        self.items = lexer.significant(query)
        self.pos, self.prefixes = 0, dict(prefixes)

    def peek(self, offset: int = 0) -> tuple[str, str]:
        i = self.pos + offset
        return self.items[i] if i < len(self.items) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":  # the view then names the syntax error; the reason says why SQL did not answer
            raise Unsupported("the query ends too early")
        self.pos += 1
        return token

    def word(self, *words: str) -> bool:
        kind, value = self.peek()
        if kind == "word" and value.upper() in words:
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            raise Unsupported(value)

    def iri(self, kind: str, value: str) -> str:
        if kind == "iri":
            return value[1:-1]
        if kind == "pname":
            prefix, _, local = value.partition(":")
            if prefix not in self.prefixes or "\\" in local:
                raise Unsupported(value)
            return self.prefixes[prefix] + local
        raise Unsupported(value)

    def term(self) -> tuple:
        kind, value = self.take()
        if kind == "var":
            return ("var", value[1:])
        if kind in ("iri", "pname"):
            return ("iri", self.iri(kind, value))
        if kind == "word" and value in ("true", "false"):
            return ("lit", value, XSD + "boolean")
        if kind == "number":
            datatype = "double" if "e" in value.lower() else "decimal" if "." in value else "integer"
            return ("lit", value, XSD + datatype)
        if kind == "short_string" and "\\" not in value:
            if self.peek()[1] == "^^":
                self.take()
                return ("lit", value[1:-1], self.iri(*self.take()))
            if self.peek()[0] == "pname" or self.peek()[1].startswith("@"):
                raise Unsupported("language tag")
            return ("lit", value[1:-1], XSD + "string")
        raise Unsupported(value)


def parse(query: str, prefixes: dict[str, str]) -> Query:
    """The query in the translated subset; raises ``Unsupported`` for anything else."""
    tokens, q = _Tokens(query, prefixes), Query()
    while tokens.word("PREFIX"):
        kind, name = tokens.take()
        iri_kind, iri = tokens.take()
        if kind != "pname" or not name.endswith(":") or iri_kind != "iri":
            raise Unsupported("PREFIX")
        tokens.prefixes[name[:-1]] = iri[1:-1]
    if not tokens.word("SELECT"):
        raise Unsupported("not a SELECT")
    q.distinct = tokens.word("DISTINCT")
    while tokens.peek()[0] in ("var", "open") and tokens.peek()[1] != "{":
        if tokens.peek()[0] == "var":
            q.projection.append(("var", tokens.take()[1][1:]))
            continue
        q.projection.append(_parse_aggregate(tokens))
    if not q.projection:
        raise Unsupported("SELECT *")
    tokens.word("WHERE")
    tokens.expect("{")
    while tokens.peek()[1] != "}":
        if tokens.word("FILTER"):
            _parse_filter(tokens, q)
        elif tokens.word("VALUES"):
            _parse_values(tokens, q)
        else:
            _parse_triples(tokens, q)
        if tokens.peek()[1] == ".":
            tokens.take()
    tokens.expect("}")
    if tokens.word("GROUP"):
        if not tokens.word("BY"):
            raise Unsupported("GROUP")
        while tokens.peek()[0] == "var":
            q.group_by.append(tokens.take()[1][1:])
    if tokens.word("ORDER"):
        if not tokens.word("BY"):
            raise Unsupported("ORDER")
        while True:
            if tokens.peek()[0] == "var":
                q.order_by.append((tokens.take()[1][1:], False))
            elif tokens.peek()[0] == "word" and tokens.peek()[1].upper() in ("ASC", "DESC"):
                descending = tokens.take()[1].upper() == "DESC"
                tokens.expect("(")
                kind, value = tokens.take()
                if kind != "var":
                    raise Unsupported("ORDER BY expression")
                tokens.expect(")")
                q.order_by.append((value[1:], descending))
            else:
                break
    while tokens.peek()[0] == "word" and tokens.peek()[1].upper() in ("LIMIT", "OFFSET"):
        word = tokens.take()[1].upper()
        kind, value = tokens.take()
        if kind != "number" or not value.isdigit() or int(value) >= 2 ** 62:
            raise Unsupported(word)  # beyond SQL's 64-bit integers: the view answers (or refuses) it
        if word == "LIMIT":
            q.limit = int(value)
        else:
            q.offset = int(value)
    if tokens.peek()[0] != "end":
        raise Unsupported(tokens.peek()[1])
    return q


def _parse_aggregate(tokens: _Tokens) -> tuple:
    """``(COUNT(...) AS ?n)`` or ``(AVG(IF(...)) AS ?share)``: a projection item with its alias last."""
    tokens.expect("(")
    if tokens.word("AVG"):
        aggregate = _parse_average_of_if(tokens)
    elif tokens.word("COUNT"):
        tokens.expect("(")
        distinct = tokens.word("DISTINCT")
        kind, value = tokens.take()
        counted = value[1:] if kind == "var" else "*" if value == "*" else None
        if counted is None:
            raise Unsupported("COUNT argument")
        tokens.expect(")")
        aggregate = ("count", counted, distinct)
    else:
        raise Unsupported("expression in SELECT")
    if not tokens.word("AS"):
        raise Unsupported("AS")
    kind, alias = tokens.take()
    if kind != "var":
        raise Unsupported("AS")
    tokens.expect(")")
    return (*aggregate, alias[1:])


def _parse_average_of_if(tokens: _Tokens) -> tuple:
    """``AVG(IF(left op right, x, y))`` after ``AVG``, with x and y integer or decimal constants:
    ("avg_if", (left, op, right), x, y). The share of rows where a comparison holds, as
    ``08_accuracy_per_position.rq`` asks it; any other AVG is left to the view."""
    tokens.expect("(")
    if not tokens.word("IF"):
        raise Unsupported("AVG of other than IF(comparison, number, number)")
    tokens.expect("(")
    left = tokens.term()
    op = tokens.take()[1]
    if op not in _COMPARISONS:
        raise Unsupported(op)
    condition = (left, op, tokens.term())
    branches = []
    for _ in range(2):
        tokens.expect(",")
        branch = tokens.term()
        if branch[0] != "lit" or branch[2] not in (XSD + "integer", XSD + "decimal") or not _small_decimal(branch[1]):
            raise Unsupported("IF branch other than an integer or decimal constant of at most 10^6")
        branches.append(branch)
    tokens.expect(")")
    tokens.expect(")")
    return ("avg_if", condition, *branches)


def _small_decimal(lexical: str) -> bool:
    """Whether a constant is exact in Oxigraph's decimal (18 fractional digits) and small enough that no
    sum of it over rows overflows there (its decimal overflows near 1.7e20: Oxigraph's AVG is then unbound)."""
    try:
        value = Decimal(lexical)
    except InvalidOperation:
        return False
    return value.is_finite() and abs(value) <= 10 ** 6 and value.as_tuple().exponent >= -18


def aggregate_alias(item: tuple) -> str:
    """The variable a projection item binds: its name, or an aggregate's ``AS`` alias."""
    return item[1] if item[0] == "var" else item[-1]


def _parse_filter(tokens: _Tokens, q: Query) -> None:
    tokens.expect("(")
    while True:
        left = tokens.term()
        op = tokens.take()[1]
        if op not in _COMPARISONS:
            raise Unsupported(op)
        q.filters.append((left, op, tokens.term()))
        if tokens.peek()[1] != "&&":
            break
        tokens.take()
    tokens.expect(")")


def _parse_values(tokens: _Tokens, q: Query) -> None:
    if tokens.peek()[0] == "var":
        names = [tokens.take()[1][1:]]
        tokens.expect("{")
        rows = [[tokens.term()]] if tokens.peek()[1] != "}" else []
        tokens.expect("}")
    else:
        tokens.expect("(")
        names = []
        while tokens.peek()[0] == "var":
            names.append(tokens.take()[1][1:])
        tokens.expect(")")
        tokens.expect("{")
        rows = []
        while tokens.peek()[1] == "(":
            tokens.take()
            rows.append([tokens.term() for _ in names])
            tokens.expect(")")
        tokens.expect("}")
    if len(rows) != 1 or any(t[0] == "var" for t in rows[0]) or set(names) & set(q.values):
        raise Unsupported("VALUES with other than one row")
    q.values.update(zip(names, rows[0]))


def _parse_triples(tokens: _Tokens, q: Query) -> None:
    subject = tokens.term()
    if subject[0] == "lit":
        raise Unsupported("literal subject")
    while True:
        predicate = _parse_predicate(tokens)
        while True:
            q.patterns.append((subject, predicate, tokens.term()))
            if tokens.peek()[1] != ",":
                break
            tokens.take()
        if tokens.peek()[1] != ";":
            return
        tokens.take()
        if tokens.peek()[1] in (".", "}"):
            return


def _parse_predicate(tokens: _Tokens) -> str:
    kind, value = tokens.take()
    if kind == "word" and value == "a":
        return RDF_TYPE
    first = tokens.iri(kind, value)
    if tokens.peek()[1] != "/":
        return first
    tokens.take()
    second = tokens.iri(*tokens.take())
    if first != RDF_TYPE or second != SUBCLASS or tokens.take()[1] != "*":
        raise Unsupported("property path")
    return TYPE_CLOSURE


def _named_input(q: Query) -> str | None:
    """The input IRI ``q`` names (``<input> ns:hasConcept ?e``, ``?a ns:input <input>``), if any."""
    for s, p, o in q.patterns:
        subject, obj = (q.values.get(t[1], t) if t[0] == "var" else t for t in (s, o))
        if p == HAS_CONCEPT and subject[0] == "iri":
            return subject[1]
        if p == INPUT and obj[0] == "iri":
            return obj[1]
    return None


def sql_predicates(q: Query) -> list[str]:
    """The predicates of ``q`` that ``kg.query.sql.translate`` maps to SQL tables, or none where SQL would not
    pay: a query without them, or one that names an input (``<input> ns:hasConcept ?e``,
    ``?a ns:input <input>``), which Oxigraph answers from one index seek."""
    if _named_input(q) is not None:
        return []
    used = {p for _, p, _ in q.patterns}
    return sorted(used & (set(ASSIGNMENT_PREDICATES) | {HAS_CONCEPT}))


def no_sql_predicates(q: Query) -> str:
    """Why ``sql_predicates`` found nothing to translate in ``q`` (one line)."""
    named = _named_input(q)
    if named is not None:
        return f"it names the input <{named}>: Oxigraph finds it with one index seek"
    return "no pattern over a run's symbols or explanations"


def is_explanation_query(q: Query) -> bool:
    """Whether ``q`` uses the explanation vocabulary (then only ``kg.query.sql.explanations`` may answer it)."""
    return any(p in EXPLANATION_PREDICATES or (p == RDF_TYPE and o[0] == "iri" and o[1] in EXPLANATION_TYPES)
               for _, p, o in q.patterns)


def may_answer_in_sql(query: str, prefixes: dict[str, str]) -> bool:
    """Whether ``kg.query.sql.translate`` may answer ``query`` (it still declines queries it cannot translate,
    or whose predicates a loaded graph also uses): ``neurosym query`` leaves those to the full store."""
    try:
        q = parse(query, prefixes)
        return bool(sql_predicates(q)) or is_explanation_query(q)
    except Unsupported:
        return False
