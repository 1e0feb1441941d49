"""Answers to the hot assignment-level questions computed in SQL, equal to their SPARQL forms.

At a million assignments a triple store joins node by node (micro-seconds per hop); SQL answers the
same questions from one covering index (``ix_assignment_code``) in milliseconds. Class membership
(``rdf:type/rdfs:subClassOf*``) is evaluated over the KG's triples with a recursive CTE. Each
function names the SPARQL query it is equal to (the benchmark asserts the equality).
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select, text

from kg.errors import KGError
from kg.sql.schema import Alignment, Assignment, Code, Entity, Input
from kg.rdf.prefixes import RDF_TYPE, RDFS_SUBCLASS_OF


#: A class and its subclasses (``rdfs:subClassOf*`` over the loaded graphs), as the relation ``sub(cls)``.
_SUBCLASSES_CTE = """
WITH RECURSIVE sub(cls) AS (
    SELECT :cls
    UNION
    SELECT t.s FROM triple t JOIN sub ON t.o = sub.cls
    WHERE t.p = :subclass AND t.o_kind = 'iri' AND t.s_kind = 'iri'
)
"""
_CLASS_MEMBERS = _SUBCLASSES_CTE + """
SELECT DISTINCT e.id FROM triple t JOIN sub ON t.o = sub.cls JOIN entity e ON e.iri = t.s
WHERE t.p = :type AND t.o_kind = 'iri'
"""


def subclasses(conn: Connection, class_iri: str) -> set[str]:
    """``class_iri`` and every class below it by ``rdfs:subClassOf`` triples of the loaded graphs."""
    rows = conn.execute(text(_SUBCLASSES_CTE + "SELECT cls FROM sub"), {"cls": class_iri, "subclass": RDFS_SUBCLASS_OF})
    return {cls for (cls,) in rows}


#: Incomplete runs (still being written, or left by a killed command) are not part of any answer.
_COMPLETE = " AND a.run_id IN (SELECT id FROM run WHERE complete)"


def _run_filter(run_id: int | None) -> str:
    return _COMPLETE if run_id is None else " AND a.run_id = :run" + _COMPLETE


def count_inputs_in_class(conn: Connection, class_iri: str, min_confidence: float, run_id: int | None) -> int:
    """``SELECT (COUNT(DISTINCT ?i) AS ?n) WHERE { ?e rdf:type/rdfs:subClassOf* ?class .
    ?a ns:entity ?e ; ns:confidence ?c ; ns:input ?i . FILTER(?c > ?min) }`` (rank-0 rows)."""
    members = [r for (r,) in conn.execute(text(_CLASS_MEMBERS), {"cls": class_iri, "subclass": RDFS_SUBCLASS_OF, "type": RDF_TYPE})]
    if not members:
        return 0
    sql = text(
        "SELECT COUNT(DISTINCT a.input_id) FROM code c JOIN assignment a"
        " ON a.run_id = c.run_id AND a.rank = 0 AND a.code = c.idx"
        f" WHERE c.entity_id IN ({', '.join(str(int(m)) for m in members)}) AND a.confidence > :min" + _run_filter(run_id)
    )
    return int(conn.execute(sql, {"min": min_confidence, "run": run_id}).scalar_one())


def concept_counts(conn: Connection, run_id: int | None) -> dict[str, int]:
    """``SELECT ?e (COUNT(?i) AS ?n) WHERE { ?i ns:hasConcept ?e } GROUP BY ?e``: entity IRI -> count."""
    # Count per code from the index first (no row access), then fold codes into their entities.
    per_code = text(
        "SELECT a.run_id, a.code, COUNT(*) FROM assignment a WHERE a.rank = 0" + _run_filter(run_id) + " GROUP BY a.run_id, a.code"
    )
    entity_of = {
        (r, c): iri
        for r, c, iri in conn.execute(text("SELECT c.run_id, c.idx, e.iri FROM code c JOIN entity e ON e.id = c.entity_id"))
    }
    counts: dict[str, int] = {}
    runs = conn.execute(text("SELECT COUNT(DISTINCT a.run_id) FROM assignment a WHERE 1 = 1" + _run_filter(run_id)), {"run": run_id}).scalar_one()
    slots = conn.execute(text("SELECT 1 FROM assignment a WHERE a.slot > 0" + _run_filter(run_id) + " LIMIT 1"), {"run": run_id}).first()
    multi = runs > 1 or slots is not None
    if multi:
        # Several top symbols per input (slots or runs): count distinct (input, entity) pairs as RDF does.
        sql = text(
            "SELECT e.iri, COUNT(DISTINCT a.input_id) FROM assignment a JOIN code c ON c.run_id = a.run_id AND c.idx = a.code"
            " JOIN entity e ON e.id = c.entity_id WHERE a.rank = 0" + _run_filter(run_id) + " GROUP BY e.iri"
        )
        return {iri: int(n) for iri, n in conn.execute(sql, {"run": run_id})}
    for r, c, n in conn.execute(per_code, {"run": run_id}):
        iri = entity_of.get((r, c))
        if iri is not None:
            counts[iri] = counts.get(iri, 0) + int(n)
    return counts


def top_inputs(conn: Connection, entity_iri: str, k: int, run_id: int | None) -> list[tuple[str, float]]:
    """``SELECT ?i ?c WHERE { ?a ns:entity ?e ; ns:confidence ?c ; ns:input ?i } ORDER BY DESC(?c) LIMIT k``
    for rank-0 rows, as (input IRI, confidence)."""
    from kg.rdf.vocab import input_iri

    if k < 0:
        raise KGError(f"top_inputs: k must be >= 0, got {k}")
    codes = conn.execute(
        text("SELECT c.run_id, c.idx FROM code c JOIN entity e ON e.id = c.entity_id WHERE e.iri = :iri"
             + _COMPLETE.replace("a.run_id", "c.run_id") + ("" if run_id is None else " AND c.run_id = :run")),
        {"iri": entity_iri, "run": run_id},
    ).all()
    # Top k of each code straight from the index (read backwards), then merged: k rows per code touched.
    per_code = text(
        "SELECT a.input_id, a.confidence FROM assignment a WHERE a.run_id = :run AND a.rank = 0 AND a.code = :code"
        " ORDER BY a.confidence DESC LIMIT :k"
    )
    best: list[tuple[float, int]] = []
    for r, c in codes:
        best += [(conf, i) for i, conf in conn.execute(per_code, {"run": r, "code": c, "k": k})]
    best = sorted(best, key=lambda x: (-x[0], x[1]))[:k]
    if not best:
        return []
    keys = {i: (d, s, key) for i, d, s, key in conn.execute(
        text(f"SELECT id, dataset, split, key FROM input WHERE id IN ({', '.join(str(int(i)) for _, i in best)})"))}
    rows = [(input_iri(*keys[i]), float(conf)) for conf, i in best]
    # Ties in confidence are ordered by input IRI, like the sorted SPARQL answer.
    return sorted(rows, key=lambda r: (-r[1], r[0]))


# -- what a run report shows ----------------------------------------------------------------------------
def code_usage(store, run_id: int) -> list[tuple[int, int, bool]]:
    """(code index, inputs whose top symbol it is, code is aligned) for every code of a run, by index."""
    with store.engine.connect() as conn:
        codes = conn.execute(select(Code.idx, Code.entity_id).where(Code.run_id == run_id).order_by(Code.idx)).all()
        counts = dict(conn.execute(
            select(Assignment.code, func.count()).where(Assignment.run_id == run_id, Assignment.rank == 0)
            .group_by(Assignment.code)).all())
    return [(int(c), int(counts.get(c, 0)), e is not None) for c, e in codes]


def best_alignments(store, run_id: int) -> list[tuple[int, str, float]]:
    """(code, entity IRI, confidence) of a run's alignments, the best confidence over methods."""
    with store.engine.connect() as conn:
        return [(int(c), e, float(conf)) for c, e, conf in conn.execute(
            select(Alignment.code, Entity.iri, func.max(Alignment.confidence))
            .join(Entity, Entity.id == Alignment.entity_id).where(Alignment.run_id == run_id)
            .group_by(Alignment.code, Entity.iri))]


def top_codes(store, run_id: int, dataset: str, split: str, slot: int = 0) -> list[tuple[str, int]]:
    """(input key, code of its top symbol in ``slot``) for the inputs of one dataset split in a run."""
    with store.engine.connect() as conn:
        return [(k, int(c)) for k, c in conn.execute(
            select(Input.key, Assignment.code).join(Input, Input.id == Assignment.input_id)
            .where(Assignment.run_id == run_id, Assignment.rank == 0, Assignment.slot == slot,
                   Input.dataset == dataset, Input.split == split))]
