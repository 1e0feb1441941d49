"""Concept metrics: accuracy under a code -> symbol map, and the best one-to-one map (Hungarian)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def cooccurrence(codes: Tensor, labels: Tensor, num_codes: int, num_labels: int) -> Tensor:
    """``[N]`` codes x ``[N]`` labels -> counts ``[K, L]``."""
    flat = codes.long() * num_labels + labels.long()
    return torch.bincount(flat, minlength=num_codes * num_labels).reshape(num_codes, num_labels)


def hungarian_map(codes: Tensor, labels: Tensor, num_codes: int, num_labels: int) -> Tensor:
    """The code -> label map that maximises agreement, one-to-one (codes left over map to -1).

    Shapes: codes ``[N]``, labels ``[N]`` -> ``[K]``.
    """
    from scipy.optimize import linear_sum_assignment

    counts = cooccurrence(codes, labels, num_codes, num_labels).numpy()
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = np.full(num_codes, -1, dtype=np.int64)
    mapping[rows] = cols
    return torch.from_numpy(mapping)


def mapped_accuracy(codes: Tensor, labels: Tensor, mapping: Tensor | None = None) -> float:
    """Share of inputs whose code, read through ``mapping`` (identity if None), equals the label."""
    predicted = codes if mapping is None else mapping[codes]
    return float((predicted == labels).double().mean())
