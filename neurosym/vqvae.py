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

import dataclasses
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosym.concepts import ConceptConfig, ConceptOutput, TemperatureSchedule, build_concept_layer
from neurosym.errors import ConfigError, ShapeError, check_shape
from neurosym.inputs import InputConfig, build_adapter
from neurosym.model import Block, SlotPooling

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


def vqvae_concept(**changes) -> ConceptConfig:
    """The VQ-VAE's default concept section (VQ, K = 64, one slot per token, data-initialised codebook)
    with ``changes`` applied, e.g. ``vqvae_concept(kind="gumbel", num_codes=8)``."""
    defaults = dict(kind="vq", num_codes=64, slots="tokens", num_slots=16, commitment_weight=0.1, decay=0.95,
                    temperature=TemperatureSchedule("exponential", 1.0, 0.3, 1000), data_init=True)
    return ConceptConfig(**(defaults | changes))


def upgrade_saved_config(saved: dict) -> dict:
    """A VQ-VAE config saved before the concept section was nested, with its concept keys moved there."""
    if "concept" in saved:
        return saved
    names = {f.name for f in dataclasses.fields(ConceptConfig)}
    concept = {key: value for key, value in saved.items() if key in names}
    return {key: value for key, value in saved.items() if key not in names} | {"concept": {"data_init": True, **concept}}


@dataclass
class VQVAEConfig(InputConfig):
    """A VQ-VAE over images (``patches``), token ids (``tokens``) or feature vectors (``features``).

    The input keys are the Concept Transformer's (``InputConfig``); ``concept`` is the same section as
    ``model.concept`` (kind, K, slots and the layer's options; here VQ with a data-initialised codebook
    by default). ``seq_len`` is N for tokens/features (1 for single vectors ``[B, F]``); for patches N
    is ``(image_size / patch_size)**2``. ``concept.slots = "tokens"`` makes S = N; ``"pooled"`` uses
    ``concept.num_slots`` learned queries. ``code_dim`` is E, the width slot states are projected to
    before the concept layer.
    """

    seq_len: int = 1
    d_model: int = 64
    n_heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    mlp_ratio: int = 2
    code_dim: int = 2
    concept: ConceptConfig = field(default_factory=vqvae_concept)

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"vqvae.d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.code_dim < 1:
            raise ConfigError(f"vqvae.code_dim must be >= 1, got {self.code_dim}")
        self.check_input("vqvae")
        if self.stem_channels:  # the decoder rebuilds each token as one patch of pixels, with no stem to undo
            raise ConfigError(f"vqvae.stem_channels must be 0 (the decoder rebuilds plain patches), got {self.stem_channels}")
        if self.concept.slots == "tokens":
            self.concept.num_slots = self.num_tokens
        check_code_bits(self.num_slots, self.num_codes)

    @property
    def num_slots(self) -> int:
        return self.concept.num_slots

    @property
    def num_codes(self) -> int:
        return self.concept.num_codes

    @property
    def num_tokens(self) -> int:
        """N, the number of input tokens the encoder reads and the decoder rebuilds."""
        return self.patch_tokens if self.input == "patches" else self.seq_len

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
        if config.concept.slots == "pooled":
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
        self.adapter = build_adapter(config, dim)
        self.position = nn.Parameter(torch.randn(1, config.num_tokens, dim) * 0.02)
        self.encoder = nn.ModuleList(Block(dim, config.n_heads, config.mlp_ratio, 0.0) for _ in range(config.encoder_layers))
        self.pool = SlotPooling(dim, config.num_slots) if config.concept.slots == "pooled" else None
        self.norm = nn.LayerNorm(dim)
        self.to_code = nn.Linear(dim, config.code_dim)
        self.concept = build_concept_layer(config.concept, config.code_dim)
        self.decoder = Decoder(config)

    def set_step(self, step: int) -> None:
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
        self.concept.code_vectors()  # a layer without a codebook says so here
        if codes.min() < 0 or codes.max() >= self.config.num_codes:
            raise ConfigError(f"codes must lie in [0, {self.config.num_codes}), got [{int(codes.min())}, {int(codes.max())}]")
        return self.concept.embed_codes(codes)

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
