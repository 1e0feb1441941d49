"""Labelled inputs split into train and test, the shape every dataset of the registry returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from neurosym.errors import ConfigError


@dataclass(frozen=True)
class LabelledSplit:
    """One split of a dataset.

    Shapes: inputs ``[N, H, W]`` / ``[N, C, H, W]`` images or ``[N, F]`` feature vectors, float32;
    labels ``[N]`` int64 >= 0; index ``[N]`` int64, each input's row in its source file, so that
    every input keeps a stable key (``{key_prefix}-{row}``) across runs.
    """

    inputs: Tensor
    labels: Tensor
    index: Tensor
    key_prefix: str = "input"

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def images(self) -> Tensor:
        return self.inputs

    def keys(self) -> list[str]:
        return [f"{self.key_prefix}-{i}" for i in self.index.tolist()]


def as_split(inputs: np.ndarray, labels: np.ndarray, key_prefix: str, index: np.ndarray | None = None,
             source: str = "dataset") -> LabelledSplit:
    """Validate arrays and wrap them. Integer images (``uint8`` pixels) are scaled to [0, 1]."""
    if inputs.ndim not in (2, 3, 4):
        raise ConfigError(f"{source}: inputs must have shape [N, F], [N, H, W] or [N, C, H, W], got {list(inputs.shape)}")
    if labels.ndim != 1 or labels.shape[0] != inputs.shape[0]:
        raise ConfigError(f"{source}: labels must have shape [{inputs.shape[0]}], got {list(labels.shape)}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(f"{source}: labels must be integers, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ConfigError(f"{source}: labels must be >= 0, got {int(labels.min())}")
    if np.issubdtype(inputs.dtype, np.integer):
        inputs = inputs.astype(np.float32) / max(1, float(np.iinfo(inputs.dtype).max))
    elif np.issubdtype(inputs.dtype, np.floating):
        inputs = inputs.astype(np.float32)
    else:
        raise ConfigError(f"{source}: inputs must be numbers, got dtype {inputs.dtype}")
    if not np.isfinite(inputs).all():
        raise ConfigError(f"{source}: inputs contain NaN or infinity")
    index = np.arange(len(labels)) if index is None else index
    return LabelledSplit(torch.from_numpy(np.ascontiguousarray(inputs)), torch.from_numpy(labels.astype(np.int64)),
                         torch.from_numpy(np.asarray(index, dtype=np.int64)), key_prefix)


def stratified_split(inputs: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int,
                     source: str) -> tuple[LabelledSplit, LabelledSplit]:
    """A seeded split that keeps each label's share in both parts (scikit-learn's)."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ConfigError(f"test fraction must be in (0, 1), got {test_fraction}")
    rows = np.arange(len(labels))
    counts = np.bincount(labels) if labels.size else np.zeros(1)
    stratify = labels if counts[counts > 0].min(initial=len(labels)) >= 2 else None  # else a plain shuffle
    try:
        train_rows, test_rows = train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise ConfigError(f"{source}: cannot split {len(labels)} inputs with test fraction {test_fraction}: {exc}") from None
    train_rows, test_rows = np.sort(train_rows), np.sort(test_rows)
    return (as_split(inputs[train_rows], labels[train_rows], "row", train_rows, source),
            as_split(inputs[test_rows], labels[test_rows], "row", test_rows, source))
