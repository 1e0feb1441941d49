"""Datasets by name: ``task.dataset = NAME`` with a path and split options where the dataset needs them.

=========  ====================================================  =================================
name       what                                                  needs
=========  ====================================================  =================================
digits     scikit-learn's bundled 8x8 digits, fixed split        nothing
mnist      the 70,000 28x28 MNIST images, standard 60k / 10k     ``path``: a directory (IDX / pickle),
                                                                 else the cache ``neurosym data fetch`` fills
arrays     a user's own ``.npz`` (images or feature vectors)     ``path``: the file
=========  ====================================================  =================================

Nothing is downloaded at run time: ``neurosym data fetch mnist`` (``neurosym/data/download.py``) does
that beforehand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from neurosym.data.images import LabelledSplit
from neurosym.errors import ConfigError

Loader = Callable[..., tuple[LabelledSplit, LabelledSplit]]


def _digits(path: Path | None, test_fraction: float, seed: int):
    from neurosym.data.digits import load_digit_splits

    return load_digit_splits()


def _mnist(path: Path | None, test_fraction: float, seed: int):
    from neurosym.data.mnist import load_mnist

    if path is None:
        from neurosym.data.download import cache_dir

        path = cache_dir("mnist")
        if not path.is_dir():
            raise ConfigError(f"dataset 'mnist': no task.data_path and nothing in the cache {path}; run "
                              "'neurosym data fetch mnist' (or --from a local copy), or set task.data_path")
    return load_mnist(path)


def _arrays(path: Path | None, test_fraction: float, seed: int):
    from neurosym.data.arrays import load_arrays

    return load_arrays(_required(path, "arrays", "an .npz file"), test_fraction, seed)


def _required(path: Path | None, name: str, what: str) -> Path:
    if path is None:
        raise ConfigError(f"dataset {name!r} needs task.data_path: {what}")
    return path


DATASETS: dict[str, Loader] = {"digits": _digits, "mnist": _mnist, "arrays": _arrays}


def load_dataset(name: str, path: str | Path | None = None, test_fraction: float = 0.25,
                 seed: int = 0) -> tuple[LabelledSplit, LabelledSplit]:
    """The (train, test) splits of dataset ``name``."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name](Path(path) if path is not None else None, test_fraction, seed)
