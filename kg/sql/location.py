"""Where a store and its RDF view live, worked out without SQLAlchemy (which costs half a second to
import): the CLI resolves ``--store``/``--view-dir`` with this, and ``kg.query.fresh_view`` finds a SQLite
file's view with it before deciding whether the full store is needed at all. ``kg.sql.engine`` builds the
SQLAlchemy engine for the same location.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


IN_MEMORY = ":memory:"


class StoreLocation(str):
    """A store path or URL that also carries where its RDF view lives (the CLI's ``--view-dir``)."""

    view_dir: Path | None = None

    def __new__(cls, target: str, view_dir: str | Path | None = None) -> StoreLocation:
        location = super().__new__(cls, target)
        location.view_dir = Path(view_dir) if view_dir else None
        return location


def sqlite_path(target: str | Path) -> Path | None:
    """The SQLite file a plain path names (resolved), or None for a URL (``sqlite:///``, ``postgresql://``)
    and for ``:memory:`` (SQLite's own name for a database in memory, not a file in the current folder)."""
    text = str(target)
    if "://" in text or text == IN_MEMORY:
        return None
    return Path(text).expanduser().resolve()


def default_view_dir(sqlite_file: Path | None, store_id: str) -> Path:
    """Beside a SQLite file (``x.sqlite`` -> ``x.oxigraph``); in the user's cache for a server store."""
    if sqlite_file is not None:
        return sqlite_file.with_suffix(".oxigraph")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "neurosym" / "views" / store_id


def sqlite_files(sqlite_file: Path) -> tuple[Path, Path, Path]:
    """The SQLite file and the write-ahead log and shared-memory files that WAL mode keeps beside it."""
    return sqlite_file, sqlite_file.with_name(sqlite_file.name + "-wal"), sqlite_file.with_name(sqlite_file.name + "-shm")


class NewStoreFiles:
    """The files a command is about to create for a SQLite store that does not exist yet, so that a
    command that fails can leave nothing behind: the store's files, and its view folder where that did
    not exist either (a ``--view-dir`` that already held something is left alone)."""

    def __init__(self, sqlite_file: Path | None, view_dir: Path | None = None) -> None:
        """``sqlite_file``: the file the store's location names (None for a server); ``view_dir``: the
        view folder asked for (``--view-dir``), else the one beside the file."""
        self.sqlite_file = sqlite_file if sqlite_file is not None and not sqlite_file.exists() else None
        self.view_dir = None
        if self.sqlite_file is not None:
            view_dir = Path(view_dir) if view_dir else default_view_dir(self.sqlite_file, "")
            self.view_dir = None if view_dir.exists() else view_dir

    def remove(self) -> None:
        """Remove whatever of them now exists (nothing when the store existed before)."""
        if self.sqlite_file is None:
            return
        for path in sqlite_files(self.sqlite_file):
            path.unlink(missing_ok=True)
        if self.view_dir is not None:
            shutil.rmtree(self.view_dir, ignore_errors=True)
