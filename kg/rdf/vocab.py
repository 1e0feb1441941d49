"""IRIs of the neurosym vocabulary and of the things the store mints (runs, codes, inputs, assignments).

Prefixes (documented in docs/store.md, defined with labels and comments in data/vocab.ttl):

- ``ns:``    https://w3id.org/neurosym/vocab#  the project vocabulary
- ``arith:`` https://w3id.org/neurosym/arith#  the bundled arithmetic KG (entities and classes)
- ``run:``   https://w3id.org/neurosym/run/    runs, their codebooks, codes and assignments
- ``input:`` https://w3id.org/neurosym/input/  inputs, as ``input:{dataset}/{split}/{key}``
- ``graph:`` https://w3id.org/neurosym/graph/  named graphs of loaded KGs
"""

from __future__ import annotations

from urllib.parse import quote

from rdflib import Namespace
from rdflib.namespace import OWL, PROV, RDF, RDFS, SKOS, XSD

NS = Namespace("https://w3id.org/neurosym/vocab#")
ARITH = Namespace("https://w3id.org/neurosym/arith#")
RUN_BASE = "https://w3id.org/neurosym/run/"
INPUT_BASE = "https://w3id.org/neurosym/input/"
GRAPH_BASE = "https://w3id.org/neurosym/graph/"

#: Named graph that ``load_rdf`` uses when no graph is given.
DEFAULT_KG_GRAPH = GRAPH_BASE + "kg"
#: Graph holding the description of inputs (dataset, split, key), shared by all runs.
INPUTS_GRAPH = GRAPH_BASE + "inputs"

#: Alignments at or above this confidence are ``skos:exactMatch``, below it ``skos:closeMatch``.
EXACT_MATCH_THRESHOLD = 0.5

# The prefixes every query may use, as plain strings (rdflib-free, for the CLI's fast start);
# tests/kg/test_fresh_view.py checks they equal the namespaces above.
from kg.rdf.prefixes import PREFIXES  # noqa: E402, F401


def sparql_prologue() -> str:
    """The PREFIX lines for every prefix above, to prepend to a query."""
    return "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in PREFIXES.items())


def _segment(text: str) -> str:
    # Percent-encode so that any key (spaces, slashes, unicode) yields one valid IRI path segment.
    return quote(str(text), safe="-._~")


def run_iri(run_id: int) -> str:
    """The IRI of run ``run_id``; it is also the named graph holding the run's RDF."""
    return f"{RUN_BASE}{int(run_id)}"


def codebook_iri(run_id: int) -> str:
    """The ``skos:ConceptScheme`` holding the codes of a run."""
    return f"{RUN_BASE}{int(run_id)}/codebook"


def code_iri(run_id: int, index: int) -> str:
    """The ``skos:Concept`` of code ``index`` of a run."""
    return f"{RUN_BASE}{int(run_id)}/code/{int(index)}"


def assignment_iri(run_id: int, input_id: int, slot: int, rank: int = 0) -> str:
    """The node of one assignment (input, slot, rank) of a run; rank 0, the top symbol, has no suffix."""
    base = f"{RUN_BASE}{int(run_id)}/a/{int(input_id)}-{int(slot)}"
    return base if rank == 0 else f"{base}-{int(rank)}"


def alignment_iri(run_id: int, index: int, entity_id: int, method: str) -> str:
    """The node of one alignment (code to entity by a method) of a run."""
    return f"{RUN_BASE}{int(run_id)}/alignment/{int(index)}/{int(entity_id)}/{_segment(method)}"


def input_iri(dataset: str, split: str, key: str) -> str:
    """The IRI of one input: ``input:{dataset}/{split}/{key}``, each part percent-encoded."""
    return f"{INPUT_BASE}{_segment(dataset)}/{_segment(split)}/{_segment(key)}"
