"""Facts for the rule engine, read straight from SQL (no RDF round trip, so 1M symbols stay fast).

Two sources, restricted to the predicates the rules use:

- KG facts (every named graph in the ``triple`` table) whose object is an IRI or a literal,
  with their stored confidence (1.0 when none);
- ``input ns:hasConcept entity`` for a run's top symbol of each (input, slot), with confidence
  P(code) x confidence of the code's chosen alignment;
- the run's explanations (``kg.sql.explanations.explanation_facts``): groups, bindings, variables,
  each ``ns:value`` with its probability as confidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import select

from kg.rdf import vocab
from kg.sql.explanations import explanation_facts
from kg.sql.schema import Assignment, Code, Entity, Input, Triple

HAS_CONCEPT = str(vocab.NS.hasConcept)


def rule_facts(store, predicates: Iterable[str], run_id: int | None,
               exclude_graphs: Iterable[str] = ()) -> Iterator[tuple[str, str, str, float]]:
    """``(subject, predicate, object, confidence)`` for every fact the rules can read from ``store``
    (a ``kg.store.Store``), leaving out the KG facts of ``exclude_graphs`` (the graphs a rule set is
    about to replace: its own earlier output is no premise of its next evaluation)."""
    predicates = set(predicates)
    kg_predicates = predicates - {HAS_CONCEPT}
    exclude_graphs = list(exclude_graphs)
    with store.engine.connect() as conn:
        if kg_predicates:
            query = select(Triple.s, Triple.p, Triple.o, Triple.confidence).where(Triple.p.in_(kg_predicates))
            if exclude_graphs:
                query = query.where(Triple.graph.not_in(exclude_graphs))
            for s, p, o, confidence in conn.execute(query):
                yield s, p, o, 1.0 if confidence is None else confidence
        if HAS_CONCEPT in predicates and run_id is not None:
            query = (
                select(Input.dataset, Input.split, Input.key, Entity.iri, Assignment.confidence, Code.entity_confidence)
                .join(Input, Input.id == Assignment.input_id)
                .join(Code, (Code.run_id == Assignment.run_id) & (Code.idx == Assignment.code))
                .join(Entity, Entity.id == Code.entity_id)
                .where(Assignment.run_id == run_id, Assignment.rank == 0)
            )
            for dataset, split, key, entity, p_code, p_align in conn.execute(query):
                yield vocab.input_iri(dataset, split, key), HAS_CONCEPT, entity, p_code * (p_align or 1.0)
        if run_id is not None:
            yield from explanation_facts(conn, run_id, predicates)
