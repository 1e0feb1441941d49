"""User-facing errors of the neural half: one clear line naming the bad value."""

from __future__ import annotations


class NeurosymError(ValueError):
    """A value a user can fix (config, tensor, file) was wrong; the message names it."""


class ConfigError(NeurosymError):
    """A configuration key or value is unknown or out of range."""


class ShapeError(NeurosymError):
    """A tensor does not have the shape a layer documents."""


class NonFiniteError(NeurosymError):
    """NaN or infinity in inputs or in the loss; the message names the layer or value."""


class MemoryLimitError(NeurosymError):
    """A batch does not fit in the device's memory; the message names the batch and the allocation."""


def check_shape(name: str, tensor, expected: str, ndim: int, **sizes: int) -> None:
    """Raise ShapeError unless ``tensor`` has ``ndim`` dimensions and the named sizes.

    ``expected`` is the documented shape, e.g. ``"[B, S, D]"``; ``sizes`` maps a dimension index
    given as ``d0``, ``d1``... to its required size.
    """
    if tensor.dim() != ndim:
        raise ShapeError(f"{name}: expected shape {expected}, got {list(tensor.shape)}")
    for key, size in sizes.items():
        axis = int(key[1:])
        if tensor.shape[axis] != size:
            raise ShapeError(
                f"{name}: expected shape {expected} with dim {axis} = {size}, got {list(tensor.shape)}"
            )


def check_finite(name: str, tensor) -> None:
    """Raise NonFiniteError if ``tensor`` holds NaN or infinity (one host sync; use outside hot loops)."""
    import torch

    if not torch.isfinite(tensor).all():
        raise NonFiniteError(f"{name}: contains NaN or infinity")


def check_training_input(layer, tensor) -> None:
    """Raise NonFiniteError naming ``layer`` if it is training on a tensor with NaN or infinity.

    One host sync per training step: a NaN that reached a layer silently turns its codes, its loss
    and (for an EMA codebook) its state into NaN for good, so it is stopped where it arrives.
    """
    import torch

    if layer.training and not torch.isfinite(tensor).all():
        raise NonFiniteError(f"{type(layer).__name__}: its input holds NaN or infinity (training step); "
                             "check the inputs, or lower train.lr if the encoder diverged")
