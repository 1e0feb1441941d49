"""Sum-product and max-product over tensors held as logarithms, with finite gradients everywhere.

A tensor here carries one named index per axis (a tuple of strings); contracting two tensors adds
them (multiplies the potentials) broadcast over the union of their indices, then reduces the indices
no later step needs: ``logsumexp`` (sum-product) or ``amax`` (max-product). Working in log space keeps
probabilities as small as ``1e-300`` representable, where float32 would round them to 0.

Impossible configurations hold ``IMPOSSIBLE`` (-1e30), a finite stand-in for ``-inf``: a
``logsumexp`` over only ``-inf`` terms has a NaN gradient (``exp(-inf - (-inf))``), which silently ruins
training, while over -1e30 terms it is finite and still negligible next to any possible
configuration (``exp(-1e30)`` is 0 in every float type). Sums of thousands of such terms stay far
from float32's limit of 3.4e38. ``is_impossible`` tells a result apart from a merely improbable one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

Indices = tuple[str, ...]
IMPOSSIBLE = -1e30


def is_impossible(log_value: Tensor) -> Tensor:
    """Where a log-potential came from an impossible configuration (holds at least one ``IMPOSSIBLE``)."""
    return log_value <= IMPOSSIBLE / 2


def logsumexp(x: Tensor, dims: Sequence[int]) -> Tensor:
    """``log(sum(exp(x)))`` over ``dims`` (sum-product); finite with a finite gradient (see above)."""
    return torch.logsumexp(x, dim=tuple(dims)) if dims else x


def maximum(x: Tensor, dims: Sequence[int]) -> Tensor:
    """``max`` over ``dims`` (max-product); the gradient marks the maximising entries."""
    return x.amax(dim=tuple(dims)) if dims else x


REDUCERS = {"sum": logsumexp, "max": maximum}


def align(x: Tensor, indices: Indices, target: Indices) -> Tensor:
    """View ``x`` (axes named ``indices``) with axes in ``target`` order, size 1 where it lacks one."""
    order = [indices.index(name) for name in target if name in indices]
    x = x.permute(order)
    shape = []
    present = iter(x.shape)
    for name in target:
        shape.append(next(present) if name in indices else 1)
    return x.reshape(shape)


def contract(x: Tensor, x_indices: Indices, y: Tensor, y_indices: Indices, keep: set[str],
             semiring: str = "sum") -> tuple[Tensor, Indices]:
    """Multiply two log-potentials and reduce every index not in ``keep``.

    Shapes: ``x`` over ``x_indices``, ``y`` over ``y_indices`` -> a tensor over the union of both in
    first-seen order, minus the reduced indices (returned with the result).
    """
    union = joined(x_indices, y_indices)
    joint = align(x, x_indices, union) + align(y, y_indices, union)
    return reduce(joint, union, keep, semiring)


def reduce(x: Tensor, indices: Indices, keep: set[str], semiring: str) -> tuple[Tensor, Indices]:
    """Reduce every index of ``x`` that is not in ``keep``."""
    dims = [axis for axis, name in enumerate(indices) if name not in keep]
    return REDUCERS[semiring](x, dims), kept(indices, keep)


def joined(x_indices: Indices, y_indices: Indices) -> Indices:
    """The indices of two tensors' product: ``x``'s, then ``y``'s new ones (first-seen order)."""
    return x_indices + tuple(name for name in y_indices if name not in x_indices)


def kept(indices: Indices, keep: set[str]) -> Indices:
    """The indices a reduction to ``keep`` leaves, in order."""
    return tuple(name for name in indices if name in keep)
