"""SPARQL over explanations answered in SQL (kg/query/sql/explanations.py) equals Oxigraph's answer, on
random stores: several runs (one left incomplete), values that are IRIs or plain literals, truth known
or not, variables with and without a next one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rdflib import Literal, URIRef

from kg.query.sql import translate
from kg.rdf.vocab import ARITH, PREFIXES
from kg.sql.explanations import Variable
from store_backends import BOTH_BACKENDS, same_answer

QUERIES = Path(__file__).resolve().parents[2] / "data" / "queries"


def random_store(store, seed: int):
    rng = np.random.default_rng(seed)
    for r in range(3):
        run = store.create_run(f"r{r}", {}, r, "test", complete=r != 1)
        ids = store.add_inputs("digits", "test", [f"k{i}" for i in range(20)])
        count = int(rng.integers(2, 6))
        roles = ["input", "input"] + [str(rng.choice(["latent", "label"])) for _ in range(count - 2)]
        variables = [Variable(f"v{i}", role, member=i if role == "input" else None,
                              next=f"v{i + 1}" if i + 1 < count and rng.random() < 0.5 else None)
                     for i, role in enumerate(roles)]
        groups = int(rng.integers(1, 12))
        pool = np.array([str(ARITH[f"n{k}"]) for k in range(4)] + ["7", "seven"], dtype=object)
        values = pool[rng.integers(0, len(pool), (groups, count))]
        truth = pool[rng.integers(0, len(pool), (groups, count))] if r != 2 else None
        probability = rng.random((groups, count))
        probability[0, 0] = 1.0
        store.add_explanations(run, variables, rng.choice(ids, (groups, 2)), values, probability, truth,
                               None if truth is None else rng.random(groups) < 0.5)
    return rng


def queries(rng) -> list[tuple[str, dict, bool]]:
    value = URIRef(ARITH[f"n{int(rng.integers(0, 4))}"])
    return [
        ((QUERIES / "06_wrong_explanations.rq").read_text(), {}, True),
        ((QUERIES / "07_explained_predictions.rq").read_text(), {}, True),
        ((QUERIES / "08_accuracy_per_position.rq").read_text(), {}, True),
        ("SELECT ?role (AVG(IF(?p >= 0.5, 2.5, 0.25)) AS ?m) WHERE { ?b ns:variable ?v ; ns:probability ?p . "
         "?v ns:role ?role } GROUP BY ?role ORDER BY DESC(?m) ?role", {}, True),
        ("SELECT (AVG(IF(?e != ?t, 1, 0)) AS ?wrong) WHERE { ?b ns:value ?e ; ns:trueValue ?t }", {}, False),
        ("SELECT ?g ?p WHERE { ?x ns:group ?g ; ns:binding ?b . ?b ns:value ?e ; ns:probability ?p } ORDER BY DESC(?p) ?g",
         {"e": value}, True),
        ("SELECT ?name (COUNT(?b) AS ?n) WHERE { ?b ns:variable ?v ; ns:value ?e ; ns:trueValue ?t . ?v rdfs:label ?name ."
         " FILTER(?e = ?t) } GROUP BY ?name", {}, False),
        ("SELECT ?run ?name ?role WHERE { ?v a ns:Variable ; rdfs:label ?name ; ns:role ?role ; prov:wasGeneratedBy ?run }",
         {}, False),
        ("SELECT ?name ?after WHERE { ?v ns:next ?w ; rdfs:label ?name . ?w rdfs:label ?after }", {}, False),
        ("SELECT (COUNT(*) AS ?n) WHERE { ?x a ns:Explanation ; ns:correct ?c ; prov:wasGeneratedBy ?run }",
         {"run": URIRef("https://w3id.org/neurosym/run/1")}, False),
        ("SELECT ?g ?c WHERE { ?x ns:group ?g ; ns:correct ?c . FILTER(?c = true) }", {}, False),
        ("SELECT ?e WHERE { ?b ns:value ?e ; ns:probability ?p . FILTER(?p > 0.5 && ?e != \"seven\") }", {}, False),
        ("SELECT ?e WHERE { ?b ns:value ?e ; ns:trueValue ?t . FILTER(?t != ?e) }", {}, False),
        ("SELECT ?g WHERE { ?x ns:group ?g ; ns:binding ?b . ?b ns:value \"7\" }", {}, False),
        ("SELECT ?e WHERE { ?b ns:value ?e . FILTER(?e != \"https://w3id.org/neurosym/arith#n1\") }", {}, False),
        ("SELECT ?e WHERE { ?b ns:value ?e . FILTER(?e = \"https://w3id.org/neurosym/arith#n1\") }", {}, False),
    ]


@BOTH_BACKENDS
@pytest.mark.parametrize("seed", range(3))
def test_sql_answers_equal_oxigraph_on_random_explanations(kg_store, seed):
    rng = random_store(kg_store, seed)
    kg_store.sync_rdf()
    for query, bindings, ordered in queries(rng):
        assert same_answer(kg_store, query, bindings, ordered).answered_by == "sql", query


def test_what_the_translation_leaves_to_the_view(kg_store):
    random_store(kg_store, 0)
    for query in ["SELECT ?x WHERE { ?x a ns:Explanation }",  # a node projected
                  "SELECT ?m WHERE { ?b ns:member ?m }",  # JSON in SQL
                  "SELECT (AVG(?p) AS ?m) WHERE { ?b ns:probability ?p }",  # an AVG that is not of an IF
                  "SELECT (AVG(IF(?p > 0.5, 1e0, 0e0)) AS ?m) WHERE { ?b ns:probability ?p }",  # a double mean
                  "SELECT (AVG(IF(?x = ?x, 1, 0)) AS ?m) WHERE { ?x ns:group ?g }"]:  # a node compared
        assert translate.answer(kg_store.engine, query, PREFIXES) is None, query
        assert kg_store.sparql(query).rows  # the view answers
    # a loaded graph that speaks of a run's variables: only the view sees it
    kg_store.add_triples([(URIRef("https://w3id.org/neurosym/run/1/variable/v0"), URIRef(PREFIXES["rdfs"] + "label"),
                           Literal("extra"))], graph="https://w3id.org/neurosym/graph/extra")
    query = "SELECT ?name WHERE { ?v ns:role ?role ; rdfs:label ?name }"
    assert translate.answer(kg_store.engine, query, PREFIXES) is None
    assert (Literal("extra"),) in kg_store.sparql(query).rows
