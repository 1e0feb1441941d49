"""Glue for the GNN consistency regularizer: store KG -> relational graph -> pre-trained scorer ->
tables aligned to a relation's symbols -> a ``ConsistencyTask``; plus ``PairTask``, a relation task
whose world and knowledge may differ (the benchmark's weak-knowledge settings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from rdflib import RDF, RDFS
from torch import Tensor

from kg.graph import RelationalGraph, from_store
from kg.store import Store
from kg.vocab import NS
from neurosym.consistency import ConsistencyConfig, ConsistencyTask, consistency_tables
from neurosym.errors import ConfigError
from neurosym.gnn import LinkPredictionConfig, LinkPredictionResult, train_link_prediction
from neurosym.tasks import RelationTask, SymbolData
from pipelines.knowledge import Relation

#: The arithmetic KG's binary relations between numbers, and the predicates knowingly left out.
ARITH_RELATIONS = (str(NS.successor), str(NS.lessThan))
ARITH_IGNORED = (str(RDF.type), str(RDFS.subClassOf), str(NS.addend1), str(NS.addend2), str(NS.sum))


def pretrain_kg_scorer(store: Store, relations: Sequence[str] = ARITH_RELATIONS,
                       ignore: Sequence[str] = ARITH_IGNORED, entities: Sequence[str] = (),
                       config: LinkPredictionConfig | None = None) -> tuple[RelationalGraph, LinkPredictionResult]:
    """Convert the store's KG and pre-train the R-GCN + scorer by link prediction."""
    graph = from_store(store, relations, ignore=ignore, entities=entities)
    result = train_link_prediction(graph.edge_index, graph.edge_type, graph.num_entities, graph.num_relations, config)
    return graph, result


def aligned_tables(graph: RelationalGraph, scorer: LinkPredictionResult, symbols: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Plausibility ``[K, K, R]`` and geometry ``[K, K]`` for code i = ``symbols[i]``."""
    return consistency_tables(scorer.embeddings(), scorer.model.scorer, graph.entity_indices(symbols))


def consistency_task(base: RelationTask, relation: Relation, graph: RelationalGraph, scorer: LinkPredictionResult,
                     config: ConsistencyConfig, label_relations: Mapping[str, tuple[str, bool]] | None = None) -> ConsistencyTask:
    """Wrap ``base`` with the regularizer. ``label_relations`` maps a label value (as in
    ``relation.labels``) to (KG relation IRI, whether it holds); other labels carry no relation."""
    if base.num_codes != len(relation.symbols):
        raise ConfigError(f"the task has {base.num_codes} codes but the relation {len(relation.symbols)} symbols; "
                          "every code must align to an entity")
    plausibility, geometry = aligned_tables(graph, scorer, relation.symbols)
    label_relation = torch.full((len(relation.labels),), -1, dtype=torch.long)
    label_holds = torch.ones(len(relation.labels), dtype=torch.bool)
    for label, (iri, holds) in (label_relations or {}).items():
        if label not in relation.labels:
            raise ConfigError(f"label {label!r} is not one of the relation's labels {list(relation.labels)}")
        index = relation.labels.index(label)
        label_relation[index], label_holds[index] = graph.relation_index(iri), holds
    return ConsistencyTask(base, plausibility, geometry, config, label_relation, label_holds)


def remove_facts(tuples: Tensor, fraction: float, generator: torch.Generator) -> Tensor:
    """Drop ``fraction`` of the allowed tuples at random (the incomplete KG of benchmark setting i)."""
    keep = torch.randperm(tuples.shape[0], generator=generator)[: tuples.shape[0] - round(fraction * tuples.shape[0])]
    return tuples[keep.sort().values]


class PairTask(RelationTask):
    """A ``RelationTask`` whose training tuples are labelled by the *world* (``tuples``, e.g. every
    true sum) while the constraint knows only ``knowledge`` (e.g. 70% of the facts).

    Training tuples whose label no known tuple explains are dropped (the constraint would give them
    probability 0); the others keep their true label, so some are explained only by wrong symbols.
    With ``pool`` > 0, a fixed set of ``pool`` training tuples is drawn once (generator seeded with
    ``pool_seed``) and reshuffled every epoch: the few-pairs setting. Test tuples and their labels
    come from the world.
    """

    def __init__(self, train: SymbolData, test: SymbolData, tuples: Tensor, num_codes: int,
                 knowledge: Tensor | None = None, pool: int = 0, pool_seed: int = 0, **options) -> None:
        super().__init__(train, test, tuples, num_codes, **options)
        if knowledge is not None:
            from neurosym.constraint import TupleConstraint

            self.constraint = TupleConstraint(knowledge, num_symbols=num_codes, num_labels=self.constraint.num_labels)
        self.explained = torch.zeros(self.constraint.num_labels, dtype=torch.bool)
        self.explained[self.constraint.tuples[:, -1]] = True
        self.pool = None
        if pool:
            from neurosym.data.tuples import labelled_tuples

            members, labels = labelled_tuples(train.symbols, pool, self.tuples, num_codes,
                                              torch.Generator().manual_seed(pool_seed))
            self.pool = members, labels
            self.tuples_per_epoch = pool

    def batches(self, epoch: int, generator: torch.Generator, batch_size: int, rank: int = 0, world: int = 1):
        if self.pool is None:
            from neurosym.data.tuples import labelled_tuples

            members, labels = labelled_tuples(self.train.symbols, self.tuples_per_epoch, self.tuples,
                                              self.num_codes, generator)
        else:
            order = torch.randperm(self.pool[1].shape[0], generator=generator)
            members, labels = self.pool[0][order], self.pool[1][order]
        keep = self.explained[labels]
        members, labels = members[keep][rank::world], labels[keep][rank::world]
        batch_size //= world
        for start in range(0, members.shape[0], batch_size):
            inputs = self.train.inputs[members[start:start + batch_size].reshape(-1)]
            if self.augment is not None:
                inputs = self.augment(inputs, generator)
            yield inputs, labels[start:start + batch_size]
