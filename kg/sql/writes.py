"""Small pieces every store write shares: bulk inserts, the graph write counters, array checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, insert, select, update

from kg.errors import KGError, UnknownRunError
from kg.sql.schema import GraphVersion, Run


def bump(conn: Connection, *graphs: str) -> None:
    """Count one more write of each graph. The bump commits with the write it describes, so the RDF
    view (which compares these counters with its own) can never miss a write."""
    for graph in graphs:
        done = conn.execute(
            update(GraphVersion).where(GraphVersion.graph == graph).values(version=GraphVersion.version + 1)
        )
        if done.rowcount == 0:
            conn.execute(insert(GraphVersion).values(graph=graph, version=1))


def insert_rows(conn: Connection, table, columns: Sequence[str], rows: list[tuple], ignore: bool = False) -> None:
    """Insert tuples through the driver's executemany; ``ignore`` skips rows that hit a unique key."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        # DB-API executemany on tuples: no per-row dict or ORM object, ~1 us per row.
        verb = "INSERT OR IGNORE" if ignore else "INSERT"
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(f"{verb} INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)
        return
    if conn.dialect.name == "postgresql":
        marks = ", ".join(["%s"] * len(columns))
        tail = " ON CONFLICT DO NOTHING" if ignore else ""
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks}){tail}", rows)
        return
    conn.execute(insert(table), [dict(zip(columns, row)) for row in rows])


def check_run(conn: Connection, run_id: int) -> None:
    """Raise ``UnknownRunError`` unless run ``run_id`` exists (complete or not)."""
    if conn.execute(select(Run.id).where(Run.id == int(run_id))).first() is None:
        known = [r for (r,) in conn.execute(select(Run.id).where(Run.complete.is_(True)).order_by(Run.id))]
        raise UnknownRunError(f"unknown run {run_id}; the store holds runs {known or 'none'}")


def as_array(name: str, values, dtype, n: int | None = None) -> np.ndarray:
    """``values`` as a 1-D int64/float64 array of length ``n``; NaN, inf and wrong shapes are errors."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise KGError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise KGError(f"{name}: expected {n} values (one per row), got {len(arr)}")
    if np.issubdtype(dtype, np.floating):
        arr = arr.astype(np.float64, copy=False)
        if not np.all(np.isfinite(arr)):
            raise KGError(f"{name}: contains NaN or infinite values")
    else:
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise KGError(f"{name}: expected integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
    return arr
