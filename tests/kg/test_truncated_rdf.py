"""An RDF file that ends early is refused whole, naming the file and the position; the store is unchanged.

Each format's document is cut mid-element (RDF/XML) or mid-statement, and mid-literal; the cut file is
loaded after a whole file (so a half-written load would show) and must leave SQL and the RDF view as
they were, through the API and the CLI.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kg.errors import RDFParseError
from kg.sql.loading import parse_quads

EX = "http://example.org/"
DOCUMENTS = {
    "ttl": f'@prefix ex: <{EX}> .\nex:a ex:p ex:b .\nex:c ex:p "a literal, cut" .\nex:d ex:p ex:e .\n',
    "nt": (f'<{EX}a> <{EX}p> <{EX}b> .\n<{EX}c> <{EX}p> "a literal, cut" .\n'
           f'<{EX}d> <{EX}p> <{EX}e> .\n'),
    "nq": (f'<{EX}a> <{EX}p> <{EX}b> <{EX}g> .\n<{EX}c> <{EX}p> "a literal, cut" <{EX}g> .\n'
           f'<{EX}d> <{EX}p> <{EX}e> <{EX}g> .\n'),
    "trig": f'@prefix ex: <{EX}> .\nex:g {{\n  ex:a ex:p ex:b .\n  ex:c ex:p "a literal, cut" .\n  ex:d ex:p ex:e .\n}}\n',
    "rdf": ('<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            f'xmlns:ex="{EX}">\n'
            f'  <rdf:Description rdf:about="{EX}a"><ex:p rdf:resource="{EX}b"/></rdf:Description>\n'
            f'  <rdf:Description rdf:about="{EX}c"><ex:p>a literal, cut</ex:p></rdf:Description>\n'
            f'  <rdf:Description rdf:about="{EX}d"><ex:p rdf:resource="{EX}e"/></rdf:Description>\n'
            '</rdf:RDF>\n'),
}
NAMES = {"ttl": "Turtle", "nt": "N-Triples", "nq": "N-Quads", "trig": "TriG", "rdf": "RDF/XML"}


def cuts(suffix: str) -> dict[str, int]:
    """Where to cut each document: inside the literal, inside the last statement or element, and (for
    the formats with an enclosing block) after the last statement, before the block is closed."""
    text = DOCUMENTS[suffix]
    last = text.rindex("ex:e" if suffix in ("ttl", "trig") else f"{EX}e")
    points = {"mid-literal": text.index("literal, cut") + 3, "mid-statement": last + 2}
    if suffix == "rdf":
        points["mid-element"] = text.rindex("</rdf:Description>") + 4
        points["root-unclosed"] = text.rindex("</rdf:RDF>")
    if suffix == "trig":
        points["graph-unclosed"] = text.rindex("}")
    return points


CASES = [(suffix, where) for suffix in DOCUMENTS for where in cuts(suffix)]


def _state(store) -> tuple[str, bool]:
    return store.export(format="nquads"), store.sparql(f"ASK {{ GRAPH ?g {{ <{EX}a> ?p ?o }} }}").askanswer


@pytest.mark.parametrize("suffix, where", CASES, ids=[f"{s}-{w}" for s, w in CASES])
def test_truncated_file_is_refused_with_position_and_store_unchanged(kg_store, tmp_path, suffix, where):
    whole = tmp_path / "whole.nt"
    whole.write_text(f"<{EX}x> <{EX}p> <{EX}y> .\n")
    text = DOCUMENTS[suffix]
    cut = tmp_path / f"cut.{suffix}"
    cut.write_text(text[:cuts(suffix)[where]])
    kg_store.sync_rdf()
    before = _state(kg_store)
    kg_store.batch_size = 1  # every triple its own batch: some reach the writer before the end is seen
    with pytest.raises(RDFParseError, match=rf"cut\.{suffix}:\d+: {NAMES[suffix]} syntax error: column \d+: ") as caught:
        kg_store.load_rdf([whole, cut])
    assert "\n" not in str(caught.value)
    assert _state(kg_store) == before
    assert not kg_store.sparql(f"ASK {{ <{EX}x> ?p ?o }}").askanswer  # the whole file went too


def test_the_whole_documents_parse(tmp_path):
    """The cases above fail for the cut, not for the document: each whole one gives its three triples."""
    for suffix, text in DOCUMENTS.items():
        path = tmp_path / f"whole.{suffix}"
        path.write_text(text)
        assert len(list(parse_quads(path))) == 3, suffix


def test_cli_refuses_truncated_rdf_xml_in_one_line(cli, tmp_path):
    """The defect reported: a cut RDF/XML file loaded with exit 0 and kept the triples before the cut."""
    store = tmp_path / "s.sqlite"
    runner = CliRunner()
    good = tmp_path / "good.nt"
    good.write_text(f"<{EX}x> <{EX}p> <{EX}y> .\n")
    assert runner.invoke(cli, ["kg", "load", str(good), "--store", str(store)]).exit_code == 0
    cut = tmp_path / "cut.rdf"
    cut.write_text(DOCUMENTS["rdf"][:cuts("rdf")["root-unclosed"]])
    result = runner.invoke(cli, ["kg", "load", str(cut), "--store", str(store)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output == (f"Error: {cut}:6: RDF/XML syntax error: column 1: no element found (the file ends before "
                             "its elements are closed: truncated?)\n")
    exported = runner.invoke(cli, ["kg", "export", "--format", "nt", "--store", str(store)])
    assert exported.output == f"<{EX}x> <{EX}p> <{EX}y> .\n"
