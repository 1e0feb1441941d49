"""A small autoregressive Transformer prior over code sequences, and sampling from it.

Shape legend: B batch, S slots (sequence length), K codes, D width.

``p(c_1..c_S) = prod_s p(c_s | c_<s)``: a begin token then the codes shifted right go through causal
pre-norm blocks; each position predicts the next slot's code. Sampling draws the S codes one slot at
a time (temperature, optional top-k), which a VQ-VAE decoder then turns into new inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosym.errors import ConfigError, check_shape
from neurosym.tasks import shuffled_batches


@dataclass
class PriorConfig:
    """Code prior hyperparameters: K codes per slot, S slots, and the Transformer's size."""

    num_codes: int = 64
    num_slots: int = 16
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    mlp_ratio: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.num_codes < 2 or self.num_slots < 1:
            raise ConfigError(f"prior needs num_codes >= 2 and num_slots >= 1, got {self.num_codes}, {self.num_slots}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"prior.d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")


class CausalBlock(nn.Module):
    """Pre-norm block with causal self-attention: ``[B, T, D]`` -> ``[B, T, D]``."""

    def __init__(self, dim: int, n_heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim),
                                 nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(batch, tokens, 3, self.n_heads, dim // self.n_heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, D/H)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.out(y.transpose(1, 2).reshape(batch, tokens, dim))
        return x + self.mlp(self.ln2(x))


class CodePrior(nn.Module):
    """Autoregressive model of code sequences.

    Shapes: ``forward`` codes ``[B, S]`` -> next-code logits ``[B, S, K]`` (position s predicts
    code s from codes ``< s``); ``sample`` -> codes ``[B, S]`` int64 in ``[0, K)``.
    """

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.d_model
        self.embed = nn.Embedding(config.num_codes + 1, dim)  # the last id is the begin token
        self.position = nn.Parameter(torch.randn(1, config.num_slots, dim) * 0.02)
        self.blocks = nn.ModuleList(
            CausalBlock(dim, config.n_heads, config.mlp_ratio, config.dropout) for _ in range(config.n_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, config.num_codes)

    def _check_codes(self, codes: Tensor, full: bool) -> None:
        check_shape("codes", codes, "[B, S]", 2)
        if codes.shape[1] > self.config.num_slots or (full and codes.shape[1] != self.config.num_slots):
            raise ConfigError(f"codes have {codes.shape[1]} slots, the prior models {self.config.num_slots}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.config.num_codes):
            raise ConfigError(f"codes must lie in [0, {self.config.num_codes}), got [{int(codes.min())}, {int(codes.max())}]")

    def _logits(self, prefix: Tensor) -> Tensor:
        begin = torch.full((prefix.shape[0], 1), self.config.num_codes, dtype=torch.long, device=prefix.device)
        x = self.embed(torch.cat([begin, prefix], 1))  # (B, T, D), T = len(prefix) + 1
        x = x + self.position[:, : x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))  # (B, T, K)

    def forward(self, codes: Tensor) -> Tensor:
        self._check_codes(codes, full=True)
        return self._logits(codes[:, :-1])

    def loss(self, codes: Tensor) -> Tensor:
        """Mean negative log-likelihood per code (nats)."""
        logits = self(codes)
        return F.cross_entropy(logits.float().flatten(0, 1), codes.reshape(-1))

    @torch.no_grad()
    def sample(self, count: int, temperature: float = 1.0, top_k: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw ``count`` code sequences ``[count, S]``, one slot at a time."""
        if count < 1:
            raise ConfigError(f"sample count must be >= 1, got {count}")
        if not temperature > 0:
            raise ConfigError(f"sampling temperature must be > 0, got {temperature}")
        if top_k is not None and not 1 <= top_k <= self.config.num_codes:
            raise ConfigError(f"top_k must be in [1, {self.config.num_codes}], got {top_k}")
        device = self.head.weight.device
        codes = torch.zeros(count, 0, dtype=torch.long, device=device)
        for _ in range(self.config.num_slots):
            logits = self._logits(codes)[:, -1].float() / temperature  # (B, K)
            if top_k is not None:
                floor = logits.topk(top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < floor, float("-inf"))
            probs = logits.softmax(-1)
            if generator is not None and generator.device != probs.device:
                nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(device)
            else:
                nxt = torch.multinomial(probs, 1, generator=generator)
            codes = torch.cat([codes, nxt], 1)
        return codes


class CodeSequenceTask:
    """Fit a prior to code sequences with ``neurosym.train.fit``; evaluates held-out NLL per code.

    Shapes: train/test codes ``[N, S]`` int64.
    """

    def __init__(self, train: Tensor, test: Tensor) -> None:
        self.train, self.test = train.long(), test.long()

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-self.train.shape[0] // batch_size)

    def batches(self, epoch: int, generator: torch.Generator, batch_size: int, rank: int = 0, world: int = 1):
        return shuffled_batches(self.train, generator, batch_size, rank, world)

    def loss(self, model: nn.Module, batch: Tensor, device: torch.device) -> Tensor:
        return model.loss(batch.to(device, non_blocking=True))

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        return {"test_nll": float(model.loss(self.test.to(device)))}
