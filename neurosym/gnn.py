"""A relational GNN over the KG and a relation scorer, pre-trained by link prediction.

Shape legend: N entities, E edges, R relations, D embedding width, T triples, B batch.

The KG reaches this module as tensors only (``edge_index [2, E]``, ``edge_type [E]``; ``kg.graph``
makes them). ``RGCNEncoder`` embeds every entity with PyG's ``RGCNConv`` layers; each relation also
gets an inverse relation so messages flow both ways. ``RelationScorer`` scores a triple (h, r, t)
from the entity embeddings: DistMult ``<e_h, w_r, e_t>`` (symmetric in h and t, so it cannot tell
``a < b`` from ``b < a``) or ComplEx ``Re <e_h, w_r, conj(e_t)>`` (same cost, handles asymmetric
relations). ``train_link_prediction`` holds out a fraction of the edges, trains on the rest (the
encoder's message passing sees only training edges), and reports filtered MRR and Hits@k on the
held-out edges, both head and tail corrupted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosym.errors import ConfigError, NonFiniteError, ShapeError


def check_graph(edge_index: Tensor, edge_type: Tensor, num_entities: int, num_relations: int) -> None:
    """Raise ConfigError/ShapeError for an empty graph, wrong shapes or indices out of range."""
    if num_entities < 1 or num_relations < 1:
        raise ConfigError(f"the graph needs >= 1 entity and relation, got {num_entities} and {num_relations}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ShapeError(f"edge_index: expected shape [2, E], got {list(edge_index.shape)}")
    if edge_type.shape != edge_index.shape[1:]:
        raise ShapeError(f"edge_type: expected shape [{edge_index.shape[1]}], got {list(edge_type.shape)}")
    if edge_index.shape[1] == 0:
        raise ConfigError("the graph has no edges: nothing to encode or to train a scorer on")
    if edge_index.min() < 0 or edge_index.max() >= num_entities:
        raise ConfigError(f"edge_index holds entity ids outside [0, {num_entities})")
    if edge_type.min() < 0 or edge_type.max() >= num_relations:
        raise ConfigError(f"edge_type holds relation ids outside [0, {num_relations})")


class RGCNEncoder(nn.Module):
    """Learned entity embeddings refined by ``num_layers`` R-GCN layers (PyG's ``RGCNConv``).

    Entities in no edge keep only the layers' root (self-loop) transform of their own embedding.

    Shapes: edge_index ``[2, E]``, edge_type ``[E]`` -> entity embeddings ``[N, D]``.
    """

    def __init__(self, num_entities: int, num_relations: int, dim: int = 32, num_layers: int = 2,
                 num_bases: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        from torch_geometric.nn import RGCNConv

        self.num_entities, self.num_relations = num_entities, num_relations
        self.embedding = nn.Embedding(num_entities, dim)
        nn.init.normal_(self.embedding.weight, std=dim ** -0.5)
        self.convs = nn.ModuleList(
            RGCNConv(dim, dim, 2 * num_relations, num_bases=num_bases) for _ in range(num_layers)
        )
        self.dropout = dropout

    def forward(self, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        check_graph(edge_index, edge_type, self.num_entities, self.num_relations)
        both = torch.cat([edge_index, edge_index.flip(0)], 1)  # (2, 2E): inverse edges
        types = torch.cat([edge_type, edge_type + self.num_relations])  # inverse r is r + R
        x = self.embedding.weight  # (N, D)
        for i, conv in enumerate(self.convs):
            h = conv(x, both, types)
            x = x + h if i < len(self.convs) - 1 else h
            if i < len(self.convs) - 1:
                x = F.dropout(F.relu(x), self.dropout, self.training)
        return x


class RelationScorer(nn.Module):
    """Triple scores from entity embeddings: ``distmult`` or ``complex`` (see module doc).

    Shapes: ``forward`` heads ``[B, D]``, relations ``[B]``, tails ``[B, D]`` -> ``[B]`` (logits);
    ``tails_of`` heads ``[B, D]``, relations ``[B]``, all entities ``[N, D]`` -> ``[B, N]``;
    ``table`` entities ``[K, D]`` -> ``[K, K, R]`` (score of every ordered pair under every relation).
    """

    def __init__(self, num_relations: int, dim: int, kind: Literal["distmult", "complex"] = "complex") -> None:
        super().__init__()
        if kind not in ("distmult", "complex"):
            raise ConfigError(f"scorer kind must be 'distmult' or 'complex', got {kind!r}")
        if kind == "complex" and dim % 2:
            raise ConfigError(f"a ComplEx scorer needs an even width, got {dim}")
        self.kind = kind
        self.relation = nn.Parameter(torch.randn(num_relations, dim) * dim ** -0.5 + (1.0 if kind == "distmult" else 0.0))

    def _query(self, heads: Tensor, relations: Tensor) -> Tensor:
        """``h * w_r`` (DistMult) or ``h * w_r`` in complex arithmetic, ready for ``<., conj(t)>``."""
        w = self.relation[relations]
        if self.kind == "distmult":
            return heads * w
        h_re, h_im = heads.chunk(2, -1)
        w_re, w_im = w.chunk(2, -1)
        return torch.cat([h_re * w_re - h_im * w_im, h_re * w_im + h_im * w_re], -1)

    def forward(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        return (self._query(heads, relations) * tails).sum(-1)  # Re<q, conj(t)> = q_re t_re + q_im t_im

    def tails_of(self, heads: Tensor, relations: Tensor, entities: Tensor) -> Tensor:
        return self._query(heads, relations) @ entities.t()

    def heads_of(self, relations: Tensor, tails: Tensor, entities: Tensor) -> Tensor:
        """``[B]``, tails ``[B, D]``, ``[N, D]`` -> ``[B, N]``: score of every entity as the head."""
        w = self.relation[relations]
        if self.kind == "distmult":
            return (tails * w) @ entities.t()
        # Re<h * w, conj(t)> = Re<h, conj(conj(w) * t)>: a query vector for the heads.
        t_re, t_im = tails.chunk(2, -1)
        w_re, w_im = w.chunk(2, -1)
        query = torch.cat([t_re * w_re + t_im * w_im, t_im * w_re - t_re * w_im], -1)
        return query @ entities.t()

    def table(self, entities: Tensor) -> Tensor:
        k, r = entities.shape[0], self.relation.shape[0]
        heads = entities.repeat_interleave(r, 0)  # (K * R, D)
        rels = torch.arange(r, device=entities.device).repeat(k)
        scores = self.tails_of(heads, rels, entities)  # (K * R, K)
        return scores.view(k, r, k).permute(0, 2, 1).contiguous()  # (K, K, R)


class KGEmbedding(nn.Module):
    """Encoder + scorer. ``forward(edge_index, edge_type)`` -> entity embeddings ``[N, D]``."""

    def __init__(self, num_entities: int, num_relations: int, dim: int = 32, num_layers: int = 2,
                 scorer: Literal["distmult", "complex"] = "complex", num_bases: int | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = RGCNEncoder(num_entities, num_relations, dim, num_layers, num_bases, dropout)
        self.scorer = RelationScorer(num_relations, dim, scorer)

    def forward(self, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        return self.encoder(edge_index, edge_type)


@dataclass
class LinkPredictionConfig:
    """Link-prediction pre-training of ``KGEmbedding`` (full batch: KGs here are small)."""

    dim: int = 32
    num_layers: int = 2
    scorer: Literal["distmult", "complex"] = "complex"
    epochs: int = 300
    lr: float = 0.01
    weight_decay: float = 0.0
    negatives: int = 16
    test_fraction: float = 0.1
    dropout: float = 0.1
    seed: int = 0
    hits_at: tuple[int, ...] = (1, 10)
    threads: int = 1  # full-batch steps on a tiny graph: thread sync costs more than it saves

    def __post_init__(self) -> None:
        if not 0.0 <= self.test_fraction < 1.0:
            raise ConfigError(f"link_prediction.test_fraction must be in [0, 1), got {self.test_fraction}")
        if self.epochs < 1 or self.negatives < 1:
            raise ConfigError("link_prediction.epochs and negatives must be >= 1")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError(f"link_prediction.lr must be > 0 and weight_decay >= 0, got {self.lr} and {self.weight_decay}")
        if self.dim < 2 or self.num_layers < 1 or self.threads < 1:
            raise ConfigError("link_prediction.dim must be >= 2, num_layers and threads >= 1")
        if self.scorer == "complex" and self.dim % 2:
            raise ConfigError(f"link_prediction.dim must be even for the ComplEx scorer, got {self.dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"link_prediction.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class EdgeSplit:
    """Triples ``[T, 3]`` (head, relation, tail) for training and held out for testing."""

    train: Tensor
    test: Tensor

    @property
    def train_edges(self) -> tuple[Tensor, Tensor]:
        """``edge_index [2, T]``, ``edge_type [T]`` of the training triples (what the encoder sees)."""
        return self.train[:, [0, 2]].t().contiguous(), self.train[:, 1].contiguous()


def split_edges(edge_index: Tensor, edge_type: Tensor, test_fraction: float, generator: torch.Generator) -> EdgeSplit:
    """Random held-out split of the edges (at least one training edge is always kept)."""
    triples = torch.stack([edge_index[0], edge_type, edge_index[1]], 1)
    order = torch.randperm(triples.shape[0], generator=generator)
    held = min(int(round(test_fraction * triples.shape[0])), triples.shape[0] - 1)
    return EdgeSplit(train=triples[order[held:]], test=triples[order[:held]])


@dataclass
class LinkPredictionResult:
    """A trained ``KGEmbedding``, its split and held-out metrics (``mrr``, ``hits_at_{k}``)."""

    model: KGEmbedding
    split: EdgeSplit
    metrics: dict[str, float]
    train_seconds: float
    history: list[float] = field(default_factory=list)

    @torch.no_grad()
    def embeddings(self) -> Tensor:
        """``[N, D]`` entity embeddings from the training edges (eval mode)."""
        self.model.eval()
        return self.model(*self.split.train_edges)


def _corrupt(triples: Tensor, num_entities: int, negatives: int, generator: torch.Generator) -> Tensor:
    """``[T, 3]`` -> ``[T * n, 3]``: each triple with its head or its tail replaced at random."""
    neg = triples.repeat(negatives, 1)
    replace = torch.randint(num_entities, (neg.shape[0],), generator=generator)
    tail = torch.rand(neg.shape[0], generator=generator) < 0.5
    neg[:, 2] = torch.where(tail, replace, neg[:, 2])
    neg[:, 0] = torch.where(tail, neg[:, 0], replace)
    return neg


@torch.no_grad()
def filtered_ranks(scorer: RelationScorer, embeddings: Tensor, test: Tensor, known: Tensor) -> Tensor:
    """Filtered ranks (1 = best) of each test triple's tail and head among all entities.

    Other known true triples (``known`` ``[T', 3]``) are removed from the candidates; ties count
    half. Shapes: embeddings ``[N, D]``, test ``[T, 3]`` -> ranks ``[2T]`` float.
    """
    n = embeddings.shape[0]
    true = torch.zeros(scorer.relation.shape[0], n, n, dtype=torch.bool)
    true[known[:, 1], known[:, 0], known[:, 2]] = True
    h, r, t = test.unbind(1)
    tail_scores = scorer.tails_of(embeddings[h], r, embeddings)  # (T, N)
    head_scores = scorer.heads_of(r, embeddings[t], embeddings)  # (T, N)
    ranks = []
    for scores, target, mask in ((tail_scores, t, true[r, h]), (head_scores, h, true[r, :, t])):
        target_score = scores.gather(1, target[:, None])
        others = mask.clone()
        others[torch.arange(len(target)), target] = False  # filter every other true triple
        scores = scores.masked_fill(others, float("-inf"))
        better = (scores > target_score).sum(1).float()
        ties = (scores == target_score).sum(1).float() - 1
        ranks.append(1 + better + ties / 2)
    return torch.cat(ranks)


def rank_metrics(ranks: Tensor, hits_at: tuple[int, ...] = (1, 10)) -> dict[str, float]:
    """Filtered ranks -> ``mrr`` and ``hits_at_{k}``."""
    metrics = {"mrr": float((1 / ranks).mean())}
    metrics.update({f"hits_at_{k}": float((ranks <= k).float().mean()) for k in hits_at})
    return metrics


def train_link_prediction(edge_index: Tensor, edge_type: Tensor, num_entities: int, num_relations: int,
                          config: LinkPredictionConfig | None = None) -> LinkPredictionResult:
    """Pre-train a ``KGEmbedding`` by link prediction (binary cross-entropy against random head or tail
    corruptions) on a held-out split; metrics are filtered over all known triples."""
    config = config or LinkPredictionConfig()
    check_graph(edge_index, edge_type, num_entities, num_relations)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(edge_index, edge_type, num_entities, num_relations, config)
    finally:
        torch.set_num_threads(threads)


def _train(edge_index: Tensor, edge_type: Tensor, num_entities: int, num_relations: int,
           config: LinkPredictionConfig) -> LinkPredictionResult:
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    split = split_edges(edge_index, edge_type, config.test_fraction, generator)
    model = KGEmbedding(num_entities, num_relations, config.dim, config.num_layers, config.scorer,
                        dropout=config.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    train_index, train_type = split.train_edges
    history = []
    started = time.perf_counter()
    for _ in range(config.epochs):
        model.train()
        negatives = _corrupt(split.train, num_entities, config.negatives, generator)
        batch = torch.cat([split.train, negatives])
        targets = torch.cat([torch.ones(split.train.shape[0]), torch.zeros(negatives.shape[0])])
        emb = model(train_index, train_type)
        logits = model.scorer(emb[batch[:, 0]], batch[:, 1], emb[batch[:, 2]])
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        if not torch.isfinite(loss):
            raise NonFiniteError(f"link-prediction loss became {float(loss)}; lower link_prediction.lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    seconds = time.perf_counter() - started
    result = LinkPredictionResult(model=model, split=split, metrics={}, train_seconds=seconds, history=history)
    if split.test.shape[0]:
        known = torch.cat([split.train, split.test])
        ranks = filtered_ranks(model.scorer, result.embeddings(), split.test, known)
        result.metrics = rank_metrics(ranks, config.hits_at)
    result.metrics.update(train_loss=history[-1], test_triples=float(split.test.shape[0]))
    return result
