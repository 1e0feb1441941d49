"""kg.graph: rdflib / store KG -> relational graph tensors, networkx, PyG; errors on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import RDF, RDFS, Graph, Literal, URIRef

from kg.errors import KGError
from kg.graph import curried_triples, from_rdflib, from_store
from kg.rdf.vocab import ARITH, NS

ARITHMETIC = Path(__file__).resolve().parents[2] / "data" / "arithmetic.ttl"
RELATIONS = [str(NS.successor), str(NS.lessThan)]
IGNORED = [str(RDF.type), str(RDFS.subClassOf), str(NS.addend1), str(NS.addend2), str(NS.sum)]
EX = "https://example.org/"


def tiny() -> Graph:
    g = Graph()
    g.add((URIRef(EX + "a"), URIRef(EX + "next"), URIRef(EX + "b")))
    g.add((URIRef(EX + "b"), URIRef(EX + "next"), URIRef(EX + "c")))
    g.add((URIRef(EX + "a"), URIRef(EX + "less"), URIRef(EX + "c")))
    g.add((URIRef(EX + "a"), RDFS.label, Literal("a")))  # literals are never edges
    return g


def test_tiny_graph_tensors_vocabularies_and_networkx():
    rg = from_rdflib(tiny(), [EX + "next", EX + "less"])
    assert rg.entities == (EX + "a", EX + "b", EX + "c")
    assert rg.relations == (EX + "next", EX + "less")
    assert rg.edge_index.shape == (2, 3) and rg.edge_type.shape == (3,)
    assert {tuple(t) for t in rg.triples().tolist()} == {(0, 0, 1), (1, 0, 2), (0, 1, 2)}
    nxg = rg.to_networkx()
    assert nxg.number_of_nodes() == 3 and nxg.number_of_edges() == 3
    assert nxg.has_edge(EX + "a", EX + "c", key=EX + "less")
    data = rg.to_pyg()
    assert data.num_nodes == 3 and data.edge_type.tolist() == rg.edge_type.tolist()


def test_arithmetic_kg_from_store(store):
    store.load_rdf([ARITHMETIC])
    rg = from_store(store, RELATIONS, ignore=IGNORED)
    assert rg.num_entities == 19 and rg.isolated == ()
    assert rg.num_edges == 18 + 171  # successor chain 0..18, lessThan every ordered pair
    assert rg.entities[:3] == (str(ARITH.n0), str(ARITH.n1), str(ARITH.n2))  # natural order
    succ = rg.relation_index(str(NS.successor))
    assert (rg.entity_index(str(ARITH.n3)), succ, rg.entity_index(str(ARITH.n4))) in {
        tuple(t) for t in rg.triples().tolist()}


def test_relation_the_config_does_not_name_is_an_error():
    with pytest.raises(KGError, match="less.*neither a relation nor ignored"):
        from_rdflib(tiny(), [EX + "next"])
    assert from_rdflib(tiny(), [EX + "next"], ignore=[EX + "less"]).num_edges == 2


def test_named_relation_without_triples_is_an_error():
    with pytest.raises(KGError, match="has no triples"):
        from_rdflib(tiny(), [EX + "next", EX + "less", EX + "typo"])


def test_empty_graph_is_an_error(store):
    with pytest.raises(KGError, match="empty"):
        from_rdflib(Graph(), [EX + "next"])
    with pytest.raises(KGError, match="no triples in graph"):
        from_store(store, RELATIONS)


def test_isolated_entities_kept_or_rejected():
    rg = from_rdflib(tiny(), [EX + "next", EX + "less"], entities=[EX + "lonely"])
    assert rg.isolated == (EX + "lonely",) and rg.num_entities == 4
    assert rg.to_networkx().degree(EX + "lonely") == 0
    with pytest.raises(KGError, match="lonely is in no edge"):
        from_rdflib(tiny(), [EX + "next", EX + "less"], entities=[EX + "lonely"], on_isolated="error")
    with pytest.raises(KGError, match="not a node"):
        rg.entity_index(EX + "unknown")


def test_curried_facts_extend_a_graph():
    rg = from_rdflib(tiny(), [EX + "next", EX + "less"])
    facts = curried_triples([(EX + "a", EX + "b", EX + "c"), (EX + "b", EX + "a", EX + "d")], EX + "plus")
    assert facts == [(EX + "a", EX + "plus/b", EX + "c"), (EX + "b", EX + "plus/a", EX + "d")]
    bigger = rg.with_triples(facts + [(EX + "a", EX + "next", EX + "b")])  # a duplicate edge merges
    assert bigger.relations == (EX + "next", EX + "less", EX + "plus/a", EX + "plus/b")
    assert bigger.entities == (EX + "a", EX + "b", EX + "c", EX + "d") and bigger.num_edges == 5
    d, plus_a = bigger.entity_index(EX + "d"), bigger.relation_index(EX + "plus/a")
    assert (bigger.entity_index(EX + "b"), plus_a, d) in {tuple(t) for t in bigger.triples().tolist()}
    assert rg.num_edges == 3  # the original is unchanged
