"""pipelines.consistency_step: the scorer over KG + curried facts completes missing addition facts;
the training pipeline's ``[consistency]`` section; bad input."""

from __future__ import annotations

import json

import pytest
import torch

from kg.errors import KGError
from neurosym.config import ConfigError
from neurosym.consistency import ConsistencyTask
from kg.rdf.vocab import NS
from neurosym.gnn import LinkPredictionConfig, train_link_prediction
from neurosym.model import ConceptTransformer
from neurosym.tasks import RelationTask, TupleHeadTask
from pipelines.config import DATA_DIR, ConsistencySection, load_config
from pipelines.consistency_step import (
    PLUS, curried_label_table, held_out_metrics, pretrain_kg_scorer, regularize, relation_triples, remove_facts,
)
from pipelines.knowledge import Relation, relation_from_store
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


def test_regularize_wraps_the_task_and_its_term_changes_the_loss(store, quick_config, tiny_model_config):
    config, base = quick_config(**{"consistency.relation_weight": 1.0})
    prepared = prepare_task(config, base, store)
    task = RelationTask(prepared.train, prepared.test, prepared.relation.tuples, 10, tuples_per_epoch=64, test_tuples=32)
    with pytest.raises(ConfigError, match="needs the KG graph"):
        regularize(task, prepared.relation, None, config.consistency)
    wrapped, summary = regularize(task, prepared.relation, prepared.kg_graph, config.consistency)
    assert isinstance(wrapped, ConsistencyTask) and wrapped.label_table.shape == (10, 10, 19)
    assert summary["edges"] == 189 + 100
    torch.manual_seed(0)
    model = ConceptTransformer(tiny_model_config(num_codes=10)).eval()
    batch = next(iter(task.batches(0, torch.Generator().manual_seed(0), 16)))
    cpu = torch.device("cpu")
    assert wrapped.loss(model, batch, cpu) > task.loss(model, batch, cpu) + 0.1  # an untrained model pays the term


def test_holds_reading_and_the_errors_raised_before_pre_training(store, quick_config):
    config, base = quick_config()
    load_kg(store, config, base)
    less = relation_from_store(store, """SELECT ?a ?b ?lt WHERE { ?a a arith:Digit . ?b a arith:Digit .
                                         BIND(EXISTS { ?a ns:lessThan ?b } AS ?lt) }""", "lessThan")
    assert less.labels == ("false", "true")
    from kg.graph import from_store

    graph = from_store(store, ConsistencySection().relations, ignore=ConsistencySection().ignore, entities=less.symbols)
    data = prepare_task(config, base, store)
    task = RelationTask(data.train, data.test, less.tuples, 10, tuples_per_epoch=64, test_tuples=32)
    holds = ConsistencySection(relation_weight=1.0, reading="holds", holds_relation=str(NS.lessThan))
    wrapped, _ = regularize(task, less, graph, holds)
    yes = wrapped.label_table[:, :, less.labels.index("true")]
    below = torch.triu(torch.ones(10, 10, dtype=torch.bool), 1)  # a < b
    assert yes[below].min() > 0.8 and yes[~below].max() < 0.2  # calibrated on the KG's lessThan facts
    typo = ConsistencySection(relation_weight=1.0, reading="holds", holds_relation=str(NS.lessThen))
    with pytest.raises(KGError, match="lessThen"):
        regularize(task, less, graph, typo)
    head = TupleHeadTask(data.train, data.test, less.tuples, 10, tuples_per_epoch=64, test_tuples=32)
    with pytest.raises(ConfigError, match="objective"):
        regularize(head, less, graph, holds)


def test_curried_table_keeps_argument_order_for_an_asymmetric_function():
    """f(a, b) = (a + 2b) mod 4 is not symmetric: the table must read code i as a and code j as b."""
    from rdflib import Graph, URIRef

    ex = "https://example.org/"
    symbols = tuple(f"{ex}s{k}" for k in range(4))
    rdf = Graph()
    for k in range(4):
        rdf.add((URIRef(symbols[k]), URIRef(ex + "next"), URIRef(symbols[(k + 1) % 4])))
    tuples = torch.tensor([(a, b, (a + 2 * b) % 4) for a in range(4) for b in range(4)])
    relation = Relation(tuples=tuples, symbols=symbols, labels=symbols, columns=("a", "b", "f"))
    from kg.graph import from_rdflib

    graph = from_rdflib(rdf, [ex + "next"]).with_triples(relation_triples(relation, ex + "f"))
    scorer = train_link_prediction(graph.edge_index, graph.edge_type, graph.num_entities, graph.num_relations,
                                   LinkPredictionConfig(epochs=200, lr=0.03, negatives=8, num_layers=1, test_fraction=0.0))
    predicted = curried_label_table(graph, scorer, relation, ex + "f").argmax(-1)  # (4, 4)
    truth = (torch.arange(4)[:, None] + 2 * torch.arange(4)[None, :]) % 4
    assert (predicted == truth).float().mean() >= 0.9
    assert (predicted == truth.t()).float().mean() < 0.5


def test_symbols_missing_as_second_arguments_get_no_term(store, addition):
    known = addition.tuples[addition.tuples[:, 1] != 9]  # no fact has 9 as its second addend
    graph, scorer = pretrain_kg_scorer(store, entities=addition.symbols, config=FAST,
                                       extra_triples=relation_triples(addition, PLUS, known))
    table = curried_label_table(graph, scorer, addition, PLUS)
    assert torch.equal(table[:, 9], torch.ones(10, 19))
    assert torch.allclose(table[:, :9].sum(-1), torch.ones(10, 9), atol=1e-5)


def test_the_documented_consistency_section_loads(tmp_path):
    docs = (DATA_DIR.parent / "docs" / "consistency.md").read_text()
    block = docs.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "experiment.toml").write_text(block)
    config, _ = load_config(tmp_path / "experiment.toml")
    section = config.consistency
    assert section.active and section.calibrate and section.function.endswith("#plus")
    assert section.link_prediction.epochs == 150 and section.link_prediction.lr == 0.03  # partial table keeps defaults
