"""The Concept Transformer: input adapter -> pre-norm Transformer -> discrete concept layer -> heads.

Shape legend: B batch, N tokens, S slots (symbols per input), K codes, D model width, C classes.

The concept layer sits after block ``concept_depth`` of ``n_layers``. With ``slots = "pooled"`` the
token states are pooled by S learned queries into S slot states, one symbol each (an image emits one
digit concept); with ``slots = "tokens"`` every token is a slot. Blocks above the concept layer read
only the discrete state (the code vectors), never the continuous one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosym.concepts import ConceptConfig, ConceptLayer, ConceptOutput, build_concept_layer
from neurosym.errors import ConfigError
from neurosym.inputs import InputConfig, build_adapter


@dataclass
class ModelConfig(InputConfig):
    """Whole-model hyperparameters (saved with every run): the input section (``InputConfig``:
    ``input``, ``image_size``, ...), the Transformer, and the concept section ``concept``."""

    max_tokens: int = 256
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    mlp_ratio: int = 4
    dropout: float = 0.0
    concept_depth: int = -1  # -1: after the last block
    concept: ConceptConfig = field(default_factory=ConceptConfig)
    num_classes: int = 0  # 0: no classification head

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"model.d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not -1 <= self.concept_depth <= self.n_layers:
            raise ConfigError(f"model.concept_depth must be in [-1, {self.n_layers}], got {self.concept_depth}")
        self.check_input("model")

    @property
    def depth(self) -> int:
        return self.n_layers if self.concept_depth == -1 else self.concept_depth


class SelfAttention(nn.Module):
    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.n_heads, dim // self.n_heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, N, D/H)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(batch, tokens, dim))


class Block(nn.Module):
    """Pre-norm Transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, dim: int, n_heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, n_heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class SlotPooling(nn.Module):
    """S learned queries attend over the tokens: ``[B, N, D]`` -> ``[B, S, D]``."""

    def __init__(self, dim: int, num_slots: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_slots, dim) / math.sqrt(dim))
        self.ln = nn.LayerNorm(dim)
        self.key = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.ln(x)
        weights = torch.einsum("sd,bnd->bsn", self.queries, self.key(x)).softmax(-1)
        return torch.einsum("bsn,bnd->bsd", weights, x)


@dataclass
class ModelOutput:
    """Shapes: ``concepts`` (see ConceptOutput), ``states`` ``[B, S, D]`` after the last block,
    ``logits`` ``[B, C]`` when the model has a classification head, else None."""

    concepts: ConceptOutput
    states: Tensor
    logits: Tensor | None


class ConceptTransformer(nn.Module):
    """Transformer encoder with a discrete concept layer at a configurable depth.

    Shapes: input per ``config.input`` (see ModelConfig) -> ModelOutput.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.d_model
        self.adapter = build_adapter(config, dim)
        self.max_tokens = max_tokens = config.patch_tokens if config.input == "patches" else config.max_tokens
        self.position = nn.Parameter(torch.zeros(1, max_tokens, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        make_block = lambda: Block(dim, config.n_heads, config.mlp_ratio, config.dropout)  # noqa: E731
        self.lower = nn.ModuleList(make_block() for _ in range(config.depth))
        self.upper = nn.ModuleList(make_block() for _ in range(config.n_layers - config.depth))
        pooled = config.concept.slots == "pooled"
        self.pool = SlotPooling(dim, config.concept.num_slots) if pooled else None
        # Token slots lose their order when snapped to codes; the upper blocks get it back from
        # positions, which carry no information about the input.
        self.upper_position = None
        if not pooled and self.upper:
            self.upper_position = nn.Parameter(torch.zeros(1, max_tokens, dim))
            nn.init.trunc_normal_(self.upper_position, std=0.02)
        self.concept = build_concept_layer(config.concept, dim)
        self.final_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, config.num_classes) if config.num_classes else None

    def encode(self, inputs: Tensor) -> tuple[Tensor, ConceptOutput]:
        """Run the blocks below the concept layer and the layer itself.

        Returns the slot states ``[B, S, D]`` and the concept output.
        """
        x = self.adapter(inputs)  # (B, N, D)
        if x.shape[1] > self.max_tokens:
            raise ConfigError(f"input has {x.shape[1]} tokens, the model holds at most {self.max_tokens}")
        x = x + self.position[:, : x.shape[1]]
        for block in self.lower:
            x = block(x)
        slots = self.pool(x) if self.pool is not None else x  # (B, S, D)
        return slots, self.concept(slots)

    def forward(self, inputs: Tensor) -> ModelOutput:
        _, concepts = self.encode(inputs)
        return self.decode(concepts)

    def decode(self, concepts: ConceptOutput) -> ModelOutput:
        """Run the blocks above the concept layer and the head on the discrete state alone."""
        x = concepts.quantized  # (B, S, D): the blocks above see only the discrete state
        if self.upper_position is not None:
            x = x + self.upper_position[:, : x.shape[1]]
        for block in self.upper:
            x = block(x)
        x = self.final_norm(x)
        logits = self.head(x.mean(1)) if self.head is not None else None
        return ModelOutput(concepts=concepts, states=x, logits=logits)

    def set_step(self, step: int) -> None:
        """Anneal step-dependent parts (the Gumbel temperature) to optimizer step ``step``."""
        self.concept.set_step(step)


class TupleClassifier(nn.Module):
    """A concept encoder shared by the A inputs of a tuple, and a task head that reads only their
    codes: a learned table of label logits for every code combination, ``W [K^A, L]``.

    ``P(y) = sum over codes (c_1..c_A) of prod_j p_j(c_j) * softmax(W[c_1..c_A])[y]``: the same
    exact sum as the knowledge constraint, but with a relation the model learns itself instead of
    the KG's. Its codes therefore mean *something*, but which code is which symbol is an unknown
    permutation, which label-free alignment recovers from the KG.

    Shapes: inputs ``[P * A, ...]`` (the A inputs of each tuple, consecutive) -> log P(label)
    ``[P, L]``, plus the concept output of the ``P * A`` inputs.
    """

    def __init__(self, encoder: ConceptTransformer, arity: int, num_labels: int, table_init: float = 1.0,
                 table_scale: float = 30.0) -> None:
        super().__init__()
        self.encoder, self.arity = encoder, arity
        num_codes = encoder.config.concept.num_codes
        # Stored scaled down and multiplied back up: the table then learns ``table_scale`` times
        # faster than the encoder under the same optimizer step, so the head keeps up with the codes.
        self.table_scale = table_scale
        self.table = nn.Parameter(torch.randn(num_codes ** arity, num_labels) * table_init / table_scale)

    @property
    def concept(self) -> ConceptLayer:
        return self.encoder.concept

    def encode(self, inputs: Tensor) -> tuple[Tensor, ConceptOutput]:
        return self.encoder.encode(inputs)

    def set_step(self, step: int) -> None:
        self.encoder.set_step(step)

    def forward(self, inputs: Tensor) -> tuple[Tensor, ConceptOutput]:
        _, concepts = self.encoder.encode(inputs)
        log_probs = concepts.log_probs[:, 0, :].float()
        log_probs = log_probs.reshape(-1, self.arity, log_probs.shape[-1])  # (P, A, K)
        joint = log_probs[:, 0, :]  # (P, K^j) after j inputs, codes in row-major order
        for position in range(1, self.arity):
            joint = (joint.unsqueeze(-1) + log_probs[:, position, None, :]).flatten(1)
        scores = joint.unsqueeze(-1) + (self.table * self.table_scale).log_softmax(-1)  # (P, K^A, L)
        return scores.logsumexp(1), concepts
