"""GNN consistency regularizer: knowledge-graph structure as soft loss terms beside the constraint.

Shape legend: B pairs, K codes, L label values, R relations of the scorer, D code width, G GNN width.

Code i is read as the constraint's symbol i, which aligns to a KG entity. From a pre-trained,
frozen ``KGEmbedding`` two tables are precomputed once, so a training step costs one gather and
two small einsums:

- ``label_table`` ``[K, K, L]``: how plausible the KG scorer finds "symbols (i, j) have label l".
  Two builders cover the two ways a label can name a KG fact:

  * ``holds_table``: the label says whether a binary relation holds, ``i r j`` (yes/no);
    ``table[i, j, yes] = sigmoid(score(e_i, r, e_j))`` and ``table[i, j, no]`` its complement.
  * ``curried_table``: the label is the value of an n-ary fact ``f(i, j) = l`` stored as binary
    edges ``i --f_j--> l`` (one relation per second argument, e.g. ``plus/n3``);
    ``table[i, j, :] = softmax_l score(e_i, f_j, e_l)``, the scorer's distribution of the value.

  A label value with no KG reading gets plausibility 1 everywhere, so it adds neither loss nor
  gradient.
- ``geometry`` ``[K, K]``: cosine similarity of the GNN embeddings of the K aligned entities.

Terms (weights in ``ConsistencyConfig``, all 0 = off by default):

(a) ``relation``: for a labelled pair, the expected plausibility of the predicted symbols,
    ``P = sum_ij p_a(i) p_b(j) table[i, j, label]``; the loss is ``-log P``. With a scorer that
    generalises (it ranks KG facts missing from the exact constraint's tuples as plausible) this
    gives the symbols of a pair explained only by a missing fact the gradient the constraint cannot.
(b) ``geometry``: mean squared difference between the cosine similarities of the concept layer's
    code vectors and ``geometry`` (off-diagonal), so code geometry follows KG structure. Which
    vectors (``ConceptLayer.code_vectors``): ``"readout"`` (Gumbel: the rows of the logit layer that
    select each code; VQ: the codebook, which both selects and feeds forward) or ``"embedding"`` (the
    vectors fed to later layers).
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


def _check_entities(embeddings: Tensor, ids: Tensor, what: str) -> None:
    if ids.dim() != 1 or ids.numel() < 1:
        raise ShapeError(f"{what}: expected a non-empty [n] index tensor, got {list(ids.shape)}")
    if ids.min() < 0 or ids.max() >= embeddings.shape[0]:
        raise ConfigError(f"{what} must index the {embeddings.shape[0]} entities of the graph")


@torch.no_grad()
def geometry_table(embeddings: Tensor, entity_ids: Tensor) -> Tensor:
    """Entity embeddings ``[N, G]``, code -> entity ``[K]`` -> cosine similarities ``[K, K]``."""
    _check_entities(embeddings, entity_ids, "entity_ids")
    unit = F.normalize(embeddings[entity_ids], dim=-1)
    return unit @ unit.t()


@torch.no_grad()
def holds_table(embeddings: Tensor, scorer: nn.Module, entity_ids: Tensor, relation: int,
                known: Tensor | None = None) -> Tensor:
    """``[K, K, 2]``: plausibility that ``i relation j`` does not hold (label 0) / holds (label 1).

    Shapes: embeddings ``[N, G]``, entity_ids ``[K]`` (code -> entity); ``known`` ``[K, K]`` bool,
    the pairs the KG says hold: when given, the scores are Platt-scaled on them (``fit_platt``)."""
    _check_entities(embeddings, entity_ids, "entity_ids")
    logits = scorer.table(embeddings[entity_ids])[:, :, relation]  # (K, K)
    if known is not None:
        if known.shape != logits.shape:
            raise ShapeError(f"known: expected [{logits.shape[0]}, {logits.shape[1]}], got {list(known.shape)}")
        scale, bias = fit_platt(logits.reshape(-1), known.reshape(-1))
        logits = scale * logits + bias
    holds = torch.sigmoid(logits)
    return torch.stack([1 - holds, holds], -1)


@torch.no_grad()
def curried_table(embeddings: Tensor, scorer: nn.Module, first_ids: Tensor, second_relations: Tensor,
                  label_ids: Tensor, temperature: float = 1.0, known: Tensor | None = None) -> Tensor:
    """``[K, K, L]``: the scorer's distribution over values l of ``f(i, j)``, read from edges
    ``i --f_j--> l``: ``softmax_l score(e_i, f_j, e_l) / temperature``.

    Shapes: embeddings ``[N, G]``; first_ids ``[K]`` (code i -> entity), second_relations ``[K]``
    (code j -> relation index of ``f_j``), label_ids ``[L]`` (label value -> entity); ``known``
    ``[F, 3]`` (i, j, value index) facts the KG holds: when given, ``temperature`` is fitted on them
    (``fit_temperature``) instead."""
    _check_entities(embeddings, first_ids, "first_ids")
    _check_entities(embeddings, label_ids, "label_ids")
    if second_relations.shape != first_ids.shape:
        raise ShapeError(f"second_relations: expected [{first_ids.shape[0]}], got {list(second_relations.shape)}")
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    k = first_ids.shape[0]
    heads = embeddings[first_ids].repeat_interleave(k, 0)  # (K * K, G): i major, j minor
    scores = scorer.tails_of(heads, second_relations.repeat(k), embeddings[label_ids]).view(k, k, -1)  # (K, K, L)
    if known is not None:
        if known.dim() != 2 or known.shape[1] != 3:
            raise ShapeError(f"known: expected [F, 3] (i, j, value), got {list(known.shape)}")
        temperature = fit_temperature(scores[known[:, 0], known[:, 1]], known[:, 2])
    return torch.softmax(scores / temperature, -1)


def fit_platt(logits: Tensor, targets: Tensor, steps: int = 100) -> tuple[float, float]:
    """Platt scaling: ``(scale, bias)`` maximising the likelihood of ``sigmoid(scale * logit + bias)``
    for ``targets``. Shapes: ``[N]``, ``[N]`` bool. A link scorer trained against many random
    corruptions gives true facts low raw probabilities that vary arbitrarily among them; scaled on
    the facts the KG holds, "holds" reads near 1 and "does not" near 0."""
    if logits.shape != targets.shape or logits.numel() == 0:
        raise ShapeError(f"fit_platt: expected matching non-empty [N] tensors, got {list(logits.shape)} and {list(targets.shape)}")
    if targets.all() or not targets.any():
        raise ConfigError("calibration needs facts that hold and facts that do not among the pairs")
    x, y = logits.detach().double(), targets.double()
    x = (x - x.mean()) / x.std().clamp_min(1e-6)
    params = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        # A little L2 keeps the fit finite when the classes separate perfectly.
        loss = F.binary_cross_entropy_with_logits(params[0] * x + params[1], y) + 1e-3 * params.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    scale, bias = params.detach().tolist()
    mean, std = float(logits.double().mean()), float(logits.double().std().clamp_min(1e-6))
    return scale / std, bias - scale * mean / std


def fit_temperature(logits: Tensor, targets: Tensor, steps: int = 100) -> float:
    """The temperature T maximising ``sum log softmax(logits / T)[target]``. Shapes: ``[F, L]``, ``[F]``."""
    if logits.dim() != 2 or targets.shape != logits.shape[:1] or logits.shape[0] == 0:
        raise ShapeError(f"fit_temperature: expected [F, L] and [F] with F >= 1, got {list(logits.shape)} and {list(targets.shape)}")
    x = logits.detach().double()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x / log_t.exp(), targets) + 1e-3 * log_t ** 2
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return float(log_t.detach().exp().clamp(1e-3, 1e3))


def expected_plausibility(log_probs: Tensor, label_table: Tensor, labels: Tensor) -> Tensor:
    """``sum_ij p_a(i) p_b(j) label_table[i, j, label]`` per pair.

    Shapes: log_probs ``[B, 2, K]``, label_table ``[K, K, L]``, labels ``[B]`` -> ``[B]`` in [0, 1].
    """
    probs = log_probs.float().exp()
    table = label_table.permute(2, 0, 1)[labels]  # (B, K, K)
    return torch.einsum("bi,bij,bj->b", probs[:, 0], table, probs[:, 1])


def relation_loss(log_probs: Tensor, label_table: Tensor, labels: Tensor) -> Tensor:
    """Term (a): ``-log P`` averaged over pairs. Shapes: ``[B, 2, K]``, ``[K, K, L]``, ``[B]`` -> scalar."""
    k = label_table.shape[0]
    if log_probs.dim() != 3 or log_probs.shape[1] != 2 or log_probs.shape[2] != k:
        raise ShapeError(f"relation term: expected log_probs [B, 2, {k}], got {list(log_probs.shape)}")
    p = expected_plausibility(log_probs, label_table, labels).clamp_min(1e-6)
    return -p.log().mean()


def geometry_loss(code_vectors: Tensor, geometry: Tensor) -> Tensor:
    """Term (b): mean squared difference of off-diagonal cosine similarities.

    Shapes: code_vectors ``[K, D]``, geometry ``[K, K]`` -> scalar.
    """
    if code_vectors.dim() != 2 or code_vectors.shape[0] != geometry.shape[0]:
        raise ShapeError(f"geometry term: expected code vectors [{geometry.shape[0]}, D], got {list(code_vectors.shape)}")
    unit = F.normalize(code_vectors.float(), dim=-1)
    off = ~torch.eye(geometry.shape[0], dtype=torch.bool, device=geometry.device)
    return ((unit @ unit.t() - geometry)[off] ** 2).mean()


class ConsistencyTask:
    """Wrap a ``RelationTask`` (arity 2) and add the consistency terms to its loss.

    Args:
        base: the task; its ``batches``, ``steps_per_epoch`` and ``evaluate`` are used unchanged.
        config: the weights; with both 0 the loss equals the base task's.
        label_table: ``[K, K, L]`` (needed when ``relation_weight`` > 0), L = the task's label values.
        geometry: ``[K, K]`` (needed when ``geometry_weight`` > 0).
    """

    def __init__(self, base, config: ConsistencyConfig, label_table: Tensor | None = None,
                 geometry: Tensor | None = None) -> None:
        k, num_labels = base.num_codes, base.constraint.num_labels
        if config.relation_weight:
            if base.arity != 2:
                raise ConfigError(f"the relation term needs pairs (arity 2), the task has arity {base.arity}")
            if label_table is None:
                raise ConfigError("the relation term is on but no label table was given")
            if label_table.shape != (k, k, num_labels):
                raise ShapeError(f"label_table: expected [{k}, {k}, {num_labels}], got {list(label_table.shape)}")
            if not torch.isfinite(label_table).all() or label_table.min() < 0 or label_table.max() > 1:
                raise ConfigError("label_table must hold plausibilities in [0, 1] (no NaN)")
        if config.geometry_weight:
            if geometry is None:
                raise ConfigError("the geometry term is on but no geometry table was given")
            if geometry.shape != (k, k):
                raise ShapeError(f"geometry: expected [{k}, {k}], got {list(geometry.shape)}")
        self.base, self.config = base, config
        self.label_table, self.geometry = label_table, geometry

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
        loss = self.base.constraint_on(device)(log_probs, labels) + self.base.aux_weight * aux
        if self.config.relation_weight:
            if self.label_table.device != device:
                self.label_table = self.label_table.to(device)
            loss = loss + self.config.relation_weight * relation_loss(log_probs, self.label_table, labels)
        if self.config.geometry_weight:
            if self.geometry.device != device:
                self.geometry = self.geometry.to(device)
            vectors = model.concept.code_vectors(self.config.code_vectors)
            loss = loss + self.config.geometry_weight * geometry_loss(vectors, self.geometry)
        return loss

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        return self.base.evaluate(model, device)


def tuple_consistency(codes: Tensor, labels: Tensor, tuples: Tensor) -> float:
    """Fraction of tuples whose predicted symbols ``[P, A]`` and label ``[P]`` form an allowed tuple
    of ``tuples`` ``[R, A + 1]`` (e.g. the full KG's relation)."""
    rows = torch.cat([codes, labels[:, None]], 1)  # (P, A + 1)
    allowed = {tuple(t) for t in tuples.tolist()}
    return sum(tuple(r) in allowed for r in rows.tolist()) / max(1, rows.shape[0])
