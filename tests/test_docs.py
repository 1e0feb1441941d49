"""The Python examples of the README and docs/store.md run as written (tests mirror what users copy)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def in_project_copy(tmp_path, monkeypatch):
    """A scratch working directory where the docs' relative paths (data/..., runs/...) resolve."""
    (tmp_path / "data").symlink_to(ROOT / "data")
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_docs_have_the_examples_these_tests_run():
    assert len(python_blocks(ROOT / "README.md")) == 2
    assert len(python_blocks(ROOT / "docs" / "store.md")) == 1


def test_readme_layers_example_runs():
    namespace: dict = {}
    exec(python_blocks(ROOT / "README.md")[1], namespace)
    assert namespace["out"].codes.shape == (32, 2)
    assert namespace["loss"].dim() == 0 and namespace["loss"].isfinite()


def test_readme_pipeline_example_runs(in_project_copy, monkeypatch, capsys):
    import pipelines.config

    real_load_config = pipelines.config.load_config

    def quick_load_config(path, **overrides):  # the README's experiment, cut from 40 epochs to seconds
        quick = {"train.epochs": 1, "task.tuples_per_epoch": 300, "task.test_tuples": 100, "train.device": "cpu"}
        return real_load_config(path, **(quick | overrides))

    monkeypatch.setattr(pipelines.config, "load_config", quick_load_config)
    exec(python_blocks(ROOT / "README.md")[0], {})
    printed = capsys.readouterr().out
    assert printed.startswith("{'run_id': 1, 'run_dir': 'runs/addition-seed1'")
    assert (in_project_copy / "runs" / "addition-seed1" / "result.json").exists()
    assert re.search(r"\nx\n-+\n(.*\n)*\([0-3] rows?\)\n", printed)  # the SPARQL answer as a table, LIMIT 3


def test_store_doc_example_runs(in_project_copy, capsys):
    exec(python_blocks(ROOT / "docs" / "store.md")[0], {})
    printed = capsys.readouterr().out
    assert printed.count("img-0") >= 2 and "img-1" not in printed  # the inputs whose concept is n7, not n3
