"""Pipeline step *train*: load the KG, compile the constraint query, train, evaluate, save the run.

A run folder holds ``config.toml`` (the whole experiment), ``checkpoint.pt``, ``metrics.csv`` and
``result.json`` (metrics, relation vocabularies, seed, code version, checkpoint hash).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kg import vocab
from kg.graph import RelationalGraph
from kg.store import Store
from neurosym.config import to_dict
from neurosym.data.digits import load_digit_splits, random_affine
from neurosym.model import ConceptTransformer, TupleClassifier
from neurosym.tasks import RelationTask, SupervisedTask, SymbolData, TupleHeadTask
from neurosym.train import TrainResult, distributed_context, fit, seed_everything
from neurosym.version import code_version
from pipelines.config import ExperimentConfig, resolve_path
from pipelines.knowledge import Relation, dataset_symbols, relation_from_store


@dataclass
class PreparedTask:
    """The relation compiled from the KG and the dataset expressed in its symbols."""

    relation: Relation
    train: SymbolData
    test: SymbolData
    train_keys: list[str]
    test_keys: list[str]
    kg_graph: RelationalGraph | None = None  # the KG as a relational graph, when the regularizer is on


@dataclass
class TrainOutcome:
    """What *train* leaves behind (also written to ``result.json``)."""

    run_dir: Path
    metrics: dict[str, float]
    relation: Relation
    train_seconds: float
    checkpoint_hash: str
    history: list[dict[str, float]] = field(default_factory=list)


def load_kg(store: Store, config: ExperimentConfig, base: Path | None) -> int:
    """Load the task's KG files into the store (idempotent: known triples are skipped)."""
    paths = [resolve_path(name, base) for name in config.task.kg]
    return store.load_rdf(paths, graph=vocab.DEFAULT_KG_GRAPH)


def read_query(config: ExperimentConfig, base: Path | None) -> tuple[str, str]:
    """The constraint query text and a name for error messages."""
    query = config.task.query
    if "select" in query.lower() and "{" in query:
        return query, "task.query"
    path = resolve_path(query, base)
    return path.read_text(), str(path)


def prepare_task(config: ExperimentConfig, base: Path | None, store: Store) -> PreparedTask:
    load_kg(store, config, base)
    text, name = read_query(config, base)
    relation = relation_from_store(store, text, name)
    num_codes = config.model.concept.num_codes
    if num_codes < len(relation.symbols):
        raise ValueError(
            f"model.concept.num_codes = {num_codes} is smaller than the relation's {len(relation.symbols)} symbols"
        )
    train, test = load_digit_splits()
    label_entity = config.task.label_entity
    kg_graph = None
    if config.consistency.active:
        from kg.graph import from_store

        kg_graph = from_store(store, config.consistency.relations, ignore=config.consistency.ignore,
                              entities=relation.symbols)
    return PreparedTask(
        relation=relation,
        train=SymbolData(train.images, dataset_symbols(train.labels, relation, label_entity)),
        test=SymbolData(test.images, dataset_symbols(test.labels, relation, label_entity)),
        train_keys=train.keys(), test_keys=test.keys(), kg_graph=kg_graph,
    )


def _augment(config: ExperimentConfig):
    return random_affine if config.task.augment == "affine" else None


def build_model(config: ExperimentConfig, relation: Relation) -> torch.nn.Module:
    encoder = ConceptTransformer(config.model)
    if config.task.objective == "head":
        return TupleClassifier(encoder, relation.arity, len(relation.labels))
    return encoder


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train(config: ExperimentConfig, base: Path | None, store: Store | None, run_dir: str | Path,
          progress: bool = True, resume: bool = True, prepared: PreparedTask | None = None) -> TrainOutcome:
    """Train the experiment's model on its task and write the run folder.

    ``store`` is only read (to compile the task) when ``prepared`` is not given.
    """
    prepared = prepared or prepare_task(config, base, store)
    num_codes = config.model.concept.num_codes
    task_cls = TupleHeadTask if config.task.objective == "head" else RelationTask
    task = task_cls(
        prepared.train, prepared.test, prepared.relation.tuples, num_codes,
        tuples_per_epoch=config.task.tuples_per_epoch, test_tuples=config.task.test_tuples,
        augment=_augment(config),
    )
    extra = {}
    if config.consistency.active:
        from pipelines.consistency_step import regularize

        task, extra["consistency"] = regularize(task, prepared.relation, prepared.kg_graph, config.consistency)
    seed_everything(config.train.seed)
    model = build_model(config, prepared.relation)
    result: TrainResult = fit(model, task, config.train, run_dir, run_config=config, resume=resume, progress=progress)
    if distributed_context()[0] != 0:  # under torchrun only rank 0 writes the run's files
        return TrainOutcome(result.run_dir, result.metrics, prepared.relation, result.train_seconds, "", result.history)
    checkpoint_hash = file_hash(result.checkpoint)
    outcome = TrainOutcome(
        run_dir=result.run_dir, metrics=result.metrics, relation=prepared.relation,
        train_seconds=result.train_seconds, checkpoint_hash=checkpoint_hash, history=result.history,
    )
    write_result(outcome, config, extra)
    return outcome


def write_result(outcome: TrainOutcome, config: ExperimentConfig, extra: dict | None = None) -> Path:
    path = outcome.run_dir / "result.json"
    payload = {
        "name": config.name, "seed": config.train.seed, "code_version": code_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "metrics": outcome.metrics,
        "train_seconds": outcome.train_seconds, "checkpoint": str(outcome.run_dir / "checkpoint.pt"),
        "checkpoint_sha256": outcome.checkpoint_hash, "symbols": list(outcome.relation.symbols),
        "labels": list(outcome.relation.labels), "config": to_dict(config), **(extra or {}),
    }
    path.write_text(json.dumps(payload, indent=2))
    return path


def supervised_ceiling(config: ExperimentConfig, prepared: PreparedTask, run_dir: str | Path,
                       progress: bool = False) -> TrainResult:
    """The same network trained on the digit labels themselves, with the same number of inputs seen."""
    task = SupervisedTask(
        prepared.train, prepared.test, config.model.concept.num_codes, augment=_augment(config),
        inputs_per_epoch=config.task.tuples_per_epoch * prepared.relation.arity,
    )
    seed_everything(config.train.seed)
    model = ConceptTransformer(config.model)
    return fit(model, task, config.train, run_dir, run_config=config, resume=False, progress=progress)
