"""``kill -9`` of real ``neurosym`` processes at named moments, on SQLite and PostgreSQL: afterwards
the store passes its integrity check, shows no partial run or half-loaded file, and its SQL tables and
RDF view hold the same number of triples.

Where each kill lands is not left to timing: the command runs under a launcher that wraps the store's
write steps (each batch of rows inserted, the version bump just before a load commits, each graph the
view loads, the switch to a rebuilt view) so that the process prints the step it has reached, and
at the step a test names it stops there and waits, transaction open, until the test kills it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from store_backends import BOTH_BACKENDS

from kg.store import Store

ROOT = Path(__file__).resolve().parents[2]
#: Runs ``neurosym ARGS`` printing ``PHASE step#k`` at each write step; holds at ``sys.argv[1]``.
LAUNCHER = r"""
import sys

from kg.sql import loading, symbols, writes
from kg.view import rdf_view

hold, seen = sys.argv[1], {}


def reached(step):
    seen[step] = seen.get(step, 0) + 1
    print(f"PHASE {step}#{seen[step]}", flush=True)
    if f"{step}#{seen[step]}" == hold:
        sys.stdin.readline()  # held here until the test's kill -9


def after(step, real):
    def wrapped(*args, **kwargs):
        out = real(*args, **kwargs)
        name = step(*args) if callable(step) else step
        if name:
            reached(name)
        return out
    return wrapped


def before(step, real):
    def wrapped(*args, **kwargs):
        reached(step)
        return real(*args, **kwargs)
    return wrapped


insert_rows = after(lambda conn, table, columns, rows, *rest: rows and f"insert:{table.name}", writes.insert_rows)
loading.insert_rows = symbols.insert_rows = insert_rows
loading.bump = before("commit-next", loading.bump)
real_load_files = loading.load_files
loading.load_files = lambda engine, paths, graph, fmt, batch_size, feed=None: real_load_files(
    engine, paths, graph, fmt, 5_000, feed)  # several batches from a small file
real_bulk_load = rdf_view.RdfView._bulk_load
rdf_view.RdfView._bulk_load = staticmethod(after("view-load", real_bulk_load))
rdf_view.RdfView._switch_to = before("view-switch", rdf_view.RdfView._switch_to)

from pipelines.cli import main  # noqa: E402

main(sys.argv[2:], prog_name="neurosym")
"""


def neurosym(hold: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, hold, *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_whole(*args: str) -> list[str]:
    """Run the command to its end; the steps it went through."""
    child = neurosym("-", *args)
    output = child.communicate()[0]
    assert child.returncode == 0, output
    return [line.split()[1] for line in output.splitlines() if line.startswith("PHASE ")]


def killed_at(step: str, *args: str) -> list[str]:
    """Run the command until it reaches ``step`` (``name#k``), kill -9 it there; the steps it went through."""
    child = neurosym(step, *args)
    steps, lines = [], []
    for line in child.stdout:
        lines.append(line)
        if line.startswith("PHASE "):
            steps.append(line.split()[1])
            if steps[-1] == step:
                break
    child.kill()
    child.wait()
    child.stdout.close()
    child.stdin.close()
    assert steps and steps[-1] == step, f"never reached {step}: {''.join(lines)[-2000:]}"
    return steps


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
    # Left alone, the load writes six batches of 5 000 triples, then bumps the version and commits.
    steps = run_whole("kg", "load", str(source), *args)
    assert [s for s in steps if s.startswith("insert:triple")][-1] == "insert:triple#6" and "commit-next#1" in steps
    with open_store(store_target, backend, view_dir) as st:
        assert triples(st) == n
        with st.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM triple")
            conn.exec_driver_sql("DELETE FROM graph_version")
        st.sync_rdf()
    # Killed after the first batch, in the middle, and with every row written but not committed:
    # the transaction was open each time, so nothing of the file may remain.
    for step in ("insert:triple#1", "insert:triple#3", "commit-next#1"):
        reached = killed_at(step, "kg", "load", str(source), *args)
        assert "insert:triple#1" in reached  # rows were being written when the kill came
        with open_store(store_target, backend, view_dir) as st:
            check_healthy(st)
            assert triples(st) == 0, f"killed at {step}: {triples(st)} of {n} triples"
    run_whole("kg", "load", str(source), *args)
    # A rebuild killed while it loads the new view, and just before it switches to it: the old view
    # stays in use and still matches SQL.
    steps = run_whole("kg", "rebuild", *args)
    assert "view-load#1" in steps and "view-switch#1" in steps
    for step in ("view-load#1", "view-switch#1"):
        killed_at(step, "kg", "rebuild", *args)
        with open_store(store_target, backend, view_dir) as st:
            check_healthy(st)
            assert triples(st) == n


def triples(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT COUNT(*) FROM triple").scalar()


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
    steps = run_whole("encode", str(trained_run), *args)
    writes = [s for s in steps if s.startswith("insert:assignment")]
    assert writes, steps
    with open_store(store_target, backend, view_dir) as st:
        (complete,) = st.runs()
        with st.engine.connect() as conn:
            per_run = conn.exec_driver_sql(f"SELECT COUNT(*) FROM assignment WHERE run_id = {complete['id']}").scalar()
    # Killed after the first batch of symbols, and after the last one (the run not yet marked whole).
    for step in dict.fromkeys([writes[0], writes[-1]]):
        killed_at(step, "encode", str(trained_run), *args)
        with open_store(store_target, backend, view_dir) as st:
            check_healthy(st)
            assert [run["id"] for run in st.runs()] == [complete["id"]]  # the killed run is not visible
            assert len(st.runs(include_incomplete=True)) == 2  # but it was being written
            with st.engine.connect() as conn:
                assert conn.exec_driver_sql(f"SELECT COUNT(*) FROM assignment WHERE run_id = {complete['id']}").scalar() == per_run
            assert len(st.prune_runs()) == 1
            assert all(run["complete"] for run in st.runs(include_incomplete=True))
            check_healthy(st)
