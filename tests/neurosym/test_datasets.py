"""The dataset registry: tiny IDX, pickle and npz files written here, and one clear error per bad file."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from neurosym.data.mnist import load_mnist
from neurosym.data.registry import load_dataset
from neurosym.errors import ConfigError


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_files_read_with_standard_split(tmp_path, compress, write_tiny_mnist):
    sets = write_tiny_mnist(tmp_path, compress=compress)
    train, test = load_dataset("mnist", tmp_path)
    assert train.inputs.shape == (12, 28, 28) and test.inputs.shape == (5, 28, 28)
    assert np.allclose(train.inputs.numpy() * 255, sets["train"][0])
    assert train.labels.tolist() == sets["train"][1].tolist() and test.keys()[:2] == ["image-0", "image-1"]


def test_mnist_pickle_joins_train_and_validation(tmp_path):
    rng = np.random.default_rng(1)
    parts = tuple((rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)) for n in (6, 4, 3))
    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as handle:
        pickle.dump(parts, handle)
    train, test = load_mnist(tmp_path)
    assert train.inputs.shape == (10, 28, 28) and test.inputs.shape == (3, 28, 28)
    assert train.labels.tolist() == parts[0][1].tolist() + parts[1][1].tolist()


def test_mnist_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as handle:
        pickle.dump(Evil(), handle)
    with pytest.raises(ConfigError, match="mnist.pkl.gz: not the MNIST pickle.*refusing"):
        load_mnist(tmp_path)


def test_mnist_bad_files_name_the_file(tmp_path, write_tiny_mnist, monkeypatch):
    with pytest.raises(ConfigError, match="no MNIST files"):
        load_mnist(tmp_path)
    write_tiny_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") * 3 + b"\x01")
    with pytest.raises(ConfigError, match=r"train-images-idx3-ubyte: IDX header says \(5, 5, 5\)"):
        load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ConfigError, match="bad magic number"):
        load_mnist(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(ConfigError, match="no task.data_path and nothing in the cache .*neurosym data fetch mnist"):
        load_dataset("mnist")


def test_arrays_split_stratified_and_seeded(tmp_path):
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(4), 10)
    np.savez(tmp_path / "mine.npz", images=rng.integers(0, 256, (40, 6, 6)).astype(np.uint8), labels=labels)
    train, test = load_dataset("arrays", tmp_path / "mine.npz", test_fraction=0.25, seed=3)
    again, _ = load_dataset("arrays", tmp_path / "mine.npz", test_fraction=0.25, seed=3)
    assert len(train) == 30 and len(test) == 10 and train.index.tolist() == again.index.tolist()
    assert np.bincount(test.labels.numpy(), minlength=4).min() >= 2  # stratified: each label's share kept
    assert float(train.inputs.max()) <= 1.0 and set(train.index.tolist()).isdisjoint(test.index.tolist())


def test_arrays_given_splits_and_feature_vectors(tmp_path):
    np.savez(tmp_path / "f.npz", x_train=np.ones((5, 3)), y_train=np.arange(5), x_test=np.zeros((2, 3)), y_test=np.arange(2))
    train, test = load_dataset("arrays", tmp_path / "f.npz")
    assert train.inputs.shape == (5, 3) and test.labels.tolist() == [0, 1]


@pytest.mark.parametrize("arrays, message", [
    ({"inputs": np.ones((4, 3)), "labels": np.array([0.5, 1, 2, 3])}, "labels must be integers"),
    ({"inputs": np.ones((4, 3)), "labels": np.array([0, 1, 2])}, r"labels must have shape \[4\]"),
    ({"inputs": np.ones(4), "labels": np.arange(4)}, "inputs must have shape"),
    ({"inputs": np.ones((4, 3)), "labels": np.array([0, -1, 2, 3])}, "labels must be >= 0"),
    ({"inputs": np.full((4, 3), np.nan), "labels": np.arange(4)}, "NaN"),
    ({"pixels": np.ones((4, 3))}, "expected arrays 'inputs' and 'labels'"),
])
def test_arrays_bad_content_is_one_clear_error(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ConfigError, match=message):
        load_dataset("arrays", tmp_path / "bad.npz")


def test_unknown_dataset_and_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    (tmp_path / "x.npz").write_text("not a zip")
    with pytest.raises(ConfigError, match="x.npz: not a readable .npz"):
        load_dataset("arrays", tmp_path / "x.npz")
