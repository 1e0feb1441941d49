"""GNN consistency regularizer: knowledge-graph structure as soft loss terms beside the constraint.

Shape legend: B pairs, K codes, R relations of the scorer, D code width, G GNN width.

Code i is read as the constraint's symbol i, which aligns to KG entity ``entity_ids[i]``. From a
pre-trained, frozen ``KGEmbedding`` two things are precomputed once, so a training step costs two
small einsums:

- ``plausibility`` ``[K, K, R]``: ``sigmoid(score(e_i, r, e_j))`` for every ordered code pair;
- ``geometry`` ``[K, K]``: cosine similarity of the GNN embeddings of the K aligned entities.

Terms (weights in ``ConsistencyConfig``, all 0 = off by default):

(a) ``relation``: for a pair labelled with relation r (holding or not), the expected plausibility of
    the predicted symbols, ``P = sum_ij p_a(i) p_b(j) sigmoid(score(e_i, r, e_j))``; the loss is
    ``-log P`` where r holds and ``-log(1 - P)`` where it does not.
(b) ``geometry``: mean squared difference between the cosine similarities of the concept layer's
    code vectors and ``geometry`` (off-diagonal), so code geometry follows KG structure. Which
    vectors: ``"readout"`` (the rows of the layer's ``to_logits`` that select each code; VQ: the
    codebook, which both selects and feeds forward) or ``"embedding"`` (the vectors fed to later
    layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosym.errors import ConfigError, ShapeError


@dataclass
class ConsistencyConfig:
    """Weights of the two terms (0 = off, the default) and which code vectors term (b) ties."""

    relation_weight: float = 0.0
    geometry_weight: float = 0.0
    code_vectors: Literal["readout", "embedding"] = "readout"

    def __post_init__(self) -> None:
        if self.relation_weight < 0 or self.geometry_weight < 0:
            raise ConfigError("consistency weights must be >= 0")
        if self.code_vectors not in ("readout", "embedding"):
            raise ConfigError(f"consistency.code_vectors must be 'readout' or 'embedding', got {self.code_vectors!r}")

    @property
    def active(self) -> bool:
        return self.relation_weight > 0 or self.geometry_weight > 0


@torch.no_grad()
def consistency_tables(embeddings: Tensor, scorer: nn.Module, entity_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Entity embeddings ``[N, G]``, a ``RelationScorer``, code -> entity ``[K]`` ->
    (plausibility ``[K, K, R]``, geometry ``[K, K]``)."""
    if entity_ids.dim() != 1 or entity_ids.numel() < 2:
        raise ShapeError(f"entity_ids: expected [K] with K >= 2, got {list(entity_ids.shape)}")
    if entity_ids.min() < 0 or entity_ids.max() >= embeddings.shape[0]:
        raise ConfigError(f"entity_ids must index the {embeddings.shape[0]} entities of the graph")
    chosen = embeddings[entity_ids]  # (K, G)
    plausibility = torch.sigmoid(scorer.table(chosen))
    unit = F.normalize(chosen, dim=-1)
    return plausibility, unit @ unit.t()


def expected_plausibility(log_probs: Tensor, plausibility: Tensor, relations: Tensor) -> Tensor:
    """``sum_ij p_a(i) p_b(j) plausibility[i, j, r]`` per pair.

    Shapes: log_probs ``[B, 2, K]``, plausibility ``[K, K, R]``, relations ``[B]`` -> ``[B]`` in [0, 1].
    """
    probs = log_probs.float().exp()
    table = plausibility.permute(2, 0, 1)[relations]  # (B, K, K)
    return torch.einsum("bi,bij,bj->b", probs[:, 0], table, probs[:, 1])


def relation_loss(log_probs: Tensor, plausibility: Tensor, relations: Tensor, holds: Tensor) -> Tensor:
    """Term (a): ``-log P`` where the relation holds, ``-log(1 - P)`` where not; pairs with relation
    ``-1`` are skipped. Shapes: ``[B, 2, K]``, ``[K, K, R]``, ``[B]``, ``[B]`` bool -> scalar."""
    if log_probs.dim() != 3 or log_probs.shape[1] != 2 or log_probs.shape[2] != plausibility.shape[0]:
        raise ShapeError(f"relation term: expected log_probs [B, 2, {plausibility.shape[0]}], got {list(log_probs.shape)}")
    used = relations >= 0
    if not used.any():
        return log_probs.new_zeros(())
    p = expected_plausibility(log_probs[used], plausibility, relations[used]).clamp(1e-6, 1 - 1e-6)
    return -torch.where(holds[used], p.log(), (1 - p).log()).mean()


def geometry_loss(code_vectors: Tensor, geometry: Tensor) -> Tensor:
    """Term (b): mean squared difference of off-diagonal cosine similarities.

    Shapes: code_vectors ``[K, D]``, geometry ``[K, K]`` -> scalar.
    """
    if code_vectors.dim() != 2 or code_vectors.shape[0] != geometry.shape[0]:
        raise ShapeError(f"geometry term: expected code vectors [{geometry.shape[0]}, D], got {list(code_vectors.shape)}")
    unit = F.normalize(code_vectors.float(), dim=-1)
    off = ~torch.eye(geometry.shape[0], dtype=torch.bool, device=geometry.device)
    return ((unit @ unit.t() - geometry)[off] ** 2).mean()


def code_vectors(concept_layer: nn.Module, which: str = "readout") -> Tensor:
    """The concept layer's ``[K, D]`` code vectors (see module doc)."""
    if which == "readout" and hasattr(concept_layer, "to_logits"):
        return concept_layer.to_logits.weight
    for name in ("embedding", "codebook"):
        vectors = getattr(concept_layer, name, None)
        if isinstance(vectors, Tensor):
            return vectors
        if isinstance(vectors, nn.Embedding):
            return vectors.weight
    raise ConfigError(f"{type(concept_layer).__name__} has no code vectors for the geometry term")


class ConsistencyTask:
    """Wrap a ``RelationTask`` (arity 2) and add the consistency terms to its loss.

    Args:
        base: the task; its ``batches``, ``steps_per_epoch`` and ``evaluate`` are used unchanged.
        plausibility: ``[K, K, R]``, geometry: ``[K, K]`` (from ``consistency_tables``).
        label_relation: ``[L]`` int64, the scorer relation each label value asserts (-1: none);
        label_holds: ``[L]`` bool, whether it asserts that the relation holds or that it does not.
        config: the weights; with both 0 the loss equals the base task's.
    """

    def __init__(self, base, plausibility: Tensor, geometry: Tensor, config: ConsistencyConfig,
                 label_relation: Tensor | None = None, label_holds: Tensor | None = None) -> None:
        k = base.num_codes
        if plausibility.shape[:2] != (k, k) or geometry.shape != (k, k):
            raise ShapeError(f"consistency tables: expected [{k}, {k}, R] and [{k}, {k}], got "
                             f"{list(plausibility.shape)} and {list(geometry.shape)}")
        if config.relation_weight and base.arity != 2:
            raise ConfigError(f"the relation term needs pairs (arity 2), the task has arity {base.arity}")
        if config.relation_weight and label_relation is None:
            raise ConfigError("the relation term is on but no label -> relation map was given")
        self.base, self.config = base, config
        self.plausibility, self.geometry = plausibility, geometry
        num_labels = base.constraint.num_labels
        self.label_relation = label_relation if label_relation is not None else torch.full((num_labels,), -1)
        self.label_holds = label_holds if label_holds is not None else torch.ones(num_labels, dtype=torch.bool)
        if self.label_relation.shape != (num_labels,) or self.label_holds.shape != (num_labels,):
            raise ShapeError(f"label_relation and label_holds: expected [{num_labels}] (one per label value)")

    def __getattr__(self, name):  # everything else (train, test, constraint, ...) is the base task's
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.base.steps_per_epoch(batch_size)

    def batches(self, epoch: int, generator: torch.Generator, batch_size: int, **shard: int):
        return self.base.batches(epoch, generator, batch_size, **shard)

    def loss(self, model: nn.Module, batch, device: torch.device) -> Tensor:
        inputs, labels = batch
        labels = labels.to(device, non_blocking=True)
        log_probs, aux = self.base.tuple_log_probs(model, inputs, device)
        loss = self.base.constraint(log_probs, labels) + self.base.aux_weight * aux
        if self.config.relation_weight:
            labels_cpu = labels.to(self.label_relation.device)
            relations = self.label_relation[labels_cpu].to(device)
            holds = self.label_holds[labels_cpu].to(device)
            loss = loss + self.config.relation_weight * relation_loss(
                log_probs, self.plausibility.to(device), relations, holds)
        if self.config.geometry_weight:
            vectors = code_vectors(model.concept, self.config.code_vectors)
            loss = loss + self.config.geometry_weight * geometry_loss(vectors, self.geometry.to(device))
        return loss

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        return self.base.evaluate(model, device)


def tuple_consistency(codes: Tensor, labels: Tensor, tuples: Tensor) -> float:
    """Fraction of tuples whose predicted symbols ``[P, A]`` and label ``[P]`` form an allowed tuple
    of ``tuples`` ``[R, A + 1]`` (e.g. the full KG's relation)."""
    rows = torch.cat([codes, labels[:, None]], 1)  # (P, A + 1)
    allowed = {tuple(t) for t in tuples.tolist()}
    return sum(tuple(r) in allowed for r in rows.tolist()) / max(1, rows.shape[0])
