"""Datasets by name: download (or copy from a local folder) the files a dataset reads, checked, into a cache.

``fetch(MNIST)`` downloads the four standard IDX archives, trying each mirror in turn, and checks each
file's SHA-256 against the published value before it takes its place; ``import_files(MNIST, paths)``
copies the same files (or ``mnist.pkl.gz``) from the user's disk instead, for machines without a
network. Either way a file is written under a temporary name in the target folder and renamed once it
is whole and checked, so a failed, interrupted or corrupt transfer leaves nothing behind, and the
error names the file and what went wrong in one line.

The default folder is ``$XDG_CACHE_HOME/neurosym/datasets/<name>`` (``~/.cache`` without it), which a
config's ``task.data_path`` falls back to when it is left out (``neurosym/data/registry.py``).
Training itself never downloads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from neurosym.errors import NeurosymError


class DownloadError(NeurosymError):
    """A dataset file could not be fetched or copied whole and checked; the message names it and why."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset as published: its name on the mirrors, size in bytes and SHA-256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class RemoteDataset:
    """A dataset's files and the mirrors (base URLs, tried in order) that serve them.

    ``check`` validates a folder holding the files (a reader that raises ``NeurosymError``); it is
    how a local copy whose bytes have no published hash (an unpacked IDX file, ``alternatives``) is
    checked. ``alternatives`` are other file names the reader accepts in place of the files.
    """

    name: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    alternatives: tuple[str, ...] = ()
    check: Callable[[Path], None] | None = None


def _check_mnist(folder: Path) -> None:
    from neurosym.data.mnist import load_mnist

    load_mnist(folder)


#: MNIST as torchvision and TensorFlow Datasets fetch it: sizes and SHA-256 sums as those projects
#: (and the original distribution's listing, for the sizes) publish them; the mirrors are torchvision's
#: (ossci-datasets), TensorFlow's (cvdf-datasets) and the original site, in that order.
MNIST = RemoteDataset(
    name="mnist",
    files=(
        RemoteFile("train-images-idx3-ubyte.gz", 9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        RemoteFile("train-labels-idx1-ubyte.gz", 28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        RemoteFile("t10k-images-idx3-ubyte.gz", 1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", 4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    alternatives=("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                  "t10k-labels-idx1-ubyte", "mnist.pkl.gz"),
    check=_check_mnist,
)
DATASETS = {"mnist": MNIST}
CHUNK = 1 << 16


def cache_dir(name: str) -> Path:
    """Where dataset ``name`` lives by default: ``$XDG_CACHE_HOME/neurosym/datasets/<name>``."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "neurosym" / "datasets" / name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class FetchOutcome:
    """Where the files are, and which were downloaded (or copied) now or were already in place."""

    folder: Path
    fetched: list[str]
    present: list[str]


def fetch(dataset: RemoteDataset, to: str | Path | None = None, progress: bool = True,
          timeout_s: float = 60.0) -> FetchOutcome:
    """Download ``dataset``'s files into ``to`` (default ``cache_dir``); a file already there with the
    published SHA-256 is kept. Raises ``DownloadError`` naming the file and each mirror's failure."""
    folder = Path(to) if to is not None else cache_dir(dataset.name)
    folder.mkdir(parents=True, exist_ok=True)
    fetched, present = [], []
    for remote in dataset.files:
        target = folder / remote.name
        if target.is_file() and sha256_of(target) == remote.sha256:
            present.append(remote.name)
            continue
        failures = []
        for mirror in dataset.mirrors:
            url = mirror.rstrip("/") + "/" + remote.name
            try:
                _download(url, remote, target, progress, timeout_s)
            except DownloadError as exc:
                failures.append(f"{url}: {exc}")
                continue
            fetched.append(remote.name)
            break
        else:
            raise DownloadError(f"{remote.name}: not downloaded ({'; '.join(failures) or 'no mirrors'}); "
                                f"nothing was written for it. Without a network: neurosym data fetch "
                                f"{dataset.name} --from FOLDER")
    return FetchOutcome(folder, fetched, present)


def _download(url: str, remote: RemoteFile, target: Path, progress: bool, timeout_s: float) -> None:
    """``url`` into ``target`` through a temporary file beside it, renamed only once whole and checked."""
    from tqdm import tqdm

    digest, written = hashlib.sha256(), 0
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{remote.name}.", suffix=".part", delete=False)
    try:
        with handle, urllib.request.urlopen(url, timeout=timeout_s) as response, \
                tqdm(total=remote.size, unit="B", unit_scale=True, desc=remote.name, disable=not progress,
                     leave=False) as bar:
            while chunk := response.read(CHUNK):
                written += len(chunk)
                if written > remote.size:  # a mirror that sends more than the file is not sending the file
                    raise DownloadError(f"more than the expected {remote.size} bytes")
                digest.update(chunk)
                handle.write(chunk)
                bar.update(len(chunk))
        if written != remote.size:
            raise DownloadError(f"got {written} of {remote.size} bytes")
        if digest.hexdigest() != remote.sha256:
            raise DownloadError(f"SHA-256 {digest.hexdigest()} is not the published {remote.sha256}")
        os.replace(handle.name, target)
    except DownloadError:
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(str(exc.reason)) from None
    except (OSError, ValueError) as exc:  # timeouts, resets, a malformed mirror URL
        raise DownloadError(str(exc) or type(exc).__name__) from None
    finally:
        Path(handle.name).unlink(missing_ok=True)


def import_files(dataset: RemoteDataset, sources: Iterable[str | Path], to: str | Path | None = None) -> FetchOutcome:
    """Copy a dataset's files from local ``sources`` (files, or folders searched for the file names)
    into ``to`` (default ``cache_dir``), checked as a whole before any of them takes its place.

    A file with a published SHA-256 must match it; the others (unpacked IDX files, ``mnist.pkl.gz``)
    are checked by reading them (``dataset.check``). Raises ``DownloadError`` naming the bad file.
    """
    folder = Path(to) if to is not None else cache_dir(dataset.name)
    known = {remote.name: remote for remote in dataset.files}
    names = list(known) + list(dataset.alternatives)
    chosen: dict[str, Path] = {}
    for source in map(Path, sources):
        if source.is_dir():
            for name in names:
                for candidate in (source / name, source / "raw" / name):  # torchvision keeps them in raw/
                    if candidate.is_file() and name not in chosen:
                        chosen[name] = candidate
        elif source.is_file():
            if source.name not in names:
                raise DownloadError(f"{source}: not a file of {dataset.name} (expected one of {', '.join(names)})")
            chosen[source.name] = source
        else:
            raise DownloadError(f"{source}: no such file or folder")
    if not chosen:
        raise DownloadError(f"{', '.join(map(str, sources))}: no file of {dataset.name} found "
                            f"(expected {', '.join(names)})")
    for name, path in chosen.items():
        if name in known and (actual := sha256_of(path)) != known[name].sha256:
            raise DownloadError(f"{path}: SHA-256 {actual} is not the published {known[name].sha256}")
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".import-"))
    try:
        for name, path in chosen.items():
            shutil.copyfile(path, staging / name)
        if dataset.check is not None:
            try:
                dataset.check(staging)
            except NeurosymError as exc:  # the reader names the staged copy: name the user's file
                message = str(exc)
                for name, path in chosen.items():
                    message = message.replace(str(staging / name), str(path))
                raise DownloadError(message.replace(str(staging), str(folder))) from None
        for name in chosen:
            os.replace(staging / name, folder / name)
    except OSError as exc:
        raise DownloadError(f"{folder}: cannot copy the files there: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return FetchOutcome(folder, sorted(chosen), [])
