"""Gumbel-softmax concept layer: a temperature-controlled relaxation of choosing one of K codes.

While training, each slot draws ``softmax((logits + g) / tau)`` with Gumbel noise ``g``; in hard mode
the forward value is the one-hot argmax and the gradient flows through the soft sample
(straight-through). At inference the layer takes the true argmax of the logits, with no noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosym.concepts.layer import ConceptLayer
from neurosym.concepts.output import CodebookUsage, ConceptOutput, batch_diversity_loss
from neurosym.concepts.registry import register
from neurosym.concepts.schedule import TemperatureSchedule
from neurosym.errors import ConfigError, check_shape, check_training_input


def straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Forward value of ``hard``, gradient of ``soft``."""
    return hard + soft - soft.detach()


def gumbel_softmax_sample(
    logits: Tensor, tau: float, hard: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """One Gumbel-softmax sample along the last axis, computed in float32 (bf16-safe).

    Shapes: logits ``[..., K]`` -> ``[..., K]`` (one-hot with straight-through gradient if ``hard``).
    """
    if not tau > 0:
        raise ConfigError(f"temperature must be > 0, got {tau}")
    logits = logits.float()
    uniform = torch.rand(logits.shape, device=logits.device, generator=generator)
    # Clamp away from 0 and 1 so -log(-log(u)) stays finite.
    uniform = uniform.clamp_(torch.finfo(torch.float32).tiny, 1.0 - 1e-7)
    soft = F.softmax((logits - torch.log(-torch.log(uniform))) / tau, dim=-1)
    if not hard:
        return soft
    one_hot = F.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft)
    return straight_through(one_hot, soft)


@register("gumbel")
class GumbelConcepts(ConceptLayer):
    """Map slot states to discrete codes with a Gumbel-softmax over a learnable codebook.

    Args:
        dim: width D of the incoming slot states.
        num_codes: codebook size K (>= 2).
        code_dim: width E of the code embeddings fed to later layers (default D).
        hard: straight-through one-hot (True) or soft mixture (False) while training.
        schedule: temperature as a function of the optimizer step (set by ``set_step``).
        diversity_weight: weight of ``log K - H(batch-mean probs)``, which discourages collapse.

    Shapes:
        input ``[B, S, D]`` -> ConceptOutput with codes ``[B, S]``, probs/log_probs ``[B, S, K]``,
        quantized ``[B, S, E]``.
    """

    def __init__(
        self,
        dim: int,
        num_codes: int,
        code_dim: int | None = None,
        hard: bool = True,
        schedule: TemperatureSchedule | None = None,
        diversity_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if num_codes < 2:
            raise ConfigError(f"num_codes must be >= 2, got {num_codes}")
        self.num_codes = num_codes
        self.hard = hard
        self.schedule = schedule or TemperatureSchedule()
        self.diversity_weight = diversity_weight
        self.to_logits = nn.Linear(dim, num_codes)
        self.embedding = nn.Parameter(torch.randn(num_codes, code_dim or dim) * 0.02)
        # A Python int, not a buffer: reading it must not sync with the device. The trainer sets it
        # from its own step counter, which the checkpoint holds.
        self.step = 0
        self.usage = CodebookUsage(num_codes)

    @classmethod
    def from_config(cls, config, dim: int) -> GumbelConcepts:
        return cls(dim, config.num_codes, hard=config.hard, schedule=config.temperature,
                   diversity_weight=config.diversity_weight)

    @property
    def temperature(self) -> float:
        return self.schedule(self.step)

    def set_step(self, step: int) -> None:
        """Anneal the temperature to its value at optimizer step ``step``."""
        self.step = step

    def statistics(self) -> dict[str, float]:
        return {"temperature": self.temperature, **self.usage.stats()}

    def code_vectors(self, which: str = "embedding") -> Tensor:
        """``embedding`` ``[K, E]`` (fed forward) or ``readout`` ``[K, D]`` (the logit weights that pick a code)."""
        return self.to_logits.weight if which == "readout" else self.embedding

    def code_tensors(self) -> list[Tensor]:
        return [self.to_logits.weight, self.to_logits.bias, self.embedding, self.usage.counts]

    def forward(self, x: Tensor) -> ConceptOutput:
        check_shape("GumbelConcepts input", x, "[B, S, D]", 3, d2=self.to_logits.in_features)
        logits = self.to_logits(x).float()  # (B, S, K)
        check_training_input(self, logits)  # NaN/inf in x, or logits overflowed
        log_probs = F.log_softmax(logits, dim=-1)
        if self.training:
            probs = gumbel_softmax_sample(logits, self.temperature, hard=self.hard)
            codes = probs.detach().argmax(-1)
        else:
            codes = logits.argmax(-1)
            probs = F.one_hot(codes, self.num_codes).to(logits)
        quantized = probs.to(self.embedding.dtype) @ self.embedding  # (B, S, E)
        aux = logits.new_zeros(())
        if self.training and self.diversity_weight:
            aux = self.diversity_weight * batch_diversity_loss(log_probs.exp())
        self.usage.update(codes)
        return ConceptOutput(codes=codes, probs=probs, log_probs=log_probs, quantized=quantized, aux_loss=aux)
