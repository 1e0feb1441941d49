"""A user's own labelled data as arrays in one ``.npz`` file.

Either the whole set, split here by a seeded stratified split, or both splits as given:

- ``inputs`` (or ``images`` / ``features`` / ``x``) and ``labels`` (or ``y``);
- ``train_inputs`` / ``train_labels`` and ``test_inputs`` / ``test_labels`` (the same aliases with a
  ``train_`` / ``test_`` prefix, or ``x_train`` / ``y_train`` / ``x_test`` / ``y_test``).

Inputs are images ``[N, H, W]`` or ``[N, C, H, W]`` (integer pixels are scaled to [0, 1]) or feature
vectors ``[N, F]``; labels are non-negative integers ``[N]``. Keys are ``row-{i}``, the row in the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from neurosym.data.images import LabelledSplit, as_split, stratified_split
from neurosym.errors import ConfigError

INPUT_NAMES = ("inputs", "images", "features", "x")
LABEL_NAMES = ("labels", "y")


def _pick(arrays, names: list[str]) -> str | None:
    return next((name for name in names if name in arrays), None)


def _names(split: str | None, base: tuple[str, ...]) -> list[str]:
    if split is None:
        return list(base)
    return [f"{split}_{name}" for name in base] + [f"{name}_{split}" for name in base if len(name) == 1]


def load_arrays(path: str | Path, test_fraction: float = 0.25, seed: int = 0) -> tuple[LabelledSplit, LabelledSplit]:
    """(train, test) from an ``.npz`` file; see the module docstring for the keys it reads."""
    path = Path(path)
    try:
        arrays = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"{path}: arrays file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path}: not a readable .npz file ({exc})") from None
    with arrays:
        given = [_pick(arrays, _names(split, names)) for split in ("train", "test") for names in (INPUT_NAMES, LABEL_NAMES)]
        if all(given):
            train_x, train_y, test_x, test_y = (arrays[name] for name in given)
            return (as_split(train_x, train_y, "row", source=f"{path} (train)"),
                    as_split(test_x, test_y, "row", source=f"{path} (test)"))
        inputs, labels = _pick(arrays, _names(None, INPUT_NAMES)), _pick(arrays, _names(None, LABEL_NAMES))
        if not (inputs and labels):
            raise ConfigError(f"{path}: expected arrays 'inputs' and 'labels' (or train_/test_ pairs), "
                              f"found {sorted(arrays.files)}")
        x, y = arrays[inputs], arrays[labels]
    as_split(x, y, "row", source=str(path))  # validate shapes and dtypes before splitting
    return stratified_split(x, y, test_fraction, seed, str(path))
