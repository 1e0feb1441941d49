"""``neurosym report``: plots, confusion matrix, provenance, run lookup, errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from kg.rdf.vocab import ARITH
from neurosym.data.digits import TEST_FRACTION, load_digit_splits
from pipelines.report import confusion, resolve_run, write_report

ROOT = Path(__file__).resolve().parents[2]
LABEL_ENTITY = str(ARITH) + "n{label}"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def digits_run(store, tmp_path):
    """A run folder plus its store run: every test digit's symbol is its label, except digit 3 -> code 5."""
    store.load_rdf([ROOT / "data" / "arithmetic.ttl"])
    run_dir = tmp_path / "runs" / "digits-addition-seed0"
    run_dir.mkdir(parents=True)
    config = {"name": "digits-addition", "task": {"dataset": "digits", "label_entity": LABEL_ENTITY}}
    run_id = store.create_run("digits-addition", config, 0, "0.1.0+gabc", str(run_dir / "checkpoint.pt"), "sha256:feed")
    store.add_codes(run_id, np.arange(12), np.ones(12), np.full(12, 1 / 12))
    _, test = load_digit_splits()
    labels = test.labels.numpy()
    codes = np.where(labels == 3, 5, labels)
    ids = store.add_inputs("digits", "test", test.keys())
    store.add_assignments(run_id, ids, np.zeros(len(ids), dtype=int), codes, np.full(len(ids), 0.9))
    entities = [LABEL_ENTITY.format(label=k) for k in range(10)]
    store.add_alignments(run_id, np.arange(10), entities, np.linspace(0.5, 0.95, 10), "hungarian")
    result = {
        "name": "digits-addition", "seed": 0, "code_version": "0.1.0+gabc", "created": "2026-01-01T00:00:00",
        "metrics": {"label_acc": 0.8, "concept_acc": 0.9}, "checkpoint": str(run_dir / "checkpoint.pt"),
        "checkpoint_sha256": "feedbeef" * 8, "symbols": entities, "config": config, "store_run_id": run_id,
        "alignment": [{"code": k, "entity": e, "confidence": 0.9} for k, e in enumerate(entities)],
    }
    (run_dir / "result.json").write_text(json.dumps(result))
    (run_dir / "config.toml").write_text('name = "digits-addition"\n')
    with (run_dir / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "step", "train_loss", "lr", "label_acc", "concept_acc", "rate_bits"])
        for epoch in (1, 2, 3):
            writer.writerow([epoch, 10 * epoch, 2.0 / epoch, 0.001, 0.2 * epoch, 0.3 * epoch, 3.3 - 0.1 * epoch])
    return run_dir, run_id, labels


def test_confusion_matrix_counts_test_digits(store, digits_run):
    run_dir, run_id, labels = digits_run
    matrix, true_labels, predicted = confusion(store, run_id, json.loads((run_dir / "result.json").read_text()))
    assert true_labels == predicted == [LABEL_ENTITY.format(label=k) for k in range(10)]
    # The digits' fixed test split: a quarter of scikit-learn's 1 797 images, rounded up (450).
    assert matrix.sum() == len(labels) == math.ceil(TEST_FRACTION * len(load_digits().target))
    assert matrix[3, 5] == (labels == 3).sum() and matrix[3, 3] == 0
    assert np.trace(matrix) == (labels != 3).sum()


def test_report_writes_page_and_pngs(store, digits_run, tmp_path):
    run_dir, run_id, _ = digits_run
    report = write_report(run_dir, store, tmp_path / "out")
    assert set(report.plots) == {"training_curves", "codebook_usage", "alignment_heatmap", "confusion_matrix", "rate_accuracy"}
    assert report.notes == []
    for path in report.plots.values():
        assert path.parent == tmp_path / "out" and path.read_bytes()[:8] == PNG
    page = report.html.read_text()
    assert "feedbeef" * 8 in page and "sha256" in page and "0.1.0+gabc" in page
    assert page.count("data:image/png;base64,") == 5
    assert 'name = &quot;digits-addition&quot;' in page  # config.toml, escaped


def test_report_without_store_draws_what_it_can(digits_run):
    run_dir, _, _ = digits_run
    report = write_report(run_dir)
    assert set(report.plots) == {"training_curves", "alignment_heatmap", "rate_accuracy"}
    assert any(n.startswith("confusion_matrix:") for n in report.notes)
    assert report.html == run_dir / "report" / "report.html"


def test_resolve_run(store, digits_run, tmp_path):
    run_dir, run_id, _ = digits_run
    assert resolve_run(str(run_dir), store) == run_dir
    assert resolve_run(str(run_id), store) == run_dir
    with pytest.raises(ValueError, match="unknown run 99"):
        resolve_run("99", store)
    with pytest.raises(ValueError, match="not a run folder"):
        resolve_run(tmp_path, store)


def test_report_cli(cli_runner, digits_run, store, tmp_path):
    from pipelines.cli import main

    run_dir, run_id, _ = digits_run
    url = str(store.engine.url)
    out = cli_runner.invoke(main, ["report", str(run_id), "--store", url, "-o", str(tmp_path / "cli")])
    assert out.exit_code == 0, out.output
    assert "wrote" in out.output and (tmp_path / "cli" / "confusion_matrix.png").is_file()
    bad = cli_runner.invoke(main, ["report", str(tmp_path / "missing"), "--store", url])
    assert bad.exit_code == 1 and bad.output.strip().count("\n") == 0 and "no such run folder" in bad.output


@pytest.mark.slow
def test_report_of_a_real_run(store, quick_config, tmp_path):
    from pipelines.run import run

    config, base = quick_config()
    run(config, base, store, tmp_path / "run", progress=False)
    report = write_report(tmp_path / "run", store)
    assert {"training_curves", "codebook_usage", "alignment_heatmap", "confusion_matrix"} <= set(report.plots)
    assert "checkpoint sha256" in report.html.read_text()
