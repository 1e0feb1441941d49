"""Pipeline step *align*: map a run's codes to KG entities, store the map, measure it if we can.

``constraint`` reads code i as the constraint's i-th symbol; ``majority`` uses the first
``steps.labelled_examples`` labelled training inputs; ``hungarian`` all training labels;
``label_free`` only tuples of training inputs with their observed labels and the KG's allowed tuples.
Alignment accuracy is measured against the true labels, which only evaluation ever reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kg import alignment
from kg.store import Store
from neurosym.data.tuples import labelled_tuples
from neurosym.errors import ConfigError
from pipelines.config import ExperimentConfig
from pipelines.encode_step import EncodedRun
from pipelines.train_step import PreparedTask

METHODS = ("constraint", "majority", "hungarian", "label_free")


@dataclass
class AlignOutcome:
    alignment: alignment.CodeAlignment
    accuracy: float  # share of codes mapped to the entity their inputs mostly show
    concept_acc: float  # test inputs whose aligned code entity is their true entity
    recovered: int  # entities with at least one correctly mapped code


def compute_alignment(method: str, config: ExperimentConfig, prepared: PreparedTask,
                      encoded: EncodedRun) -> alignment.CodeAlignment:
    if method not in METHODS:
        raise ConfigError(f"unknown alignment method {method!r}; expected one of {', '.join(METHODS)}")
    relation, symbols = prepared.relation, prepared.symbols
    num_codes = config.model.concept.num_codes
    train = encoded.splits["train"]
    codes = train.codes[:, 0]
    truth = prepared.train.symbols.numpy()
    if method == "constraint":
        return alignment.from_constraint(symbols, codes, train.confidence[:, 0], num_codes)
    if method == "majority":
        few = config.steps.labelled_examples
        return alignment.majority(symbols, codes[:few], truth[:few], num_codes)
    if method == "hungarian":
        return alignment.hungarian(symbols, codes, truth, num_codes)
    if relation is None:
        raise ConfigError("label_free alignment searches a flat relation's allowed tuples; a [task.knowledge] "
                          "program has none (use --method constraint)")
    # label_free: the world gives tuples of training inputs and their labels, never the symbols.
    members, labels = labelled_tuples(
        prepared.train.symbols, config.task.tuples_per_epoch, relation.tuples, num_codes,
        torch.Generator().manual_seed(config.train.seed),
    )
    return alignment.label_free(
        relation.symbols, codes[members.numpy()], labels.numpy(), relation.tuples.numpy(), num_codes,
        num_labels=len(relation.labels), seed=config.train.seed,
    )


def align(config: ExperimentConfig, prepared: PreparedTask, encoded: EncodedRun, store: Store,
          method: str | None = None) -> AlignOutcome:
    """Compute the alignment, write it to the store (and so to the RDF view), and score it."""
    method = method or config.steps.align_method
    result = compute_alignment(method, config, prepared, encoded)
    rows = result.rows()
    if rows:
        codes, entities, confidence = zip(*rows)
        store.add_alignments(encoded.run_id, np.array(codes), list(entities), np.array(confidence), method)
    train_codes = encoded.splits["train"].codes[:, 0]
    truth = prepared.train.symbols.numpy()
    test_codes = encoded.splits["test"].codes[:, 0]
    concept_acc = float((result.entity[test_codes] == prepared.test.symbols.numpy()).mean())
    return AlignOutcome(result, result.accuracy(train_codes, truth), concept_acc, result.recovered(train_codes, truth))
