"""A concept model whose code for each symbol is set by hand: the tests' way to build a start that is
named right, misnamed, or trapped, without training one."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neurosym.concepts.gumbel import GumbelConcepts


class NamedConcepts(torch.nn.Module):
    """A concept model over one-hot symbols ``[B, 10]`` whose readout starts with code ``naming[s]`` for
    symbol s, with logit ``confidence`` on it (large: a few small steps cannot rename it)."""

    def __init__(self, naming: list[int], confidence: float = 4.0) -> None:
        super().__init__()
        self.concept = GumbelConcepts(10, 10)
        with torch.no_grad():
            self.concept.to_logits.weight.copy_(confidence * F.one_hot(torch.tensor(naming), 10).float())
            self.concept.to_logits.bias.zero_()

    def encode(self, inputs):
        slots = inputs.float().unsqueeze(1)
        return slots, self.concept(slots)
