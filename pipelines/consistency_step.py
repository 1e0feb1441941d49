"""Glue for the GNN consistency regularizer: store KG (+ curried n-ary facts) -> relational graph ->
pre-trained scorer -> tables aligned to a relation's symbols and labels -> a ``ConsistencyTask``;
plus ``PairTask``, a relation task whose world and knowledge may differ (the benchmark's
weak-knowledge settings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from rdflib import RDF, RDFS
from torch import Tensor

from kg.graph import RelationalGraph, curried_relation, curried_triples, from_store
from kg.store import Store
from kg.rdf.vocab import NS
from neurosym.consistency import ConsistencyConfig, ConsistencyTask, curried_table, geometry_table, holds_table
from neurosym.errors import ConfigError
from neurosym.gnn import (
    LinkPredictionConfig, LinkPredictionResult, filtered_ranks, rank_metrics, train_link_prediction,
)
from neurosym.tasks import RelationTask, SymbolData, TupleHeadTask
from pipelines.knowledge import Relation

#: The arithmetic KG's binary relations between numbers, and the predicates knowingly left out
#: (the reified addition facts enter the graph curried instead: ``addition_triples``).
ARITH_RELATIONS = (str(NS.successor), str(NS.lessThan))
ARITH_IGNORED = (str(RDF.type), str(RDFS.subClassOf), str(NS.addend1), str(NS.addend2), str(NS.sum))
#: The function IRI of curried addition edges: ``n3 --plus/n4--> n7``.
PLUS = str(NS) + "plus"


def relation_triples(relation: Relation, function: str, tuples: Tensor | None = None) -> list[tuple[str, str, str]]:
    """Curried edges (``kg.graph.curried_triples``) of a binary relation's tuples ``[T, 3]``
    (symbol a, symbol b, label; all of ``relation.tuples`` by default)."""
    if relation.arity != 2:
        raise ConfigError(f"curried edges need a relation of arity 2, got arity {relation.arity}")
    names = [curried_relation(function, symbol) for symbol in relation.symbols]
    if len(set(names)) != len(names):
        clash = sorted({n for n in names if names.count(n) > 1})[0]
        raise ConfigError(f"two symbols share the local name of curried relation {clash}; curried edges need "
                          "symbols whose IRIs end in distinct names")
    rows = (relation.tuples if tuples is None else tuples).tolist()
    facts = [(relation.symbols[a], relation.symbols[b], relation.labels[v]) for a, b, v in rows]
    return curried_triples(facts, function)


def pretrain_kg_scorer(store: Store, relations: Sequence[str] = ARITH_RELATIONS,
                       ignore: Sequence[str] = ARITH_IGNORED, entities: Sequence[str] = (),
                       config: LinkPredictionConfig | None = None,
                       extra_triples: Iterable[tuple[str, str, str]] = ()) -> tuple[RelationalGraph, LinkPredictionResult]:
    """Convert the store's KG (plus ``extra_triples``, e.g. curried facts) and pre-train the R-GCN +
    scorer by link prediction."""
    graph = from_store(store, relations, ignore=ignore, entities=entities)
    extra = list(extra_triples)
    if extra:
        graph = graph.with_triples(extra)
    result = train_link_prediction(graph.edge_index, graph.edge_type, graph.num_entities, graph.num_relations, config)
    return graph, result


def _positions(graph: RelationalGraph, iris: Sequence[str]) -> Tensor:
    """``[N]``: entity index -> position in ``iris`` (-1 where the entity is not among them)."""
    lookup = torch.full((graph.num_entities,), -1, dtype=torch.long)
    lookup[graph.entity_indices(iris)] = torch.arange(len(iris))
    return lookup


def holds_label_table(graph: RelationalGraph, scorer: LinkPredictionResult, relation: Relation,
                      label_relations: Mapping[str, tuple[str, bool]], calibrate: bool = True) -> Tensor:
    """``[K, K, L]`` for labels that say whether a KG relation holds between the two symbols.
    ``label_relations`` maps a label value (as in ``relation.labels``) to (relation IRI, holds);
    other labels get plausibility 1 (no term). ``calibrate``: Platt-scale the scores on the pairs
    the graph says hold (``neurosym.consistency.fit_platt``)."""
    embeddings, ids = scorer.embeddings(), graph.entity_indices(relation.symbols)
    k = len(relation.symbols)
    position = _positions(graph, relation.symbols)
    table = torch.ones(k, k, len(relation.labels))
    for label, (iri, holds) in label_relations.items():
        if label not in relation.labels:
            raise ConfigError(f"label {label!r} is not one of the relation's labels {list(relation.labels)}")
        kind = graph.relation_index(iri)
        known = None
        if calibrate:
            heads, tails = graph.edge_index[:, graph.edge_type == kind]
            heads, tails = position[heads], position[tails]
            inside = (heads >= 0) & (tails >= 0)
            known = torch.zeros(k, k, dtype=torch.bool)
            known[heads[inside], tails[inside]] = True
        both = holds_table(embeddings, scorer.model.scorer, ids, kind, known)
        table[:, :, relation.labels.index(label)] = both[:, :, int(holds)]
    return table


def curried_label_table(graph: RelationalGraph, scorer: LinkPredictionResult, relation: Relation,
                        function: str = PLUS, temperature: float = 1.0, calibrate: bool = True) -> Tensor:
    """``[K, K, L]`` for labels that are the value of ``function(a, b)`` in curried form (every
    ``function/b`` relation must be in the graph, every label an entity). ``calibrate``: fit the
    softmax temperature on the curried facts the graph holds instead of using ``temperature``."""
    ids = graph.entity_indices(relation.symbols)
    curried = [curried_relation(function, symbol) for symbol in relation.symbols]
    # A symbol that is never a second argument of a known fact has no relation in the graph: its
    # column carries no knowledge, so it gets plausibility 1 (no term) rather than an error.
    present = torch.tensor([iri in graph.relations for iri in curried])
    if not present.any():
        raise ConfigError(f"the graph has no curried edges of {function}: pre-train the scorer with relation_triples")
    relations = torch.tensor([graph.relation_index(iri) if there else 0 for iri, there in zip(curried, present.tolist())])
    known = None
    if calibrate:
        second = torch.full((graph.num_relations,), -1, dtype=torch.long)
        second[relations[present]] = torch.arange(len(curried))[present]
        heads, tails = graph.edge_index
        rows = torch.stack([_positions(graph, relation.symbols)[heads], second[graph.edge_type],
                            _positions(graph, relation.labels)[tails]], 1)
        known = rows[(rows >= 0).all(1)]
    table = curried_table(scorer.embeddings(), scorer.model.scorer, ids, relations,
                          graph.entity_indices(relation.labels), temperature, known)
    table[:, ~present] = 1.0
    return table


def held_out_metrics(graph: RelationalGraph, scorer: LinkPredictionResult,
                     triples: Sequence[tuple[str, str, str]]) -> dict[str, float]:
    """Filtered MRR / Hits@k of IRI ``triples`` the scorer never saw (e.g. facts removed from the
    constraint), ranked head and tail among all entities; other known edges are filtered."""
    test = torch.tensor([(graph.entity_index(h), graph.relation_index(r), graph.entity_index(t)) for h, r, t in triples],
                        dtype=torch.long).reshape(-1, 3)
    if test.shape[0] == 0:
        raise ConfigError("no held-out triples to rank")
    known = torch.cat([graph.triples(), test])
    return rank_metrics(filtered_ranks(scorer.model.scorer, scorer.embeddings(), test, known))


def consistency_task(base: RelationTask, relation: Relation, graph: RelationalGraph, scorer: LinkPredictionResult,
                     config: ConsistencyConfig, label_table: Tensor | None = None) -> ConsistencyTask:
    """Wrap ``base`` with the regularizer: ``label_table`` from ``holds_label_table`` or
    ``curried_label_table``; the geometry table from the GNN embeddings of the symbols."""
    if base.num_codes != len(relation.symbols):
        raise ConfigError(f"the task has {base.num_codes} codes but the relation {len(relation.symbols)} symbols; "
                          "every code must align to an entity")
    geometry = geometry_table(scorer.embeddings(), graph.entity_indices(relation.symbols))
    return ConsistencyTask(base, config, label_table=label_table, geometry=geometry)


def regularize(task: RelationTask, relation: Relation, kg_graph: RelationalGraph | None,
               section) -> tuple[ConsistencyTask, dict]:
    """The training pipeline's hook (``[consistency]`` of the experiment config, a
    ``pipelines.config.ConsistencySection``): pre-train the scorer on ``kg_graph`` (+ the task's
    tuples, curried, in the curried reading), build the label table of ``section.reading`` and wrap
    ``task``. Configuration errors surface before the pre-training.
    Returns the wrapped task and a summary for ``result.json``."""
    if kg_graph is None:
        raise ConfigError("the consistency regularizer needs the KG graph (prepare the task with the regularizer on)")
    if relation.arity != 2:
        raise ConfigError(f"the consistency regularizer needs a relation over pairs, the task has arity {relation.arity}")
    if isinstance(task, TupleHeadTask):
        raise ConfigError("the consistency regularizer adds to the constraint's loss; task.objective = 'head' "
                          "has none (use objective = 'constraint' or turn [consistency] off)")
    graph = kg_graph
    if section.reading == "curried":  # the task's own facts, as edges the scorer can generalise from
        graph = kg_graph.with_triples(relation_triples(relation, section.function))
    else:
        graph.relation_index(section.holds_relation)  # an unknown relation fails here, before pre-training
        missing = {"true", "false"} - set(relation.labels)
        if missing:
            raise ConfigError(f"consistency.reading = 'holds' needs labels 'true' and 'false'; the task's labels "
                              f"lack {sorted(missing)}")
    scorer = train_link_prediction(graph.edge_index, graph.edge_type, graph.num_entities, graph.num_relations,
                                   section.link_prediction)
    if section.reading == "holds":
        table = holds_label_table(graph, scorer, relation, {"true": (section.holds_relation, True),
                                                            "false": (section.holds_relation, False)},
                                  calibrate=section.calibrate)
    else:
        table = curried_label_table(graph, scorer, relation, section.function, section.temperature,
                                    calibrate=section.calibrate)
    wrapped = consistency_task(task, relation, graph, scorer, section.weights(), table)
    summary = {"scorer_seconds": round(scorer.train_seconds, 3), "entities": graph.num_entities,
               "relations": graph.num_relations, "edges": graph.num_edges,
               "link_prediction": {k: round(v, 4) for k, v in scorer.metrics.items()}}
    return wrapped, summary


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
