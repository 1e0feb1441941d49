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
from rdflib.namespace import OWL, PROV, RDF, RDFS, SKOS, XSD  # noqa: F401 - re-exported for the store's users

from kg.rdf.prefixes import PREFIXES

# The namespaces are written once, as plain strings, in kg.rdf.prefixes (rdflib-free, for the CLI's
# fast start); here they become rdflib Namespaces and the bases IRIs are minted from.
NS = Namespace(PREFIXES["ns"])
ARITH = Namespace(PREFIXES["arith"])
RUN_BASE = PREFIXES["run"]
INPUT_BASE = PREFIXES["input"]
GRAPH_BASE = PREFIXES["graph"]

#: Named graph that ``load_rdf`` uses when no graph is given.
DEFAULT_KG_GRAPH = GRAPH_BASE + "kg"
#: Graph holding the description of inputs (dataset, split, key), shared by all runs.
INPUTS_GRAPH = GRAPH_BASE + "inputs"

#: Named graphs of rule facts start here: ``graph:rules/{rule_id}``, or ``graph:rules/run-{id}/{rule_id}``
#: for the rules applied to a run (written by ``neurosym rules apply``, derived data the endpoint protects).
RULES_GRAPHS = GRAPH_BASE + "rules/"
#: The predicates naming a test tuple's members in order: ns:first .. ns:fourth, then rdf:_5, rdf:_6, ...
MEMBER_ORDINALS = ("first", "second", "third", "fourth")

#: Alignments at or above this confidence are ``skos:exactMatch``, below it ``skos:closeMatch``.
EXACT_MATCH_THRESHOLD = 0.5


def iri_segment(text: str) -> str:
    """``text`` as one IRI path segment: percent-encoded, so that any key (spaces, slashes, unicode) yields a valid IRI."""
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
    return f"{RUN_BASE}{int(run_id)}/alignment/{int(index)}/{int(entity_id)}/{iri_segment(method)}"


def explanation_iri(run_id: int, group: int) -> str:
    """The ``ns:Explanation`` of test group ``group`` of a run."""
    return f"{RUN_BASE}{int(run_id)}/explanation/{int(group)}"


def binding_iri(run_id: int, group: int, position: int) -> str:
    """The binding of variable number ``position`` in the explanation of test group ``group`` of a run."""
    return f"{RUN_BASE}{int(run_id)}/explanation/{int(group)}/{int(position)}"


def variable_iri(run_id: int, name: str) -> str:
    """The ``ns:Variable`` ``name`` of the knowledge a run's explanations bind."""
    return f"{RUN_BASE}{int(run_id)}/variable/{iri_segment(name)}"


def input_iri(dataset: str, split: str, key: str) -> str:
    """The IRI of one input: ``input:{dataset}/{split}/{key}``, each part percent-encoded."""
    return f"{INPUT_BASE}{iri_segment(dataset)}/{iri_segment(split)}/{iri_segment(key)}"


def rules_graph(rule_id: str, run_id: int | None = None) -> str:
    """The named graph of one rule's derived facts, over one run's symbols or (``run_id`` None) the KG's."""
    return f"{run_rules_graphs(run_id)}{rule_id}" if run_id is not None else f"{RULES_GRAPHS}{rule_id}"


def run_rules_graphs(run_id: int) -> str:
    """The start of the named graphs of every rule applied to run ``run_id``."""
    return f"{RULES_GRAPHS}run-{int(run_id)}/"


def tuple_iri(dataset: str, index: int) -> str:
    """Test tuple ``index`` of a dataset (its members in order by ``member_predicate``)."""
    return input_iri(dataset, "test-tuples", f"tuple-{index}")


def tuples_graph(dataset: str) -> str:
    """The named graph of a dataset's test tuples."""
    return f"{GRAPH_BASE}tuples/{dataset}"


def member_predicate(position: int) -> str:
    """The predicate of a tuple's member at ``position``: ``ns:first`` .. ``ns:fourth``, then RDF's container
    membership properties ``rdf:_5``, ``rdf:_6``, ..."""
    return str(NS[MEMBER_ORDINALS[position]]) if position < len(MEMBER_ORDINALS) else f"{RDF}_{position + 1}"
