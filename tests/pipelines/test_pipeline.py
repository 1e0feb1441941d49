import json

from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from kg.rules.engine import RuleError
from neurosym.errors import ConfigError
from pipelines.cli import main
from pipelines.encode_step import encode
from pipelines.rules_step import apply_rules
from pipelines.run import run
from pipelines.train_step import prepare_task

#: scikit-learn's bundled 8x8 digits (1 797 images); encode writes every train and test image.
DIGITS = len(load_digits().target)


def test_pipeline_writes_symbols_alignment_and_rules(tmp_path, store, quick_config):
    config, base = quick_config()
    result = run(config, base, store, tmp_path / "run", progress=False)
    summary = result.summary()
    assert summary["run_id"] == result.run_id
    assert set(summary["seconds"]) == {"load", "train", "encode", "align", "rules", "rdf_sync"}
    # Every train and test image has its top symbol in the store, visible to SPARQL.
    count = store.sparql("SELECT (COUNT(?x) AS ?n) WHERE { ?x ns:hasConcept ?e }").rows[0][0]
    assert int(count) == DIGITS
    # The alignment is in the RDF view as SKOS mappings of the run's codes.
    mapped = store.sparql("SELECT ?code ?e WHERE { ?code skos:exactMatch|skos:closeMatch ?e }").rows
    assert len(mapped) == len(result.aligned.alignment.rows())
    # Rules derived pair facts into named graphs of their own.
    graphs = {str(g) for (g,) in store.sparql("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ns:pairSum ?o } }").rows}
    assert graphs == {f"https://w3id.org/neurosym/graph/rules/run-{result.run_id}/pair_sum"}
    assert result.rules.per_rule["pair_sum"] == config.task.test_tuples
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["store_run_id"] == result.run_id and len(saved["checkpoint_sha256"]) == 64
    assert "epochs = 2" in (tmp_path / "run" / "config.toml").read_text()


def test_encode_refuses_a_checkpoint_of_another_architecture(tmp_path, store, quick_config):
    config, base = quick_config(**{"train.epochs": 1})
    run(config, base, store, tmp_path / "run", progress=False)
    other, _ = quick_config()
    other.model.d_model = 48
    with pytest.raises(ConfigError, match="checkpoint is from another architecture"):
        encode(other, prepare_task(other, base, store), tmp_path / "run", store)


def test_bad_rules_leave_the_store_unchanged(tmp_path, store, quick_config):
    config, base = quick_config(**{"train.epochs": 1})
    run(config, base, store, tmp_path / "run", progress=False)
    before = store.export("nt")
    bad = tmp_path / "bad.rules"
    bad.write_text("[loose] isa(?x, ?c) :- hasConcept(?x, ?e).\n")
    with pytest.raises(RuleError, match=r"bad.rules:1: rule \[loose\].*\?c"):
        apply_rules(store, [bad])
    unknown = tmp_path / "unknown.rules"
    unknown.write_text("[typo] isa(?x, ?e) :- hasConcpt(?x, ?e).\n")
    with pytest.raises(RuleError, match="hasConcpt"):
        apply_rules(store, [unknown])
    assert store.export("nt") == before


def test_cli_demo_runs_end_to_end(tmp_path, cli_runner):
    result = cli_runner.invoke(main, ["demo", "--dir", str(tmp_path), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert '"alignment_method": "constraint"' in result.output
    assert "code   0 -> https://w3id.org/neurosym/arith#n" in result.output
    assert "# images per concept (top symbol)" in result.output
    assert (tmp_path / "neurosym.sqlite").exists()
    # The bundled explanation query: one row per test pair, with the predicted sum, which the explained
    # digits of the pair add up to; right where the task's label accuracy says so.
    from pathlib import Path

    from kg.store import Store

    query = (Path(__file__).resolve().parents[2] / "data" / "queries" / "07_explained_predictions.rq").read_text()
    with Store.open(tmp_path / "neurosym.sqlite") as store:
        rows = store.sparql(query).rows
        pairs = store.explanations(1)
    saved = json.loads(next(tmp_path.glob("*/result.json")).read_text())
    assert len(rows) == len(pairs) == saved["config"]["task"]["test_tuples"]
    assert [int(group) for _, group, *_ in rows] == list(range(len(pairs)))
    value = lambda entity: int(str(entity).rsplit("#n", 1)[1])  # noqa: E731
    for (_, _, variable, predicted, probability, true, correct), pair in zip(rows, pairs):
        a, b, total = (value(binding.value) for binding in pair.bindings)
        assert str(variable) == "sum" and value(predicted) == total == a + b and 0 < float(probability) <= 1
        assert correct.toPython() == (predicted == true)
    right = sum(correct.toPython() for *_, correct in rows)
    assert right == pytest.approx(saved["metrics"]["label_acc"] * len(rows), abs=2)


def test_cli_errors_are_one_line_without_traceback(tmp_path, cli_runner):
    config = tmp_path / "bad.toml"
    config.write_text("[model.concept]\nnum_code = 10\n")
    result = cli_runner.invoke(main, ["train", str(config), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: unknown config key 'model.concept.num_code' (known: commitment_weight, cosine, data_init, dead_code_threshold, "
        "decay, diversity_weight, ema, hard, kind, num_codes, num_slots, slots, temperature)"
    )
    assert "Traceback" not in result.output
    debug = cli_runner.invoke(main, ["--debug", "train", str(config), "--store", str(tmp_path / "s.sqlite")])
    assert isinstance(debug.exception, ConfigError)


def test_cli_rejects_cuda_without_a_gpu(tmp_path, cli_runner):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = cli_runner.invoke(main, ["train", "--device", "cuda", "--epochs", "1", "--run-dir", str(tmp_path / "r"),
                                      "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 1
    assert "CUDA is not available" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("config_name", ["digits_addition.toml", "digits_maximum.toml"])
def test_both_bundled_tasks_learn_the_digits(tmp_path, store, config_name):
    from pipelines.config import DATA_DIR, load_config

    config, base = load_config(DATA_DIR / "configs" / config_name, **{"train.epochs": 12, "train.device": "cpu"})
    result = run(config, base, store, tmp_path / "run", progress=False)
    assert result.trained.metrics["concept_acc"] > 0.9
    assert result.aligned.accuracy == 1.0


@pytest.mark.parametrize("method", ["majority", "hungarian", "label_free"])
def test_more_codes_than_entities_align_many_to_one(tmp_path, store, quick_config, method):
    config, base = quick_config(**{"train.epochs": 1, "steps.align_method": method})
    config.model.concept.num_codes = 12
    config.steps.rules = []
    result = run(config, base, store, tmp_path / "run", progress=False)
    aligned = result.aligned.alignment
    assert aligned.num_codes == 12
    assert all(0 <= e < 10 for e in aligned.entity if e >= 0)
    stored = store.sparql("SELECT ?code ?e WHERE { ?code skos:exactMatch|skos:closeMatch ?e }").rows
    assert len(stored) == len(aligned.rows())
    # Both scores, recomputed from what the store holds: each training image's top code (SQL), the
    # stored code -> entity map and the images' true digits.
    prepared = prepare_task(config, base, store)
    code_of = stored_top_codes(store, result.run_id)
    entity_of = {int(str(code).rsplit("/", 1)[1]): int(str(e).rsplit("#n", 1)[1]) for code, e in stored}
    train = [(code_of["train", key], int(t)) for key, t in zip(prepared.train_keys, prepared.train.symbols)]
    assert result.aligned.accuracy == pytest.approx(code_accuracy(train, entity_of))
    test = [(code_of["test", key], int(t)) for key, t in zip(prepared.test_keys, prepared.test.symbols)]
    assert result.aligned.concept_acc == pytest.approx(np.mean([entity_of.get(c, -1) == t for c, t in test]))


def stored_top_codes(store, run_id: int) -> dict[tuple[str, str], int]:
    """``(split, key) -> code`` of slot 0's top symbol, read from the assignment table."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT i.split, i.key, a.code FROM assignment a JOIN input i ON i.id = a.input_id "
            f"WHERE a.run_id = {int(run_id)} AND a.rank = 0 AND a.slot = 0").all()
    return {(split, key): code for split, key, code in rows}


def code_accuracy(pairs: list[tuple[int, int]], entity_of: dict[int, int]) -> float:
    """Share of used codes mapped to their images' majority digit, over at least the digits shown."""
    by_code: dict[int, Counter] = {}
    for code, truth in pairs:
        by_code.setdefault(code, Counter())[truth] += 1
    majority = {code: max(seen, key=lambda d: (seen[d], -d)) for code, seen in by_code.items()}  # ties: lower digit
    correct = sum(entity_of.get(code, -1) == digit for code, digit in majority.items())
    return correct / max(len(by_code), len({t for _, t in pairs}))


@pytest.mark.slow
def test_head_trained_codes_are_recovered_label_free(tmp_path, store):
    """Without a single label, the map from sum-labelled tuples is the best labelled map.

    The head spreads the digits over more than ten of the 20 codes (its diversity term), so the best
    labelled map is many-to-one: each code to the digit most of its inputs show (``majority`` over
    every training label; one-to-one Hungarian would leave half the codes wrong). What alignment owes
    is to find that map from tuples alone, on the same codes.
    """
    from pipelines.align_step import compute_alignment
    from pipelines.config import load_config
    from pipelines.train_step import train

    config, base = load_config(None, **{"task.objective": "head", "steps.align_method": "label_free",
                                        "train.device": "cpu"})
    config.model.concept.num_codes = 20
    prepared = prepare_task(config, base, store)
    train(config, base, store, tmp_path / "run", progress=False, prepared=prepared)
    encoded = encode(config, prepared, tmp_path / "run", store, device="cpu")
    codes, truth = encoded.splits["train"].codes[:, 0], prepared.train.symbols.numpy()
    label_free = compute_alignment("label_free", config, prepared, encoded)
    config.steps.labelled_examples = len(truth)
    labelled = compute_alignment("majority", config, prepared, encoded)
    assert len(np.unique(codes)) > 10  # many-to-one: the case Hungarian cannot map
    assert labelled.recovered(codes, truth) >= 8  # training did separate most digits
    assert label_free.recovered(codes, truth) == labelled.recovered(codes, truth)
    assert label_free.accuracy(codes, truth) == pytest.approx(labelled.accuracy(codes, truth))
    used = np.unique(codes)
    assert (label_free.entity[used] == labelled.entity[used]).all()
