"""The pipeline commands of the README's table, each run for real and checked by what it wrote:
``run`` (store: the run, its alignment, its derived facts), ``encode`` (every input's symbols, the
model's own), ``rules apply`` (the expected triples in their named graphs, nothing new a second time)
and ``serve`` (a real process on a free port, asked over HTTP, stopped by Ctrl-C)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from rdflib import RDF, Graph, URIRef
from sklearn.datasets import load_digits

from kg.store import Store
from kg.rdf.vocab import ARITH, NS
from pipelines.cli import main
from kg.rdf.vocab import rules_graph

ROOT = Path(__file__).resolve().parents[2]
ARITHMETIC = ROOT / "data" / "arithmetic.ttl"
DIGITS = len(load_digits().target)  # every one of scikit-learn's 1 797 digits is encoded, train and test
TINY = """name = "tiny-addition"

[task]
dataset = "digits"
kg = ["arithmetic.ttl"]
query = "queries/addition.rq"
label_entity = "https://w3id.org/neurosym/arith#n{label}"
tuples_per_epoch = 600
test_tuples = 40

[model]
image_size = 8
patch_size = 2
stem_channels = 8
d_model = 32
n_heads = 2
n_layers = 2

[train]
epochs = 2
device = "cpu"

[steps]
align_method = "constraint"
rules = ["rules/digits.rules"]
top_k = 2
"""


def number(iri) -> int:
    return int(str(iri).rsplit("#n", 1)[1])


def top_codes(store: Store, run_id: int) -> dict[tuple[str, str], int]:
    """``(split, key) -> code`` of each input's top symbol, from the assignment table."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT i.split, i.key, a.code FROM assignment a JOIN input i ON i.id = a.input_id "
            f"WHERE a.run_id = {int(run_id)} AND a.rank = 0 AND a.slot = 0").all()
    return {(split, key): code for split, key, code in rows}


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """``neurosym run`` on a one-epoch config: (folder, store path, printed output)."""
    from click.testing import CliRunner

    folder = tmp_path_factory.mktemp("run")
    (folder / "tiny.toml").write_text(TINY)
    store = folder / "s.sqlite"
    result = CliRunner().invoke(main, ["run", str(folder / "tiny.toml"), "--run-dir", str(folder / "run"),
                                       "--store", str(store)])
    assert result.exit_code == 0, result.output
    return folder, store, result.output


def test_run_writes_the_run_its_alignment_and_its_derived_facts(ran):
    folder, path, output = ran
    start = output.index('{\n  "run_id"')  # after training's progress lines
    summary = json.loads(output[start:output.index("\n}\n", start) + 2])
    run_id = summary["run_id"]
    with Store.open(path) as store:
        (run,) = store.runs()
        assert run["id"] == run_id and run["complete"] and run["name"] == "tiny-addition"
        codes = top_codes(store, run_id)
        assert len(codes) == DIGITS
        with store.engine.connect() as conn:
            ranks = conn.exec_driver_sql(f"SELECT COUNT(*) FROM assignment WHERE run_id = {run_id}").scalar()
            aligned = conn.exec_driver_sql(
                "SELECT a.code, e.iri, a.method FROM alignment a JOIN entity e ON e.id = a.entity_id "
                f"WHERE a.run_id = {run_id} ORDER BY a.code").all()
        assert ranks == DIGITS * 2  # steps.top_k = 2 symbols per image
        # constraint alignment: code i is the query's i-th symbol, the digit i
        assert [(c, number(e), m) for c, e, m in aligned] == [(i, i, "constraint") for i in range(10)]
        assert f"code   3 -> {ARITH.n3}" in output
        concept = {str(i): number(e) for i, e in store.sparql("SELECT ?i ?e WHERE { ?i ns:hasConcept ?e }").rows}
        assert len(concept) == DIGITS
        # Derived facts: every test pair's sum, from its two images' concepts, in the rule's graph.
        pairs = store.sparql("SELECT ?p ?x ?y WHERE { ?p ns:first ?x ; ns:second ?y }").rows
        assert len(pairs) == 40
        sums = store.sparql("SELECT ?p ?s WHERE { GRAPH ?g { ?p ns:pairSum ?s } }",
                            {"g": URIRef(rules_graph("pair_sum", run_id))}).rows
        assert {(str(p), number(s)) for p, s in sums} == {(str(p), concept[str(x)] + concept[str(y)]) for p, x, y in pairs}
        isa = store.sparql("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?x ns:isa arith:Number } }",
                           {"g": URIRef(rules_graph("isa", run_id))}).rows[0][0]
        assert int(isa) == DIGITS  # every image's concept is a number
    saved = json.loads((folder / "run" / "result.json").read_text())
    assert saved["store_run_id"] == run_id and saved["pipeline"]["derived_facts"] == summary["derived_facts"] > 0


def test_encode_writes_the_models_symbols_for_every_input(ran, cli_runner, tmp_path):
    from pipelines.config import load_config
    from pipelines.encode_step import load_trained_model
    from pipelines.train_step import prepare_task

    folder, _, _ = ran
    path = tmp_path / "encoded.sqlite"
    result = cli_runner.invoke(main, ["encode", str(folder / "run"), "--store", str(path), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    run_id = int(re.fullmatch(r"run (\d+): (\d+) inputs encoded\n", result.output).group(1))
    assert result.output.endswith(f": {DIGITS} inputs encoded\n")
    with Store.open(path) as store:
        assert [r["id"] for r in store.runs()] == [run_id]
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT i.key, a.rank, a.code, a.confidence FROM assignment a JOIN input i ON i.id = a.input_id "
                f"WHERE a.run_id = {run_id} AND i.split = 'test' AND a.slot = 0").all()
        config, _ = load_config(folder / "run" / "config.toml")
        prepared = prepare_task(config, None, store)
        model = load_trained_model(config, prepared, folder / "run")
    # The model's own two most likely codes and their probabilities, image by image (steps.top_k = 2).
    with torch.no_grad():
        top_p, top_c = model(prepared.test.inputs).concepts.log_probs[:, 0].exp().topk(2, dim=-1)  # (N, 2)
    stored = {(key, rank): (code, confidence) for key, rank, code, confidence in rows}
    assert len(stored) == 2 * len(prepared.test_keys)
    for n, key in enumerate(prepared.test_keys):
        for rank in (0, 1):
            code, confidence = stored[key, rank]
            assert code == int(top_c[n, rank]) and confidence == pytest.approx(float(top_p[n, rank]), abs=1e-5)
    assert top_p[:, 0].std() > 1e-3  # images differ in how sure the model is, by far more than the tolerance


RULES = """@prefix arith: <https://w3id.org/neurosym/arith#> .
[isa] isa(?x, ?c) :- hasConcept(?x, ?e), type(?e, ?c).
[both_prime] ns:BothPrimePair(?p) :- first(?p, ?x), second(?p, ?y), isa(?x, arith:Prime), isa(?y, arith:Prime).
[pair_sum] pairSum(?p, ?s) :- first(?p, ?x), second(?p, ?y), hasConcept(?x, ?a), hasConcept(?y, ?b),
    addend1(?f, ?a), addend2(?f, ?b), sum(?f, ?s).
[below] below(?a, ?b) :- successor(?a, ?b).
[below_step] below(?a, ?c) :- below(?a, ?b), successor(?b, ?c).
"""


def test_rules_apply_derives_the_expected_triples_once(cli_runner, tmp_path):
    from store_backends import add_tiny_run  # run 1: k0..k7 on codes 0..3 -> n2, n3, n4, n9

    path, rules = tmp_path / "s.sqlite", tmp_path / "test.rules"
    rules.write_text(RULES)
    inputs = "https://w3id.org/neurosym/input/digits/test/"
    pairs = {"p0": ("k0", "k1"), "p1": ("k2", "k3"), "p2": ("k1", "k5")}  # n2+n3, n4+n9, n3+n3
    with Store.open(path) as store:
        store.load_rdf([ARITHMETIC])
        run_id = add_tiny_run(store)
        store.add_triples([(URIRef(f"{inputs}{p}"), NS[pos], URIRef(inputs + x))
                           for p, members in pairs.items() for pos, x in zip(("first", "second"), members)],
                          "https://w3id.org/neurosym/graph/tuples/digits")
    # What the rules must derive, worked out here from the KG file and the run's known symbols.
    kg = Graph().parse(ARITHMETIC)
    concept = {f"k{i}": ARITH[f"n{(2, 3, 4, 9)[i % 4]}"] for i in range(8)}
    types = {(e, c) for e, c in kg.subject_objects(RDF.type)}
    isa = {(inputs + x, str(c)) for x, e in concept.items() for t, c in types if t == e}
    prime = {x for x, e in concept.items() if (e, ARITH.Prime) in types}
    both_prime = {inputs + p for p, (x, y) in pairs.items() if x in prime and y in prime}
    pair_sum = {(inputs + p, number(concept[x]) + number(concept[y])) for p, (x, y) in pairs.items()}
    below = {(f"n{a}", f"n{b}") for a in range(19) for b in range(a + 1, 19)}
    assert both_prime == {inputs + "p0", inputs + "p2"}

    def derived(store):
        def graph(rule, variables, pattern):
            return store.sparql(f"SELECT {variables} WHERE {{ GRAPH ?g {{ {pattern} }} }}",
                                {"g": URIRef(rules_graph(rule, run_id))}).rows
        return {
            "isa": {(str(x), str(c)) for x, c in graph("isa", "?x ?c", "?x ns:isa ?c")},
            "both_prime": {str(p) for (p,) in graph("both_prime", "?p", "?p a ns:BothPrimePair")},
            "pair_sum": {(str(p), number(s)) for p, s in graph("pair_sum", "?p ?s", "?p ns:pairSum ?s")},
            "below": Counter((str(a).rsplit("#", 1)[1], str(b).rsplit("#", 1)[1])
                             for rule in ("below", "below_step") for a, b in graph(rule, "?a ?b", "?a ns:below ?b")),
        }

    outputs, states = [], []
    for _ in range(2):
        result = cli_runner.invoke(main, ["rules", "apply", str(rules), "--store", str(path)])
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.output))
        with Store.open(path) as store:
            states.append((derived(store), sorted(store.export("nquads").splitlines())))
    found = states[0][0]
    assert found["isa"] == isa and found["both_prime"] == both_prime and found["pair_sum"] == pair_sum
    assert found["below"] == Counter(below)  # each fact once, in the graph of the rule that found it first
    per_rule = outputs[0]["per_rule"]
    assert per_rule["isa"] == len(isa) and per_rule["below"] + per_rule["below_step"] == len(below)
    assert outputs[0]["derived"] == len(isa) + len(both_prime) + len(pair_sum) + len(below)
    # A second apply derives the same facts and adds nothing: the store is as the first apply left it.
    assert outputs[1]["per_rule"] == per_rule and outputs[1]["derived"] == outputs[0]["derived"]
    assert states[1] == states[0]


def test_serve_answers_over_http_and_stops_on_ctrl_c(ran):
    _, path, _ = ran
    # Ctrl-C as a terminal's foreground job gets it: a shell starts background jobs with SIGINT ignored,
    # and a child inherits that (a suite started with `... &` would otherwise wait here for nothing).
    server = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--store", str(path), "--port", "0",
                               "--workers", "1", "--quiet"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                              env=os.environ | {"PYTHONUNBUFFERED": "1"},
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = server.stderr.readline()  # printed once the socket listens
        url = re.search(r"SPARQL endpoint (http://127\.0\.0\.1:\d+/sparql) \(read-only\)", line)
        assert url, line
        query = "SELECT ?e (COUNT(?i) AS ?n) WHERE { ?i ns:hasConcept ?e } GROUP BY ?e"
        request = urllib.request.Request(f"{url.group(1)}?{urllib.parse.urlencode({'query': query})}",
                                         headers={"Accept": "application/sparql-results+json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
            answer = json.load(response)
        counts = {number(b["e"]["value"]): int(b["n"]["value"]) for b in answer["results"]["bindings"]}
        with Store.open(path) as store:
            codes = Counter(top_codes(store, store.runs()[0]["id"]).values())
        assert counts == dict(codes) and sum(counts.values()) == DIGITS  # code i is digit i
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
        assert "stopped" in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    with pytest.raises(OSError):  # nothing listens there any more
        urllib.request.urlopen(url.group(1), timeout=5)


def test_the_readme_table_lists_the_commands_these_tests_run():
    table = re.findall(r"^\| `neurosym ([a-z]+)", (ROOT / "README.md").read_text(), flags=re.M)
    assert {"run", "encode", "rules", "serve"} <= set(table)
    assert np.all([name in main.commands for name in table])
