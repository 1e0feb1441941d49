"""Benchmark of the knowledge store: bulk SQL insert, RDF view build, three queries, rdflib side by side.

    python bench/store.py --n 1000000 --json bench/store.json

A synthetic run: N inputs, one slot, codes uniform over 64, confidence uniform in [0, 1); code k is
aligned to ``arith:n{k mod 19}``. Queries:

- q1: inputs whose concept is (``rdf:type/rdfs:subClassOf*``) ``arith:Prime`` with confidence > 0.9;
- q2: inputs per entity (GROUP BY);
- q3: the 10 most confident inputs of ``arith:n7``.

At ``--compare-n`` (100 000) and at ``--n``, under the key of each size in ``sizes``:
``first_q1_after_write_ms`` (q1 through ``Store.sparql`` right after the SQL write, before any view
exists), ``rdf_build_seconds`` (``Store.rebuild_rdf``), ``p50_ms`` the store's SQL answer functions
(``count_inputs_in_class`` / ``concept_counts`` / ``top_inputs``), ``sparql_p50_ms`` the SPARQL
text through ``Store.sparql`` (the general path of ``neurosym query`` and the endpoint: translated to
SQL where ``kg/query/sql/translate.py`` can, else Oxigraph), ``oxigraph_p50_ms`` the same text on Oxigraph
alone, and ``peak_rss_mb`` of this process so far. At ``--compare-n`` the queries also run on
rdflib's in-memory ``Graph``; every answer is asserted equal to SQL's and rdflib's.
``cli_one_row_seconds``, ``cli_ask_seconds``, ``cli_version_seconds``: median wall time of 5 runs of
``neurosym query`` asking for one input's concept on the small store, of ``neurosym query 'ASK {}'`` and
of ``neurosym --version``; ``cli_query_imports``: which of SQLAlchemy, rdflib and torch the query
imported (none: the view is current, ``kg/query/fresh_view.py`` answers). Prints and writes one JSON object.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rdflib import Graph, Literal, URIRef

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kg.query.evaluate import run_query  # noqa: E402
from kg.store import Store  # noqa: E402
from kg.rdf.vocab import ARITH, PREFIXES  # noqa: E402
from _output import emit  # noqa: E402  (bench/ is on sys.path when a script runs)

K = 64
PRIME = URIRef(ARITH.Prime)
ENTITY = URIRef(ARITH.n7)
MIN_CONF = 0.9
Q1 = """SELECT (COUNT(DISTINCT ?i) AS ?n) WHERE {
  ?e rdf:type/rdfs:subClassOf* ?class .
  ?a ns:entity ?e ; ns:confidence ?c ; ns:input ?i .
  FILTER(?c > ?min)
}"""
Q2 = "SELECT ?e (COUNT(?i) AS ?n) WHERE { ?i ns:hasConcept ?e } GROUP BY ?e"
Q3 = "SELECT ?i ?c WHERE { ?a ns:entity ?e ; ns:confidence ?c ; ns:input ?i } ORDER BY DESC(?c) LIMIT 10"
BINDINGS = {"q1": {"class": PRIME, "min": Literal(MIN_CONF)}, "q2": {}, "q3": {"e": ENTITY}}
QUERIES = {"q1": Q1, "q2": Q2, "q3": Q3}


def build(path: Path, n: int, seed: int = 0) -> tuple[Store, dict]:
    """A store with the arithmetic KG and one synthetic run of ``n`` assignments; returns timings."""
    rng = np.random.default_rng(seed)
    store = Store.open(path)
    store.load_rdf([ROOT / "data" / "arithmetic.ttl"])
    run = store.create_run("bench", {"n": n, "codes": K}, seed, "bench", None, None)
    store.add_codes(run, np.arange(K), rng.random(K) + 1, np.full(K, 1 / K))
    code = rng.integers(0, K, n)
    conf = rng.random(n)
    t0 = time.perf_counter()
    ids = store.add_inputs("synthetic", "test", [str(i) for i in range(n)])
    t1 = time.perf_counter()
    store.add_assignments(run, ids, np.zeros(n, dtype=np.int64), code, conf)
    t2 = time.perf_counter()
    del ids, code, conf  # the benchmark's own arrays are no part of what the view build holds
    store.add_alignments(run, np.arange(K), [str(ARITH[f"n{k % 19}"]) for k in range(K)], 0.6 + 0.4 * rng.random(K), "synthetic")
    # The first SPARQL question right after the write, while the view is still empty: SQL answers it.
    t3 = time.perf_counter()
    store.sparql(QUERIES["q1"], BINDINGS["q1"])
    t4 = time.perf_counter()
    store.rebuild_rdf()
    t5 = time.perf_counter()
    return store, {"inputs_insert_seconds": t1 - t0, "assignments_insert_seconds": t2 - t1,
                   "sql_insert_seconds": t2 - t0, "first_q1_after_write_ms": (t4 - t3) * 1000,
                   "rdf_build_seconds": t5 - t4, "view_quads": len(store.view)}


def p50(fn, repeat: int) -> tuple[float, object]:
    """Median wall time in ms of ``repeat`` calls of ``fn``, and its last answer."""
    times, answer = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        answer = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), answer


def sql_answers(store: Store) -> dict:
    """The three answers through the store's SQL path, normalised for comparison."""
    return {
        "q1": lambda: store.count_inputs_in_class(PRIME, MIN_CONF),
        "q2": lambda: dict(sorted(store.concept_counts().items())),
        "q3": lambda: [(i, round(c, 12)) for i, c in store.top_inputs(ENTITY, 10)],
    }


def normalise(name: str, rows) -> object:
    """SPARQL rows (rdflib terms) in the shape of the SQL answers."""
    rows = list(rows)
    if name == "q1":
        return int(rows[0][0].toPython())
    if name == "q2":
        return dict(sorted((str(e), int(n.toPython())) for e, n in rows))
    return sorted(((str(i), round(float(c.toPython()), 12)) for i, c in rows), key=lambda r: (-r[1], r[0]))


def sparql_answers(store: Store) -> dict:
    """The three queries through ``Store.sparql`` (the general path)."""
    return {q: (lambda q=q: normalise(q, store.sparql(QUERIES[q], BINDINGS[q]).rows)) for q in QUERIES}


def oxigraph_answers(store: Store) -> dict:
    """The three queries on the Oxigraph view alone (no SQL translation)."""
    store.sync_rdf()
    return {q: (lambda q=q: normalise(q, run_query(store.view, QUERIES[q], BINDINGS[q]).rows)) for q in QUERIES}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path, n: int, repeat: int, oxigraph_repeat: int) -> tuple[Store, dict, dict]:
    """Build a store of ``n`` assignments and time the three questions on every path; returns the
    store, the figures and the SQL answers (all paths asserted equal to them)."""
    store, out = build(path, n)
    out["p50_ms"], out["sparql_p50_ms"], out["oxigraph_p50_ms"], answers = {}, {}, {}, {}
    paths = {"p50_ms": (sql_answers(store), repeat), "sparql_p50_ms": (sparql_answers(store), repeat),
             "oxigraph_p50_ms": (oxigraph_answers(store), oxigraph_repeat)}
    for q in QUERIES:
        for key, (fns, times) in paths.items():
            out[key][q], answer = p50(fns[q], times)
            answers.setdefault(q, answer)
            assert answer == answers[q], f"{q}: {key} answer differs from SQL's at N={n}: {answer} != {answers[q]}"
    out["peak_rss_mb"] = peak_rss_mb()
    return store, out, answers


def cli_seconds(path: Path, runs: int = 5) -> dict:
    """Median wall times of ``neurosym query`` asking one input's concept (a one-row answer), of
    ``neurosym query 'ASK {}'`` and of ``neurosym --version``, and whether the query imported SQLAlchemy or
    rdflib (it should not: the store's view is current, so ``kg/query/fresh_view.py`` answers it)."""
    one_row = "SELECT ?e WHERE { <https://w3id.org/neurosym/input/synthetic/test/0> ns:hasConcept ?e }"
    cli = [sys.executable, "-m", "pipelines.cli"]
    # Bytecode as an installed package has it: the first run writes it, even where the caller's
    # environment asks Python not to (that would time the compiler, 40 ms, instead of the command).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(ROOT)}
    commands = {
        "cli_one_row_seconds": ([*cli, "--store", str(path), "query", one_row], "(1 row)"),
        "cli_ask_seconds": ([*cli, "--store", str(path), "query", "ASK {}"], "true"),
        "cli_version_seconds": ([*cli, "--version"], "version"),
    }
    out: dict = {}
    for key, (command, expected) in commands.items():
        times = []
        for _ in range(runs + 1):  # the first run writes the bytecode and is not counted
            t = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            assert done.returncode == 0 and expected in done.stdout, done.stderr or done.stdout
        out[key] = statistics.median(times[1:])
    traced = subprocess.run([sys.executable, "-X", "importtime", *commands["cli_one_row_seconds"][0][1:]],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    imported = {line.split("|")[-1].strip() for line in traced.stderr.splitlines() if line.startswith("import time:")}
    out["cli_query_imports"] = sorted(imported & {"sqlalchemy", "rdflib", "torch"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--compare-n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--oxigraph-repeat", type=int, default=3, help="runs of each query on Oxigraph alone (slow at 1M)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the stores (default: a temp dir)")
    args = parser.parse_args()
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="neurosym-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict = {"n": args.n, "compare_n": args.compare_n, "codes": K, "python": platform.python_version(),
                 "machine": platform.machine(), "cpus": os.cpu_count(), "load_average_before": os.getloadavg(),
                 "sizes": {}}

    store, out["sizes"][str(args.n)], _ = measure(workdir / "big.sqlite", args.n, args.repeat, args.oxigraph_repeat)
    store.close()

    small, out["sizes"][str(args.compare_n)], sql = measure(workdir / "small.sqlite", args.compare_n, args.repeat, args.repeat)
    t = time.perf_counter()
    graph = Graph()
    graph.parse(data=small.export("nt"), format="nt")
    out["rdflib_load_seconds"] = time.perf_counter() - t
    out["rdflib_p50_ms"] = {}
    for q in QUERIES:
        out["rdflib_p50_ms"][q], ref = p50(
            lambda q=q: normalise(q, graph.query(QUERIES[q], initNs=PREFIXES, initBindings=BINDINGS[q])), 3
        )
        assert sql[q] == ref, f"{q}: SQL answer differs from rdflib's at N={args.compare_n}: {sql[q]} != {ref}"
    del graph
    small.close()
    out["answers_equal_rdflib"] = True
    out.update(cli_seconds(workdir / "small.sqlite"))
    out["peak_rss_mb"] = peak_rss_mb()
    out["load_average_after"] = os.getloadavg()
    emit(out, args.json, sort_keys=True)


if __name__ == "__main__":
    main()
