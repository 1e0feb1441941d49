"""SELECT and ASK results written from plain terms, without rdflib: ``neurosym query``'s fast path.

``kg.query.formats`` writes results whose terms are rdflib objects; importing rdflib costs a fifth of
a second, more than a small query. This module writes the same bytes (``table``, ``json``, ``csv``,
``tsv``) from the terms as a query worker encodes them (``kg/query/worker.py``): an IRI as ``str``, a
blank node as ``("b", id)``, a literal as ``("l", value, datatype, language)``, unbound as None.
The table shortens IRIs as rdflib's ``NamespaceManager.normalizeUri`` does with the project's prefixes
bound over rdflib's default ones; ``tests/kg/test_fresh_view.py`` checks every format against
``kg.query.formats`` on the same answers, so a change on either side shows there.
"""

from __future__ import annotations

import csv
import io
import json
import math
import unicodedata

from kg.query.format_names import check_written
from kg.rdf.prefixes import OWL_NS, PREFIXES, PROV_NS, RDF_NS, RDFS_NS, SKOS_NS, XSD_NS, XSD_STRING

#: The formats of ``SparqlResult.serialize`` (``neurosym query --format``).
#: Those this module writes (the graph formats need rdflib's serializers).

XSD = XSD_NS
#: The namespaces an rdflib ``Graph()`` binds by default (rdflib 7), before ``kg.rdf.terms.bind_prefixes``.
RDFLIB_DEFAULT_PREFIXES = {
    "brick": "https://brickschema.org/schema/Brick#", "csvw": "http://www.w3.org/ns/csvw#",
    "dc": "http://purl.org/dc/elements/1.1/", "dcam": "http://purl.org/dc/dcam/",
    "dcat": "http://www.w3.org/ns/dcat#", "dcmitype": "http://purl.org/dc/dcmitype/",
    "dcterms": "http://purl.org/dc/terms/", "doap": "http://usefulinc.com/ns/doap#",
    "foaf": "http://xmlns.com/foaf/0.1/", "geo": "http://www.opengis.net/ont/geosparql#",
    "odrl": "http://www.w3.org/ns/odrl/2/", "org": "http://www.w3.org/ns/org#",
    "owl": OWL_NS, "prof": "http://www.w3.org/ns/dx/prof/",
    "prov": PROV_NS, "qb": "http://purl.org/linked-data/cube#",
    "rdf": RDF_NS, "rdfs": RDFS_NS,
    "schema": "https://schema.org/", "sh": "http://www.w3.org/ns/shacl#",
    "skos": SKOS_NS, "sosa": "http://www.w3.org/ns/sosa/",
    "ssn": "http://www.w3.org/ns/ssn/", "time": "http://www.w3.org/2006/time#",
    "vann": "http://purl.org/vocab/vann/", "void": "http://rdfs.org/ns/void#",
    "wgs": "https://www.w3.org/2003/01/geo/wgs84_pos#", "xml": "http://www.w3.org/XML/1998/namespace",
    "xsd": XSD,
}
#: Namespace -> prefix, as the table's graph has them bound (project prefixes override rdflib's).
BOUND = {iri: prefix for prefix, iri in {**RDFLIB_DEFAULT_PREFIXES, **PREFIXES}.items()}

# rdflib.namespace's rules for where an IRI splits into namespace and local name.
_NAME_START = ("Ll", "Lu", "Lo", "Lt", "Nl")
_SPLIT_START = _NAME_START + ("Nd",)
_NAME = _NAME_START + ("Mc", "Me", "Mn", "Lm", "Nd")
_ALLOWED_NAME_CHARS = ("\u00B7", "\u0387", "-", ".", "_", "%", "(", ")")
_XMLNS = "http://www.w3.org/XML/1998/namespace"
_INVALID_IRI_CHARS = '<>" {}|\\^`'
_NUMERIC_INF_NAN = {XSD + "double", XSD + "float", XSD + "decimal"}


def serialize(kind: str, payload, fmt: str) -> str:
    """An ``ask`` (payload: bool) or ``select`` (payload: (names, rows)) answer in ``fmt``, one of
    ``PLAIN_FORMATS``, exactly as ``SparqlResult.serialize`` writes it."""
    check_written(kind, fmt, plain=True)
    if kind == "ask":
        return _ASK_WRITERS[fmt](bool(payload))
    names, rows = payload
    return _SELECT_WRITERS[fmt](list(names), rows)


# -- ASK ---------------------------------------------------------------------------------------------
def _ask_json(answer: bool) -> str:
    return json.dumps({"head": {}, "boolean": answer})


def _ask_csv(answer: bool) -> str:
    return f"_askResult\r\n{'true' if answer else 'false'}\r\n"


def _ask_tsv(answer: bool) -> str:
    return f"?_askResult\n{'true' if answer else 'false'}\n"


def _ask_table(answer: bool) -> str:
    return "true\n" if answer else "false\n"


_ASK_WRITERS = {"json": _ask_json, "csv": _ask_csv, "tsv": _ask_tsv, "table": _ask_table}


# -- SELECT ------------------------------------------------------------------------------------------
def _select_json(names: list[str], rows: list[tuple]) -> str:
    bindings = [{v: _json_term(t) for v, t in zip(names, row) if t is not None} for row in rows]
    return json.dumps({"head": {"vars": names}, "results": {"bindings": bindings}}, ensure_ascii=False)


def _select_csv(names: list[str], rows: list[tuple]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow(["" if t is None else _lexical(t) for t in row])
    return out.getvalue()


def _select_tsv(names: list[str], rows: list[tuple]) -> str:
    lines = ["\t".join(f"?{v}" for v in names)]
    lines += ["\t".join("" if t is None else n3(t) for t in row) for row in rows]
    return "\n".join(lines) + "\n"


def _select_table(names: list[str], rows: list[tuple]) -> str:
    cells = [[("" if t is None else _short(t)) for t in row] for row in rows]
    widths = [max([len(v)] + [len(r[i]) for r in cells]) for i, v in enumerate(names)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    out = [line(names), line(["-" * w for w in widths])] + [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


_SELECT_WRITERS = {"json": _select_json, "csv": _select_csv, "tsv": _select_tsv, "table": _select_table}


# -- terms -------------------------------------------------------------------------------------------
def _lexical(term) -> str:
    """A term as CSV writes it: IRI and literal as their text, a blank node as ``_:id``."""
    if type(term) is str:
        return term
    return f"_:{term[1]}" if term[0] == "b" else term[1]


def _json_term(term) -> dict:
    if type(term) is str:
        return {"type": "uri", "value": term}
    if term[0] == "b":
        return {"type": "bnode", "value": term[1]}
    _, value, datatype, language = term
    out = {"type": "literal", "value": value}
    if language:
        out["xml:lang"] = language
    elif datatype != XSD_STRING:
        out["datatype"] = datatype
    return out


def n3(term) -> str:
    """A term in N-Triples/N3 form, as rdflib's ``Node.n3()`` writes it."""
    if type(term) is str:
        return f"<{term}>"
    if term[0] == "b":
        return f"_:{term[1]}"
    _, value, datatype, language = term
    encoded = _quote(value)
    if language:
        return f"{encoded}@{language}"
    if datatype == XSD_STRING:
        return encoded
    if datatype in _NUMERIC_INF_NAN:
        try:
            number = float(value)
        except ValueError:
            number = 0.0
        if math.isinf(number):
            encoded = encoded.replace("inf", "INF").replace("Infinity", "INF")
        if math.isnan(number):
            encoded = encoded.replace("nan", "NaN")
    return f"{encoded}^^<{datatype}>"


def _quote(value: str) -> str:
    """rdflib's ``Literal._quote_encode``: triple quotes for text with a newline, else escapes."""
    if "\n" in value:
        encoded = value.replace("\\", "\\\\")
        if '"""' in value:
            encoded = encoded.replace('"""', '\\"\\"\\"')
        if encoded[-1] == '"' and encoded[-2] != "\\":
            encoded = encoded[:-1] + "\\" + '"'
        return '"""%s"""' % encoded.replace("\r", "\\r")
    return '"%s"' % value.replace("\n", "\\n").replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r")


def _short(term) -> str:
    """A term as the table shows it: an IRI prefixed where a bound namespace ends where rdflib splits it."""
    if type(term) is str:
        return short_iri(term)
    return f"_:{term[1]}" if term[0] == "b" else term[1]


def short_iri(iri: str) -> str:
    """``prefix:name`` where rdflib's ``normalizeUri`` would write it, else ``<iri>``."""
    if any(c in iri for c in _INVALID_IRI_CHARS):
        return f"<{iri}>"
    split = _split_iri(iri)
    if split is None or split[0] not in BOUND:
        return f"<{iri}>"
    namespace, name = split
    return f"{BOUND[namespace]}:{name}"


def _split_iri(iri: str) -> tuple[str, str] | None:
    """rdflib's ``split_uri``: (namespace, local name), or None where it cannot split."""
    if iri.startswith(_XMLNS):
        return _XMLNS, iri.split(_XMLNS)[1]
    length = len(iri)
    for i in range(length):
        c = iri[-i - 1]
        if unicodedata.category(c) not in _NAME:
            if c in _ALLOWED_NAME_CHARS:
                continue
            for j in range(-1 - i, length):
                if unicodedata.category(iri[j]) in _SPLIT_START or iri[j] == "_":
                    namespace = iri[:j]
                    if not namespace:
                        break
                    return namespace, iri[j:]
            break
    return None
