"""Fixtures shared by every test package: tiny configs and a CLI runner. Puts ``tests/`` on the path
so that every package can import the shared helpers (``store_backends``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from neurosym.model import ConceptConfig, ModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))


#: Two threads at most (the CI machine's cores), and one where OMP_NUM_THREADS=1 asks for it: mutmut
#: forks each mutant's test run from a process that has run tests, and an OpenMP pool started before a
#: fork leaves the child hanging at its first parallel kernel (docs/testing.md).
_THREADS = min(2, torch.get_num_threads())


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(_THREADS)


@pytest.fixture
def tiny_model_config():
    def make(kind: str = "gumbel", **overrides) -> ModelConfig:
        concept = ConceptConfig(kind=kind, num_codes=overrides.pop("num_codes", 10))
        settings = dict(d_model=16, n_heads=2, n_layers=2, stem_channels=4) | overrides
        return ModelConfig(concept=concept, **settings)

    return make


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()


def write_mnist_idx(folder, sets: dict, compress: bool = False) -> dict:
    """Write ``{"train" | "t10k": (images [N, 28, 28], labels [N])}`` as MNIST's IDX files (``.gz`` if asked)."""
    import gzip

    import numpy as np

    def write_idx(path, array):
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
        data = header + array.astype(np.uint8).tobytes()
        if compress:
            path, data = path.with_name(path.name + ".gz"), gzip.compress(data)
        path.write_bytes(data)

    for prefix, (images, labels) in sets.items():
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return sets


@pytest.fixture
def write_tiny_mnist():
    """Write random MNIST-layout IDX files (``.gz`` if asked) to a folder; returns the arrays written."""
    import numpy as np

    def write(folder, train: int = 12, test: int = 5, compress: bool = False) -> dict:
        rng = np.random.default_rng(0)
        sets = {"train": (rng.integers(0, 256, (train, 28, 28)), rng.integers(0, 10, train)),
                "t10k": (rng.integers(0, 256, (test, 28, 28)), rng.integers(0, 10, test))}
        return write_mnist_idx(folder, sets, compress)

    return write


@pytest.fixture
def write_prototype_mnist():
    """Write easy MNIST-shaped "digits" as IDX files: ten fixed random prototypes (blobs on a 7 x 7 grid,
    scaled up to 28 x 28), each image one of them with pixel noise. Returns the arrays written."""
    import numpy as np

    def write(folder, train: int = 400, test: int = 200, noise: float = 60.0, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        prototypes = np.kron(rng.random((10, 7, 7)) < 0.35, np.ones((4, 4))) * 255.0  # (10, 28, 28)

        def draw(n):
            labels = np.arange(n) % 10
            rng.shuffle(labels)
            images = prototypes[labels] + rng.normal(0, noise, (n, 28, 28))
            return np.clip(images, 0, 255).round(), labels

        return write_mnist_idx(folder, {"train": draw(train), "t10k": draw(test)})

    return write


@pytest.fixture
def write_tiny_mnist_pickle():
    """Write a random ``mnist.pkl.gz`` of the (train, validation, test) layout to a path."""
    import gzip
    import pickle

    import numpy as np

    def write(path, train: int = 40, validation: int = 10, test: int = 10) -> None:
        rng = np.random.default_rng(1)
        parts = tuple((rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n))
                      for n in (train, validation, test))
        with gzip.open(path, "wb") as handle:
            pickle.dump(parts, handle)

    return write
