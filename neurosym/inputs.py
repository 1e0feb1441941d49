"""The input section of a model: what it reads (image patches, token ids, feature vectors) and the
adapter that turns it into tokens ``[B, N, D]``. The Concept Transformer and the VQ-VAE share both.

Shape legend: B batch, C channels, H/W image side, N tokens, F features, D model width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from neurosym.errors import ConfigError, check_shape


@dataclass
class InputConfig:
    """What the model reads. ``input``: ``patches`` (images ``[B, H, W]`` or ``[B, C, H, W]``),
    ``tokens`` (ids ``[B, N]``) or ``features`` (vectors ``[B, N, F]`` or ``[B, F]``).

    A config that embeds this section (``ModelConfig``, ``VQVAEConfig``) keeps its keys at its own
    level (``model.image_size``) and calls ``check_input`` from its ``__post_init__``.
    """

    input: Literal["patches", "tokens", "features"] = "patches"
    # patches: square images, cut into patch_size x patch_size tokens after an optional stem
    image_size: int = 8
    patch_size: int = 2
    channels: int = 1
    stem: Literal["conv", "strided", "lenet"] = "conv"
    stem_channels: int = 0  # 0: no stem
    stem_layers: int = 2  # strided stem: stride-2 convolutions, each halving the map (rounding up)
    # tokens: ids in [0, vocab_size)
    vocab_size: int = 0
    # features: vectors of feature_dim values
    feature_dim: int = 0

    def __post_init__(self) -> None:
        self.check_input()

    def check_input(self, section: str = "model") -> None:
        if self.input == "patches" and self.stem in ("strided", "lenet") and not self.stem_channels:
            raise ConfigError(f"{section}.stem = '{self.stem}' needs {section}.stem_channels > 0")
        if self.input == "patches" and self.stem == "lenet" and self.stem_channels and self.image_size < 16:
            raise ConfigError(f"{section}.stem = 'lenet' needs images of at least 16 pixels a side, got {self.image_size}")
        if self.stem_layers < 1:
            raise ConfigError(f"{section}.stem_layers must be at least 1, got {self.stem_layers}")
        if self.input == "patches" and self.stem_map_size % self.patch_size:
            side = self.stem_map_size
            where = f"the {side}x{side} map the {self.stem} stem leaves" if self.stem_channels else "image_size"
            raise ConfigError(f"{section}.patch_size {self.patch_size} does not divide {where} ({side})")
        if self.input == "tokens" and self.vocab_size < 1:
            raise ConfigError(f"{section}.vocab_size must be set for input = 'tokens'")
        if self.input == "features" and self.feature_dim < 1:
            raise ConfigError(f"{section}.feature_dim must be set for input = 'features'")

    @property
    def strided_stem(self) -> bool:
        return self.input == "patches" and self.stem == "strided" and self.stem_channels > 0

    @property
    def lenet_stem(self) -> bool:
        return self.input == "patches" and self.stem == "lenet" and self.stem_channels > 0

    @property
    def stem_map_size(self) -> int:
        """Side of the map the stem hands to the patch projection (each stride-2 layer rounds up)."""
        size = self.image_size
        if self.lenet_stem:
            return ((size - 4) // 2 - 4) // 2  # two unpadded 5x5 convolutions, each followed by 2x2 max-pooling
        for _ in range(self.stem_layers if self.strided_stem else 0):
            size = -(-size // 2)
        return size

    @property
    def patch_tokens(self) -> int:
        """N for ``patches``: tokens per image after the stem and the patch projection."""
        return (self.stem_map_size // self.patch_size) ** 2


def build_adapter(config: InputConfig, dim: int) -> nn.Module:
    """The module that turns ``config.input`` into tokens ``[B, N, dim]``."""
    if config.input == "patches":
        return PatchEmbedding(config.image_size, config.patch_size, config.channels, dim, config.stem_channels,
                              config.stem, config.stem_layers)
    if config.input == "tokens":
        return TokenEmbedding(config.vocab_size, dim)
    return FeatureEmbedding(config.feature_dim, dim)


class PatchEmbedding(nn.Module):
    """Images ``[B, C, H, W]`` (or ``[B, H, W]``) -> patch tokens ``[B, N, D]``.

    With ``stem_channels = c > 0`` a convolutional stem looks at each pixel's neighbourhood before the
    patch projection, which small-data Transformers need to see strokes: ``stem = "conv"`` is one 3x3
    convolution (N = (H/p)(W/p)); ``stem = "strided"`` is a 5x5 convolution with stride 2 to c channels
    and ``stem_layers - 1`` 3x3 ones with stride 2 to 2c, each batch-normalised, so a 28x28 digit becomes a
    7x7 map (two layers, N = 49 for p = 1) or a 4x4 one (three layers, N = 16) cheaply; ``stem =
    "lenet"`` is LeNet-5's two 5x5 convolutions with max-pooling (a 28x28 digit -> 4x4 map; with
    ``patch_size = 4`` and no Transformer blocks the model is the plain CNN of the NeSy literature). The Transformer's
    cost grows with N: on CPU the third layer trains MNIST about 1.5 times as fast (0.48 against 0.75 ms
    per image, one thread, 240 images per step).
    """

    def __init__(self, image_size: int, patch_size: int, channels: int, dim: int, stem_channels: int = 0,
                 stem: str = "conv", stem_layers: int = 2) -> None:
        super().__init__()
        self.image_size, self.channels = image_size, channels
        layers: list[nn.Module] = []
        side = image_size
        if stem_channels and stem == "strided":
            widths = [channels, stem_channels] + [2 * stem_channels] * (stem_layers - 1)
            for depth, (into, out) in enumerate(zip(widths, widths[1:])):
                kernel = 5 if depth == 0 else 3
                layers += [nn.Conv2d(into, out, kernel_size=kernel, stride=2, padding=kernel // 2),
                           nn.BatchNorm2d(out), nn.GELU()]
                side = -(-side // 2)
            channels = widths[-1]
        elif stem_channels and stem == "lenet":
            # LeNet-5's feature extractor, the network DeepProbLog, A-NeSI and Scallop use for MNIST:
            # 28 -> 24 -> 12 -> 8 -> 4, ``stem_channels`` maps wide (LeNet: 16, after a first layer of 6)
            first = max(1, (3 * stem_channels) // 8)
            layers = [nn.Conv2d(channels, first, kernel_size=5), nn.MaxPool2d(2), nn.ReLU(),
                      nn.Conv2d(first, stem_channels, kernel_size=5), nn.MaxPool2d(2), nn.ReLU()]
            side = ((side - 4) // 2 - 4) // 2
            channels = stem_channels
        elif stem_channels:
            layers = [nn.Conv2d(channels, stem_channels, kernel_size=3, padding=1), nn.GELU()]
            channels = stem_channels
        self.proj = nn.Sequential(*layers, nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size))
        self.num_tokens = (side // patch_size) ** 2

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() == 3:
            images = images.unsqueeze(1)
        size = self.image_size
        check_shape("images", images, f"[B, {self.channels}, {size}, {size}]", 4, d1=self.channels, d2=size, d3=size)
        return self.proj(images).flatten(2).transpose(1, 2)  # (B, N, D)


class TokenEmbedding(nn.Module):
    """Token ids ``[B, N]`` -> ``[B, N, D]``."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, dim)

    def forward(self, ids: Tensor) -> Tensor:
        check_shape("token ids", ids, "[B, N]", 2)
        return self.embed(ids)


class FeatureEmbedding(nn.Module):
    """Feature vectors ``[B, N, F]`` (or one vector ``[B, F]``) -> ``[B, N, D]``."""

    def __init__(self, feature_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(feature_dim, dim)

    def forward(self, features: Tensor) -> Tensor:
        if features.dim() == 2:
            features = features.unsqueeze(1)
        check_shape("features", features, "[B, N, F]", 3, d2=self.proj.in_features)
        return self.proj(features)
