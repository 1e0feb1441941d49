"""The SQL store: schema, bulk writes, validation, and the RDF view following writes (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from rdflib import Literal, URIRef

from kg.query.sql import translate
from kg.errors import KGError, UnknownEntityError, UnknownRunError
from kg.sql.schema import SCHEMA_VERSION
from kg.query.evaluate import inject_bindings, run_query
from kg.store import Store
from kg.rdf.vocab import ARITH, PREFIXES
from store_backends import BOTH_BACKENDS

ARITHMETIC = Path(__file__).resolve().parents[2] / "data" / "arithmetic.ttl"


def test_open_creates_sqlite_in_wal_mode_with_schema_version(store, store_path):
    assert store_path.exists()
    with sqlite3.connect(store_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_other_schema_version_is_refused(store_path):
    Store.open(store_path).close()
    with sqlite3.connect(store_path) as conn:
        conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    with pytest.raises(KGError, match="schema version 999"):
        Store.open(store_path)


@pytest.mark.parametrize("target", ["sqlite://", ":memory:"])
def test_in_memory_stores_write_no_file(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    with Store.open(target) as st:
        st.load_rdf([ARITHMETIC])
        assert st.sparql("ASK { arith:n3 a arith:Prime }").askanswer is True
        assert st.view.path is None
    assert list(tmp_path.iterdir()) == []  # ":memory:" is SQLite's name for memory, not a file name


@BOTH_BACKENDS
def test_runs_and_entities_listed(run_store):
    (run,) = run_store.runs()
    assert run["name"] == "tiny" and run["config"] == {"lr": 0.1} and run["seed"] == 7
    assert run["checkpoint_hash"] == "sha256:00"
    entities = dict(run_store.entities())
    assert entities[str(ARITH.n12)] == "12"
    assert str(ARITH.Prime) in entities


@BOTH_BACKENDS
def test_add_inputs_is_idempotent(store):
    first = store.add_inputs("d", "train", ["a", "b", "c"])
    again = store.add_inputs("d", "train", ["c", "x", "a"])
    assert first.dtype == np.int64
    assert again[0] == first[2] and again[2] == first[0] and again[1] not in first
    assert store.add_inputs("d", "test", ["a"])[0] not in first


@BOTH_BACKENDS
def test_bulk_assignments_batched(kg_store):
    kg_store.batch_size = 1000
    run = kg_store.create_run("r", {}, 0, "v", None, None)
    kg_store.add_codes(run, np.arange(8), np.ones(8), np.ones(8))
    n = 5500
    ids = kg_store.add_inputs("d", "s", [str(i) for i in range(n)])
    rng = np.random.default_rng(0)
    assert kg_store.add_assignments(run, ids, np.zeros(n, int), rng.integers(0, 8, n), rng.random(n)) == n
    with kg_store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM assignment").scalar() == n


@BOTH_BACKENDS
def test_failed_batch_leaves_no_rows(kg_store):
    kg_store.batch_size = 2
    run = kg_store.create_run("r", {}, 0, "v", None, None)
    kg_store.add_codes(run, np.arange(2), np.ones(2), np.ones(2))
    ids = kg_store.add_inputs("d", "s", ["a", "b", "c", "d"])
    bad = np.append(ids, 10_000)  # the last batch refers to an input that does not exist
    with pytest.raises(KGError, match="nothing written"):
        kg_store.add_assignments(run, bad, np.zeros(5, int), np.zeros(5, int), np.full(5, 0.5))
    with kg_store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM assignment").scalar() == 0


@BOTH_BACKENDS
@pytest.mark.parametrize(
    "change, message",
    [
        ({"confidence": [0.5, float("nan")]}, "NaN"),
        ({"confidence": [0.5, 1.5]}, r"\[0, 1\]"),
        ({"code": [0, 9]}, "no codes"),
        ({"slot": [0]}, "expected 2 values"),
        ({"slot": [[0, 0]]}, "1-D"),
    ],
)
def test_assignment_validation(kg_store, change, message):
    run = kg_store.create_run("r", {}, 0, "v", None, None)
    kg_store.add_codes(run, np.arange(2), np.ones(2), np.ones(2))
    ids = kg_store.add_inputs("d", "s", ["a", "b"])
    args = {"input_ids": ids, "slot": [0, 0], "code": [0, 1], "confidence": [0.5, 0.6]} | change
    with pytest.raises(KGError, match=message):
        kg_store.add_assignments(run, **args)


@BOTH_BACKENDS
def test_unknown_run_and_entity(kg_store):
    with pytest.raises(UnknownRunError, match="unknown run 42"):
        kg_store.add_codes(42, [0], [1.0], [1.0])
    run = kg_store.create_run("r", {}, 0, "v", None, None)
    kg_store.add_codes(run, [0], [1.0], [1.0])
    with pytest.raises(UnknownEntityError, match="nothing"):
        kg_store.add_alignments(run, [0], ["https://example.org/nothing"], [0.9], "m")


@BOTH_BACKENDS
def test_assignments_visible_to_sparql_with_has_concept(run_store):
    rows = run_store.sparql("SELECT ?i ?e WHERE { ?i ns:hasConcept ?e } ORDER BY ?i").rows
    got = {str(i).rsplit("/", 1)[1]: str(e) for i, e in rows}
    expected = {"k0": 2, "k1": 3, "k2": 4, "k3": 9, "k4": 2, "k5": 3, "k6": 4, "k7": 9}
    assert got == {k: str(ARITH[f"n{v}"]) for k, v in expected.items()}
    match = run_store.sparql("SELECT ?m WHERE { ?c skos:notation 3 ; ?m arith:n9 }").rows
    assert match == [(URIRef("http://www.w3.org/2004/02/skos/core#closeMatch"),)]  # confidence 0.3 < 0.5


def test_view_follows_new_writes_and_survives_reopen(run_store, store_path):
    ask = "ASK { ?i ns:hasConcept arith:n7 }"
    assert run_store.sparql(ask).askanswer is False
    run = run_store.runs()[0]["id"]
    run_store.add_alignments(run, [3], [str(ARITH.n7)], [0.95], "relabel")  # now beats n9's 0.3
    assert run_store.sparql(ask).askanswer is True
    run_store.close()
    with Store.open(store_path) as again:
        assert again.sync_rdf() == []  # nothing to rebuild: the view on disk is current
        assert again.sparql(ask).askanswer is True
        assert sorted(again.rebuild_rdf()) == sorted(again._versions())


@BOTH_BACKENDS
def test_sql_answers_equal_the_rdf_view(run_store):
    """The store's SQL helpers and the SQL translation of the same SPARQL give the answer the RDF view
    (Oxigraph itself, not ``Store.sparql``, which would take the SQL path too) gives."""
    run_store.sync_rdf()

    def both(query, bindings):
        translated = translate.answer(run_store.engine, inject_bindings(query, bindings), PREFIXES)
        assert translated is not None, query  # the SQL path answers it
        return translated.rows, run_query(run_store.view, query, bindings).rows

    prime = URIRef(ARITH.Prime)
    sql, view = both("SELECT (COUNT(DISTINCT ?i) AS ?n) WHERE { ?e rdf:type/rdfs:subClassOf* ?cls . "
                     "?a ns:entity ?e ; ns:confidence ?c ; ns:input ?i FILTER(?c > ?min) }",
                     {"cls": prime, "min": Literal(0.9)})
    assert run_store.count_inputs_in_class(prime, 0.9) == sql[0][0].toPython() == view[0][0].toPython() == 3
    # k0 (n2 .95), k1 (n3 .91), k5 (n3 .97)
    sql, view = both("SELECT ?e (COUNT(?i) AS ?n) WHERE { ?i ns:hasConcept ?e } GROUP BY ?e", {})
    assert run_store.concept_counts() == {str(e): n.toPython() for e, n in sql} == {str(e): n.toPython() for e, n in view}
    assert run_store.concept_counts() == {str(ARITH[f"n{k}"]): 2 for k in (2, 3, 4, 9)}
    sql, view = both("SELECT ?i ?c WHERE { ?a ns:entity ?e ; ns:confidence ?c ; ns:input ?i } ORDER BY DESC(?c) LIMIT 10",
                     {"e": URIRef(ARITH.n3)})
    expected = [(str(i), c.toPython()) for i, c in view]
    assert run_store.top_inputs(ARITH.n3) == [(str(i), c.toPython()) for i, c in sql] == expected
    assert [c for _, c in expected] == [0.97, 0.91]


@BOTH_BACKENDS
def test_add_triples_named_graph_replace(kg_store):
    g = "https://w3id.org/neurosym/graph/rules"
    kg_store.add_triples([(ARITH.n4, "https://w3id.org/neurosym/vocab#square", ARITH.n2)], g, confidence=[0.8])
    assert kg_store.sparql("ASK { GRAPH ?g { arith:n4 ns:square arith:n2 } }", {"g": URIRef(g)}).askanswer
    kg_store.add_triples([(ARITH.n9, "https://w3id.org/neurosym/vocab#square", ARITH.n3)], g, replace=True)
    assert not kg_store.sparql("ASK { arith:n4 ns:square arith:n2 }").askanswer
    assert kg_store.sparql("ASK { arith:n9 ns:square arith:n3 }").askanswer
