"""The SPARQL prefixes every query of the store may use, as plain strings.

``kg.rdf.vocab`` defines the same namespaces as rdflib ``Namespace`` objects (and re-exports this
``PREFIXES``); this module imports nothing, so that ``neurosym query`` can check and answer a query
without loading rdflib (a fifth of a second). ``docs/store.md`` documents each prefix.
"""

from __future__ import annotations

PREFIXES: dict[str, str] = {
    "ns": "https://w3id.org/neurosym/vocab#",
    "arith": "https://w3id.org/neurosym/arith#",
    "run": "https://w3id.org/neurosym/run/",
    "input": "https://w3id.org/neurosym/input/",
    "graph": "https://w3id.org/neurosym/graph/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "prov": "http://www.w3.org/ns/prov#",
}
