"""Fixtures for the knowledge-store tests: a temporary store, the arithmetic KG, a tiny run, the CLI.

``store`` is SQLite unless a test asks for ``backend`` "postgresql" (``BOTH_BACKENDS`` parametrises a
test over both): then it is a fresh database on the throwaway PostgreSQL server that ``.ci/run`` starts
(``$NEUROSYM_TEST_POSTGRES``), or that this file starts itself when ``initdb`` is installed. Only a
machine without PostgreSQL skips those cases.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from kg.store import Store

ROOT = Path(__file__).resolve().parents[2]
ARITHMETIC = ROOT / "data" / "arithmetic.ttl"
sys.path.insert(0, str(ROOT / "tests"))
import postgres_server  # noqa: E402
from store_backends import add_tiny_run  # noqa: E402


@pytest.fixture(scope="session")
def postgres_url():
    """URL of the test server's ``postgres`` database (started here if ``.ci/run`` did not)."""
    url = os.environ.get("NEUROSYM_TEST_POSTGRES")
    if url:
        yield url
        return
    if postgres_server.find_bin("initdb") is None:
        pytest.skip("PostgreSQL is not installed (initdb not found)")
    url, folder = postgres_server.start()
    try:
        yield url
    finally:
        postgres_server.stop(folder)


@pytest.fixture
def backend(request) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def store_target(backend, tmp_path, request) -> str:
    """Where the test's store lives: a SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield str(tmp_path / "neurosym.sqlite")
        return
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin_url = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture
def store_path(tmp_path) -> Path:
    return tmp_path / "neurosym.sqlite"


@pytest.fixture
def view_dir(tmp_path) -> Path:
    return tmp_path / "view"


@pytest.fixture
def store(store_target, backend, view_dir):
    with Store.open(store_target, rdf_path=None if backend == "sqlite" else view_dir) as st:
        yield st


@pytest.fixture
def kg_store(store):
    store.load_rdf([ARITHMETIC])
    return store


@pytest.fixture(scope="session")
def tiny_run():
    """``tiny_run(store)``: adds run 1 of ``run_store`` to any store."""
    return add_tiny_run


@pytest.fixture
def run_store(kg_store):
    """The arithmetic KG plus run 1: 8 inputs, one slot, codes 0..3 aligned to n2, n3, n4, n9."""
    add_tiny_run(kg_store)
    return kg_store


@pytest.fixture
def cli():
    """The real ``neurosym`` CLI: a failing import fails the tests that use it (no stand-in group
    with error handling of its own could hide a broken CLI)."""
    from pipelines.cli import main

    return main


class Listener:
    """A local TCP port that records every connection made to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(1)
            try:
                self.received.append(conn.recv(4096))
            except OSError:
                self.received.append(b"")
            conn.close()

    def close(self) -> list[bytes]:
        time.sleep(0.3)  # a request on its way still arrives
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.received


@pytest.fixture
def listener():
    listening = Listener()
    yield listening
    listening.close()
