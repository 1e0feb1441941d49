"""SPARQL over the RDF view: forms, bindings, result formats, read-only guard, syntax errors."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rdflib import Literal, URIRef

from kg.errors import ReadOnlyQueryError, SparqlSyntaxError
from kg.query.evaluate import inject_bindings
from kg.rdf.vocab import ARITH

ADDITION = "SELECT ?a ?b ?s WHERE { ?f ns:addend1 ?a ; ns:addend2 ?b ; ns:sum ?s }"


def test_digit_addition_constraint_query(kg_store):
    rows = kg_store.sparql(ADDITION).rows
    assert len(rows) == 100
    assert (URIRef(ARITH.n3), URIRef(ARITH.n4), URIRef(ARITH.n7)) in rows


def test_transitive_classes_and_bindings(kg_store):
    q = "SELECT DISTINCT ?n WHERE { ?n rdf:type/rdfs:subClassOf* ?cls ; rdf:value ?v FILTER(?v < ?max) } ORDER BY ?v"
    primes = kg_store.sparql(q, {"cls": URIRef(ARITH.Prime), "max": 10}).records()
    assert [r["n"] for r in primes] == [str(ARITH[f"n{k}"]) for k in (2, 3, 5, 7)]
    numbers = kg_store.sparql(q, {"cls": URIRef(ARITH.Number), "max": 100}).rows
    assert len(numbers) == 19


def test_bindings_are_terms_not_text(kg_store):
    hostile = 'x" } } ; DROP ALL ; SELECT * { "'
    assert kg_store.sparql("SELECT ?n WHERE { ?n rdfs:label ?l }", {"l": hostile}).rows == []
    assert kg_store.sparql("SELECT ?n WHERE { ?n rdfs:label ?l }", {"l": Literal("12")}).rows == [(URIRef(ARITH.n12),)]


def test_inject_bindings_targets_where_of_construct():
    q = 'CONSTRUCT { ?s ?p "{" } WHERE { ?s ?p ?o } # {'
    out = inject_bindings(q, {"s": URIRef("http://e/x")})
    assert out.startswith('CONSTRUCT { ?s ?p "{" } WHERE { VALUES (?s) { (<http://e/x>) }')


def test_ask_and_construct(kg_store):
    assert kg_store.sparql("ASK { arith:n7 a arith:Prime }").askanswer is True
    result = kg_store.sparql("CONSTRUCT { ?a ns:next ?b } WHERE { ?a ns:successor ?b }")
    assert len(result.graph) == 18
    assert "ns:next" in result.serialize("turtle")
    assert result.serialize("nt").count("\n") == 18


def test_result_formats(run_store):
    q = "SELECT ?n ?l WHERE { ?n rdfs:label ?l ; rdf:value ?v FILTER(?v <= 1) } ORDER BY ?v"
    res = run_store.sparql(q)
    data = json.loads(res.serialize("json"))
    assert data["head"]["vars"] == ["n", "l"]
    assert data["results"]["bindings"][0] == {"n": {"type": "uri", "value": str(ARITH.n0)}, "l": {"type": "literal", "value": "0"}}
    rows = list(csv.reader(io.StringIO(res.serialize("csv"))))
    assert rows == [["n", "l"], [str(ARITH.n0), "0"], [str(ARITH.n1), "1"]]
    assert res.serialize("csv").endswith("\r\n")
    tsv = res.serialize("tsv").splitlines()
    assert tsv[0] == "?n\t?l" and tsv[1] == f'<{ARITH.n0}>\t"0"'
    table = res.serialize("table")
    assert "arith:n0" in table and "(2 rows)" in table
    assert json.loads(run_store.sparql("ASK { ?x ?y ?z }").serialize("json")) == {"head": {}, "boolean": True}


def test_syntax_error_names_position(kg_store):
    with pytest.raises(SparqlSyntaxError, match=r"line:column 2:\d+"):
        kg_store.sparql("SELECT ?x WHERE {\n ?x ?y }")


def test_update_rejected_and_store_unchanged(run_store):
    before = run_store.export(format="nt")
    with pytest.raises(ReadOnlyQueryError, match="updates are not allowed"):
        run_store.sparql("INSERT DATA { <http://e/a> <http://e/b> <http://e/c> }")
    with pytest.raises(ReadOnlyQueryError):
        run_store.sparql("DELETE WHERE { ?s ?p ?o }")
    assert run_store.export(format="nt") == before
    assert run_store.sparql("ASK { ?s ?p ?o }").askanswer
