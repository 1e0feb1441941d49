"""MNIST from a directory the user points to: the standard IDX files or the ``mnist.pkl.gz`` pickle.

Nothing is downloaded. The reader takes either layout:

- IDX (the original distribution, and torchvision's ``MNIST/raw``): ``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally
  ``.gz``;
- ``mnist.pkl.gz``: the (train, validation, test) = 50k / 10k / 10k pickle of flattened float images;
  train + validation are the standard 60k training set, in that order.

Both give the standard split: 60,000 training and 10,000 test images ``[N, 28, 28]`` in [0, 1].
A missing or malformed file is one error naming the file and what was expected.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from neurosym.data.images import LabelledSplit, as_split
from neurosym.errors import ConfigError

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
PICKLE_NAME = "mnist.pkl.gz"
IDX_DTYPE = {0x08: np.uint8}


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz", directory / "raw" / name, directory / "raw" / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX file (``.gz`` or not): magic ``0 0 dtype ndim``, big-endian sizes, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPE or data[3] != ndim:
        raise ConfigError(f"{path}: not an IDX file of {ndim} dimension(s) of unsigned bytes (bad magic number)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ConfigError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise ConfigError(f"{path}: IDX header says {shape} ({expected} bytes), file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _idx_split(directory: Path, split: str) -> LabelledSplit:
    image_name, label_name = IDX_FILES[split]
    image_path, label_path = _find(directory, image_name), _find(directory, label_name)
    images, labels = read_idx(image_path, 3), read_idx(label_path, 1)
    if images.shape[1:] != (28, 28):
        raise ConfigError(f"{image_path}: expected 28x28 images, got {images.shape[1:]}")
    if labels.shape[0] != images.shape[0]:
        raise ConfigError(f"{label_path}: {labels.shape[0]} labels for the {images.shape[0]} images of {image_path}")
    if labels.size and labels.max() > 9:
        raise ConfigError(f"{label_path}: labels must be digits 0-9, found {int(labels.max())}")
    return as_split(images, labels, "image", source=str(image_path))


def _pickle_splits(path: Path) -> tuple[LabelledSplit, LabelledSplit]:
    try:
        with gzip.open(path, "rb") as handle:
            # The pickle holds only numpy arrays; a file that asks for anything else is refused.
            parts = _ArraysOnly(handle, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise ConfigError(f"{path}: not the MNIST pickle (expected (train, validation, test) arrays): {exc}") from None
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
        train_x, train_y = np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: expected ((x, y), (x, y), (x, y)) for train, validation and test: {exc}") from None
    splits = []
    for x, y in ((train_x, train_y), (test_x, test_y)):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 2 or x.shape[1] != 784:
            raise ConfigError(f"{path}: expected flattened 28x28 images [N, 784], got {list(x.shape)}")
        splits.append(as_split(x.reshape(-1, 28, 28), y.astype(np.int64), "image", source=str(path)))
    return splits[0], splits[1]


class _ArraysOnly(pickle.Unpickler):
    """Unpickle numpy arrays and plain containers only (a pickle can otherwise run any code)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def load_mnist(directory: str | Path) -> tuple[LabelledSplit, LabelledSplit]:
    """The standard (train 60k, test 10k) MNIST split from ``directory`` (IDX files or the pickle)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: MNIST directory not found")
    if all(_find(directory, name) for names in IDX_FILES.values() for name in names):
        return _idx_split(directory, "train"), _idx_split(directory, "test")
    if (directory / PICKLE_NAME).is_file():
        return _pickle_splits(directory / PICKLE_NAME)
    expected = ", ".join(name for names in IDX_FILES.values() for name in names)
    raise ConfigError(f"{directory}: no MNIST files (expected {expected} [.gz], or {PICKLE_NAME})")
