"""Discrete prefix (prompt): learnable prefix vectors snapped to learnable anchors, prepended.

Shape legend: B batch, T tokens, P prefix length, M anchors, D width.

Each of the P prefix vectors is replaced by its nearest anchor (squared euclidean distance); the
chosen anchor indices are the prefix's symbols, written to the store like any other code. The
forward value is the anchor itself, so the task's gradient reaches the chosen anchors directly, and
it is copied straight through to the prefix vectors (``anchor + prefix - sg(prefix)``); a commitment
loss keeps each prefix vector near its anchor so that the choice settles.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosym.concepts.vq import nearest_code_distances
from neurosym.errors import ConfigError, check_shape
from neurosym.model import ConceptTransformer, ModelOutput


def snap_to_anchors(prefix: Tensor, anchors: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest anchor of each prefix vector, with gradient to both (straight-through to ``prefix``).

    Shapes: prefix ``[P, D]``, anchors ``[M, D]`` -> snapped ``[P, D]``, codes ``[P]``, log-probs
    ``[P, M]`` (softmax of minus the distances).
    """
    distances = nearest_code_distances(prefix, anchors)  # (P, M)
    codes = distances.argmin(-1)
    snapped = anchors[codes] + prefix - prefix.detach()
    return snapped, codes, F.log_softmax(-distances.detach(), dim=-1)


@dataclass
class PrefixOutput:
    """Shapes: ``sequence`` ``[B, P + T, D]``; ``codes`` ``[P]`` chosen anchors; ``confidence`` ``[P]``
    their probability under ``softmax(-distance)``; ``aux_loss`` scalar (commitment)."""

    sequence: Tensor
    codes: Tensor
    confidence: Tensor
    aux_loss: Tensor


class DiscretePrefix(nn.Module):
    """P learnable prefix vectors snapped to M learnable anchors and prepended to a sequence.

    Args:
        length: prefix length P (>= 1).
        dim: width D.
        num_anchors: M, the size of the anchor set (the prefix's symbol vocabulary).
        context: the model's context length; ``P`` and ``P + T`` must fit it (None: unchecked).
        commitment_weight: weight of ``||prefix - sg(anchor)||^2`` plus ``||sg(prefix) - anchor||^2``.

    Shapes: input ``[B, T, D]`` -> PrefixOutput with sequence ``[B, P + T, D]``.
    """

    def __init__(self, length: int, dim: int, num_anchors: int, context: int | None = None,
                 commitment_weight: float = 0.25) -> None:
        super().__init__()
        if length < 1:
            raise ConfigError(f"prefix length must be >= 1, got {length}")
        if num_anchors < 2:
            raise ConfigError(f"num_anchors must be >= 2, got {num_anchors}")
        if context is not None and length > context:
            raise ConfigError(f"prefix length {length} is longer than the model's context of {context} tokens")
        self.length, self.dim, self.context = length, dim, context
        self.commitment_weight = commitment_weight
        self.anchors = nn.Parameter(torch.randn(num_anchors, dim) * 0.5)
        # Start each prefix vector on a distinct anchor, so the initial choice is spread out.
        start = torch.randperm(num_anchors)[:length] if length <= num_anchors else torch.randint(num_anchors, (length,))
        self.prefix = nn.Parameter(self.anchors.detach()[start] + 0.01 * torch.randn(length, dim))

    @property
    def num_anchors(self) -> int:
        return self.anchors.shape[0]

    def symbols(self) -> tuple[Tensor, Tensor]:
        """The chosen anchors ``[P]`` and their confidence ``[P]`` (no gradient)."""
        with torch.no_grad():
            _, codes, log_probs = snap_to_anchors(self.prefix, self.anchors)
        return codes, log_probs.gather(-1, codes[:, None]).squeeze(-1).exp()

    def forward(self, x: Tensor) -> PrefixOutput:
        check_shape("prefixed sequence", x, "[B, T, D]", 3, d2=self.dim)
        if self.context is not None and self.length + x.shape[1] > self.context:
            raise ConfigError(f"prefix length {self.length} + {x.shape[1]} input tokens exceeds the model's "
                              f"context of {self.context} tokens")
        snapped, codes, log_probs = snap_to_anchors(self.prefix, self.anchors)
        chosen = self.anchors[codes]
        aux = self.commitment_weight * (F.mse_loss(self.prefix, chosen.detach()) + F.mse_loss(chosen, self.prefix.detach()))
        sequence = torch.cat([snapped.to(x.dtype).expand(x.shape[0], -1, -1), x], dim=1)  # (B, P + T, D)
        confidence = log_probs.gather(-1, codes[:, None]).squeeze(-1).exp()
        return PrefixOutput(sequence=sequence, codes=codes, confidence=confidence, aux_loss=aux)


class PrefixedConceptTransformer(nn.Module):
    """A ConceptTransformer whose token sequence starts with a discrete prefix.

    The prefix enters after the input adapter and takes the first P positions of the model's
    context; with ``slots = "tokens"`` the prefix positions are dropped before the concept layer,
    so the input's slots keep their meaning. The prefix's aux loss is added to the concept layer's.

    Shapes: as ConceptTransformer (inputs -> ModelOutput); ``prefix.symbols()`` -> codes ``[P]``.
    """

    def __init__(self, model: ConceptTransformer, length: int, num_anchors: int) -> None:
        super().__init__()
        self.model = model
        self.prefix = DiscretePrefix(length, model.config.d_model, num_anchors, context=model.max_tokens)

    @property
    def concept(self):
        return self.model.concept

    def set_step(self, step: int) -> None:
        self.model.set_step(step)

    def encode(self, inputs: Tensor):
        model = self.model
        prefixed = self.prefix(model.adapter(inputs))  # sequence (B, P + N, D)
        x = prefixed.sequence + model.position[:, : prefixed.sequence.shape[1]]
        for block in model.lower:
            x = block(x)
        slots = model.pool(x) if model.pool is not None else x[:, self.prefix.length:]  # (B, S, D)
        concepts = model.concept(slots)
        concepts.aux_loss = concepts.aux_loss + prefixed.aux_loss
        return slots, concepts

    def forward(self, inputs: Tensor) -> ModelOutput:
        _, concepts = self.encode(inputs)
        return self.model.decode(concepts)
