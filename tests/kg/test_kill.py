"""``kill -9`` of real ``neurosym`` processes at several moments, on SQLite and PostgreSQL: afterwards
the store passes its integrity check, shows no partial run or half-loaded file, and its SQL tables and
RDF view hold the same number of triples."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from store_backends import BOTH_BACKENDS

from kg.store import Store

ROOT = Path(__file__).resolve().parents[2]
#: When to kill, as a share of the time the same command takes when left alone: early, middle, late.
FRACTIONS = (0.2, 0.5, 0.85)


def neurosym(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def timed(*args: str) -> float:
    start = time.perf_counter()
    child = neurosym(*args)
    output = child.communicate()[0].decode()
    assert child.returncode == 0, output
    return time.perf_counter() - start


def killed_at(delay: float, *args: str) -> None:
    child = neurosym(*args)
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()


def open_store(target: str, backend: str, view_dir: Path) -> Store:
    return Store.open(target, rdf_path=None if backend == "sqlite" else view_dir)


def store_args(target: str, backend: str, view_dir: Path) -> list[str]:
    return ["--store", target] + ([] if backend == "sqlite" else ["--view-dir", str(view_dir)])


def check_healthy(store: Store) -> None:
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    sql, view = store.counts()
    assert sql == view


def write_triples(path: Path, n: int) -> None:
    with open(path, "w") as out:
        for i in range(n):
            out.write(f'<https://example.org/e{i}> <https://example.org/p> "value {i}" .\n')


@BOTH_BACKENDS
def test_kill_during_kg_load_and_rebuild(store_target, backend, view_dir, tmp_path):
    source = tmp_path / "big.nt"
    n = 30_000
    write_triples(source, n)
    args = store_args(store_target, backend, view_dir)
    with open_store(store_target, backend, view_dir) as st:
        st.sync_rdf()  # the store exists, its view is current
    full = timed("kg", "load", str(source), *args)
    with open_store(store_target, backend, view_dir) as st:
        with st.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM triple")
            conn.exec_driver_sql("DELETE FROM graph_version")
        st.sync_rdf()
    for fraction in FRACTIONS:
        killed_at(full * fraction, "kg", "load", str(source), *args)
        with open_store(store_target, backend, view_dir) as st:
            check_healthy(st)
            with st.engine.connect() as conn:
                rows = conn.exec_driver_sql("SELECT COUNT(*) FROM triple").scalar()
            assert rows in (0, n), f"killed at {fraction:.0%}: {rows} of {n} triples"  # all or nothing
    rebuild = timed("kg", "rebuild", *args)
    for fraction in FRACTIONS:
        killed_at(rebuild * fraction, "kg", "rebuild", *args)
        with open_store(store_target, backend, view_dir) as st:
            check_healthy(st)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run folder with a checkpoint of the quick digit-addition model (seconds of training)."""
    from pipelines.config import load_config
    from pipelines.train_step import train

    folder = tmp_path_factory.mktemp("trained")
    config, base = load_config(None, **{"train.epochs": 1, "task.tuples_per_epoch": 300, "task.test_tuples": 100,
                                        "train.device": "cpu"})
    config.model.d_model, config.model.stem_channels = 32, 8
    with Store.open(folder / "train.sqlite") as store:
        train(config, base, store, folder / "run", progress=False)
    return folder / "run"


@pytest.mark.slow
@BOTH_BACKENDS
def test_kill_during_encode_leaves_no_visible_partial_run(store_target, backend, view_dir, trained_run):
    args = store_args(store_target, backend, view_dir)
    full = timed("encode", str(trained_run), *args)
    with open_store(store_target, backend, view_dir) as st:
        (complete,) = st.runs()
        with st.engine.connect() as conn:
            per_run = conn.exec_driver_sql(f"SELECT COUNT(*) FROM assignment WHERE run_id = {complete['id']}").scalar()
    for fraction in FRACTIONS:
        killed_at(full * fraction, "encode", str(trained_run), *args)
        with open_store(store_target, backend, view_dir) as st:
            check_healthy(st)
            with st.engine.connect() as conn:
                for run in st.runs():  # every run a query can see is whole
                    assert conn.exec_driver_sql(f"SELECT COUNT(*) FROM assignment WHERE run_id = {run['id']}").scalar() == per_run
            st.prune_runs()
            assert all(run["complete"] for run in st.runs(include_incomplete=True))
            check_healthy(st)
