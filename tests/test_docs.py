"""The Python examples of the README and docs/store.md run as written (tests mirror what users copy)."""

import re
from pathlib import Path

import pytest
import torch

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

    def quick_load_config(path, **overrides):
        # The README's experiment cut from 40 epochs to 4 (about 13 CPU seconds on one thread): enough
        # for the codes to spread over the digits (concept accuracy about 0.8), so that the example's
        # query for images of n7 has answers to show; after one short epoch every image had one code.
        quick = {"train.epochs": 4, "task.test_tuples": 100, "train.device": "cpu"}
        return real_load_config(path, **(quick | overrides))

    monkeypatch.setattr(pipelines.config, "load_config", quick_load_config)
    torch.set_num_threads(1)  # small steps: a second thread mostly waits
    exec(python_blocks(ROOT / "README.md")[0], {})
    printed = capsys.readouterr().out
    assert printed.startswith("{'run_id': 1, 'run_dir': 'runs/addition-seed1'")
    assert (in_project_copy / "runs" / "addition-seed1" / "result.json").exists()
    # The SPARQL answer as a table, LIMIT 3: three inputs, each one the store says shows n7.
    from kg.store import Store
    from kg.rdf.vocab import PREFIXES

    table = re.search(r"\nx\n-+\n((?:.*\n)*?)\((\d+) rows?\)\n", printed)
    assert table, printed
    shown = table.group(1).split()
    with Store.open(in_project_copy / "runs" / "neurosym.sqlite") as store:
        n7 = {str(x) for (x,) in store.sparql("SELECT ?x WHERE { ?x ns:hasConcept arith:n7 }").rows}
    assert len(n7) >= 3, "the quick run put fewer than three images on n7: the example shows too little"
    assert int(table.group(2)) == len(shown) == 3
    expanded = [x.strip("<>") if x.startswith("<") else PREFIXES[x.split(":", 1)[0]] + x.split(":", 1)[1] for x in shown]
    assert set(expanded) <= n7, (shown, sorted(n7)[:5])


def test_store_doc_example_runs(in_project_copy, capsys):
    exec(python_blocks(ROOT / "docs" / "store.md")[0], {})
    printed = capsys.readouterr().out
    assert printed.count("img-0") >= 2 and "img-1" not in printed  # the inputs whose concept is n7, not n3


def test_store_doc_console_example_answers_as_shown(tmp_path):
    """The ``pycon`` session of docs/store.md (which engine answered, and why) prints what it shows."""
    import doctest

    from kg.store import Store
    from store_backends import ARITHMETIC, add_tiny_run

    (session,) = re.findall(r"```pycon\n(.*?)```", (ROOT / "docs" / "store.md").read_text(encoding="utf-8"), flags=re.S)
    with Store.open(tmp_path / "s.sqlite") as store:
        store.load_rdf([ARITHMETIC])
        add_tiny_run(store)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(doctest.DocTestParser().get_doctest(session, {"store": store}, "docs/store.md", None, 0))
    assert (runner.failures, runner.tries) == (0, 3)
