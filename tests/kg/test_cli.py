"""The kg commands through click's CliRunner on a temporary store."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from store_backends import arithmetic_triples

ARITHMETIC = Path(__file__).resolve().parents[2] / "data" / "arithmetic.ttl"
QUERIES = Path(__file__).resolve().parents[2] / "data" / "queries"


def invoke(cli, store, *args, env=None):
    return CliRunner().invoke(cli, [*args, "--store", str(store)] if args[0] != "kg" else [args[0], *args[1:], "--store", str(store)], env=env)


def test_load_query_export(cli, tmp_path):
    store = tmp_path / "s.sqlite"
    result = invoke(cli, store, "kg", "load", str(ARITHMETIC))
    assert result.exit_code == 0, result.output
    assert f"loaded {arithmetic_triples()} new triples" in result.output
    result = invoke(cli, store, "query", "SELECT ?s WHERE { ?f ns:addend1 arith:n9 ; ns:addend2 arith:n9 ; ns:sum ?s }", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["results"]["bindings"][0]["s"]["value"].endswith("#n18")
    result = invoke(cli, store, "query", "ASK { arith:n4 a arith:Prime }")
    assert result.output == "false\n"
    result = invoke(cli, store, "query", "SELECT ?n WHERE { ?n rdfs:label ?l }", "--bind", 'l="7"', "--format", "csv")
    assert result.output.splitlines()[1].endswith("#n7")
    result = invoke(cli, store, "kg", "export", "--format", "nt")
    assert result.exit_code == 0 and result.output.count("\n") == arithmetic_triples()
    out = tmp_path / "kg.ttl"
    assert invoke(cli, store, "kg", "export", "-o", str(out)).exit_code == 0
    assert "@prefix arith:" in out.read_text()


def test_example_queries_run(cli, tmp_path):
    store = tmp_path / "s.sqlite"
    invoke(cli, store, "kg", "load", str(ARITHMETIC))
    for path in sorted(QUERIES.glob("*.rq")):
        result = invoke(cli, store, "query", "-f", str(path), "--format", "tsv")
        assert result.exit_code == 0, (path, result.output)


def test_store_from_environment(cli, tmp_path):
    store = tmp_path / "env.sqlite"
    result = CliRunner().invoke(cli, ["kg", "load", str(ARITHMETIC)], env={"NEUROSYM_STORE": str(store)})
    assert result.exit_code == 0, result.output
    assert store.exists()


def test_errors_are_one_line_and_non_zero(cli, tmp_path):
    store = tmp_path / "s.sqlite"
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix ex: <http://e/> .\nex:a ex:b .\n")
    for args, message in [
        (("kg", "load", str(bad)), "bad.ttl:2"),
        (("query", "SELECT ?x WHERE { ?x }"), "line:column 1:"),
        (("query", "DELETE WHERE { ?s ?p ?o }"), "updates are not allowed"),
        (("kg", "export", "--run", "5"), "unknown run 5"),
    ]:
        result = invoke(cli, store, *args)
        assert result.exit_code != 0
        assert message in result.output
        assert "Traceback" not in result.output
    assert invoke(cli, store, "query", "ASK { ?s ?p ?o }").output == "false\n"  # the bad load wrote nothing
