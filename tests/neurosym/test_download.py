"""Datasets by name: download from mirrors with SHA-256 checks, or copy --from a local copy, into the cache.

No test reaches the network: a local ``http.server`` serves tiny MNIST-layout files, and the dataset's
files and mirrors are a ``RemoteDataset`` built for them (the published MNIST one differs only in its
values).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import re
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from neurosym.data.download import MNIST, DownloadError, RemoteDataset, RemoteFile, cache_dir, fetch, import_files
from neurosym.data.registry import load_dataset


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean; count requests instead
        self.server.requests.append(self.path)


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1: (folder, base URL, list of requested paths)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}", server.requests
    server.shutdown()
    server.server_close()


def tiny_dataset(folder: Path, write_tiny_mnist, mirrors: tuple[str, ...]) -> RemoteDataset:
    """MNIST's spec for the tiny ``.gz`` IDX files written to ``folder``: their real sizes and hashes."""
    folder.mkdir(parents=True, exist_ok=True)
    write_tiny_mnist(folder, train=12, test=5, compress=True)
    files = tuple(RemoteFile(remote.name, (folder / remote.name).stat().st_size,
                             hashlib.sha256((folder / remote.name).read_bytes()).hexdigest())
                  for remote in MNIST.files)
    return replace(MNIST, files=files, mirrors=mirrors)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_published_mnist_spec():
    """The values that the downloads are checked against: torchvision's and TFDS's, sizes as published."""
    assert {f.name: f.size for f in MNIST.files} == {
        "train-images-idx3-ubyte.gz": 9912422, "train-labels-idx1-ubyte.gz": 28881,
        "t10k-images-idx3-ubyte.gz": 1648877, "t10k-labels-idx1-ubyte.gz": 4542}
    assert all(len(f.sha256) == 64 and int(f.sha256, 16) >= 0 for f in MNIST.files)
    assert MNIST.mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/" and len(MNIST.mirrors) == 3


def test_cache_honours_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir("mnist") == tmp_path / "neurosym" / "datasets" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("mnist") == tmp_path / "home" / ".cache" / "neurosym" / "datasets" / "mnist"


def test_fetch_falls_back_across_mirrors_checks_and_keeps_what_is_there(served, tmp_path, write_tiny_mnist):
    folder, url, requests = served
    dataset = tiny_dataset(folder / "good", write_tiny_mnist, (f"{url}/gone/", f"{url}/good/"))
    target = tmp_path / "cache"
    outcome = fetch(dataset, target, progress=False)
    assert outcome.folder == target and sorted(outcome.fetched) == sorted(f.name for f in dataset.files)
    assert leftovers(target) == sorted(f.name for f in dataset.files)  # no temporary files left
    train, test = load_dataset("mnist", target)
    assert len(train) == 12 and len(test) == 5
    asked = len(requests)
    again = fetch(dataset, target, progress=False)
    assert again.fetched == [] and len(again.present) == 4 and len(requests) == asked  # nothing downloaded twice


@pytest.mark.parametrize("damage, reason", [
    (lambda data: bytes([data[0] ^ 1]) + data[1:], "SHA-256 [0-9a-f]{64} is not the published"),
    (lambda data: data[:-3], r"got \d+ of \d+ bytes"),
    (lambda data: data + b"more", r"more than the expected \d+ bytes"),
])
def test_a_corrupt_download_leaves_no_file_and_says_which_and_why(served, tmp_path, write_tiny_mnist, damage, reason):
    folder, url, _ = served
    dataset = tiny_dataset(folder / "good", write_tiny_mnist, (f"{url}/bad/",))
    (folder / "bad").mkdir()
    for remote in dataset.files:
        data = (folder / "good" / remote.name).read_bytes()
        (folder / "bad" / remote.name).write_bytes(damage(data) if remote.name.startswith("t10k-labels") else data)
    target = tmp_path / "cache"
    with pytest.raises(DownloadError) as caught:
        fetch(dataset, target, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"t10k-labels-idx1-ubyte.gz: not downloaded ({url}/bad/t10k-labels-idx1-ubyte.gz: ")
    assert re.search(reason, message), message
    assert "t10k-labels-idx1-ubyte.gz" not in leftovers(target)
    assert not [name for name in leftovers(target) if name.startswith(".")]  # no partial file


def test_no_mirror_answers(served, tmp_path, write_tiny_mnist):
    folder, url, _ = served
    dataset = tiny_dataset(folder / "good", write_tiny_mnist, (f"{url}/gone/", "http://127.0.0.1:9/"))
    with pytest.raises(DownloadError, match=r"^train-images-idx3-ubyte.gz: not downloaded \(.*/gone/train-images-"
                                            r"idx3-ubyte.gz: HTTP 404 .*; http://127.0.0.1:9/train-images-idx3-ubyte"
                                            r".gz: .*\); nothing was written for it"):
        fetch(dataset, tmp_path / "cache", progress=False)
    assert leftovers(tmp_path / "cache") == []


def test_from_local_files_checks_and_copies(tmp_path, write_tiny_mnist, write_tiny_mnist_pickle, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    source = tmp_path / "mine"
    source.mkdir()
    write_tiny_mnist(source, train=12, test=5)  # unpacked IDX: checked by reading them
    outcome = import_files(MNIST, [source])
    assert outcome.folder == cache_dir("mnist") and len(outcome.fetched) == 4
    train, _ = load_dataset("mnist")  # no path: the cache
    assert len(train) == 12
    write_tiny_mnist_pickle(tmp_path / "mnist.pkl.gz")
    other = tmp_path / "other"
    import_files(MNIST, [tmp_path / "mnist.pkl.gz"], other)
    assert leftovers(other) == ["mnist.pkl.gz"] and len(load_dataset("mnist", other)[0]) == 50


def test_from_refuses_bad_files_and_copies_nothing(tmp_path, write_tiny_mnist):
    source = tmp_path / "mine"
    source.mkdir()
    write_tiny_mnist(source, compress=True)  # .gz files have published hashes, which tiny ones do not match
    target = tmp_path / "cache"
    with pytest.raises(DownloadError, match=rf"^{source}/train-images-idx3-ubyte.gz: SHA-256 [0-9a-f]+ is not the published"):
        import_files(MNIST, [source], target)
    assert leftovers(target) == []
    bad = tmp_path / "bad" / "mnist.pkl.gz"
    bad.parent.mkdir()
    bad.write_bytes(gzip.compress(b"not a pickle"))
    with pytest.raises(DownloadError, match=rf"^{bad}: not the MNIST pickle"):
        import_files(MNIST, [bad], target)
    assert leftovers(target) == []  # the staging folder went too
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DownloadError, match="notes.txt: not a file of mnist"):
        import_files(MNIST, [tmp_path / "notes.txt"], target)
