"""Fetching a translated query's rows within the query's time and row limits, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from sqlalchemy import text

from kg.query.guard import QueryTimeoutError, result_too_large, timeout_message


def fetch_rows(conn, body: str, params: dict, max_rows: int | None, timeout_s: float | None) -> list[tuple]:
    """The rows of ``body`` (at most ``max_rows``, else ``ResultTooLargeError``), stopped after ``timeout_s``
    seconds with ``QueryTimeoutError``: SQLite through a progress handler, PostgreSQL by ``statement_timeout``."""
    raw = conn.connection.dbapi_connection
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    sqlite = conn.dialect.name == "sqlite"
    if deadline is not None and sqlite:
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    elif deadline is not None:
        conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"))
    try:
        result = conn.execute(text(body), params)
        rows = result.fetchmany(max_rows + 1) if max_rows is not None else result.fetchall()
    except Exception:  # the SQLite progress handler and PostgreSQL's timeout both end in an error
        if deadline is not None and time.monotonic() > deadline:
            raise QueryTimeoutError(timeout_message(timeout_s)) from None
        raise
    finally:
        if deadline is not None and sqlite:
            raw.set_progress_handler(None, 0)
    if max_rows is not None and len(rows) > max_rows:
        raise result_too_large(max_rows)
    return rows
