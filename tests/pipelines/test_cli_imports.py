"""Symbolic commands start without the neural half: no torch, PyG or matplotlib is imported; and a query
that the store's current RDF view answers (kg/query/fresh_view.py) imports no SQLAlchemy or rdflib either."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torch_geometric", "matplotlib")
#: What a query answered from a current view also does without (half a second and more to import).
STORE_LIBRARIES = ("sqlalchemy", "rdflib")

RUN_AND_LIST_MODULES = """
import sys
from click.testing import CliRunner
from pipelines.cli import main
result = CliRunner().invoke(main, sys.argv[1:])
assert result.exit_code == 0, result.output
print(" ".join(name for name in {heavy!r} if name in sys.modules))
"""


def heavy_modules_after(*args: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    code = RUN_AND_LIST_MODULES.format(heavy=heavy)
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def arithmetic_store(folder) -> str:
    """A SQLite store of the arithmetic KG in ``folder``, its view in sync with SQL."""
    from kg.store import Store

    store = folder / "store.sqlite"
    with Store.open(store) as opened:
        opened.load_rdf([ROOT / "data" / "arithmetic.ttl"])
        opened.sync_rdf()
    return str(store)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    return arithmetic_store(tmp_path_factory.mktemp("store"))


@pytest.mark.parametrize("args", [
    ["--version"],
    ["query", "ASK { arith:n3 a arith:Prime }"],
    ["kg", "runs"],
    ["kg", "export", "--format", "nt"],
    ["kg", "load", str(ROOT / "data" / "arithmetic.ttl")],
    ["runs", "prune"],
    ["serve", "--help"],
])
def test_symbolic_commands_import_no_torch(args, small_store):
    store = [] if args == ["--version"] else ["--store", small_store]
    assert heavy_modules_after(*store, *args) == []


@pytest.fixture(scope="module")
def current_store(tmp_path_factory):
    """A store whose view is in sync with SQL (its own: other tests here write to ``small_store``)."""
    return arithmetic_store(tmp_path_factory.mktemp("current"))


@pytest.mark.parametrize("args", [
    ["query", "ASK {}"],
    ["query", "SELECT ?n ?l WHERE { ?n a arith:Prime ; rdfs:label ?l } ORDER BY ?n", "--format", "table"],
    ["query", "SELECT ?n WHERE { ?n a arith:Prime }", "--format", "json"],
    ["query", "ASK { arith:n3 a arith:Prime }", "--format", "csv"],
])
def test_query_on_a_current_view_imports_no_store_libraries(args, current_store):
    assert heavy_modules_after("--store", current_store, *args, heavy=HEAVY + STORE_LIBRARIES) == []


def test_the_query_timeout_default_is_the_store_s():
    from kg.query.guard import QueryLimits
    from pipelines.cli import main

    (timeout,) = [p for p in main.commands["query"].params if p.name == "timeout_s"]
    assert timeout.default == QueryLimits.timeout_s


def test_format_choices_come_from_the_library_when_used(small_store):
    from click.testing import CliRunner

    from kg.query.format_names import RESULT_FORMATS
    from pipelines.cli import main

    result = CliRunner().invoke(main, ["query", "ASK {}", "--format", "yaml", "--store", small_store])
    assert result.exit_code == 2
    assert f"'yaml' is not one of {', '.join(repr(f) for f in RESULT_FORMATS)}" in result.output
