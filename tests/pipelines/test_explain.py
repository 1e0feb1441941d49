"""Explanations end to end: a tiny multi-digit addition run (the MNIST config on the bundled 8x8 digits),
``neurosym explain`` over it, and one-line errors for runs that cannot be explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kg.rdf.vocab import ARITH
from kg.store import Store
from pipelines.cli import main
from pipelines.config import DATA_DIR, load_config
from pipelines.run import run
from pipelines.train_step import prepare_task

MNIST_CONFIG = DATA_DIR / "configs" / "mnist_addition.toml"
N = 4
#: This branch's bundled files (``neurosym_data`` may resolve to another checkout).
QUERIES = Path(__file__).resolve().parents[2] / "data" / "queries"
RULES = Path(__file__).resolve().parents[2] / "data" / "rules"


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """A 4-digit addition run on the 8x8 digits (56 test groups of 8 images), its store and config."""
    folder = tmp_path_factory.mktemp("explain")
    config, base = load_config(MNIST_CONFIG, **{"train.epochs": 1, "train.device": "cpu", "train.batch_size": 16,
                                                "train.trap_restarts": 0, "train.trap_check_at": 0})
    config.task.dataset, config.task.data_path, config.task.test_tuples = "digits", "", 20
    config.task.knowledge.params["n"] = N
    config.model.image_size, config.model.stem, config.model.stem_channels, config.model.patch_size = 8, "conv", 8, 2
    config.model.d_model = 32
    with Store.open(folder / "s.sqlite") as store:
        result = run(config, base, store, folder / "run", progress=False)
        prepared = prepare_task(config, base, store)
        yield store, result, prepared


def digit(entity: str) -> int:
    return int(entity.rsplit("#n", 1)[1])


def number(entities) -> int:
    return int("".join(str(digit(e)) for e in entities))


def test_explain_wrong_lists_exactly_the_wrong_groups(explained, cli_runner):
    store, result, prepared = explained
    groups = len(prepared.test.symbols) // (2 * N)
    every = store.explanations(result.run_id)
    assert [e.group for e in every] == list(range(groups))  # every test group, not only the first test_tuples
    wrong = [e.group for e in every if not e.correct]
    label_acc = result.trained.metrics["label_acc"]
    assert len(wrong) == round((1 - label_acc) * groups)
    out = cli_runner.invoke(main, ["explain", str(result.run_id), "--wrong", "--store", str(store.engine.url.database)])
    assert out.exit_code == 0, out.output
    listed = [int(line.split(":")[0].split()[1]) for line in out.output.splitlines() if line.startswith("group ")]
    assert listed == wrong
    assert all("WRONG" in line for line in out.output.splitlines() if line.startswith("group "))


def test_explained_values_reproduce_the_label_and_the_top_symbols(explained):
    store, result, prepared = explained
    with store.engine.connect() as conn:
        top = dict(conn.exec_driver_sql(
            "SELECT i.key, a.code FROM assignment a JOIN input i ON i.id = a.input_id "
            f"WHERE a.run_id = {result.run_id} AND i.split = 'test' AND a.rank = 0 AND a.slot = 0").all())
    truth = dict(zip(prepared.test_keys, prepared.test.symbols.tolist()))
    for e in store.explanations(result.run_id):
        value = {b.variable: b.value for b in e.bindings}
        true = {b.variable: b.true_value for b in e.bindings}
        first, second = [f"a{i}" for i in reversed(range(N))], [f"b{i}" for i in reversed(range(N))]
        label = [f"c{N}"] + [f"s{i}" for i in reversed(range(N))]
        # through the relations: the full adders chained by the explained carries give the explained label
        for i in range(N):
            total = digit(value[f"a{i}"]) + digit(value[f"b{i}"]) + digit(value[f"c{i}"])
            assert (digit(value[f"s{i}"]), digit(value[f"c{i + 1}"])) == (total % 10, total // 10)
        assert number(value[v] for v in first) + number(value[v] for v in second) == number(value[v] for v in label)
        assert e.correct == all(value[v] == true[v] for v in label)
        keys = [m.rsplit("/", 1)[1] for m in e.members]
        assert [digit(true[v]) for v in first + second] == [truth[k] for k in keys]
        # no evidence: the explanation reads each image's most probable digit (code i is digit i), so this
        # holds for the right predictions, and for the wrong ones too
        assert [digit(value[v]) for v in first + second] == [top[k] for k in keys]


def test_explain_formats_and_bundled_queries_and_rules(explained, cli_runner):
    store, result, _ = explained
    path = str(store.engine.url.database)
    out = cli_runner.invoke(main, ["explain", str(result.run_id), "0", "2", "--format", "json", "--store", path])
    assert out.exit_code == 0, out.output
    groups = json.loads(out.output)
    assert [g["group"] for g in groups] == [0, 2] and len(groups[0]["bindings"]) == 2 * N + (N + 1) + N
    turtle = cli_runner.invoke(main, ["explain", str(result.run_id), "2", "--format", "turtle", "--store", path])
    assert turtle.exit_code == 0 and turtle.output.count(" a ns:Explanation") == 1
    table = cli_runner.invoke(main, ["explain", str(result.run_id), "1", "--store", path])
    assert table.output.startswith("group 1: ") and "  latent:\n    c0" in table.output and "p=" in table.output
    wrong = store.sparql((QUERIES / "06_wrong_explanations.rq").read_text()).rows
    assert {int(g) for _, g, *_ in wrong} == {e.group for e in store.explanations(result.run_id, wrong=True)}
    accuracy = store.sparql((QUERIES / "08_accuracy_per_position.rq").read_text()).rows
    assert len(accuracy) == 2 * N + (N + 1) + N  # inputs, carries c0..c_N, sum digits
    from pipelines.rules_step import apply_rules

    outcome = apply_rules(store, [RULES / "explanations.rules"], result.run_id)
    chains = {str(x) for (x,) in store.sparql("SELECT ?x WHERE { ?x a ns:CarryChain3 }").rows}
    expected = set()
    for e in store.explanations(result.run_id):
        carries = [digit(b.value) for b in sorted((b for b in e.bindings if b.variable.startswith("c")),
                                                  key=lambda b: int(b.variable[1:]))]
        if any(carries[i:i + 3] == [1, 1, 1] for i in range(len(carries))):
            expected.add(f"https://w3id.org/neurosym/run/{result.run_id}/explanation/{e.group}")
    assert chains == expected and outcome.per_rule["carry_chain_3"] == len(expected)


def test_bad_explain_inputs_are_one_line(explained, cli_runner, tmp_path):
    store, result, _ = explained
    path = str(store.engine.url.database)
    unknown = cli_runner.invoke(main, ["explain", str(result.run_id), "9999", "--store", path])
    assert unknown.exit_code == 1 and unknown.output.strip().count("\n") == 0
    assert unknown.output.strip().startswith(f"Error: run {result.run_id} has no test group 9999 (its explanations cover groups 0-")
    other = tmp_path / "other.sqlite"
    with Store.open(other) as st:
        st.load_rdf([DATA_DIR / "arithmetic.ttl"])
        bare = st.create_run("imported", {"note": "symbols from elsewhere"}, 0, "v")
        old = st.create_run("old", {"task": {"query": "queries/addition.rq"}}, 0, "v")
    for run_id, message in ((bare, f"Error: run {bare} has no task program or query to explain its predictions by"),
                            (old, f"Error: run {old} has no explanations (it was encoded before encode wrote them); "
                                  "encode its run folder again: neurosym encode RUN_DIR"),
                            (99, "Error: unknown run 99; the store holds runs [1, 2]")):
        out = cli_runner.invoke(main, ["explain", str(run_id), "--store", str(other)])
        assert out.exit_code == 1 and out.output.strip() == message and "Traceback" not in out.output


def test_the_report_shows_the_explained_failures(explained, tmp_path):
    from pipelines.report import write_report

    store, result, _ = explained
    wrong = store.explanations(result.run_id, wrong=True)
    page = write_report(result.run_dir, store, tmp_path / "report").html.read_text()
    assert f"<h2>Explained failures</h2><p>{len(wrong)} of {store.explanation_count(result.run_id)} explained" in page
    section = page.split("<h2>Explained failures</h2>", 1)[1].split("</table>", 1)[0]
    assert section.count("<tr><td>") == min(20, len(wrong))
    first = wrong[0]
    differs = [b for b in first.bindings if b.role != "label" and b.true_value != b.value]
    row = section.split(f"<tr><td>{first.group}</td>", 1)[1].split("</tr>", 1)[0]
    assert all(f"{b.variable}: " in row for b in differs)


def test_a_failing_explanation_leaves_no_run_behind(explained, monkeypatch):
    """Explanations are written inside the hidden run: if writing them fails, the whole encode is undone."""
    from pipelines import encode_step

    store, result, prepared = explained
    before = [r["id"] for r in store.runs(include_incomplete=True)]

    def broken(store, run_id, *args):
        store.add_explanations(run_id, [], [[1]], [[]], [[]])  # fails: no variables

    monkeypatch.setattr(encode_step, "write_explanations", broken)
    with pytest.raises(Exception, match="add_explanations: no variables"):
        encode_step.encode(result.config, prepared, result.run_dir, store, device="cpu")
    assert [r["id"] for r in store.runs(include_incomplete=True)] == before
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(DISTINCT run_id) FROM assignment").scalar() == len(before)
