"""The store commands as a user types them: --store before or after the command, runs delete/prune,
reading beside a holder of the view, a failed first load leaving no store behind."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from store_backends import ARITHMETIC

from kg.store import Store


def run(cli, *args):
    return CliRunner().invoke(cli, list(args))


def test_store_option_before_or_after_the_command(cli, tmp_path):
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    assert run(cli, "--store", str(first), "kg", "load", str(ARITHMETIC)).exit_code == 0
    assert run(cli, "kg", "load", str(ARITHMETIC), "--store", str(second)).exit_code == 0
    assert run(cli, "--store", str(first), "query", "ASK { arith:n3 a arith:Prime }").output == "true\n"
    # After the command wins over before it.
    assert run(cli, "--store", str(tmp_path / "none.sqlite"), "query", "ASK { ?s ?p ?o }", "--store", str(second)).output == "true\n"


def test_failed_first_load_leaves_no_store(cli, tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text("<https://example.org/a b> <https://example.org/p> 1 .\n")
    store = tmp_path / "new.sqlite"
    result = run(cli, "kg", "load", str(bad), "--store", str(store))
    assert result.exit_code != 0 and "bad.ttl:1:" in result.output and "Traceback" not in result.output
    assert not store.exists() and not store.with_suffix(".oxigraph").exists()


def test_runs_listing_delete_and_prune(cli, tmp_path):
    store = tmp_path / "s.sqlite"
    with Store.open(store) as st:
        st.load_rdf([ARITHMETIC])
        done = st.create_run("done", {}, 0, "v")
        st.add_codes(done, np.arange(2), np.ones(2), np.ones(2))
        hidden = st.create_run("killed", {}, 0, "v", complete=False)
        st.add_codes(hidden, np.arange(2), np.ones(2), np.ones(2))
    listed = [json.loads(line)["id"] for line in run(cli, "kg", "runs", "--store", str(store)).output.splitlines()]
    assert listed == [done]
    every = [json.loads(line) for line in run(cli, "kg", "runs", "--all", "--store", str(store)).output.splitlines()]
    assert [(r["id"], r["complete"]) for r in every] == [(done, True), (hidden, False)]
    assert run(cli, "runs", "prune", "--store", str(store)).output == f"deleted 1 incomplete run(s): {hidden}\n"
    assert run(cli, "runs", "delete", str(done), "--store", str(store)).exit_code == 0
    assert run(cli, "kg", "runs", "--all", "--store", str(store)).output == ""
    result = run(cli, "runs", "delete", "42", "--store", str(store))
    assert result.exit_code != 0 and "unknown run 42" in result.output


def test_query_and_load_beside_a_holder_of_the_view(cli, tmp_path):
    store = tmp_path / "s.sqlite"
    extra = tmp_path / "extra.nt"
    extra.write_text("<https://example.org/a> <https://example.org/p> <https://example.org/b> .\n")
    with Store.open(store) as holder:  # holds the view like 'neurosym serve'
        holder.load_rdf([ARITHMETIC])
        holder.sync_rdf()
        assert run(cli, "query", "ASK { arith:n3 a arith:Prime }", "--store", str(store)).output == "true\n"
        result = run(cli, "kg", "load", str(extra), "--store", str(store))
        assert result.exit_code == 0 and "held by another process" in result.output
        result = run(cli, "query", "ASK { ?s ?p ?o }", "--store", str(store))
        assert result.exit_code != 0 and "query that server's endpoint" in result.output
        assert "Traceback" not in result.output
        assert holder.sparql("ASK { <https://example.org/a> ?p ?o }").askanswer  # the holder picks it up
