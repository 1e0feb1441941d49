"""The store's all-or-nothing promises, on SQLite and PostgreSQL: hidden incomplete runs, validation
before commit, streaming loads of every format, named graphs on export, a view that heals."""

from __future__ import annotations

import json
import shutil
import socket
import threading

import numpy as np
import pytest
from rdflib import URIRef

from kg.sql.derive import VOCABULARY
from kg.errors import KGError, RDFParseError
from kg.sql.loading import IllTypedLiteralWarning
from kg.view.rdf_view import ViewBusyError
from kg.store import Store
from store_backends import ARITHMETIC, BOTH_BACKENDS, arithmetic_triples

EX = "http://example.org/"


def count(store, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()


def assert_consistent(store) -> None:
    sql, view = store.counts()
    assert sql == view


@BOTH_BACKENDS
def test_incomplete_run_is_hidden_then_pruned(kg_store):
    with pytest.raises(RuntimeError):
        with kg_store.writing_run("crashes", {}, 0, "v") as run:
            kg_store.add_codes(run, np.arange(2), np.ones(2), np.ones(2))
            raise RuntimeError("the encoder failed")
    assert kg_store.runs(include_incomplete=True) == []  # a failing writer deletes its run
    hidden = kg_store.create_run("killed", {}, 0, "v", complete=False)  # what a kill -9 leaves behind
    kg_store.add_codes(hidden, np.arange(2), np.ones(2), np.ones(2))
    ids = kg_store.add_inputs("d", "s", ["a", "b"])
    kg_store.add_assignments(hidden, ids, [0, 0], [0, 1], [0.5, 0.6])
    assert kg_store.runs() == []
    assert [r["complete"] for r in kg_store.runs(include_incomplete=True)] == [False]
    assert not kg_store.sparql("ASK { ?a ns:input ?i }").askanswer
    assert "run/" not in kg_store.export(format="nt")
    assert_consistent(kg_store)
    assert kg_store.prune_runs() == [hidden]
    assert count(kg_store, "assignment") == count(kg_store, "code") == count(kg_store, "run") == 0


@BOTH_BACKENDS
def test_delete_run_removes_it_from_sql_and_view(run_store):
    g = "https://w3id.org/neurosym/graph/rules/run-1/r1"
    run_store.add_triples([(f"{EX}a", f"{EX}p", f"{EX}b")], g)
    assert run_store.sparql("ASK { ?i ns:hasConcept ?e }").askanswer
    run_store.delete_run(1)
    assert not run_store.sparql("ASK { ?i ns:hasConcept ?e }").askanswer
    assert not run_store.sparql(f"ASK {{ <{EX}a> ?p ?o }}").askanswer
    assert count(run_store, "assignment") == count(run_store, "alignment") == 0
    assert_consistent(run_store)
    with pytest.raises(KGError, match="unknown run 1"):
        run_store.delete_run(1)


@BOTH_BACKENDS
@pytest.mark.parametrize("name, text, message", [
    ("space.ttl", "@prefix ex: <http://e/> .\nex:a ex:b ex:c .\n<https://example.org/x/a b> ex:b ex:c .\n", r"space\.ttl:3: Turtle syntax error: .*IRI"),
    ("lang.nt", '<http://e/a> <http://e/b> "x" .\n<http://e/a> <http://e/b> "y"@not_a_tag .\n', r"lang\.nt:2: N-Triples"),
    ("bad.nq", "<http://e/a> <http://e/b> <http://e/c> <http://e/g> .\n<http://e/a> <http://e/b> <http://e/c> <g g> .\n", r"bad\.nq:2: N-Quads"),
])
def test_invalid_term_is_file_line_error_and_nothing_written(kg_store, tmp_path, name, text, message):
    before = count(kg_store, "triple")
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(RDFParseError, match=message):
        kg_store.load_rdf([path])
    assert count(kg_store, "triple") == before
    assert_consistent(kg_store)  # the view still loads


@BOTH_BACKENDS
def test_api_writes_validate_terms_before_commit(kg_store):
    before = count(kg_store, "triple")
    with pytest.raises(KGError, match="invalid RDF term"):
        kg_store.add_triples([(f"{EX}a", f"{EX}p", f"{EX}ok"), (f"{EX}a b", f"{EX}p", f"{EX}c")], "https://example.org/g")
    with pytest.raises(KGError, match="invalid RDF term"):
        kg_store.load_rdf([ARITHMETIC], graph="not an iri")
    assert count(kg_store, "triple") == before


@BOTH_BACKENDS
def test_named_graphs_round_trip_through_nquads_and_trig(store, tmp_path):
    source = tmp_path / "two.nq"
    source.write_text(
        f"<{EX}a> <{EX}p> <{EX}b> <{EX}g1> .\n<{EX}c> <{EX}p> \"x\"@en <{EX}g2> .\n<{EX}d> <{EX}p> _:n .\n"
    )
    assert store.load_rdf([source]) == 3
    graphs = {str(g) for (g,) in store.sparql("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }").rows}
    assert graphs == {f"{EX}g1", f"{EX}g2", "https://w3id.org/neurosym/graph/kg"}
    for fmt, suffix in (("nquads", "nq"), ("trig", "trig")):
        out = tmp_path / f"out.{suffix}"
        store.export(format=fmt, path=out)
        with Store.open(tmp_path / f"again-{fmt}.sqlite") as again:
            assert again.load_rdf([out]) == 3
            back = {str(g) for (g,) in again.sparql("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }").rows}
            assert back == graphs


def test_fed_view_keeps_literals_that_look_like_line_ends(kg_store, tmp_path):
    # The load names the default graph on the view's N-Quads bytes: a literal holding " ." and a line
    # break must come through whole, in the load's graph, equal to what SQL holds.
    kg_store.sync_rdf()
    source = tmp_path / "tricky.ttl"
    source.write_text(f'<{EX}a> <{EX}p> """one .\ntwo .\n""" .\n<{EX}a> <{EX}q> "x .\\n" .\n')
    assert kg_store.load_rdf([source]) == 2
    assert kg_store.sync_rdf() == []  # the view was fed during the load: nothing left to reload from SQL
    rows = kg_store.sparql(f"SELECT ?g ?o WHERE {{ GRAPH ?g {{ <{EX}a> ?p ?o }} }} ORDER BY ?o").rows
    assert [(str(g), str(o)) for g, o in rows] == [
        ("https://w3id.org/neurosym/graph/kg", "one .\ntwo .\n"),
        ("https://w3id.org/neurosym/graph/kg", "x .\n"),
    ]


@BOTH_BACKENDS
def test_reloading_an_unchanged_file_changes_nothing(kg_store):
    kg_store.sync_rdf()
    versions = kg_store._versions()
    assert kg_store.load_rdf([ARITHMETIC]) == 0
    assert kg_store._versions() == versions  # no counter moved: the view reloads nothing
    assert kg_store.sync_rdf() == []


def test_ill_typed_literal_stored_with_one_warning(store, tmp_path, caplog):
    path = tmp_path / "lit.nt"
    path.write_text('<http://e/a> <http://e/n> "abc"^^<http://www.w3.org/2001/XMLSchema#integer> .\n'
                    '<http://e/a> <http://e/m> "5"^^<http://www.w3.org/2001/XMLSchema#integer> .\n')
    with pytest.warns(IllTypedLiteralWarning, match=r"1 ill-typed literal.*\"abc\""):
        assert store.load_rdf([path]) == 2
    rows = store.sparql("SELECT ?o WHERE { ?s ?p ?o } ORDER BY ?o").rows
    assert sorted(str(o) for (o,) in rows) == ["5", "abc"]
    assert '"abc"^^xsd:integer' in store.export()
    assert "Traceback" not in caplog.text


def test_billion_laughs_refused_at_once(store, tmp_path):
    levels = "".join(f'<!ENTITY l{i} "' + f"&l{i - 1};" * 10 + '">\n' for i in range(1, 10))
    path = tmp_path / "laughs.rdf"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n<!ENTITY l0 "ha">\n' + levels + "]>\n"
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://e/">'
        '<rdf:Description rdf:about="http://e/a"><ex:p>&l9;</ex:p></rdf:Description></rdf:RDF>\n'
    )
    with pytest.raises(RDFParseError, match=r"laughs\.rdf:3: RDF/XML refused: the file declares entity 'l0'"):
        store.load_rdf([path])


@pytest.fixture
def listener():
    """A local TCP port that records whether anything connected to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    seen: list = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                seen.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("context", ["http://127.0.0.1:{port}/context.jsonld", "file://{secret}", "context.jsonld"])
def test_jsonld_document_contexts_refused_without_a_request(store, tmp_path, listener, context):
    port, seen = listener
    secret = tmp_path / "context.jsonld"
    secret.write_text('{"@context": {"name": "http://e/secret-name"}}')
    path = tmp_path / "doc.jsonld"
    path.write_text(json.dumps({"@context": context.format(port=port, secret=secret), "@id": "http://e/a", "name": "x"}))
    with pytest.raises(RDFParseError, match=r"doc\.jsonld: JSON-LD @context names a document"):
        store.load_rdf([path])
    assert seen == []
    assert count(store, "triple") == 0


def test_view_rebuild_switches_atomically_and_heals(run_store, store_path):
    view = run_store.view
    run_store.sync_rdf()
    first = view.store_path
    run_store.rebuild_rdf()
    assert view.store_path != first and not first.parent.exists()  # the old view is gone, the new one current
    run_store.close()
    (store_path.with_suffix(".oxigraph") / "view-halfbuilt" / "store").mkdir(parents=True)  # a crashed rebuild
    shutil.rmtree(run_store.view.path / "current" / "store")  # a view whose files are lost
    with Store.open(store_path) as again:
        assert again.sparql("ASK { ?i ns:hasConcept arith:n3 }").askanswer  # rebuilt from SQL on open
        assert not (store_path.with_suffix(".oxigraph") / "view-halfbuilt").exists()
        assert_consistent(again)


def test_view_states_a_slot_only_when_it_is_not_0(kg_store):
    run = kg_store.create_run("slots", {}, 0, "test")
    kg_store.add_codes(run, [0], [1.0], [1.0])
    ids = kg_store.add_inputs("d", "s", ["x"])
    kg_store.add_assignments(run, [ids[0], ids[0]], [0, 1], [0, 0], [0.5, 0.6])
    base = f"https://w3id.org/neurosym/run/{run}/a/{ids[0]}"
    slots = kg_store.sparql("SELECT ?a ?s WHERE { ?a ns:input ?i OPTIONAL { ?a ns:slot ?s } }").rows
    assert sorted((str(a), s and s.toPython()) for a, s in slots) == [(f"{base}-0", None), (f"{base}-1", 1)]
    assert_consistent(kg_store)


def test_view_of_an_older_vocabulary_is_rebuilt(run_store, store_path):
    run_store.sync_rdf()
    state_file = run_store.view.path / "current" / "state.json"
    state = json.loads(state_file.read_text())
    assert state["vocabulary"] == VOCABULARY
    run_store.close()
    del state["vocabulary"]  # as a view written before the view's vocabulary had a version
    state_file.write_text(json.dumps(state))
    with Store.open(store_path) as again:
        assert sorted(again.sync_rdf()) == sorted(again._versions())  # all reloaded, not trusted
        assert json.loads((again.view.path / "current" / "state.json").read_text())["vocabulary"] == VOCABULARY
        assert again.sync_rdf() == []


def test_reader_beside_a_holder(run_store, store_path):
    run_store.sync_rdf()  # this store now holds the view, as 'neurosym serve' would
    with pytest.raises(ViewBusyError, match="locked by another process"):
        with Store.open(store_path) as writer:
            writer.sync_rdf()
    with Store.open(store_path, shared_view=True) as reader:
        assert reader.sparql("ASK { ?i ns:hasConcept arith:n3 }").askanswer
        run_store.add_triples([(f"{EX}a", f"{EX}p", f"{EX}b")], "https://example.org/g")  # the holder lags now
        with pytest.raises(ViewBusyError, match="query that server's endpoint"):
            reader.sparql("ASK { ?s ?p ?o }")


def test_missing_driver_is_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_psycopg(name, *args, **kwargs):
        if name.split(".")[0] == "psycopg":
            raise ModuleNotFoundError("No module named 'psycopg'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(KGError, match=r"no driver for postgresql .*pip install 'neurosym\[postgres\]'"):
        Store.open("postgresql://user@127.0.0.1:1/none")


@BOTH_BACKENDS
def test_store_view_persists_between_opens(store_target, backend, view_dir):
    rdf_path = None if backend == "sqlite" else view_dir
    with Store.open(store_target, rdf_path=rdf_path) as st:
        st.load_rdf([ARITHMETIC])
        st.sync_rdf()
    with Store.open(store_target, rdf_path=rdf_path) as again:
        assert again.sync_rdf() == []  # nothing reloaded: the view on disk is current
        assert again.sparql("ASK { arith:n3 a arith:Prime }").askanswer
        assert again.sparql("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }").rows[0][0].toPython() == arithmetic_triples()


def test_old_schema_is_migrated(store_path):
    import sqlite3

    with Store.open(store_path) as st:
        st.create_run("old", {}, 0, "v")
    with sqlite3.connect(store_path) as conn:
        conn.execute("ALTER TABLE run DROP COLUMN complete")
        conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    with Store.open(store_path) as again:
        assert [r["name"] for r in again.runs()] == ["old"]


def test_uri_ref_terms_accepted(kg_store):
    assert kg_store.add_triples([(URIRef(f"{EX}a"), URIRef(f"{EX}p"), URIRef(f"{EX}b"))], "https://example.org/g") == 1
