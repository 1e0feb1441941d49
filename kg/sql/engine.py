"""Where a store lives: a path or SQLAlchemy URL becomes an engine, and the RDF view gets a directory.

A path (or ``sqlite:///...``) is a SQLite file in WAL mode; its view lives beside it
(``runs/neurosym.oxigraph/``). Any other URL is a server (``postgresql://`` means psycopg 3); its view
is persisted in a local folder too (``view_dir``, default ``$XDG_CACHE_HOME/neurosym/views/<store id>``)
so that commands do not rebuild it from SQL each time.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from kg.errors import KGError
from kg.sql.location import IN_MEMORY, StoreLocation, default_view_dir, sqlite_path  # noqa: F401 - re-exported: where stores live

#: Backend name -> the pip extra that installs its driver.
DRIVER_EXTRAS = {"postgresql": "postgres"}


def store_url(target: str | Path) -> tuple[URL, Path | None]:
    """(SQLAlchemy URL, SQLite file or None) for a path or URL; ``postgresql://`` is given psycopg 3."""
    text = str(target)
    if text == IN_MEMORY:
        return make_url("sqlite://"), None
    sqlite_file = sqlite_path(text)
    if sqlite_file is not None:
        return make_url(f"sqlite:///{sqlite_file}"), sqlite_file
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise KGError(f"{text!r} is not a store path or SQLAlchemy URL: {exc}") from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return url, Path(url.database).expanduser().resolve()
    return url, None


def connect(url: URL, sqlite_file: Path | None) -> Engine:
    """An engine for ``url``; a missing driver is one line naming the extra that installs it."""
    kwargs: dict = {}
    is_sqlite = url.get_backend_name() == "sqlite"
    if is_sqlite:
        # The view builder streams rows from a helper thread; the connection is never shared at once.
        kwargs["connect_args"] = {"check_same_thread": False}
        if sqlite_file is None:
            kwargs["poolclass"] = StaticPool
        else:
            sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url, **kwargs)
    except (ModuleNotFoundError, NoSuchModuleError) as exc:
        backend = url.get_backend_name()
        extra = DRIVER_EXTRAS.get(backend)
        hint = f"pip install 'neurosym[{extra}]'" if extra else "install its SQLAlchemy driver"
        raise KGError(f"{url.render_as_string(hide_password=True)}: no driver for {backend} ({exc}); {hint}") from None
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint, much faster commits
    # Bulk inserts land in indexes out of key order; a page cache that holds them (up to 256 MiB,
    # allocated only as used) halves the insert time of a million assignments against the 2 MiB default.
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.execute("PRAGMA busy_timeout=30000")  # a second writer waits for the first instead of failing
    cursor.close()
