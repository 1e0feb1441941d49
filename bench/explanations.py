"""Benchmark of explanations: what they add to ``encode``, and how fast queries over them answer.

    python bench/explanations.py --n 15 --json bench/explanations.json

The MNIST addition config at ``--n`` digits (``data/configs/mnist_addition.toml``; MNIST from the
cache of ``neurosym data fetch mnist`` or ``--data-path``), with an untrained model of its architecture
(its weights change nothing of the cost). ``encode`` runs ``--repeats`` times with explanations and as
often without them (``write_explanations`` replaced by a no-op), alternating, each into a new run of
one store; ``encode_seconds`` are the medians, ``overhead`` their ratio minus one, and
``explain_seconds`` the median time of ``write_explanations`` itself (explaining the test groups and
writing them). Then, on the view synced with SQL, each query's median over ``--query-repeats`` through
``Store.sparql`` (SQL where ``kg/query/sql/explanations.py`` translates it, else Oxigraph), with its
row count and which of the two answered (and, for a query SQL answered, ``oxigraph_p50_ms``: the same
query in the view, side by side): the three bundled explanation queries (over every run of the
store) and ``all_bindings_of_a_run`` (every binding of the last run: group, variable, value,
probability, true value). Prints and writes one JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._output import cpu_model, emit  # noqa: E402
from kg.query.evaluate import run_query  # noqa: E402
from kg.store import Store  # noqa: E402
from neurosym.checkpoint import save_checkpoint  # noqa: E402
from pipelines import encode_step, explain_step  # noqa: E402
from pipelines.config import DATA_DIR, load_config  # noqa: E402
from pipelines.train_step import build_model, prepare_task  # noqa: E402

QUERIES = Path(__file__).resolve().parents[1] / "data" / "queries"
ALL_BINDINGS = """SELECT ?group ?variable ?value ?probability ?true WHERE {
  ?x ns:group ?group ; prov:wasGeneratedBy ?run ; ns:binding ?b .
  ?b ns:variable ?v ; ns:value ?value ; ns:probability ?probability ; ns:trueValue ?true .
  ?v rdfs:label ?variable .
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--data-path", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--query-repeats", type=int, default=7)
    parser.add_argument("--json", default=None)
    parser.add_argument("--smoke", action="store_true", help="the bundled 8x8 digits and a tiny model: checks the script")
    args = parser.parse_args()
    overrides = {"train.device": "cpu"} | ({"task.data_path": args.data_path} if args.data_path else {})
    config, base = load_config(DATA_DIR / "configs" / "mnist_addition.toml", **overrides)
    config.task.knowledge.params["n"] = args.n
    if args.smoke:
        config.task.dataset, config.task.data_path = "digits", ""
        config.model.image_size, config.model.stem, config.model.stem_channels, config.model.patch_size = 8, "conv", 8, 2
    folder = Path(tempfile.mkdtemp(prefix="bench-explanations-"))
    run_dir = folder / "run"
    run_dir.mkdir()
    timed: list[float] = []
    real_write = explain_step.write_explanations

    def timed_write(*a, **k):
        start = time.perf_counter()
        out = real_write(*a, **k)
        timed.append(time.perf_counter() - start)
        return out

    with Store.open(folder / "s.sqlite") as store:
        prepared = prepare_task(config, base, store)
        torch.manual_seed(0)
        save_checkpoint(run_dir / "checkpoint.pt", {"model": build_model(config, prepared).state_dict()})
        seconds: dict[str, list[float]] = {"with": [], "without": []}
        groups = 0
        for _ in range(args.repeats):
            for mode in ("without", "with"):
                encode_step.write_explanations = timed_write if mode == "with" else (lambda *a, **k: 0)
                start = time.perf_counter()
                encoded = encode_step.encode(config, prepared, run_dir, store, device="cpu")
                seconds[mode].append(time.perf_counter() - start)
                groups = max(groups, encoded.explained)
        encode_step.write_explanations = real_write
        run_id = encoded.run_id
        start = time.perf_counter()
        store.sync_rdf()
        sync = time.perf_counter() - start
        queries = {path.stem: path.read_text() for path in sorted(QUERIES.glob("0[678]_*.rq"))}
        queries["all_bindings_of_a_run"] = ALL_BINDINGS
        answers = {}
        for name, text in queries.items():
            bindings = {"run": __import__("rdflib").URIRef(f"https://w3id.org/neurosym/run/{run_id}")} \
                if name == "all_bindings_of_a_run" else {}
            times, result = [], None
            for _ in range(args.query_repeats):
                start = time.perf_counter()
                result = store.sparql(text, bindings)
                times.append(time.perf_counter() - start)
            answers[name] = {"p50_ms": round(1000 * statistics.median(times), 1), "rows": len(result.rows),
                             "answered_by": "sql" if result.answered_by == "sql" else "oxigraph",
                             **({"why_not_sql": result.why_not_sql} if result.why_not_sql else {})}
            if result.answered_by == "sql":  # the same query in Oxigraph, side by side, for the ratio
                times = []
                for _ in range(args.query_repeats):
                    start = time.perf_counter()
                    in_view = run_query(store.view, text, bindings)
                    times.append(time.perf_counter() - start)
                assert len(in_view.rows) == len(result.rows), name
                answers[name]["oxigraph_p50_ms"] = round(1000 * statistics.median(times), 1)
    with_s, without_s = statistics.median(seconds["with"]), statistics.median(seconds["without"])
    emit({
        "n": args.n, "test_groups": groups, "variables": len(prepared.program.constraint.domains),
        "encode_seconds": {"with_explanations": round(with_s, 2), "without": round(without_s, 2),
                           "all_with": [round(s, 2) for s in seconds["with"]],
                           "all_without": [round(s, 2) for s in seconds["without"]]},
        "overhead": round(with_s / without_s - 1, 4),
        "explain_seconds": round(statistics.median(timed), 3),
        "view_sync_seconds": round(sync, 2), "queries": answers,
        "torch_threads": torch.get_num_threads(), "cpu": cpu_model(),
    }, args.json)


if __name__ == "__main__":
    main()
