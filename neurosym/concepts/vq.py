"""Vector-quantization concept layer: nearest code, straight-through gradient, EMA codebook.

Each slot state is replaced by its nearest codebook vector; the gradient is copied straight through
to the encoder, and a commitment loss pulls encoder outputs toward their codes. The codebook learns
either by gradient (codebook loss) or by exponential moving averages of the states assigned to each
code (VQ-VAE-2 style). Codes whose EMA usage falls below a threshold are restarted from recently seen
states, so that no part of the codebook stays dead.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from neurosym.concepts.layer import ConceptLayer
from neurosym.concepts.output import CodebookUsage, ConceptOutput
from neurosym.concepts.registry import register
from neurosym.errors import ConfigError, check_shape, check_training_input


def nearest_code_distances(x: Tensor, codebook: Tensor) -> Tensor:
    """Squared euclidean distances in float32.

    Shapes: x ``[N, E]``, codebook ``[K, E]`` -> ``[N, K]``.
    """
    x = x.float()
    codebook = codebook.float()
    return x.pow(2).sum(-1, keepdim=True) - 2 * x @ codebook.t() + codebook.pow(2).sum(-1)


@register("vq")
class VectorQuantizer(ConceptLayer):
    """Nearest-code quantizer with straight-through gradient.

    Args:
        dim: width D of the incoming slot states.
        num_codes: codebook size K (>= 2).
        code_dim: width E of the codes; states are projected D -> E and back if it differs.
        commitment_weight: weight of ``||x - sg(q)||^2``.
        ema: update the codebook by EMA (True) or by the codebook loss ``||sg(x) - q||^2`` (False).
        decay: EMA decay.
        cosine: l2-normalise states and codes (cosine-similarity codebook).
        dead_code_threshold: a code whose EMA count falls below this many assignments per step is
            restarted from a recent state (about 230 unused steps at decay 0.99 from a fresh start);
            0 disables restarts.
        recent_size: how many recent states are kept to restart dead codes from.
        temperature: scale of ``-distance`` in the layer's distribution ``log_probs``.
        data_init: on the first training batch, set the codebook to randomly drawn states of that
            batch, so that the codes start where the encoder's outputs are (a random codebook far
            from them leaves all states on one code, and the decoder learns only the mean).

    Shapes:
        input ``[B, S, D]`` -> ConceptOutput with codes ``[B, S]``, probs/log_probs ``[B, S, K]``,
        quantized ``[B, S, D]``.
    """

    def __init__(
        self,
        dim: int,
        num_codes: int,
        code_dim: int | None = None,
        commitment_weight: float = 0.25,
        ema: bool = True,
        decay: float = 0.99,
        cosine: bool = False,
        dead_code_threshold: float = 0.1,
        recent_size: int = 4096,
        temperature: float = 1.0,
        data_init: bool = False,
    ) -> None:
        super().__init__()
        if num_codes < 2:
            raise ConfigError(f"num_codes must be >= 2, got {num_codes}")
        if not 0 < decay < 1:
            raise ConfigError(f"decay must be in (0, 1), got {decay}")
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        code_dim = code_dim or dim
        self.num_codes, self.dim, self.code_dim = num_codes, dim, code_dim
        self.commitment_weight, self.ema, self.decay, self.cosine = commitment_weight, ema, decay, cosine
        self.dead_code_threshold, self.temperature, self.data_init = dead_code_threshold, temperature, data_init
        self.project_in = nn.Linear(dim, code_dim) if code_dim != dim else nn.Identity()
        self.project_out = nn.Linear(code_dim, dim) if code_dim != dim else nn.Identity()
        init = torch.randn(num_codes, code_dim)
        init = F.normalize(init, dim=-1) if cosine else init
        if ema:
            self.register_buffer("codebook", init.clone())
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        # EMA of assignments per step, kept in both modes: it is what marks a code as dead.
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("recent", torch.zeros(recent_size, code_dim))
        self.register_buffer("recent_filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))
        # A buffer (not a Python flag) so that a loaded checkpoint is not re-initialised.
        self.register_buffer("initialised", torch.tensor(not data_init))
        self.usage = CodebookUsage(num_codes)

    @classmethod
    def from_config(cls, config, dim: int) -> VectorQuantizer:
        return cls(dim, config.num_codes, commitment_weight=config.commitment_weight, ema=config.ema,
                   decay=config.decay, cosine=config.cosine, dead_code_threshold=config.dead_code_threshold,
                   data_init=config.data_init)

    def statistics(self) -> dict[str, float]:
        """Usage, and ``temperature``: the fixed scale of ``-distance`` in ``log_probs``."""
        return {"temperature": self.temperature, **self.usage.stats()}

    def code_vectors(self, which: str = "embedding") -> Tensor:
        """The codebook ``[K, E]`` as stored (selection and read-out use the same vectors)."""
        return self.codebook

    def code_tensors(self) -> list[Tensor]:
        return [self.codebook, self.ema_count, self.usage.counts] + ([self.ema_sum] if self.ema else [])

    def embed_codes(self, codes: Tensor) -> Tensor:
        """Code ids ``[B, S]`` -> ``[B, S, D]``, as ``forward`` feeds them on (normalised, projected out)."""
        book = F.normalize(self.codebook, dim=-1) if self.cosine else self.codebook
        return self.project_out(book[codes])

    def forward(self, x: Tensor) -> ConceptOutput:
        check_shape("VectorQuantizer input", x, "[B, S, D]", 3, d2=self.dim)
        batch, slots, _ = x.shape
        z = self.project_in(x).float()  # (B, S, E)
        if self.cosine:
            z = F.normalize(z, dim=-1)
        flat = z.reshape(-1, self.code_dim)  # (N, E)
        check_training_input(self, flat)  # before any EMA, restart or init reads a NaN into the codebook
        if self.data_init and self.training:
            self._init_from(flat.detach())
        codebook = self.codebook
        if self.ema and self.training:
            # The EMA update below rewrites the buffer in place; autograd needs this step's values.
            codebook = codebook.clone()
        codebook = F.normalize(codebook, dim=-1) if self.cosine else codebook
        distances = nearest_code_distances(flat, codebook)  # (N, K)
        codes = distances.argmin(-1)  # (N,)
        chosen = codebook[codes]  # (N, E)
        loss = self.commitment_weight * F.mse_loss(flat, chosen.detach())
        if not self.ema:
            loss = loss + F.mse_loss(chosen, flat.detach())
        if self.training:
            self._remember(flat.detach())
            self._ema_update(flat.detach(), codes)
            if self.dead_code_threshold > 0:
                self._restart_dead_codes()
        quantized = flat + (chosen - flat).detach()  # straight-through
        quantized = self.project_out(quantized.reshape(batch, slots, self.code_dim).to(x.dtype))
        log_probs = F.log_softmax(-distances / self.temperature, dim=-1).reshape(batch, slots, -1)
        codes = codes.reshape(batch, slots)
        probs = F.one_hot(codes, self.num_codes).to(log_probs)
        self.usage.update(codes)
        return ConceptOutput(codes=codes, probs=probs, log_probs=log_probs, quantized=quantized, aux_loss=loss)

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, codes: Tensor) -> None:
        one_hot = F.one_hot(codes, self.num_codes).to(flat)  # (N, K)
        counts = one_hot.sum(0)
        sums = one_hot.t() @ flat if self.ema else None  # (K, E)
        if _distributed():
            # Every rank must hold the same codebook: average the statistics, not the results.
            dist.all_reduce(counts)
            counts /= dist.get_world_size()
            if sums is not None:
                dist.all_reduce(sums)
                sums /= dist.get_world_size()
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if sums is None:
            return
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # Laplace smoothing keeps rarely used codes from dividing by ~0.
        total = self.ema_count.sum()
        smoothed = (self.ema_count + 1e-5) / (total + self.num_codes * 1e-5) * total
        self.codebook.copy_(self.ema_sum / smoothed.unsqueeze(-1))

    @torch.no_grad()
    def _init_from(self, flat: Tensor) -> None:
        """Once: codebook := random states of this batch (``torch.where``, no host sync)."""
        picks = flat[torch.randint(flat.shape[0], (self.num_codes,), device=flat.device)]
        picks = picks + 1e-3 * picks.std() * torch.randn_like(picks)  # repeated picks must differ
        if _distributed():
            dist.broadcast(picks, src=0)
        fresh = ~self.initialised
        self.codebook.data.copy_(torch.where(fresh, picks.to(self.codebook), self.codebook))
        if self.ema:
            self.ema_sum.copy_(torch.where(fresh, picks.to(self.ema_sum), self.ema_sum))
        self.initialised.fill_(True)

    @torch.no_grad()
    def _remember(self, flat: Tensor) -> None:
        """Keep the latest ``recent_size`` states in a ring buffer (device-side, no sync)."""
        size = self.recent.shape[0]
        take = flat[-size:]
        start = self.recent_filled % size
        index = (start + torch.arange(take.shape[0], device=flat.device)) % size
        self.recent.index_copy_(0, index, take.to(self.recent))
        self.recent_filled.add_(take.shape[0])

    @torch.no_grad()
    def _restart_dead_codes(self) -> None:
        """Replace codes whose EMA count is below the threshold by random recent states.

        Written with ``torch.where`` so that it never asks the host whether any code is dead.
        """
        usage = self.ema_count
        dead = usage < self.dead_code_threshold  # (K,)
        filled = self.recent_filled.clamp(max=self.recent.shape[0]).clamp(min=1)
        picks = (torch.rand(self.num_codes, device=dead.device) * filled).long()
        candidates = self.recent[picks]  # (K, E)
        if self.cosine:
            candidates = F.normalize(candidates, dim=-1)
        if _distributed():
            dist.broadcast(candidates, src=0)
            dist.broadcast(dead, src=0)
        mask = dead.unsqueeze(-1) & (self.recent_filled > 0)
        self.codebook.data.copy_(torch.where(mask, candidates, self.codebook))
        if self.ema:
            self.ema_sum.copy_(torch.where(mask, candidates, self.ema_sum))
        self.ema_count.copy_(torch.where(dead & (self.recent_filled > 0), torch.ones_like(usage), usage))
        self.restarts.add_(dead.sum())


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
