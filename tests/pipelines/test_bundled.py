"""The bundled data is package data: found through importlib.resources, carried by the wheel, and
reachable by name from any working folder; a user's own files still come first."""

from __future__ import annotations

import fnmatch
import importlib.resources
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from pipelines import bundled
from pipelines.cli import main
from pipelines.config import load_config, resolve_path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_data_folder_is_the_package_found_through_importlib_resources():
    assert bundled.root() == Path(str(importlib.resources.files("neurosym_data")))
    assert bundled.root().resolve() == (ROOT / "data").resolve()  # an editable install maps it to data/
    listed = {f"{folder}/{p.name}".lstrip("/") for folder, paths in bundled.listing().items() for p in paths}
    assert {"arithmetic.ttl", "vocab.ttl", "configs/digits_addition.toml", "queries/full_adder.rq",
            "rules/digits.rules"} <= listed


def test_every_data_file_is_package_data_and_every_package_is_listed():
    """pyproject lists packages and data by hand (find cannot rename data/): nothing may be left out."""
    patterns = PYPROJECT["package-data"]["neurosym_data"]
    files = [p.relative_to(ROOT / "data").as_posix() for p in (ROOT / "data").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"]
    assert files and [f for f in files if not any(fnmatch.fnmatch(f, pat) and f.count("/") == pat.count("/")
                                                  for pat in patterns)] == []
    packages = {".".join(p.parent.relative_to(ROOT).parts) for top in ("neurosym", "kg", "pipelines")
                for p in (ROOT / top).rglob("__init__.py")}
    assert set(PYPROJECT["packages"]) == packages | {"neurosym_data"}


def test_wheel_carries_the_data(tmp_path):
    """The wheel itself (built offline with the installed setuptools; CI installs one and runs the demo)."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 68:
        pytest.skip(f"setuptools {setuptools.__version__} is older than the build needs (>= 68)")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("neurosym-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"neurosym_data/{f}" for folder, paths in bundled.listing().items()
                for f in (f"{folder}/{p.name}".lstrip("/") for p in paths)}
    assert expected <= names and "neurosym_data/__init__.py" in names
    assert not any(name.startswith(("data/", "tests/")) for name in names)


@pytest.mark.parametrize("name, folder", [
    ("data/queries/02_prime_numbers.rq", "queries"),  # the repository's path, as the README writes it
    ("queries/02_prime_numbers.rq", "queries"),
    ("02_prime_numbers.rq", "queries"),
    ("mnist_addition.toml", "configs"),
])
def test_names_find_bundled_files(name, folder):
    found = bundled.find(name, folder)
    assert found is not None and found.parent == bundled.root() / folder and found.name == Path(name).name


def test_names_outside_the_data_are_not_bundled():
    assert bundled.find("../pyproject.toml") is None and bundled.find("/etc/passwd") is None
    assert bundled.find("02_prime_numbers.rq") is None  # not without its folder


def test_commands_read_bundled_files_from_any_folder(tmp_path, monkeypatch, cli_runner):
    monkeypatch.chdir(tmp_path)
    store = ["--store", str(tmp_path / "s.sqlite")]
    result = cli_runner.invoke(main, ["kg", "load", "arithmetic.ttl", *store])
    assert result.exit_code == 0 and "loaded 696 new triples" in result.output, result.output
    for name in ("02_prime_numbers.rq", "data/queries/02_prime_numbers.rq"):
        result = cli_runner.invoke(main, ["query", "-f", name, "--format", "csv", *store])
        assert result.exit_code == 0 and "arith#n7" in result.output, result.output
    missing = cli_runner.invoke(main, ["query", "-f", "nowhere.rq", *store])
    assert missing.exit_code == 1 and missing.output == (
        "Error: nowhere.rq: file not found (nor a bundled file of that name; 'neurosym data list' shows them)\n")
    listed = cli_runner.invoke(main, ["data", "list"])
    assert listed.exit_code == 0 and "  configs/mnist_addition.toml\n" in listed.output


def test_a_user_s_files_come_first_and_resolve_beside_their_config(tmp_path, monkeypatch):
    mine = tmp_path / "experiment"
    (mine / "queries").mkdir(parents=True)
    (mine / "queries" / "addition.rq").write_text("SELECT ?a ?b ?c WHERE { ?a ?b ?c }")
    (mine / "my.toml").write_text('[task]\nkg = ["arithmetic.ttl"]\nquery = "queries/addition.rq"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config, base = load_config(mine / "my.toml")
    assert base == mine.resolve()
    assert resolve_path(config.task.query, base) == mine.resolve() / "queries" / "addition.rq"  # not the bundled one
    assert resolve_path("arithmetic.ttl", base) == bundled.root() / "arithmetic.ttl"
    bundled_config, bundled_base = load_config("mnist_addition.toml")
    assert bundled_config.task.dataset == "mnist" and bundled_base == bundled.root() / "configs"
    (elsewhere / "mnist_addition.toml").write_text('name = "mine"\n')
    assert load_config("mnist_addition.toml")[0].name == "mine"  # a file of the user's wins over the bundled one
