"""KG import/export: formats in, Turtle/N-Triples out, round trips, clear parse errors, atomic loads."""

from __future__ import annotations

import pytest
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import XSD

from kg.errors import KGError, RDFParseError

EX = Namespace("http://example.org/")


def tricky_graph() -> Graph:
    """Blank nodes, datatyped and language-tagged literals, escapes."""
    g = Graph()
    b = BNode()
    g.add((EX.a, EX.knows, b))
    g.add((b, EX.name, Literal("Zoë \"the\" \\ tester\nline 2", lang="fr")))
    g.add((b, EX.age, Literal("42", datatype=XSD.integer)))
    g.add((EX.a, EX.when, Literal("2024-01-02T03:04:05Z", datatype=XSD.dateTime)))
    g.add((EX.a, EX.custom, Literal("xyz", datatype=EX.myType)))
    g.add((EX.a, EX.plain, Literal("plain")))
    g.add((EX.a, EX.pi, Literal("3.14", datatype=XSD.decimal)))
    return g


@pytest.mark.parametrize("suffix, fmt", [(".ttl", "turtle"), (".nt", "nt"), (".jsonld", "json-ld"), (".rdf", "xml")])
@pytest.mark.parametrize("out", ["turtle", "nt"])
def test_round_trip(store, tmp_path, suffix, fmt, out):
    source = tricky_graph()
    path = tmp_path / f"in{suffix}"
    path.write_text(source.serialize(format=fmt))
    assert store.load_rdf([path]) == len(source)
    back = Graph().parse(data=store.export(format=out), format="turtle" if out == "turtle" else "nt")
    assert isomorphic(back, source)


def test_export_to_path_and_one_run(run_store, tmp_path):
    path = tmp_path / "run.nt"
    assert run_store.export(format="nt", run_id=1, path=path) is None  # streamed to the file
    text = path.read_text()
    assert text == run_store.export(format="nt", run_id=1)
    g = Graph().parse(data=text, format="nt")
    assert (None, URIRef("https://w3id.org/neurosym/vocab#hasConcept"), None) in g
    assert (None, URIRef("https://w3id.org/neurosym/vocab#addend1"), None) not in g  # KG not in a run export
    with pytest.raises(KGError, match="unknown run 99"):
        run_store.export(run_id=99)


def test_broken_file_half_way_writes_nothing(kg_store, tmp_path):
    good = tmp_path / "good.ttl"
    good.write_text("@prefix ex: <http://example.org/> .\nex:a ex:p ex:b .\n")
    broken = tmp_path / "broken.ttl"
    broken.write_text("@prefix ex: <http://example.org/> .\nex:c ex:p ex:d .\nex:e ex:p \"unterminated .\nex:f ex:p ex:g .\n")
    before = kg_store.export(format="nt")
    kg_store.batch_size = 1  # every triple is a batch: the writer thread has written some before the error
    with pytest.raises(RDFParseError, match=r"broken\.ttl:3: Turtle syntax error: column 11: "):
        kg_store.load_rdf([good, broken])
    assert kg_store.export(format="nt") == before
    assert not kg_store.sparql("ASK { ?s <http://example.org/p> ?o }").askanswer


@pytest.mark.parametrize(
    "name, text, pattern",
    [
        ("bad.nt", "<http://e/a> <http://e/b> <http://e/c> .\n<http://e/a> <http://e/b> oops .\n", r"bad\.nt:2: N-Triples"),
        ("bad.jsonld", '{"@id": "http://e/a",\n "http://e/b": [}', r"bad\.jsonld:2: JSON-LD"),
        ("bad.rdf", '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n<a>\n</rdf:RDF>', r"bad\.rdf:3: RDF/XML"),
    ],
)
def test_parse_errors_name_file_and_line(store, tmp_path, name, text, pattern):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(RDFParseError, match=pattern):
        store.load_rdf([path])


def test_unknown_extension_and_missing_file(store, tmp_path):
    with pytest.raises(KGError, match="unknown RDF format"):
        store.load_rdf([tmp_path / "x.csv"])
    with pytest.raises(KGError, match="cannot read"):
        store.load_rdf([tmp_path / "missing.ttl"])
