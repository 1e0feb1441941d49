"""scikit-learn's bundled 8x8 handwritten digits, with the project's fixed split.

The split is stratified by digit, seed 0, 25% test (1 347 train / 450 test images); images are
scaled to [0, 1]. Nothing is downloaded: the data ships inside scikit-learn.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from neurosym.data.images import LabelledSplit

SPLIT_SEED = 0
TEST_FRACTION = 0.25


def load_digit_splits() -> tuple[LabelledSplit, LabelledSplit]:
    """The fixed (train, test) split of the 1 797 digits: images ``[N, 8, 8]``, keys ``digit-{row}``
    (the row in ``load_digits()``)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    rows = np.arange(len(digits.target))
    train_rows, test_rows = train_test_split(
        rows, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=digits.target
    )
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)
    labels = torch.from_numpy(digits.target.astype(np.int64))

    def split(chosen: np.ndarray) -> LabelledSplit:
        index = torch.from_numpy(np.sort(chosen))
        return LabelledSplit(inputs=images[index], labels=labels[index], index=index, key_prefix="digit")

    return split(train_rows), split(test_rows)


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by up to ``max_shift`` pixels in x and y, filling with zeros.

    Shapes: ``[B, H, W]`` -> ``[B, H, W]``.
    """
    if max_shift <= 0:
        return images
    batch, height, width = images.shape
    padded = torch.nn.functional.pad(images, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, batch), generator=generator)
    rows = (dy[:, None] + torch.arange(height))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(width))[:, None, :]  # (B, 1, W)
    return padded[torch.arange(batch)[:, None, None], rows, cols]


def random_affine(
    images: Tensor, generator: torch.Generator, degrees: float = 10.0, scale: float = 0.1, shift: float = 0.5
) -> Tensor:
    """Rotate by up to ``degrees``, rescale by up to ``1 +- scale`` and translate by up to ``shift``
    pixels, bilinearly; the small, label-preserving jitter that handwriting varies by.

    Shapes: ``[B, H, W]`` -> ``[B, H, W]``.
    """
    batch, height, width = images.shape
    angle, zoom, dx, dy = (torch.rand(4, batch, generator=generator) * 2 - 1)
    angle = angle * degrees * torch.pi / 180
    zoom = 1 + zoom * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([
        torch.stack([cos, -sin, dx * shift * 2 / width], -1),
        torch.stack([sin, cos, dy * shift * 2 / height], -1),
    ], 1)  # (B, 2, 3)
    grid = torch.nn.functional.affine_grid(theta, (batch, 1, height, width), align_corners=False)
    out = torch.nn.functional.grid_sample(images.unsqueeze(1), grid, align_corners=False, padding_mode="zeros")
    return out.squeeze(1)
