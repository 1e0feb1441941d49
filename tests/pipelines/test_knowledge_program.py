"""Knowledge programs from the config: templates, compilation from the store's KG, clear errors, and a
whole pipeline (train, encode, align, SPARQL) on a multi-digit task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rdflib import RDF
from sklearn.datasets import load_digits

from kg.rdf.vocab import NS

from neurosym.errors import ConfigError
from pipelines.config import DATA_DIR, KnowledgeConfig, TaskConfig, load_config
from pipelines.knowledge_program import expand, program_from_store
from pipelines.run import run
from pipelines.train_step import compile_knowledge, load_kg, prepare_task

MNIST_CONFIG = DATA_DIR / "configs" / "mnist_addition.toml"
FULL_ADDER = (DATA_DIR / "queries" / "full_adder.rq").read_text()


def addition_knowledge(n: int, **changes) -> KnowledgeConfig:
    config, _ = load_config(MNIST_CONFIG)
    knowledge = config.task.knowledge
    knowledge.params = {"n": n}
    for key, value in changes.items():
        setattr(knowledge, key, value)
    return knowledge


def test_templates_expand_with_params_and_integer_expressions():
    assert expand(["f(?a{i}, ?c{i+1}) for i in range(n)", "?c{n}"], {"n": 2}, "here") == [
        "f(?a0, ?c1)", "f(?a1, ?c2)", "?c2"]
    assert expand(["?a{n-1-i} for i in range(1, n)"], {"n": 3}, "here") == ["?a1", "?a0"]
    with pytest.raises(ConfigError, match="here: '__import__' is not an integer expression"):
        expand(["?a{__import__}"], {"n": 1}, "here")


def test_full_adders_from_the_kg_label_sums_exactly(store):
    load_kg(store, load_config(MNIST_CONFIG)[0], None)
    program = program_from_store(store, addition_knowledge(3), {"full_adder": FULL_ADDER}, num_codes=10)
    assert program.arity == 6 and len(program.symbols) == 10 and program.symbols[0].endswith("#n0")
    digits = torch.tensor([[9, 9, 9, 0, 0, 1], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]])
    certain = torch.nn.functional.one_hot(digits, 10).float().log()
    assert program.constraint.predict(certain).tolist() == [[1, 0, 0, 0], [0, 5, 7, 9], [0, 0, 0, 0]]


@pytest.mark.parametrize("changes, message", [
    ({"atoms": ["adder(?a, ?b, ?c, ?s, ?d)"]}, "use relation\\(s\\) adder, which task.knowledge.relations does not define"),
    ({"atoms": ["full_adder(?a, ?b, ?s)"]}, "its query has 5 columns .* the atoms use 3 arguments"),
    ({"inputs": ["?x{i} for i in range(n)"]}, "input variable \\?x0 occurs in no atom"),
    ({"label": ["?c{n+5}"]}, "label variable \\?c7 occurs in no atom"),
    ({"atoms": ["full_adder(?a{i}, ?b{i}, ?c{i}, ?s{i}, ?c{i+1}) for i in range(n"]}, "'i' is not an integer expression"),
    ({"constants": {"c0": "arith:n7"}}, "\\?c0 = .*#n7, which no relation allows there"),
    ({"inputs": ["a0"]}, "'a0' is not a variable"),
])
def test_bad_programs_are_one_clear_error(store, changes, message):
    load_kg(store, load_config(MNIST_CONFIG)[0], None)
    with pytest.raises(ConfigError, match=message):
        program_from_store(store, addition_knowledge(2, **changes), {"full_adder": FULL_ADDER}, num_codes=10)


def test_relation_with_no_rows_names_the_relation(store):
    load_kg(store, load_config(MNIST_CONFIG)[0], None)
    empty = "SELECT ?a ?b ?c ?s ?d WHERE { ?a <urn:none> ?b . ?c <urn:none> ?s . ?s <urn:none> ?d }"
    with pytest.raises(ConfigError, match="relation full_adder: its query returned no rows"):
        program_from_store(store, addition_knowledge(1), {"full_adder": empty}, num_codes=10)


def test_too_few_codes_for_the_symbols(store):
    config, base = load_config(MNIST_CONFIG)
    config.model.concept.num_codes = 5
    load_kg(store, config, base)
    with pytest.raises(ConfigError, match="num_codes = 5 is smaller than the 10 symbols"):
        compile_knowledge(config, base, store)


def test_knowledge_config_checks_its_tables():
    with pytest.raises(ConfigError, match="task.knowledge.params.n': expected int"):
        KnowledgeConfig(relations={"r": "x"}, atoms=["r(?a)"], params={"n": "3"})
    with pytest.raises(ConfigError, match="task.dataset = 'arrays' needs task.data_path"):
        TaskConfig(dataset="arrays")
    assert TaskConfig(dataset="mnist").data_path == ""  # MNIST without a path reads the fetched cache


def test_three_digit_addition_pipeline_on_digits_encodes_aligns_and_queries(tmp_path, store):
    """The same machinery as MNIST N-digit addition, on the bundled 8x8 digits, end to end."""
    config, base = load_config(MNIST_CONFIG, **{"train.epochs": 1, "train.device": "cpu", "train.batch_size": 16,
                                                "train.trap_restarts": 0, "train.trap_check_at": 0})
    config.task.dataset, config.task.data_path, config.task.test_tuples = "digits", "", 50
    config.task.knowledge.params["n"] = 3
    config.model.image_size, config.model.stem, config.model.stem_channels, config.model.patch_size = 8, "conv", 8, 2
    config.model.d_model = 32
    result = run(config, base, store, tmp_path / "run", progress=False)
    metrics = result.trained.metrics
    assert result.aligned.alignment.method == "constraint"
    count = store.sparql("SELECT (COUNT(?x) AS ?n) WHERE { ?x ns:hasConcept ?e }").rows[0][0]
    assert int(count) == len(load_digits().target)  # all 1 797 of scikit-learn's digits, train and test
    # Both accuracies, recomputed from the store: each test image's top code (code i is digit i), the
    # test groups of six images, and the true digits. With no evidence, the most probable explanation
    # takes each image's most likely digit, so a group's predicted sum is the sum of its top codes.
    prepared = prepare_task(config, base, store)
    truth = dict(zip(prepared.test_keys, prepared.test.symbols.tolist()))
    code = stored_top_codes(store, result.run_id)
    assert metrics["concept_acc"] == pytest.approx(np.mean([code[k] == d for k, d in truth.items()]))
    groups = stored_groups(store)
    assert len(groups) == 50 and all(len(members) == 6 for members in groups)

    def number(digits):  # most significant first
        return int("".join(map(str, digits)))

    right = [number(code[k] for k in g[:3]) + number(code[k] for k in g[3:])
             == number(truth[k] for k in g[:3]) + number(truth[k] for k in g[3:]) for g in groups]
    assert metrics["label_acc"] == pytest.approx(np.mean(right))
    # A group of 6 test images: first..fourth, then RDF container membership rdf:_5, rdf:_6.
    sixth = store.sparql("SELECT (COUNT(?t) AS ?n) WHERE { ?t rdf:_6 ?image . ?image ns:hasConcept ?e }").rows[0][0]
    assert int(sixth) == 50
    assert result.rules is not None and result.rules.per_rule["isa"] > int(count)  # every image is a Number at least


def stored_top_codes(store, run_id: int) -> dict[str, int]:
    """Test image key -> its top code (slot 0, rank 0), from the assignment table."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT i.key, a.code FROM assignment a JOIN input i ON i.id = a.input_id "
            f"WHERE a.run_id = {int(run_id)} AND i.split = 'test' AND a.rank = 0 AND a.slot = 0").all()
    return dict(rows)


def stored_groups(store) -> list[list[str]]:
    """The stored test groups: each one's member image keys in order (ns:first..ns:fourth, rdf:_5, ...)."""
    order = [f"{NS}{p}" for p in ("first", "second", "third", "fourth")] + [f"{RDF}_{i}" for i in range(5, 10)]
    rows = store.sparql("SELECT ?t ?p ?image WHERE { GRAPH <https://w3id.org/neurosym/graph/tuples/digits> { ?t ?p ?image } }").rows
    groups: dict[str, dict[int, str]] = {}
    for group, position, image in rows:
        groups.setdefault(str(group), {})[order.index(str(position))] = str(image).rsplit("/", 1)[1]
    return [[members[i] for i in sorted(members)] for members in groups.values()]


def test_cli_trains_mnist_addition_from_idx_files_and_names_a_missing_directory(tmp_path, cli_runner, write_tiny_mnist):
    import json

    import numpy as np

    from pipelines.cli import main

    write_tiny_mnist(tmp_path, train=64, test=16)
    config = (DATA_DIR / "configs" / "mnist_addition.toml").read_text()
    config = config.replace("params = { n = 1 }", "params = { n = 2 }").replace("d_model = 64", "d_model = 16")
    config = config.replace("stem_channels = 32", "stem_channels = 4").replace("epochs = 4", "epochs = 1")
    # one epoch leaves no training after a trap check; a threshold no tiny run reaches makes it trapped
    config = config.replace("trap_restarts = 2", "trap_restarts = 0").replace("trap_check_at = 1", "trap_check_at = 0")
    config = config.replace("trap_threshold = 0.5", "trap_threshold = 0.99")
    path = tmp_path / "tiny.toml"
    path.write_text(config.replace('dataset = "mnist"\n', f'dataset = "mnist"\ndata_path = "{tmp_path}"\n'))
    store = str(tmp_path / "s.sqlite")
    result = cli_runner.invoke(main, ["train", str(path), "--run-dir", str(tmp_path / "run"), "--store", store,
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert len(saved["symbols"]) == 10 and saved["config"]["task"]["knowledge"]["params"] == {"n": 2}
    assert np.isfinite(saved["metrics"]["train_loss"])
    # never silent: the verdict, the figure it rests on, and one warning line
    assert saved["trap"]["verdict"] == "trapped" and saved["trap"]["threshold"] == 0.99
    assert saved["trap"]["explained_share"] == saved["metrics"]["train_explained"] < 0.99
    warning = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and warning[0].startswith("warning: training ended trapped: the model's explanations")
    assert "trap verdict: trapped" in result.output
    missing = cli_runner.invoke(main, ["train", str(path), "--data-path", str(tmp_path / "nowhere"), "--store", store])
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    assert missing.output.strip() == f"Error: {tmp_path / 'nowhere'}: MNIST directory not found"


def test_a_trap_check_that_cannot_fit_the_epochs_is_one_error_before_training(tmp_path, cli_runner):
    from pipelines.cli import main

    store = tmp_path / "s.sqlite"
    result = cli_runner.invoke(main, ["train", str(MNIST_CONFIG), "--store", str(store), "--epochs", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == ("Error: train.trap_check_at = 1 does not fit a run of 1 epoch(s): "
                                     "train.trap_restarts = 2 needs a check after an epoch in [1, epochs - 1], with "
                                     "training left after it (or set train.trap_restarts = 0)")
    assert not store.exists() and not (tmp_path / "runs").exists()


def test_head_diversity_weight_is_checked_and_reaches_the_head_task(store):
    from pipelines.train_step import prepare_task

    for bad in (-0.5, float("nan")):
        with pytest.raises(ConfigError, match=r"task.head_diversity_weight must be >= 0, got"):
            load_config(None, **{"task.objective": "head", "task.head_diversity_weight": bad})
    config, base = load_config(None, **{"task.objective": "head", "task.head_diversity_weight": 0.25})
    assert prepare_task(config, base, store).make_task(config).diversity_weight == 0.25
