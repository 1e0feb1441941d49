"""`neurosym query` answered from a SQLite store's current RDF view (kg/query/fresh_view.py): the same bytes as
the full path for every query and format it takes, the full path wherever the view is behind SQL, the
same one-line errors and limits; and the plain-term writers (kg/query/plain_formats.py) against rdflib's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdflib import BNode, Graph, Literal, URIRef

from kg.query import fresh_view, plain_formats
from kg.query.guard import QueryLimitError, QueryLimits
from kg.rdf.terms import bind_prefixes
from kg.query.evaluate import SparqlResult, _term
from kg.store import Store
from kg.rdf.vocab import ARITH, NS, PREFIXES

ROOT = Path(__file__).resolve().parents[2]
ARITHMETIC = ROOT / "data" / "arithmetic.ttl"
SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
#: Terms a table, CSV or TSV writer could get wrong: quotes, newlines, languages, odd datatypes, IRIs
#: that rdflib's prefixing splits in different places, a blank node.
ODD_TERMS = """
@prefix e: <https://example.org/odd/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
e:s e:p "say \\"hi\\"\\\\ back", "two\\nlines", "ends in a quote\\"\\n", "thé"@fr, "x"@en-GB,
        "INF"^^<http://www.w3.org/2001/XMLSchema#double>, "NaN"^^<http://www.w3.org/2001/XMLSchema#float>,
        "1.50"^^<http://www.w3.org/2001/XMLSchema#decimal>, "0042"^^<http://www.w3.org/2001/XMLSchema#integer>,
        "custom"^^e:type, <https://w3id.org/neurosym/run/1/code/3>, <https://w3id.org/neurosym/vocab#input>,
        foaf:name, <http://xmlns.com/foaf/0.1/>, <https://example.org/odd/9lives>, <https://example.org/odd/a-b.c>,
        <http://www.w3.org/XML/1998/namespacelang>, <urn:isbn:0451450523>, [ e:q 1 ] .
"""
QUERIES = {
    "select with project prefixes": "SELECT ?n ?l WHERE { ?n a arith:Prime ; rdfs:label ?l } ORDER BY ?n",
    "select with its own prefix": "PREFIX a: <https://w3id.org/neurosym/arith#> SELECT ?n WHERE { ?n a a:Even } ORDER BY DESC(?n) LIMIT 4",
    "ask true": "ASK { arith:n7 a arith:Prime }",
    "ask false": "ASK { arith:n4 a arith:Prime }",
    "empty ask": "ASK {}",
    "assignments of a run": "SELECT ?i ?e ?c ?s WHERE { ?a ns:input ?i ; ns:entity ?e ; ns:confidence ?c "
                            "OPTIONAL { ?a ns:slot ?s } OPTIONAL { ?e rdfs:label ?l } } ORDER BY ?i ?s",
    "one input's concept": "SELECT ?e WHERE { <https://w3id.org/neurosym/input/digits/test/k3> ns:hasConcept ?e }",
    "odd terms": "SELECT ?o WHERE { <https://example.org/odd/s> ?p ?o } ORDER BY STR(?o)",
    "unbound cells": "SELECT ?n ?x WHERE { ?n a arith:Prime OPTIONAL { ?n ns:nothing ?x } } ORDER BY ?n LIMIT 2",
}
FORMATS = ("table", "json", "csv", "tsv")


def build_store(path: Path, add_run) -> Path:
    """The arithmetic KG, the odd terms and ``add_run``'s run of 8 inputs, with the view synced (then let go)."""
    odd = path.parent / "odd.ttl"
    odd.write_text(ODD_TERMS)
    with Store.open(path) as st:
        st.load_rdf([ARITHMETIC])
        st.load_rdf([odd], graph="https://example.org/graph/odd")
        add_run(st)
        st.sync_rdf()
    return path


@pytest.fixture(scope="module")
def fresh_store(tmp_path_factory, tiny_run) -> Path:
    return build_store(tmp_path_factory.mktemp("fresh") / "s.sqlite", tiny_run)


def full_path(store: Path, query: str, fmt: str) -> str:
    with Store.open(store, shared_view=True) as st:
        return st.sparql(query).serialize(fmt)


@pytest.mark.parametrize("name", list(QUERIES))
def test_fresh_view_writes_what_the_full_path_writes(fresh_store, name):
    answered = fresh_view.answer(str(fresh_store), QUERIES[name], QueryLimits())
    assert answered is not None, "the fresh view should answer this query itself"
    for fmt in FORMATS:
        assert plain_formats.serialize(*answered, fmt) == full_path(fresh_store, QUERIES[name], fmt), fmt


def test_cli_output_is_the_full_path_s(cli, fresh_store):
    for name, query in QUERIES.items():
        for fmt in FORMATS:
            out = CliRunner().invoke(cli, ["query", query, "--format", fmt, "--store", str(fresh_store)])
            assert out.exit_code == 0, out.output
            assert out.stdout_bytes.decode() == full_path(fresh_store, query, fmt), (name, fmt)


@pytest.mark.parametrize("query", [
    "SELECT ?i ?e WHERE { ?i ns:hasConcept ?e } ORDER BY ?i",  # in kg.query.sql.translate's subset: SQL answers it
    "CONSTRUCT { ?n a arith:Prime } WHERE { ?n a arith:Prime }",  # a graph: rdflib writes it
    "DESCRIBE arith:n7",
])
def test_queries_for_the_full_path_are_left_to_it(cli, fresh_store, query):
    assert fresh_view.answer(str(fresh_store), query, QueryLimits()) is None
    out = CliRunner().invoke(cli, ["query", query, "--store", str(fresh_store)])
    assert out.exit_code == 0, out.output
    with Store.open(fresh_store, shared_view=True) as st:
        result = st.sparql(query)
        assert out.output == result.serialize("turtle" if result.kind == "graph" else "table")


def test_a_stale_view_is_brought_up_to_date_first(cli, tmp_path, tiny_run):
    store = build_store(tmp_path / "s.sqlite", tiny_run)
    ask = "ASK { arith:n7 ns:lucky true }"
    assert fresh_view.answer(str(store), ask, QueryLimits()) == ("ask", False)
    with Store.open(store) as st:  # a write after the view was built; nothing syncs the view here
        st.add_triples([(URIRef(ARITH.n7), URIRef(NS.lucky), Literal(True))], "https://example.org/g")
    assert fresh_view.answer(str(store), ask, QueryLimits()) is None
    assert CliRunner().invoke(cli, ["query", ask, "--store", str(store)]).output == "true\n"
    assert fresh_view.answer(str(store), ask, QueryLimits()) == ("ask", True)  # the full path synced it


def test_a_view_of_an_older_vocabulary_is_left_to_the_full_path(tmp_path, tiny_run):
    store = build_store(tmp_path / "s.sqlite", tiny_run)
    state_file = store.with_suffix(".oxigraph") / "current" / "state.json"
    state = json.loads(state_file.read_text())
    del state["vocabulary"]  # a view written before the view's vocabulary had a version (ns:slot 0 stated)
    state_file.write_text(json.dumps(state))
    assert fresh_view.answer(str(store), "ASK {}", QueryLimits()) is None
    with Store.open(store) as st:
        st.sync_rdf()  # the full path rebuilds it
    assert fresh_view.answer(str(store), "ASK {}", QueryLimits()) == ("ask", True)


def test_a_view_held_by_another_process_is_left_to_the_full_path(tmp_path, tiny_run):
    store = build_store(tmp_path / "s.sqlite", tiny_run)
    with Store.open(store) as holder:
        holder.sync_rdf()  # holds the writer lock, like 'neurosym serve'
        assert fresh_view.answer(str(store), "ASK {}", QueryLimits()) is None
    assert fresh_view.answer(str(store), "ASK {}", QueryLimits()) == ("ask", True)


def test_other_stores_are_left_to_the_full_path(tmp_path, fresh_store):
    assert fresh_view.answer(str(tmp_path / "missing.sqlite"), "ASK {}", QueryLimits()) is None
    assert fresh_view.answer(f"sqlite:///{fresh_store}", "ASK {}", QueryLimits()) is None
    assert fresh_view.answer(str(fresh_store), "ASK {}", QueryLimits(allow_service=("localhost",))) is None
    not_a_store = tmp_path / "x.sqlite"
    not_a_store.write_text("not a database")
    assert fresh_view.answer(str(not_a_store), "ASK {}", QueryLimits()) is None


def test_limits_hold_on_the_fresh_view(fresh_store):
    with pytest.raises(QueryLimitError, match="more than 64 levels deep"):
        fresh_view.answer(str(fresh_store), "ASK " + "{ " * 100 + "}" * 100, QueryLimits())


def cli_process(store: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "--store", str(store), "query", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("args, message", [
    (["SELECT ?x WHERE { ?x }"], "Error: SPARQL syntax error at line:column 1:"),
    (["ASK " + "{ " * 100 + "}" * 100], "Error: query nests brackets more than 64 levels deep"),
    (["--timeout", "0.5", SLOW], "Error: query exceeded the time limit of 0.5 s and was stopped"),
])
def test_bad_queries_are_one_line_and_non_zero(fresh_store, args, message):
    done = cli_process(fresh_store, *args)
    assert done.returncode == 1
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert done.stdout == ""


def test_time_limit_stops_the_work(fresh_store):
    before = set(children())
    with pytest.raises(fresh_view.QueryTimeoutError):
        fresh_view.answer(str(fresh_store), SLOW, QueryLimits(timeout_s=0.3))
    assert set(children()) <= before  # the child that ran it was killed and reaped, not left computing


def children() -> list[int]:
    """Processes (zombies included) whose parent is this one."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(fields[1]) == os.getpid():
            found.append(int(entry))
    return found


# -- the light copies agree with what they copy ----------------------------------------------------------
def test_copies_agree_with_their_sources():
    from kg.sql.derive import VOCABULARY
    from kg.sql.schema import SCHEMA_VERSION
    from kg.rdf.vocab import ARITH, GRAPH_BASE, INPUT_BASE, NS, RUN_BASE
    from rdflib.namespace import OWL, PROV, RDF, RDFS, SKOS, XSD

    assert fresh_view.SCHEMA_VERSION == SCHEMA_VERSION
    assert fresh_view.VIEW_VOCABULARY == VOCABULARY
    assert PREFIXES == {"ns": str(NS), "arith": str(ARITH), "run": RUN_BASE, "input": INPUT_BASE, "graph": GRAPH_BASE,
                        "rdf": str(RDF), "rdfs": str(RDFS), "owl": str(OWL), "xsd": str(XSD), "skos": str(SKOS),
                        "prov": str(PROV)}
    bound = {str(iri): prefix for prefix, iri in bind_prefixes(Graph()).namespaces()}
    assert bound == plain_formats.BOUND


IRIS = [
    *(base + local for base in [*PREFIXES.values(), *plain_formats.RDFLIB_DEFAULT_PREFIXES.values(), "http://e.org/x/"]
      for local in ("a", "n7", "7", "a-b.c", "a_b", "_x", "é", "x%20y", "a(b)", "", "a/b", "1/code/3", "a#b", "·x", "x·")),
    "urn:isbn:0451450523", "http://www.w3.org/XML/1998/namespacelang", "http://e.org/x y", "http://e.org/{x}",
    "https://w3id.org/neurosym/input/digits/test/k3", "mailto:someone@example.org", "http://e.org/Ωmega", "http://e.org/ǅ",
]


def test_table_prefixes_iris_as_rdflib_does():
    for iri in IRIS:
        graph = bind_prefixes(Graph())  # a fresh graph per IRI: rdflib's splits depend on what it saw before
        try:
            expected = graph.namespace_manager.normalizeUri(URIRef(iri))
        except Exception:
            expected = f"<{iri}>"
        assert plain_formats.short_iri(iri) == expected, iri


def test_plain_writers_match_rdflib_s():
    literals = ["plain", 'q"uote', "back\\slash", "new\nline", "cr\rlf", 'ends"\n"', '"""', "é ✓", "tab\tx", ""]
    terms = [None, "https://w3id.org/neurosym/arith#n7", ("b", "b0")]
    terms += [("l", text, "http://www.w3.org/2001/XMLSchema#string", None) for text in literals]
    terms += [("l", "x", "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString", "en-gb")]
    for datatype in ("double", "float", "decimal", "integer", "boolean"):
        for text in ("1", "INF", "-INF", "NaN", "inf", "infinity", "nan", "1e3", "oops"):
            terms.append(("l", text, f"http://www.w3.org/2001/XMLSchema#{datatype}", None))
    rows = [tuple(terms[i:i + 3]) for i in range(0, len(terms) - 2)]
    with warnings.catch_warnings():  # rdflib warns about ill-typed numbers and booleans; the bytes still count
        warnings.simplefilter("ignore")
        full = SparqlResult(kind="select", vars=["a", "b", "c"], rows=[tuple(map(_term, row)) for row in rows])
        for fmt in FORMATS:
            assert plain_formats.serialize("select", (["a", "b", "c"], rows), fmt) == full.serialize(fmt), fmt
    for answer in (True, False):
        for fmt in FORMATS:
            assert plain_formats.serialize("ask", answer, fmt) == SparqlResult(kind="ask", askanswer=answer).serialize(fmt)
    assert isinstance(_term(("b", "b0")), BNode)

