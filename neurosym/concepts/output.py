"""The output every concept layer returns, and running codebook-usage statistics."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class ConceptOutput:
    """What a discrete concept layer emits for a batch.

    Shapes:
        codes: ``[B, S]`` int64, the chosen symbol of each slot (argmax / nearest code).
        probs: ``[B, S, K]``, one-hot with straight-through gradient (hard) or soft probabilities.
        log_probs: ``[B, S, K]``, the layer's categorical distribution over codes, noise-free
            (what knowledge constraints and confidences are computed from).
        quantized: ``[B, S, E]``, the code vectors fed to later layers.
        aux_loss: scalar, the layer's own loss (commitment, codebook, diversity); 0 when none.
    """

    codes: Tensor
    probs: Tensor
    log_probs: Tensor
    quantized: Tensor
    aux_loss: Tensor

    @property
    def confidence(self) -> Tensor:
        """``[B, S]`` probability of the chosen code."""
        return self.log_probs.gather(-1, self.codes.unsqueeze(-1)).squeeze(-1).exp()


class CodebookUsage(nn.Module):
    """Running code counts since the last ``reset()``; stays on the device (no host sync per step).

    ``usage()`` is the fraction of codes chosen at least once, ``perplexity()`` the exponential of
    the entropy of the code histogram (K when all codes are equally used, 1 when one code wins).
    """

    def __init__(self, num_codes: int) -> None:
        super().__init__()
        self.register_buffer("counts", torch.zeros(num_codes, dtype=torch.float64), persistent=False)

    @torch.no_grad()
    def update(self, codes: Tensor) -> None:
        """Count ``codes`` (any shape, int64 in ``[0, K)``)."""
        self.counts += torch.bincount(codes.reshape(-1), minlength=self.counts.numel()).to(self.counts)

    def reset(self) -> None:
        self.counts.zero_()

    def usage(self) -> float:
        return float((self.counts > 0).double().mean())

    def perplexity(self) -> float:
        total = self.counts.sum()
        if total == 0:
            return 0.0
        p = self.counts / total
        entropy = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum()
        return float(entropy.exp())

    def stats(self) -> dict[str, float]:
        return {"codebook_usage": self.usage(), "codebook_perplexity": self.perplexity()}


def batch_diversity_loss(probs: Tensor) -> Tensor:
    """``log K - H(mean_b probs)``: zero when the batch uses all K codes evenly.

    Shapes: probs ``[B, S, K]`` (soft probabilities) -> scalar.
    """
    mean = probs.float().mean(dim=0)  # (S, K)
    entropy = -(mean * (mean + 1e-9).log()).sum(-1)
    return (torch.log(torch.tensor(float(probs.shape[-1]))) - entropy).mean()
