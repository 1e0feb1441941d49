"""Where a store and its RDF view live, worked out without SQLAlchemy (which costs half a second to
import): the CLI resolves ``--store``/``--view-dir`` with this, and ``kg.query.fresh_view`` finds a SQLite
file's view with it before deciding whether the full store is needed at all. ``kg.sql.engine`` builds the
SQLAlchemy engine for the same location.
"""

from __future__ import annotations

import os
from pathlib import Path


class StoreLocation(str):
    """A store path or URL that also carries where its RDF view lives (the CLI's ``--view-dir``)."""

    view_dir: Path | None = None

    def __new__(cls, target: str, view_dir: str | Path | None = None) -> StoreLocation:
        location = super().__new__(cls, target)
        location.view_dir = Path(view_dir) if view_dir else None
        return location


def sqlite_path(target: str | Path) -> Path | None:
    """The SQLite file a plain path names (resolved), or None for a URL (``sqlite:///``, ``postgresql://``)."""
    text = str(target)
    if "://" in text:
        return None
    return Path(text).expanduser().resolve()


def default_view_dir(sqlite_file: Path | None, store_id: str) -> Path:
    """Beside a SQLite file (``x.sqlite`` -> ``x.oxigraph``); in the user's cache for a server store."""
    if sqlite_file is not None:
        return sqlite_file.with_suffix(".oxigraph")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "neurosym" / "views" / store_id
