"""Pipeline step *train*: load the KG, compile the constraint query, train, evaluate, save the run.

The run folder and its ``result.json`` are described in ``pipelines/run_folder.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from kg.rdf import vocab
from kg.graph import RelationalGraph
from kg.store import Store
from neurosym.checkpoint import seed_everything
from neurosym.data.digits import random_affine, random_shift
from neurosym.data.registry import load_dataset
from neurosym.data.tuples import labelled_tuples
from neurosym.distributed import distributed_context
from neurosym.errors import ConfigError
from neurosym.group_task import GroupTask, group_indices, label_groups
from neurosym.model import ConceptTransformer, TupleClassifier
from neurosym.tasks import RelationTask, SupervisedTask, SymbolData, TupleHeadTask
from neurosym.train import TrainResult, fit
from pipelines.config import ExperimentConfig, resolve_path
from pipelines.knowledge import Relation, dataset_symbols, relation_from_store
from pipelines.knowledge_program import Program, program_from_store
from pipelines.run_folder import RunResult, file_hash


@dataclass
class PreparedTask:
    """The knowledge compiled from the KG (a flat ``relation`` or a ``program`` with latent
    variables) and the dataset expressed in its symbols."""

    relation: Relation | None
    train: SymbolData
    test: SymbolData
    train_keys: list[str]
    test_keys: list[str]
    kg_graph: RelationalGraph | None = None  # the KG as a relational graph, when the regularizer is on
    program: Program | None = None

    @property
    def symbols(self) -> tuple[str, ...]:
        """The input vocabulary: code i of the concept layer is read as ``symbols[i]``."""
        return self.program.symbols if self.program is not None else self.relation.symbols

    @property
    def labels(self) -> tuple[str, ...]:
        return self.program.labels if self.program is not None else self.relation.labels

    @property
    def arity(self) -> int:
        return self.program.arity if self.program is not None else self.relation.arity

    def make_task(self, config: ExperimentConfig):
        """The training task: disjoint labelled groups for a program, drawn tuples for a relation."""
        augment = _augment(config)
        if self.program is not None:
            return GroupTask(self.train, self.test, self.program.constraint, seed=config.train.seed, augment=augment)
        head = {"diversity_weight": config.task.head_diversity_weight} if config.task.objective == "head" else {}
        task_cls = TupleHeadTask if head else RelationTask
        return task_cls(self.train, self.test, self.relation.tuples, config.model.concept.num_codes,
                        tuples_per_epoch=config.task.tuples_per_epoch, test_tuples=config.task.test_tuples,
                        augment=augment, **head)

    def test_tuples(self, config: ExperimentConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """Held-out tuples of test inputs and their labels: members ``[P, A]``, labels ``[P]`` or ``[P, E]``."""
        if self.program is not None:
            constraint, count = self.program.constraint, config.task.test_tuples
            _, groups = group_indices(len(self.train.symbols), len(self.test.symbols), constraint.arity,
                                      config.train.seed)  # the test groups GroupTask holds out, not relabelled
            labels, groups = label_groups(constraint, self.test.symbols, groups)
            return groups[:count], labels[:count]
        return labelled_tuples(self.test.symbols, config.task.test_tuples, self.relation.tuples,
                               config.model.concept.num_codes, torch.Generator().manual_seed(0))


def load_kg(store: Store, config: ExperimentConfig, base: Path | None) -> int:
    """Load the task's KG files into the store (idempotent: known triples are skipped)."""
    paths = [resolve_path(name, base) for name in config.task.kg]
    return store.load_rdf(paths, graph=vocab.DEFAULT_KG_GRAPH)


def read_query(config: ExperimentConfig, base: Path | None) -> tuple[str, str]:
    """The flat constraint query's text and a name for error messages."""
    return read_sparql(config.task.query, base, "task.query")


def read_sparql(text: str, base: Path | None, key: str) -> tuple[str, str]:
    """Inline SPARQL or the text of a ``.rq`` file, and a name for error messages."""
    if "select" in text.lower() and "{" in text:
        return text, key
    path = resolve_path(text, base)
    return path.read_text(), str(path)


def compile_knowledge(config: ExperimentConfig, base: Path | None, store: Store) -> tuple[Relation | None, Program | None]:
    """The task's knowledge from the store: the flat query's relation, or the compiled program."""
    num_codes = config.model.concept.num_codes
    knowledge = config.task.knowledge
    if knowledge is not None:
        queries = {name: read_sparql(text, base, f"task.knowledge.relations.{name}")[0]
                   for name, text in knowledge.relations.items()}
        return None, program_from_store(store, knowledge, queries, num_codes)
    text, name = read_query(config, base)
    relation = relation_from_store(store, text, name)
    if num_codes < len(relation.symbols):
        raise ConfigError(
            f"model.concept.num_codes = {num_codes} is smaller than the relation's {len(relation.symbols)} symbols"
        )
    return relation, None


def _check_inputs(config: ExperimentConfig, inputs: torch.Tensor, source: str) -> None:
    model = config.model
    if model.input != "patches":
        return
    images = inputs.shape[1:] if inputs.dim() == 3 else inputs.shape[2:] if inputs.dim() == 4 else None
    channels = 1 if inputs.dim() == 3 else inputs.shape[1] if inputs.dim() == 4 else None
    if images != (model.image_size, model.image_size) or channels != model.channels:
        raise ConfigError(f"{source}: inputs of shape {list(inputs.shape[1:])} do not fit the model's "
                          f"{model.channels} x {model.image_size} x {model.image_size} images (model.image_size, "
                          f"model.channels)")


def prepare_task(config: ExperimentConfig, base: Path | None, store: Store) -> PreparedTask:
    load_kg(store, config, base)
    relation, program = compile_knowledge(config, base, store)
    task = config.task
    data_path = resolve_path(task.data_path, base) if task.data_path else None
    train, test = load_dataset(task.dataset, data_path, task.test_fraction, task.split_seed)
    _check_inputs(config, train.inputs, f"dataset {task.dataset!r}")
    vocabulary = program if program is not None else relation
    kg_graph = None
    if config.consistency.active:
        from kg.graph import from_store

        kg_graph = from_store(store, config.consistency.relations, ignore=config.consistency.ignore,
                              entities=vocabulary.symbols)
    return PreparedTask(
        relation=relation,
        train=SymbolData(train.inputs, dataset_symbols(train.labels, vocabulary, task.label_entity)),
        test=SymbolData(test.inputs, dataset_symbols(test.labels, vocabulary, task.label_entity)),
        train_keys=train.keys(), test_keys=test.keys(), kg_graph=kg_graph, program=program,
    )


AUGMENTATIONS = {"affine": random_affine, "shift": lambda images, generator: random_shift(images, 2, generator)}


def _augment(config: ExperimentConfig):
    return AUGMENTATIONS.get(config.task.augment)


def build_model(config: ExperimentConfig, prepared: PreparedTask) -> torch.nn.Module:
    encoder = ConceptTransformer(config.model)
    if config.task.objective == "head":
        return TupleClassifier(encoder, prepared.arity, len(prepared.labels))
    return encoder


def train(config: ExperimentConfig, base: Path | None, store: Store | None, run_dir: str | Path,
          progress: bool = True, resume: bool = True, prepared: PreparedTask | None = None) -> RunResult:
    """Train the experiment's model on its task and write the run folder.

    ``store`` is only read (to compile the task) when ``prepared`` is not given.
    """
    prepared = prepared or prepare_task(config, base, store)
    task = prepared.make_task(config)
    extra = {}
    if config.consistency.active:
        if prepared.relation is None:
            raise ConfigError("the [consistency] regularizer needs a flat task.query, not a [task.knowledge] program")
        from pipelines.consistency_step import regularize

        task, extra["consistency"] = regularize(task, prepared.relation, prepared.kg_graph, config.consistency)
    seed_everything(config.train.seed)
    model = build_model(config, prepared)
    result: TrainResult = fit(model, task, config.train, run_dir, run_config=config, resume=resume, progress=progress,
                              restart=lambda: build_model(config, prepared))
    lead = distributed_context()[0] == 0  # under torchrun only rank 0 writes the run's files
    if result.verdict is not None:
        extra["trap"] = result.verdict.to_json()
    outcome = RunResult(
        run_dir=result.run_dir, config=config, metrics=result.metrics, symbols=prepared.symbols,
        labels=prepared.labels, train_seconds=result.train_seconds,
        checkpoint_hash=file_hash(result.checkpoint) if lead else "", history=result.history, extra=extra,
    )
    if lead:
        outcome.save()
    return outcome


def supervised_ceiling(config: ExperimentConfig, prepared: PreparedTask, run_dir: str | Path,
                       progress: bool = False) -> TrainResult:
    """The same network trained on the digit labels themselves, with the same number of inputs seen."""
    task = SupervisedTask(
        prepared.train, prepared.test, config.model.concept.num_codes, augment=_augment(config),
        inputs_per_epoch=config.task.tuples_per_epoch * prepared.arity,
    )
    seed_everything(config.train.seed)
    model = ConceptTransformer(config.model)
    return fit(model, task, config.train, run_dir, run_config=config, resume=False, progress=progress)
