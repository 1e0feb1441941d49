"""Explanations in the store: written in one transaction, read back in SQL, the same facts in the RDF
view and exports, deleted with their run, readable by rules, and a store of schema 2 migrated."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from kg.errors import KGError
from kg.rdf.vocab import ARITH, run_iri
from kg.sql.explanations import Variable
from kg.store import Store
from pipelines.rules_step import apply_rules
from store_backends import ARITHMETIC, BOTH_BACKENDS, add_tiny_explanations, add_tiny_run

A = lambda n: str(ARITH[f"n{n}"])  # noqa: E731
VARIABLES = [Variable("a", "input", ("a",), member=0), Variable("b", "input", ("b",), member=1),
             Variable("sum", "label", ("sum",))]


def add_explained(store: Store) -> int:
    """Run 1 with 3 explained pairs of its inputs: 2 + 3 = 5 (right), 4 + 9 = 13 (true 4 + 2), 2 + 2 = 4."""
    run = add_tiny_run(store)
    add_tiny_explanations(store, run)
    return run


@BOTH_BACKENDS
def test_explanations_round_trip_in_sql(kg_store):
    run = add_explained(kg_store)
    assert kg_store.explanation_count(run) == 3
    every = kg_store.explanations(run)
    assert [e.group for e in every] == [0, 1, 2]
    wrong, = kg_store.explanations(run, wrong=True)
    assert (wrong.group, wrong.correct) == (1, False)
    assert wrong.members == ["https://w3id.org/neurosym/input/digits/test/k2", "https://w3id.org/neurosym/input/digits/test/k3"]
    assert [(b.variable, b.role, b.value, b.true_value) for b in wrong.bindings] == [
        ("a", "input", A(4), A(4)), ("b", "input", A(9), A(2)), ("sum", "label", A(13), A(6))]
    assert wrong.bindings[1].probability == pytest.approx(0.99)
    with pytest.raises(KGError, match=r"^run 1 has no test group 7 \(its explanations cover groups 0-2\)$"):
        kg_store.explanations(run, [0, 7])
    with pytest.raises(KGError, match="already has explanations"):
        kg_store.add_explanations(run, VARIABLES, [[1, 2]], [[A(1), A(1), A(2)]], [[1, 1, 1]])


def test_bad_shapes_leave_the_store_unchanged(kg_store):
    run = add_tiny_run(kg_store)
    with pytest.raises(KGError, match=r"values \(G, 3\)"):
        kg_store.add_explanations(run, VARIABLES, [[1, 2]], [[A(1), A(1)]], [[1, 1]])
    with pytest.raises(KGError, match="probability must lie in"):
        kg_store.add_explanations(run, VARIABLES, [[1, 2]], [[A(1), A(1), A(2)]], [[1, 1, 2]])
    assert kg_store.explanation_count(run) == 0 and kg_store.explanations(run) == []


def test_the_view_and_the_export_state_the_same_explanations(kg_store):
    run = add_explained(kg_store)
    rows = kg_store.sparql("""
        SELECT ?group ?name ?value ?p ?true WHERE {
          ?x a ns:Explanation ; ns:group ?group ; ns:correct false ; ns:binding ?b .
          ?b ns:variable ?v ; ns:value ?value ; ns:probability ?p ; ns:trueValue ?true .
          ?v rdfs:label ?name .
          FILTER(?value != ?true)
        } ORDER BY ?name""").rows
    assert [(int(g), str(n), str(v), round(float(p), 2), str(t)) for g, n, v, p, t in rows] == [
        (1, "b", A(9), 0.99, A(2)), (1, "sum", A(13), 0.45, A(6))]
    members = kg_store.sparql("SELECT ?input WHERE { ?x ns:group 0 ; ns:binding ?b . ?b ns:member ?input } ORDER BY ?input").rows
    assert [str(i).rsplit("/", 1)[1] for (i,) in members] == ["k0", "k1"]
    graph = kg_store.sparql("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?x a ns:Explanation } }").rows
    assert [str(g) for (g,) in graph] == [run_iri(run)]
    sql, view = kg_store.counts()
    assert sql == view
    turtle = kg_store.export("nt", run_id=run)
    assert turtle.count("<https://w3id.org/neurosym/vocab#Explanation>") == 3
    assert kg_store.explanations_rdf(run, [1]).count("ns:Explanation") == 1


def test_deleting_the_run_deletes_its_explanations(kg_store):
    run = add_explained(kg_store)
    kg_store.delete_run(run)
    with kg_store.engine.connect() as conn:
        assert [conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in
                ("explanation", "explained_value", "explained_variable")] == [0, 0, 0]
    assert not kg_store.sparql("ASK { ?x a ns:Explanation }").askanswer


def test_rules_read_explanations_with_the_probability_as_confidence(kg_store, tmp_path):
    run = add_explained(kg_store)
    rules = tmp_path / "x.rules"
    rules.write_text('[wrong_input] ns:WronglyRead(?m) :- binding(?x, ?b), variable(?b, ?v), role(?v, "input"),'
                     ' value(?b, ?e), trueValue(?b, ?t), member(?b, ?m), lessThan(?t, ?e).\n')
    outcome = apply_rules(kg_store, [rules], run)
    assert outcome.derived == 1
    rows = kg_store.sparql("SELECT ?m WHERE { ?m a ns:WronglyRead }").rows
    assert [str(m).rsplit("/", 1)[1] for (m,) in rows] == ["k3"]


def test_a_store_of_schema_2_is_migrated(store_path):
    with Store.open(store_path) as st:
        st.load_rdf([ARITHMETIC])
        add_tiny_run(st)
        with st.engine.begin() as conn:
            for table in ("explained_value", "explanation", "explained_variable"):
                conn.exec_driver_sql(f"DROP TABLE {table}")
            conn.exec_driver_sql("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with Store.open(store_path) as st:
        assert st.explanation_count(1) == 0
        assert st.runs()[0]["name"] == "tiny"
        st.add_explanations(1, VARIABLES, [[1, 2]], [[A(1), A(1), A(2)]], [[1, 1, 1]])
        assert st.explanation_count(1) == 1
        with st.engine.connect() as conn:
            assert conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar() == "3"


def test_bundled_rules_find_carry_chains_and_invented_carries(kg_store):
    """Hand-made explanations of 3-digit sums: the bundled rules read carries from the latent values."""
    from pathlib import Path

    rules = Path(__file__).resolve().parents[2] / "data" / "rules" / "explanations.rules"
    run = add_tiny_run(kg_store)
    ids = kg_store.add_inputs("digits", "test", [f"k{i}" for i in range(8)])
    carry = lambda i: Variable(f"c{i}", "latent" if i < 3 else "label",  # noqa: E731
                               tuple(c for c, ok in (("carry_in", i < 3), ("carry_out", i > 0)) if ok),
                               next=f"c{i + 1}" if i < 3 else None)
    variables = [Variable("a0", "input", ("a",), member=0), Variable("b0", "input", ("b",), member=1)]
    variables += [carry(i) for i in range(4)]
    rows = {  # c0 .. c3 as explained, and as the true digits imply
        "chain of 3": ([0, 1, 1, 1], [0, 1, 1, 1]),
        "two, then a gap": ([0, 1, 1, 0], [0, 1, 1, 0]),
        "gap inside": ([0, 1, 0, 1], [0, 0, 0, 1]),
    }
    values = [[A(1), A(9)] + [A(c) for c in explained] for explained, _ in rows.values()]
    truth = [[A(1), A(9)] + [A(c) for c in true] for _, true in rows.values()]
    kg_store.add_explanations(run, variables, [[ids[0], ids[1]]] * 3, values, [[0.9] * 6] * 3, truth, [True] * 3)
    outcome = apply_rules(kg_store, [rules], run)
    found = lambda cls: sorted(int(str(x).rsplit("/", 1)[1]) for (x,) in kg_store.sparql(  # noqa: E731
        f"SELECT ?x WHERE {{ ?x a ns:{cls} }}").rows)
    assert found("CarryChain3") == [0]
    assert found("InventedCarry") == [2]
    assert outcome.per_rule["carry"] == 3 + 2 + 2


def test_the_query_page_shows_explanation_queries_when_the_store_has_explanations(kg_store):
    from kg.endpoint.examples import example_queries

    add_tiny_run(kg_store)
    assert not any("ns:Explanation" in t or "ns:binding" in t for t in example_queries(kg_store).values())
    kg_store.delete_run(1)
    run = add_explained(kg_store)
    examples = {name: text for name, text in example_queries(kg_store).items() if "ns:binding" in text}
    assert len(examples) == 3 and all(f"run {run}" in name for name in examples)
    answers = {name: kg_store.sparql(text).rows for name, text in examples.items()}
    assert len(answers[f"wrong predictions of run {run}, with the values that differ"]) == 1  # b: 9 read, 2 true
    assert len(answers[f"predicted labels of run {run}"]) == 3
    assert len(answers[f"accuracy per variable of run {run}"]) == 3
