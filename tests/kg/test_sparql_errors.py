"""SPARQL syntax errors in one line: an undeclared prefix is named with its line, the parser's other
reports are cut to their first meaningful clause, and ``--debug`` shows the parser's whole message."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kg.errors import SparqlSyntaxError

ARITHMETIC = Path(__file__).resolve().parents[2] / "data" / "arithmetic.ttl"


def _error(store, query: str) -> SparqlSyntaxError:
    with pytest.raises(SparqlSyntaxError) as caught:
        store.sparql(query)
    assert "\n" not in str(caught.value) and "\\u{" not in str(caught.value)
    return caught.value


def test_undeclared_prefix_is_named_with_its_line(kg_store):
    error = _error(kg_store, "SELECT ?x WHERE {\n  ?x a arith:Digit .\n  ?x a foo:Bar }")
    assert str(error).startswith("SPARQL syntax error at line:column 3:8: undeclared prefix 'foo:' in foo:Bar; "
                                 "declare it (PREFIX foo: <IRI>) or use a predeclared one (arith:, ")
    assert "Prefix not found" in error.detail  # the parser's own words stay on the error
    # the empty prefix, and one the parser does not report as such (it got further on another reading)
    assert "undeclared prefix ':' in :local" in str(_error(kg_store, "SELECT ?x WHERE { ?x <http://e/p> :local }"))
    assert "undeclared prefix 'foo:' in foo:t" in str(_error(kg_store, 'SELECT ?x WHERE { ?x ?p "1"^^foo:t }'))


def test_prefixes_declared_or_quoted_are_not_blamed(kg_store):
    """Only a prefixed name the query really uses undeclared is named: a PREFIX declaration, a string,
    an IRI or a comment with a colon is not, and the parser's own error is reported instead."""
    query = 'PREFIX foo: <http://f/>\nSELECT ?x WHERE { ?x a foo:Bar ; ?p "bar:baz" , <urn:qux:1> # quux:x\n ?x }'
    message = str(_error(kg_store, query))
    assert "undeclared" not in message and message.startswith("SPARQL syntax error at line:column 3:")
    assert kg_store.sparql('PREFIX foo: <http://f/> ASK { ?x a foo:Bar ; ?p "bar:baz" }').askanswer is False


def test_other_parser_messages_are_cut_to_their_first_clause(kg_store):
    cut = str(_error(kg_store, "SELECT ?x WHERE { ?x a arith:Digit"))
    assert cut == ('SPARQL syntax error at line:column 1:35: expected one of ",", ".", ";", "{", "{|", "}", "~"; '
                   "found the end of the query")
    assert str(_error(kg_store, "SELEC ?x WHERE {}")) == ("SPARQL syntax error at line:column 1:10: expected "
                                                          "CONSTRUCT; found 'WHERE'")
    # a sentence among the alternatives is the clause to keep
    assert "the SELECT contains a variable that is unbound" in str(
        _error(kg_store, "SELECT ?x WHERE { ?x a arith:Digit } GROUP BY ?y"))
    long_list = str(_error(kg_store, "SELECT ?x WHERE { FILTER(?x = ) }"))
    assert long_list.count(", ") <= 8 and ", ...;" in long_list


def test_cli_prints_one_line_and_debug_the_parser_s_whole_message(cli, tmp_path):
    target = tmp_path / "s.sqlite"
    runner = CliRunner()
    assert runner.invoke(cli, ["kg", "load", str(ARITHMETIC), "--store", str(target)]).exit_code == 0
    query = "SELECT ?x WHERE { ?x a foo:Bar }"
    result = runner.invoke(cli, ["query", query, "--store", str(target)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and "undeclared prefix 'foo:' in foo:Bar" in result.output
    debug = runner.invoke(cli, ["--debug", "query", query, "--store", str(target)])
    assert isinstance(debug.exception, SparqlSyntaxError)
    assert "in full:" in debug.output and "Prefix not found" in debug.output and "\\u{00B7}" in debug.output
