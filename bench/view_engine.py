"""The floor under the RDF view build: Oxigraph's on-disk bulk load of assignment-shaped quads, by layout.

    python bench/view_engine.py --n 1000000 --json bench/view_engine.json

``Store.rebuild_rdf`` streams SQL rows into Oxigraph's bulk loader; this takes SQL and Python out
and times the loader alone, on N-Quads already in memory, for ways of writing one assignment per
input of a one-slot run (``ns:`` is the store's vocabulary, ``R`` the run's named graph):

- ``nodes5``: the view's vocabulary 2 — a node with ``ns:input``, ``ns:code``, ``ns:entity``,
  ``ns:confidence``, plus the ``input ns:hasConcept entity`` shortcut (5 quads);
- ``nodes4``: the same without ``ns:entity`` (it follows from the code's match);
- ``direct3``: no node, the input carries ``ns:hasConcept``, ``ns:code``, ``ns:confidence`` in ``R``;
- ``shortcut1``: the shortcut alone (no code, no confidence: a lower bound, not a model).

Each layout loads into a named graph (six indexes) and, with ``--default-graph``, also into the
default graph (three indexes, no per-run graph). Every load runs in a child process of its own, so
``peak_rss_mb`` is the load's. ``cpu_seconds`` counts every thread (Oxigraph sorts in two).
Prints and writes one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _output import cpu_model, emit  # noqa: E402

NS = "http://neurosym.org/ns#"
DOUBLE = "^^<http://www.w3.org/2001/XMLSchema#double>"
LAYOUTS = {"nodes5": 5, "nodes4": 4, "direct3": 3, "shortcut1": 1}


def quads(layout: str, n: int, graph: str | None) -> bytes:
    """N-Quads (N-Triples when ``graph`` is None) of ``n`` synthetic assignments in ``layout``."""
    tail = f" <{graph}> .\n" if graph else " .\n"
    p_input, p_code, p_entity = f"<{NS}input>", f"<{NS}code>", f"<{NS}entity>"
    p_conf, p_has = f"<{NS}confidence>", f"<{NS}hasConcept>"
    out = []
    for k in range(n):
        a = f"<http://neurosym.org/run/1/a/{k}-0>"
        i = f"<http://neurosym.org/input/mnist/test/{k}>"
        c = f"<http://neurosym.org/run/1/code/{k % 64}>"
        e = f"<http://neurosym.org/arith#n{k % 64 % 19}>"
        conf = f'"{(k * 7919 % 100_000) / 100_000!r}"{DOUBLE}'
        if layout == "nodes5":
            out.append(f"{a} {p_input} {i}{tail}{a} {p_code} {c}{tail}{a} {p_entity} {e}{tail}"
                       f"{a} {p_conf} {conf}{tail}{i} {p_has} {e}{tail}")
        elif layout == "nodes4":
            out.append(f"{a} {p_input} {i}{tail}{a} {p_code} {c}{tail}{a} {p_conf} {conf}{tail}{i} {p_has} {e}{tail}")
        elif layout == "direct3":
            out.append(f"{i} {p_has} {e}{tail}{i} {p_code} {c}{tail}{i} {p_conf} {conf}{tail}")
        else:
            out.append(f"{i} {p_has} {e}{tail}")
    return "".join(out).encode()


def load_once(layout: str, n: int, named: bool) -> dict:
    """One bulk load into a fresh on-disk store, in this process."""
    import pyoxigraph as ox

    data = quads(layout, n, "http://neurosym.org/run/1" if named else None)
    # RocksDB may still be compacting in its own threads when the store is dropped: tolerate files that
    # appear while the folder is being removed.
    with tempfile.TemporaryDirectory(prefix="view-engine-", ignore_cleanup_errors=True) as directory:
        store = ox.Store(directory)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_before = usage.ru_utime + usage.ru_stime
        start = time.perf_counter()
        store.bulk_load(data, ox.RdfFormat.N_QUADS if named else ox.RdfFormat.N_TRIPLES)
        store.flush()
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_SELF)
        loaded = len(store)
        del store
    return {
        "layout": layout,
        "graph": "named" if named else "default",
        "quads": loaded,
        "quads_per_assignment": LAYOUTS[layout],
        "load_seconds": round(wall, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime - cpu_before, 1),
        "cpu_us_per_quad": round((usage.ru_utime + usage.ru_stime - cpu_before) / loaded * 1e6, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="assignments (one per input)")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help=f"comma-separated, of {', '.join(LAYOUTS)}")
    parser.add_argument("--default-graph", action="store_true", help="also load each layout into the default graph")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", nargs=2, metavar=("LAYOUT", "GRAPH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(load_once(args.one[0], args.n, args.one[1] == "named")))
        return
    layouts = args.layouts.split(",")
    unknown = [name for name in layouts if name not in LAYOUTS]
    if unknown:
        parser.error(f"unknown layout {unknown[0]!r}; known: {', '.join(LAYOUTS)}")
    import pyoxigraph as ox

    rows = []
    for layout in layouts:
        for graph in ["named", "default"] if args.default_graph else ["named"]:
            child = subprocess.run(
                [sys.executable, __file__, "--n", str(args.n), "--one", layout, graph],
                capture_output=True, text=True,
            )
            if child.returncode:
                sys.exit(f"the {layout} load into the {graph} graph failed:\n{child.stderr.strip()}")
            rows.append(json.loads(child.stdout.splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    emit({
        "benchmark": "view_engine",
        "n": args.n,
        "machine": {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)), "pyoxigraph": ox.__version__},
        "loads": rows,
    }, args.json)


if __name__ == "__main__":
    main()
