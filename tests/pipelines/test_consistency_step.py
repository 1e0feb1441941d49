"""pipelines.consistency_step: the scorer over KG + curried facts completes missing addition facts;
the training pipeline's ``[consistency]`` section; bad input."""

from __future__ import annotations

import json

import pytest
import torch

from kg.errors import KGError
from neurosym.config import ConfigError
from neurosym.consistency import ConsistencyTask
from neurosym.gnn import LinkPredictionConfig
from pipelines.config import ConsistencySection, DATA_DIR, load_config
from pipelines.consistency_step import (
    PLUS, curried_label_table, held_out_metrics, pretrain_kg_scorer, regularize, relation_triples, remove_facts,
)
from pipelines.knowledge import relation_from_store
from pipelines.train_step import load_kg, prepare_task, train

FAST = LinkPredictionConfig(epochs=100, lr=0.03, negatives=8, num_layers=1, test_fraction=0.0)


@pytest.fixture
def addition(store):
    config, base = load_config(None)
    load_kg(store, config, base)
    return relation_from_store(store, (DATA_DIR / "queries" / "addition.rq").read_text(), "addition")


def test_scorer_completes_addition_facts_missing_from_the_constraint(store, addition):
    known = remove_facts(addition.tuples, 0.3, torch.Generator().manual_seed(0))
    kept = {tuple(t) for t in known.tolist()}
    removed = torch.tensor([t for t in addition.tuples.tolist() if tuple(t) not in kept])
    assert known.shape[0] == 70 and removed.shape[0] == 30
    graph, scorer = pretrain_kg_scorer(store, entities=addition.symbols, config=FAST,
                                       extra_triples=relation_triples(addition, PLUS, known))
    assert f"{PLUS}/n3" in graph.relations and graph.num_edges == 189 + 70
    metrics = held_out_metrics(graph, scorer, relation_triples(addition, PLUS, removed))
    assert metrics["mrr"] > 0.8 and metrics["hits_at_10"] == 1.0
    # The label table puts the true sum of a removed fact first far more often than chance (1/19).
    table = curried_label_table(graph, scorer, addition, PLUS)  # (10, 10, 19)
    assert table.shape == (10, 10, 19) and torch.allclose(table.sum(-1), torch.ones(10, 10), atol=1e-5)
    top = table[removed[:, 0], removed[:, 1]].argmax(-1)
    assert (top == removed[:, 2]).float().mean() > 0.8


def test_train_pipeline_with_the_regularizer_records_it(store, quick_config, tmp_path):
    config, base = quick_config(**{"consistency.relation_weight": 1.0, "train.epochs": 1})
    prepared = prepare_task(config, base, store)
    assert prepared.kg_graph is not None and prepared.kg_graph.num_relations == 2
    outcome = train(config, base, store, tmp_path / "run", progress=False, prepared=prepared)
    assert all(torch.isfinite(torch.tensor(v)) for v in outcome.metrics.values())
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["consistency"]["relations"] == 2 + 10  # successor, lessThan + taskLabel/n0..n9
    assert result["config"]["consistency"]["relation_weight"] == 1.0
    saved, _ = load_config(tmp_path / "run" / "config.toml")
    assert saved.consistency.relation_weight == 1.0 and saved.consistency.link_prediction.epochs == 100


def test_regularizer_off_by_default_and_bad_sections(store, quick_config):
    config, base = quick_config()
    assert not config.consistency.active and prepare_task(config, base, store).kg_graph is None
    with pytest.raises(ConfigError, match="holds_relation"):
        ConsistencySection(relation_weight=1.0, reading="holds")
    with pytest.raises(ConfigError, match=">= 0"):
        ConsistencySection(geometry_weight=-1.0)
    # A KG predicate linking entities that the section neither uses nor ignores is named.
    config, base = quick_config(**{"consistency.relation_weight": 1.0, "consistency.ignore": []})
    with pytest.raises(KGError, match="neither a relation nor ignored"):
        prepare_task(config, base, store)


def test_regularize_rejects_a_missing_graph_and_wraps_the_task(store, quick_config):
    config, base = quick_config(**{"consistency.relation_weight": 1.0})
    prepared = prepare_task(config, base, store)
    from neurosym.tasks import RelationTask

    task = RelationTask(prepared.train, prepared.test, prepared.relation.tuples, 10, tuples_per_epoch=64, test_tuples=32)
    with pytest.raises(ConfigError, match="needs the KG graph"):
        regularize(task, prepared.relation, None, config.consistency)
    wrapped, summary = regularize(task, prepared.relation, prepared.kg_graph, config.consistency)
    assert isinstance(wrapped, ConsistencyTask) and wrapped.label_table.shape == (10, 10, 19)
    assert summary["edges"] == 189 + 100
