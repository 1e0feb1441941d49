"""The continuous baseline: the same place in the network with no discrete bottleneck.

Used to measure what discreteness costs (same architecture, identity instead of a codebook). It
returns a ConceptOutput so that the rest of the model is unchanged; there is one "code" (0) that
every slot takes with probability 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosym.concepts.layer import ConceptLayer, no_codebook
from neurosym.concepts.output import CodebookUsage, ConceptOutput
from neurosym.concepts.registry import register
from neurosym.errors import check_shape, check_training_input


@register("none")
class ContinuousConcepts(ConceptLayer):
    """Identity over slot states. Shapes: ``[B, S, D]`` -> quantized ``[B, S, D]``, codes ``[B, S]`` zeros."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.num_codes = 1
        self.usage = CodebookUsage(1)

    @classmethod
    def from_config(cls, config, dim: int) -> ContinuousConcepts:
        return cls(dim)

    def code_vectors(self, which: str = "embedding") -> Tensor:
        raise no_codebook(self)

    def forward(self, x: Tensor) -> ConceptOutput:
        check_shape("ContinuousConcepts input", x, "[B, S, D]", 3, d2=self.dim)
        check_training_input(self, x)
        codes = torch.zeros(x.shape[:2], dtype=torch.long, device=x.device)
        ones = torch.ones(*x.shape[:2], 1, device=x.device)
        return ConceptOutput(codes=codes, probs=ones, log_probs=torch.zeros_like(ones), quantized=x,
                             aux_loss=x.new_zeros(()))
