"""Graph conversions: an rdflib graph (or the store's KG) -> a relational graph for networkx and PyG.

Shape legend: N entities, E edges, R relations.

Which predicates become edge types is an explicit choice: ``relations`` lists them (their order is
the relation index), ``ignore`` lists predicates that link entities but are knowingly left out (e.g.
``rdf:type`` when classes should not be nodes). A triple whose object is a literal (labels, values,
comments) is never an edge and is skipped. Anything else is an error:

- a predicate linking two resources that is in neither list (``KGError`` naming it), so that a KG
  with relations the config does not know is never silently half-used;
- a relation in ``relations`` without a single triple (a typo, or the wrong KG);
- a graph with no edge at all (an empty graph cannot train an encoder).

Entities are the subjects and objects of the chosen relations' triples, plus any ``entities`` passed
explicitly (e.g. the constraint's symbols, so that every code has an entity to align to), sorted in
natural order of their IRIs ("n2" before "n10"). **Isolated entities** (passed explicitly but in no
edge) are kept by default as nodes without edges: a relational GNN gives them only their self-loop
(root) transform of their own embedding, which is finite but carries no KG structure; ``isolated``
lists them. ``on_isolated="error"`` makes them an error instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from rdflib import BNode, Graph, Literal as RDFLiteral, URIRef
from torch import Tensor

from kg.rdf import vocab
from kg.errors import KGError, UnknownEntityError

if TYPE_CHECKING:
    import networkx as nx

    from kg.store import Store


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@dataclass(frozen=True)
class RelationalGraph:
    """A directed multigraph with typed edges, as index tensors plus the two vocabularies.

    Shapes: ``edge_index`` ``[2, E]`` int64 (row 0 heads, row 1 tails, entity indices);
    ``edge_type`` ``[E]`` int64 (relation indices). ``entities[i]`` / ``relations[r]`` are the IRIs.
    """

    entities: tuple[str, ...]
    relations: tuple[str, ...]
    edge_index: Tensor
    edge_type: Tensor

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    @property
    def num_edges(self) -> int:
        return self.edge_type.shape[0]

    @property
    def isolated(self) -> tuple[str, ...]:
        """Entities that appear in no edge."""
        seen = torch.zeros(self.num_entities, dtype=torch.bool)
        seen[self.edge_index.reshape(-1)] = True
        return tuple(e for e, s in zip(self.entities, seen.tolist()) if not s)

    def entity_index(self, iri: str) -> int:
        try:
            return self._entity_ids()[str(iri)]
        except KeyError:
            raise UnknownEntityError(f"entity {iri} is not a node of the graph ({self.num_entities} entities)") from None

    def entity_indices(self, iris: Iterable[str]) -> Tensor:
        """IRIs -> ``[n]`` int64 entity indices (errors name the first unknown IRI)."""
        return torch.tensor([self.entity_index(i) for i in iris], dtype=torch.long)

    def relation_index(self, iri: str) -> int:
        try:
            return self.relations.index(str(iri))
        except ValueError:
            raise KGError(f"relation {iri} is not one of the graph's relations {list(self.relations)}") from None

    def _entity_ids(self) -> dict[str, int]:
        cache = self.__dict__.get("_ids")
        if cache is None:
            cache = {e: i for i, e in enumerate(self.entities)}
            object.__setattr__(self, "_ids", cache)
        return cache

    def triples(self) -> Tensor:
        """``[E, 3]`` int64 (head, relation, tail)."""
        return torch.stack([self.edge_index[0], self.edge_type, self.edge_index[1]], 1)

    def with_triples(self, triples: Iterable[tuple[str, str, str]]) -> RelationalGraph:
        """A new graph with extra (head, relation, tail) IRI triples: unknown entities become nodes,
        unknown relations are appended after the existing ones (natural order), duplicates merge.
        E.g. derived edges such as the curried form of an n-ary fact (``kg.graph.curried_triples``)."""
        triples = [(str(h), str(r), str(t)) for h, r, t in triples]
        new_relations = sorted({r for _, r, _ in triples} - set(self.relations), key=_natural_key)
        relations = self.relations + tuple(new_relations)
        names = sorted(set(self.entities) | {h for h, _, _ in triples} | {t for _, _, t in triples}, key=_natural_key)
        old = [(self.entities[h], self.relations[r], self.entities[t]) for h, r, t in self.triples().tolist()]
        return _build(names, relations, old + triples)

    def to_networkx(self) -> nx.MultiDiGraph:
        """A networkx MultiDiGraph: nodes are entity IRIs (attribute ``index``), edges are keyed by
        relation IRI with attributes ``relation`` (IRI) and ``type`` (index)."""
        import networkx as nx

        graph = nx.MultiDiGraph()
        graph.add_nodes_from((e, {"index": i}) for i, e in enumerate(self.entities))
        for (h, t), r in zip(self.edge_index.t().tolist(), self.edge_type.tolist()):
            graph.add_edge(self.entities[h], self.entities[t], key=self.relations[r],
                           relation=self.relations[r], type=r)
        return graph

    def to_pyg(self):
        """A ``torch_geometric.data.Data`` with ``edge_index``, ``edge_type`` and ``num_nodes``."""
        from torch_geometric.data import Data

        return Data(edge_index=self.edge_index, edge_type=self.edge_type, num_nodes=self.num_entities)


def _build(names: Sequence[str], relations: tuple[str, ...], triples: Iterable[tuple[str, str, str]]) -> RelationalGraph:
    ids = {e: i for i, e in enumerate(names)}
    kinds = {r: i for i, r in enumerate(relations)}
    # Sorted, de-duplicated edges: the same graph always gives the same tensors.
    edges = sorted({(ids[h], kinds[r], ids[t]) for h, r, t in triples})
    table = torch.tensor(edges, dtype=torch.long).reshape(-1, 3)
    return RelationalGraph(
        entities=tuple(names), relations=relations,
        edge_index=table[:, [0, 2]].t().contiguous(), edge_type=table[:, 1].contiguous(),
    )


def curried_relation(function: str, second: str) -> str:
    """The relation IRI of ``function``'s edges whose second argument is ``second``:
    ``function`` + "/" + the local name of ``second`` (``ns:plus`` and ``arith:n4`` -> ``ns:plus/n4``)."""
    return f"{function}/{re.split(r'[#/]', str(second).rstrip('/#'))[-1]}"


def curried_triples(facts: Iterable[tuple[str, str, str]], function: str) -> list[tuple[str, str, str]]:
    """Binary edges for an n-ary fact ``function(a, b) = value``: ``a --function/b--> value``, one
    relation per second argument (``curried_relation``).

    A relational GNN and a triple scorer only see binary edges; the curried form keeps addition
    facts (``3 + 4 = 7`` becomes ``n3 --plus/n4--> n7``) as edges a link predictor can complete."""
    return [(str(a), curried_relation(function, b), str(value)) for a, b, value in facts]


def from_rdflib(
    graph: Graph,
    relations: Sequence[str],
    ignore: Sequence[str] = (),
    entities: Sequence[str] = (),
    on_isolated: Literal["keep", "error"] = "keep",
) -> RelationalGraph:
    """Convert ``graph``'s resource-to-resource triples with predicates in ``relations`` (see module doc).

    Raises KGError for an empty graph, a relation without triples, a predicate that links resources
    but is in neither ``relations`` nor ``ignore``, or (with ``on_isolated="error"``) an isolated entity.
    """
    relations = tuple(str(r) for r in relations)
    if not relations:
        raise KGError("no relations named: pass the predicates whose triples become edges")
    if len(set(relations)) != len(relations):
        raise KGError(f"relations listed twice: {sorted({r for r in relations if relations.count(r) > 1})}")
    if on_isolated not in ("keep", "error"):
        raise KGError(f"on_isolated must be 'keep' or 'error', got {on_isolated!r}")
    ignored = {str(p) for p in ignore}
    if len(graph) == 0:
        raise KGError("the RDF graph is empty: no triples to build a relational graph from")
    wanted = {r: i for i, r in enumerate(relations)}
    heads, tails, types = [], [], []
    unknown: set[str] = set()
    for s, p, o in graph:
        if isinstance(o, RDFLiteral):
            continue
        if not isinstance(s, (URIRef, BNode)):
            continue
        p = str(p)
        if p in wanted:
            heads.append(str(s)), tails.append(str(o)), types.append(wanted[p])
        elif p not in ignored:
            unknown.add(p)
    if unknown:
        first = sorted(unknown)
        raise KGError(
            f"predicate {first[0]} links entities but is neither a relation nor ignored"
            + (f" (and {len(first) - 1} more: {first[1:4]})" if len(first) > 1 else "")
        )
    present = set(types)
    missing = [r for r, i in wanted.items() if i not in present]
    if missing:
        raise KGError(f"relation {missing[0]} has no triples in the graph")
    names = sorted(set(heads) | set(tails) | {str(e) for e in entities}, key=_natural_key)
    result = _build(names, relations, [(h, relations[r], t) for h, r, t in zip(heads, types, tails)])
    if on_isolated == "error" and result.isolated:
        lonely = result.isolated
        raise KGError(f"entity {lonely[0]} is in no edge of the chosen relations ({len(lonely)} isolated in all)")
    return result


def store_graph(store: Store, graph: str = vocab.DEFAULT_KG_GRAPH) -> Graph:
    """All triples of one named graph of the store (the loaded KG by default) as an rdflib Graph."""
    result = store.sparql("CONSTRUCT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o } }", {"g": URIRef(graph)})
    return result.graph


def from_store(store: Store, relations: Sequence[str], graph: str = vocab.DEFAULT_KG_GRAPH, **options) -> RelationalGraph:
    """``from_rdflib`` over the store's KG (the named graph ``graph``); same options and errors."""
    rdf = store_graph(store, graph)
    if len(rdf) == 0:
        raise KGError(f"the store holds no triples in graph {graph}: load a KG first (neurosym kg load FILE)")
    return from_rdflib(rdf, relations, **options)
