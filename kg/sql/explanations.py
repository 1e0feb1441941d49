"""Explanations of a run's test groups in SQL: write them, read them back, and the RDF they become.

An explanation is what the model concluded about one test group of inputs under the task's knowledge:
for every variable of the knowledge (the inputs' symbols, the latent values, the label) the value of
the most probable explanation and its probability, and where the dataset knows them the values that
the true inputs imply. Three tables (``kg/sql/schema.py``): ``explanation`` (run, group -> members,
correct), ``explained_variable`` (run, position -> name, role, columns, member, next) and
``explained_value`` (run, group, position -> value, probability, true value).

In the run's named graph (``explanation_lines``; the vocabulary is in data/vocab.ttl)::

    run:1/explanation/7 a ns:Explanation ; prov:wasGeneratedBy run:1 ; ns:group 7 ; ns:correct false ;
        ns:binding run:1/explanation/7/12 , ... .
    run:1/explanation/7/12 ns:variable run:1/variable/c3 ; ns:value arith:n1 ; ns:probability 0.93 ;
        ns:trueValue arith:n0 .                      # and ns:member <input> for an input variable
    run:1/variable/c3 a ns:Variable ; rdfs:label "c3" ; ns:role "latent" ;
        ns:column "carry_in" , "carry_out" ; ns:next run:1/variable/c4 .

Bindings carry no ``rdf:type`` (it follows from the range of ``ns:binding``) and the variable's name
and role live once on the variable node, not on each of the G x V bindings: at N = 15 (333 groups,
61 variables) that is about 5 quads per binding, 0.1 M quads in all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, select

from kg.errors import KGError
from kg.rdf import vocab
from kg.rdf.prefixes import PROV_NS, RDF_NS, RDFS_NS, XSD_NS
from kg.rdf.terms import nt_literal
from kg.sql.schema import ExplainedValue, ExplainedVariable, Explanation, Input
from kg.sql.writes import as_array, bump, check_run, insert_rows

_NS = str(vocab.NS)
ROLES = ("input", "latent", "label")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")
#: Predicates of the explanation vocabulary, for the rule engine's facts and the SQL translation's checks.
PREDICATES = tuple(_NS + p for p in ("binding", "variable", "value", "probability", "trueValue", "member",
                                     "group", "correct", "role", "column", "next"))


@dataclass(frozen=True)
class Variable:
    """One variable the explanations bind. ``member``: for an input variable, the position of the group
    member it reads; ``next``: the name of the variable filling the same column of the next atom."""

    name: str
    role: str
    columns: tuple[str, ...] = ()
    member: int | None = None
    next: str | None = None


@dataclass
class Binding:
    variable: str
    role: str
    value: str
    probability: float
    true_value: str | None


@dataclass
class GroupExplanation:
    """One group as read back: ``members`` are input IRIs; ``correct`` None where the truth is unknown."""

    group: int
    members: list[str]
    correct: bool | None
    bindings: list[Binding] = field(default_factory=list)


def add_explanations(engine: Engine, run_id: int, variables: Sequence[Variable], members, values, probability,
                     true_values=None, correct=None, batch_size: int = 50_000) -> int:
    """Write the explanations of G groups over V variables in one transaction; returns G.

    Shapes: ``members`` (G, A) input ids; ``values`` (G, V) entity IRIs (str); ``probability`` (G, V);
    ``true_values`` (G, V) or None; ``correct`` (G,) bools or None.
    """
    names = [v.name for v in variables]
    if not names:
        raise KGError("add_explanations: no variables")
    if len(set(names)) != len(names):
        raise KGError("add_explanations: a variable is named twice")
    if any(v.role not in ROLES for v in variables):
        raise KGError(f"add_explanations: a variable's role must be one of {ROLES}")
    if any(v.next is not None and v.next not in names for v in variables):
        raise KGError("add_explanations: a variable's next names no variable")
    members = np.asarray(members, dtype=np.int64)
    values = np.asarray(values, dtype=object)
    groups = len(members)
    if members.ndim != 2 or values.shape != (groups, len(variables)):
        raise KGError(f"add_explanations: expected members (G, A) and values (G, {len(variables)}), got "
                      f"{members.shape} and {values.shape}")
    probability = as_array("probability", np.asarray(probability, dtype=np.float64).ravel(), np.float64, values.size)
    if probability.size and (probability.min() < 0 or probability.max() > 1 + 1e-6):
        raise KGError("add_explanations: probability must lie in [0, 1]")
    truth = np.full(values.shape, None, dtype=object) if true_values is None else np.asarray(true_values, dtype=object)
    if truth.shape != values.shape:
        raise KGError(f"add_explanations: true_values: expected {values.shape}, got {truth.shape}")
    right = [None] * groups if correct is None else [bool(c) for c in np.asarray(correct).ravel()]
    if len(right) != groups:
        raise KGError(f"add_explanations: correct: expected {groups} values, got {len(right)}")
    position = {name: i for i, name in enumerate(names)}
    with engine.begin() as conn:
        check_run(conn, run_id)
        if conn.execute(select(Explanation.run_id).where(Explanation.run_id == int(run_id)).limit(1)).first():
            raise KGError(f"add_explanations: run {run_id} already has explanations")
        insert_rows(conn, ExplainedVariable.__table__, ("run_id", "position", "name", "role", "columns", "member", "next_position"),
                    [(int(run_id), i, v.name, v.role, _json(list(v.columns)), v.member,
                      None if v.next is None else position[v.next]) for i, v in enumerate(variables)])
        insert_rows(conn, Explanation.__table__, ("run_id", "group_idx", "members", "correct"),
                    [(int(run_id), g, _json(row), ok) for g, (row, ok) in enumerate(zip(members.tolist(), right))])
        rows = [(int(run_id), g, p, str(value), prob, None if true is None else str(true))
                for (g, p), value, prob, true in zip(np.ndindex(*values.shape), values.ravel().tolist(),
                                                     probability.clip(0, 1).tolist(), truth.ravel().tolist())]
        for start in range(0, len(rows), batch_size):
            insert_rows(conn, ExplainedValue.__table__, ("run_id", "group_idx", "position", "value", "probability", "true_value"),
                        rows[start:start + batch_size])
        bump(conn, vocab.run_iri(run_id))
    return groups


def _json(value) -> str:
    return json.dumps(value)


def delete_explanations(conn: Connection, run_id: int) -> None:
    for table in (ExplainedValue, Explanation, ExplainedVariable):
        conn.execute(delete(table).where(table.run_id == int(run_id)))


def group_count(conn: Connection, run_id: int) -> int:
    return int(conn.execute(select(func.count()).where(Explanation.run_id == int(run_id))).scalar_one())


def read_explanations(conn: Connection, run_id: int, groups: Sequence[int] | None = None,
                      wrong: bool = False) -> list[GroupExplanation]:
    """The explanations of ``groups`` (all when None; only the wrongly predicted with ``wrong``), in
    group order; an unknown group raises ``KGError`` naming it."""
    check_run(conn, run_id)
    count = group_count(conn, run_id)
    for group in groups or ():
        if not 0 <= int(group) < count:
            raise KGError(f"run {run_id} has no test group {group} (its explanations cover groups 0-{count - 1})"
                          if count else f"run {run_id} has no explanations")
    query = select(Explanation.group_idx, Explanation.members, Explanation.correct).where(Explanation.run_id == int(run_id))
    if groups:
        query = query.where(Explanation.group_idx.in_([int(g) for g in groups]))
    if wrong:
        query = query.where(Explanation.correct.is_(False))
    found = {g: GroupExplanation(g, members, correct) for g, members, correct in conn.execute(query.order_by(Explanation.group_idx))}
    if not found:
        return []
    inputs = {i for e in found.values() for i in e.members}
    iris = {i: vocab.input_iri(d, s, k) for i, d, s, k in
            conn.execute(select(Input.id, Input.dataset, Input.split, Input.key).where(Input.id.in_(inputs)))}
    for e in found.values():
        e.members = [iris[i] for i in e.members]
    variables = dict((p, (n, r)) for p, n, r in conn.execute(
        select(ExplainedVariable.position, ExplainedVariable.name, ExplainedVariable.role).where(ExplainedVariable.run_id == int(run_id))))
    values = select(ExplainedValue.group_idx, ExplainedValue.position, ExplainedValue.value, ExplainedValue.probability,
                    ExplainedValue.true_value).where(ExplainedValue.run_id == int(run_id))
    if groups or wrong:
        values = values.where(ExplainedValue.group_idx.in_(list(found)))
    for g, p, value, prob, true in conn.execute(values.order_by(ExplainedValue.group_idx, ExplainedValue.position)):
        name, role = variables[p]
        found[g].bindings.append(Binding(name, role, value, prob, true))
    return list(found.values())


def _variables(conn: Connection, run_id: int) -> list:
    """The rows of a run's ``explained_variable``, by position (attributes named as the columns)."""
    table = ExplainedVariable.__table__
    return conn.execute(select(table).where(table.c.run_id == int(run_id)).order_by(table.c.position)).all()


def is_iri(value: str) -> bool:
    """Whether a stored value is stated as an IRI (else as a plain literal: a relation column's text)."""
    return bool(_SCHEME.match(value))


def _term(value: str) -> str:
    """An entity IRI as ``<iri>``; anything a relation's column gave that is no IRI, as a plain literal."""
    return f"<{value}>" if is_iri(value) else nt_literal(value)


def _triples(conn: Connection, run_id: int, groups: Sequence[int] | None, with_members: bool = True,
             batch: int = 100_000) -> Iterator[list[tuple[str, str, str, str, float]]]:
    """A run's explanations (of ``groups`` only, when given) as batches of ``(subject, predicate, object,
    kind, confidence)``, the one statement of the vocabulary that the view's lines and the rule engine's
    facts are both written from. ``kind`` says how the object is stated: ``iri``, ``literal`` (plain
    text), ``integer``, ``boolean``, ``double`` (its ``repr``) or ``term`` (an entity IRI, or a
    relation column's text). ``ns:value`` carries the value's probability as its confidence, the rest 1."""
    variables = _variables(conn, run_id)
    if not variables:
        return
    r = vocab.run_iri(run_id)
    iris = [vocab.variable_iri(run_id, v.name) for v in variables]
    out = []
    for v, iri in zip(variables, iris):
        out += [(iri, RDF_NS + "type", _NS + "Variable", "iri", 1.0), (iri, RDFS_NS + "label", v.name, "literal", 1.0),
                (iri, _NS + "role", v.role, "literal", 1.0), (iri, PROV_NS + "wasGeneratedBy", r, "iri", 1.0)]
        out += [(iri, _NS + "column", c, "literal", 1.0) for c in v.columns]
        if v.next_position is not None:
            out.append((iri, _NS + "next", iris[v.next_position], "iri", 1.0))
    query = select(Explanation.group_idx, Explanation.members, Explanation.correct).where(Explanation.run_id == int(run_id))
    if groups is not None:
        query = query.where(Explanation.group_idx.in_([int(g) for g in groups]))
    members: dict[int, list[int]] = {}
    for g, ids, correct in conn.execute(query):
        x = vocab.explanation_iri(run_id, g)
        out += [(x, RDF_NS + "type", _NS + "Explanation", "iri", 1.0), (x, PROV_NS + "wasGeneratedBy", r, "iri", 1.0),
                (x, _NS + "group", str(g), "integer", 1.0)]
        if correct is not None:
            out.append((x, _NS + "correct", "true" if correct else "false", "boolean", 1.0))
        members[g] = ids
    yield out
    inputs = {i for ids in members.values() for i in ids} if with_members else set()
    input_iris = {i: vocab.input_iri(d, s, k) for i, d, s, k in
                  conn.execute(select(Input.id, Input.dataset, Input.split, Input.key).where(Input.id.in_(inputs)))}
    member_of = {v.position: v.member for v in variables if v.member is not None} if with_members else {}
    values = select(ExplainedValue.group_idx, ExplainedValue.position, ExplainedValue.value, ExplainedValue.probability,
                    ExplainedValue.true_value).where(ExplainedValue.run_id == int(run_id))
    if groups is not None:
        values = values.where(ExplainedValue.group_idx.in_([int(g) for g in groups]))
    for rows in conn.execution_options(yield_per=batch).execute(values).partitions():
        out = []
        for g, p, value, prob, true in rows:
            b = vocab.binding_iri(run_id, g, p)
            out += [(vocab.explanation_iri(run_id, g), _NS + "binding", b, "iri", 1.0),
                    (b, _NS + "variable", iris[p], "iri", 1.0), (b, _NS + "value", value, "term", float(prob)),
                    (b, _NS + "probability", repr(float(prob)), "double", 1.0)]
            if true is not None:
                out.append((b, _NS + "trueValue", true, "term", 1.0))
            if p in member_of:
                out.append((b, _NS + "member", input_iris[members[g][member_of[p]]], "iri", 1.0))
        yield out


_OBJECT = {
    "iri": lambda o: f"<{o}>",
    "literal": nt_literal,
    "integer": lambda o: f'"{o}"^^<{XSD_NS}integer>',
    "boolean": lambda o: f'"{o}"^^<{XSD_NS}boolean>',
    "double": lambda o: f'"{o}"^^<{XSD_NS}double>',
    "term": _term,
}


def explanation_lines(conn: Connection, run_id: int, tail: str, groups: Sequence[int] | None = None,
                      batch: int = 100_000) -> Iterator[str]:
    """The N-Quads (or N-Triples) lines of a run's explanations (of ``groups`` only, when given)."""
    for part in _triples(conn, run_id, groups, batch=batch):
        yield "".join(f"<{s}> <{p}> {_OBJECT[kind](o)}{tail}" for s, p, o, kind, _ in part)


def explanation_facts(conn: Connection, run_id: int, predicates: set[str]) -> Iterator[tuple[str, str, str, float]]:
    """``(subject, predicate, object, confidence)`` for the rule engine: the explanation facts of a run
    whose predicate the rules use, literals as their text. ``ns:value`` facts carry the value's
    probability as their confidence, the others 1."""
    wanted = set(predicates) & (set(PREDICATES) | {RDF_NS + "type"})
    if not wanted:
        return
    for part in _triples(conn, run_id, None, with_members=_NS + "member" in wanted):
        yield from ((s, p, o, confidence) for s, p, o, _, confidence in part if p in wanted)
