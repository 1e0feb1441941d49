"""VQ-VAE: Transformer encoder -> discrete layer (S slots of K codes) -> Transformer decoder.

Shape legend: B batch, N input tokens (patches, token ids or feature vectors), S slots, K codes,
E code width, D model width, P values per output token (pixels of a patch, vocabulary, features).

The encoder is the Concept Transformer's front half (input adapter, positions, pre-norm blocks, then
either every token as a slot or S pooled slots). Slot states are projected to E dims and snapped to a
codebook (VQ with straight-through gradient and EMA/dead-code restarts, or Gumbel-softmax); with
``kind = "none"`` the same network has no bottleneck, the continuous autoencoder that discreteness is
measured against. The decoder reads *only* the S code vectors: N learned output queries attend over
them through the decoder blocks and each query rebuilds one input token (a patch's pixels, a token's
logits, a feature vector).

Bits per input are ``S * log2 K``; the store keeps one 64-bit integer per (input, slot), and
``pack_codes`` puts all S codes of an input into one integer when ``S * log2 K <= 63``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosym.concepts import ConceptOutput, GumbelConcepts, TemperatureSchedule, VectorQuantizer
from neurosym.concepts.continuous import ContinuousConcepts
from neurosym.errors import ConfigError, ShapeError, check_shape
from neurosym.model import Block, FeatureEmbedding, PatchEmbedding, SlotPooling, TokenEmbedding

STORE_INT_BITS = 63  # a signed 64-bit SQL integer holds codes up to 2**63 - 1


def code_bits(num_slots: int, num_codes: int) -> float:
    """Bits per input of S slots over K codes: ``S * log2 K``."""
    return num_slots * math.log2(num_codes)


def check_code_bits(num_slots: int, num_codes: int, packed: bool = False) -> None:
    """Raise ConfigError unless the codes fit the store's signed 64-bit integers.

    Every per-slot index must fit (``log2 K <= 63``); with ``packed`` all S codes of an input share
    one integer, so ``S * log2 K <= 63``.
    """
    per_slot = math.log2(num_codes)
    if per_slot > STORE_INT_BITS:
        raise ConfigError(
            f"num_codes K = {num_codes} needs {per_slot:.1f} bits per slot; the store's integer holds "
            f"{STORE_INT_BITS} (S = {num_slots}, S*log2 K = {code_bits(num_slots, num_codes):.1f} bits)"
        )
    total = code_bits(num_slots, num_codes)
    if packed and total > STORE_INT_BITS:
        raise ConfigError(
            f"S*log2 K = {num_slots}*log2({num_codes}) = {total:.1f} bits per input does not fit one "
            f"{STORE_INT_BITS}-bit store integer; lower num_slots S or num_codes K, or store one code per slot"
        )


def pack_codes(codes: Tensor, num_codes: int) -> Tensor:
    """All S codes of each input as one integer (base-K digits, slot 0 most significant).

    Shapes: codes ``[B, S]`` int64 in ``[0, K)`` -> ``[B]`` int64.
    """
    check_shape("codes", codes, "[B, S]", 2)
    check_code_bits(codes.shape[1], num_codes, packed=True)
    packed = torch.zeros(codes.shape[0], dtype=torch.long, device=codes.device)
    for slot in range(codes.shape[1]):
        packed = packed * num_codes + codes[:, slot]
    return packed


def unpack_codes(packed: Tensor, num_slots: int, num_codes: int) -> Tensor:
    """Inverse of ``pack_codes``. Shapes: ``[B]`` -> ``[B, S]``."""
    check_code_bits(num_slots, num_codes, packed=True)
    digits = []
    for _ in range(num_slots):
        digits.append(packed % num_codes)
        packed = packed // num_codes
    return torch.stack(digits[::-1], dim=1)


@dataclass
class VQVAEConfig:
    """A VQ-VAE over images (``patches``), token ids (``tokens``) or feature vectors (``features``).

    ``seq_len`` is N for tokens/features (1 for single vectors ``[B, F]``); for patches N is
    ``(image_size / patch_size)**2``. ``slots = "tokens"`` makes S = N; ``"pooled"`` uses
    ``num_slots`` learned queries.
    """

    input: Literal["patches", "tokens", "features"] = "patches"
    image_size: int = 8
    patch_size: int = 2
    channels: int = 1
    vocab_size: int = 0
    feature_dim: int = 0
    seq_len: int = 1
    d_model: int = 64
    n_heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    mlp_ratio: int = 2
    slots: Literal["pooled", "tokens"] = "tokens"
    num_slots: int = 16
    kind: Literal["vq", "gumbel", "none"] = "vq"
    num_codes: int = 64
    code_dim: int = 2
    commitment_weight: float = 0.1
    decay: float = 0.95
    cosine: bool = False
    dead_code_threshold: float = 0.1
    temperature: TemperatureSchedule = field(default_factory=lambda: TemperatureSchedule("exponential", 1.0, 0.3, 1000))

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"vqvae.d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.num_codes < 2:
            raise ConfigError(f"vqvae.num_codes must be >= 2, got {self.num_codes}")
        if self.num_slots < 1 or self.code_dim < 1:
            raise ConfigError(f"vqvae.num_slots and code_dim must be >= 1, got {self.num_slots}, {self.code_dim}")
        if self.input == "patches" and self.image_size % self.patch_size:
            raise ConfigError(f"vqvae.patch_size {self.patch_size} does not divide image_size {self.image_size}")
        if self.input == "tokens" and self.vocab_size < 2:
            raise ConfigError("vqvae.vocab_size must be >= 2 for input = 'tokens'")
        if self.input == "features" and self.feature_dim < 1:
            raise ConfigError("vqvae.feature_dim must be set for input = 'features'")
        if self.slots == "tokens":
            self.num_slots = self.num_tokens
        check_code_bits(self.num_slots, self.num_codes)

    @property
    def num_tokens(self) -> int:
        """N, the number of input tokens the encoder reads and the decoder rebuilds."""
        if self.input == "patches":
            return (self.image_size // self.patch_size) ** 2
        return self.seq_len

    @property
    def token_width(self) -> int:
        """P, the values the decoder emits per token."""
        if self.input == "patches":
            return self.channels * self.patch_size ** 2
        return self.vocab_size if self.input == "tokens" else self.feature_dim

    @property
    def bits(self) -> float:
        return code_bits(self.num_slots, self.num_codes)


@dataclass
class VQVAEOutput:
    """Shapes: ``reconstruction`` like the input (images ``[B, C, H, W]``, features ``[B, N, F]``) or
    token logits ``[B, N, V]``; ``concepts`` per ConceptOutput (codes ``[B, S]``); losses scalars.
    ``loss = recon_loss + concepts.aux_loss``."""

    reconstruction: Tensor
    concepts: ConceptOutput
    recon_loss: Tensor
    loss: Tensor


def build_quantizer(config: VQVAEConfig) -> nn.Module:
    """The discrete layer over E-dim slot states (or the identity for ``kind = "none"``)."""
    width = config.code_dim
    if config.kind == "none":
        return ContinuousConcepts(width)
    if config.kind == "gumbel":
        return GumbelConcepts(width, config.num_codes, code_dim=width, schedule=config.temperature)
    return VectorQuantizer(
        width, config.num_codes, commitment_weight=config.commitment_weight, decay=config.decay,
        cosine=config.cosine, dead_code_threshold=config.dead_code_threshold, data_init=True,
    )


class Decoder(nn.Module):
    """Pre-norm blocks over the S code vectors rebuild the N input tokens: ``[B, S, E]`` -> ``[B, N, P]``."""

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        dim = config.d_model
        self.proj = nn.Linear(config.code_dim, dim)
        # Codes carry no position of their own: the slot index is added back here.
        self.slot_position = nn.Parameter(torch.randn(1, config.num_slots, dim) * 0.02)
        # With one slot per token the slot itself rebuilds its token (a residual path from each code
        # to its patch, as in a convolutional VQ-VAE); pooled slots are read by N learned queries.
        self.queries = None
        if config.slots == "pooled":
            self.queries = nn.Parameter(torch.randn(1, config.num_tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(
            Block(dim, config.n_heads, config.mlp_ratio, 0.0) for _ in range(config.decoder_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, config.token_width)

    def forward(self, codes: Tensor) -> Tensor:
        batch, slots = codes.shape[:2]
        x = self.proj(codes) + self.slot_position[:, :slots]  # (B, S, D)
        if self.queries is not None:
            x = torch.cat([x, self.queries.expand(batch, -1, -1)], dim=1)  # (B, S + N, D)
        for block in self.blocks:
            x = block(x)
        start = slots if self.queries is not None else 0
        return self.head(self.norm(x[:, start:]))  # (B, N, P)


class VQVAE(nn.Module):
    """Encoder -> discrete layer -> Transformer decoder that rebuilds the input.

    Shapes: images ``[B, H, W]``/``[B, C, H, W]``, token ids ``[B, N]`` or features ``[B, N, F]``/``[B, F]``
    -> VQVAEOutput; ``encode`` -> ConceptOutput (codes ``[B, S]``); ``decode_codes`` ``[B, S]`` -> output.
    """

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.d_model
        if config.input == "patches":
            self.adapter = PatchEmbedding(config.image_size, config.patch_size, config.channels, dim)
        elif config.input == "tokens":
            self.adapter = TokenEmbedding(config.vocab_size, dim)
        else:
            self.adapter = FeatureEmbedding(config.feature_dim, dim)
        self.position = nn.Parameter(torch.randn(1, config.num_tokens, dim) * 0.02)
        self.encoder = nn.ModuleList(Block(dim, config.n_heads, config.mlp_ratio, 0.0) for _ in range(config.encoder_layers))
        self.pool = SlotPooling(dim, config.num_slots) if config.slots == "pooled" else None
        self.norm = nn.LayerNorm(dim)
        self.to_code = nn.Linear(dim, config.code_dim)
        self.concept = build_quantizer(config)
        self.decoder = Decoder(config)

    def set_step(self, step: int) -> None:
        if isinstance(self.concept, GumbelConcepts):
            self.concept.set_step(step)

    def encode(self, inputs: Tensor) -> ConceptOutput:
        x = self.adapter(inputs)  # (B, N, D)
        if x.shape[1] != self.config.num_tokens:
            raise ShapeError(f"input has {x.shape[1]} tokens, this VQ-VAE reads exactly {self.config.num_tokens}")
        x = x + self.position
        for block in self.encoder:
            x = block(x)
        slots = self.pool(x) if self.pool is not None else x  # (B, S, D)
        return self.concept(self.to_code(self.norm(slots)))  # codes (B, S), quantized (B, S, E)

    def code_vectors(self, codes: Tensor) -> Tensor:
        """Code ids ``[B, S]`` -> the code vectors the decoder reads ``[B, S, E]``."""
        check_shape("codes", codes, "[B, S]", 2, d1=self.config.num_slots)
        if self.config.kind == "none":
            raise ConfigError("a continuous autoencoder (kind = 'none') has no codebook to decode codes from")
        if codes.min() < 0 or codes.max() >= self.config.num_codes:
            raise ConfigError(f"codes must lie in [0, {self.config.num_codes}), got [{int(codes.min())}, {int(codes.max())}]")
        if isinstance(self.concept, GumbelConcepts):
            return self.concept.embedding[codes]
        book = self.concept.codebook
        book = F.normalize(book, dim=-1) if self.concept.cosine else book
        return self.concept.project_out(book[codes])

    def decode(self, quantized: Tensor) -> Tensor:
        """Code vectors ``[B, S, E]`` -> reconstruction (images, token logits or features)."""
        out = self.decoder(quantized)  # (B, N, P)
        if self.config.input != "patches":
            return out
        c, p, side = self.config.channels, self.config.patch_size, self.config.image_size // self.config.patch_size
        out = out.view(-1, side, side, c, p, p).permute(0, 3, 1, 4, 2, 5)  # (B, C, h, p, w, p)
        return out.reshape(-1, c, side * p, side * p)

    def decode_codes(self, codes: Tensor) -> Tensor:
        """Code ids ``[B, S]`` -> reconstruction; images are clamped to [0, 1]."""
        out = self.decode(self.code_vectors(codes))
        return out.clamp(0, 1) if self.config.input == "patches" else out

    def reconstruction_loss(self, reconstruction: Tensor, inputs: Tensor) -> Tensor:
        if self.config.input == "tokens":
            return F.cross_entropy(reconstruction.float().flatten(0, 1), inputs.reshape(-1))
        target = inputs.reshape(reconstruction.shape) if inputs.numel() == reconstruction.numel() else inputs
        return F.mse_loss(reconstruction.float(), target.float())

    def forward(self, inputs: Tensor) -> VQVAEOutput:
        concepts = self.encode(inputs)
        reconstruction = self.decode(concepts.quantized)
        recon = self.reconstruction_loss(reconstruction, inputs)
        return VQVAEOutput(reconstruction, concepts, recon, recon + concepts.aux_loss)
