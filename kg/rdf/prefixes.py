"""The namespaces of the store, and the SPARQL prefixes every query may use, as plain strings.

``kg.rdf.vocab`` defines the same namespaces as rdflib ``Namespace`` objects (and re-exports this
``PREFIXES``); this module imports nothing, so that ``neurosym query`` can check and answer a query
without loading rdflib (a fifth of a second). ``docs/store.md`` documents each prefix.
"""

from __future__ import annotations

#: The W3C namespaces the store writes and reads, written out here only.
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS_NS = "http://www.w3.org/2000/01/rdf-schema#"
OWL_NS = "http://www.w3.org/2002/07/owl#"
XSD_NS = "http://www.w3.org/2001/XMLSchema#"
SKOS_NS = "http://www.w3.org/2004/02/skos/core#"
PROV_NS = "http://www.w3.org/ns/prov#"

#: Terms of those namespaces that code compares with.
RDF_TYPE = RDF_NS + "type"
RDF_LANG_STRING = RDF_NS + "langString"
RDFS_SUBCLASS_OF = RDFS_NS + "subClassOf"
RDFS_LABEL = RDFS_NS + "label"
XSD_STRING = XSD_NS + "string"

PREFIXES: dict[str, str] = {
    "ns": "https://w3id.org/neurosym/vocab#",
    "arith": "https://w3id.org/neurosym/arith#",
    "run": "https://w3id.org/neurosym/run/",
    "input": "https://w3id.org/neurosym/input/",
    "graph": "https://w3id.org/neurosym/graph/",
    "rdf": RDF_NS,
    "rdfs": RDFS_NS,
    "owl": OWL_NS,
    "xsd": XSD_NS,
    "skos": SKOS_NS,
    "prov": PROV_NS,
}
