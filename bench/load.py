"""Benchmark of ``neurosym kg load`` on a large N-Triples file: wall time and peak memory.

    python bench/load.py --triples 2000000 --json bench/load.json
    python bench/load.py --triples 500000 1000000 2000000 --json bench/load_slope.json

Generates the file first (not timed): entities ``ex:e{i}``, each with ``rdf:type``, an ``rdfs:label``,
an ``xsd:integer`` value, a language-tagged comment and a link to another entity (5 triples per
entity, ~150 bytes per triple). Then runs ``neurosym kg load FILE --store S`` as a child process on a
new SQLite store and reports its wall time (``load_seconds``: SQL load plus the RDF view build) and
peak resident memory (``peak_rss_mb``, the child's ``ru_maxrss``). With several sizes, the top-level
keys are those of the largest, and ``rss_slope_mb_per_million`` is the least-squares slope of peak RSS
over the sizes (flat memory: close to 0). Prints and writes one JSON object.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _output import emit  # noqa: E402

EX = "https://example.org/e/"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
COMMENT = "<http://www.w3.org/2000/01/rdf-schema#comment>"
INTEGER = "<http://www.w3.org/2001/XMLSchema#integer>"


def generate(path: Path, triples: int) -> int:
    """Write ``triples`` N-Triples lines (rounded up to whole entities) to ``path``; returns its size."""
    with open(path, "w", encoding="utf-8", buffering=1 << 22) as out:
        for i in range((triples + 4) // 5):
            s = f"<{EX}{i}>"
            out.write(
                f"{s} {RDF_TYPE} <https://example.org/Class{i % 50}> .\n"
                f'{s} {LABEL} "entity number {i}" .\n'
                f'{s} <https://example.org/value> "{i * 7}"^^{INTEGER} .\n'
                f'{s} {COMMENT} "commentaire sur l\'entité {i}"@fr .\n'
                f"{s} <https://example.org/link> <{EX}{(i * 7919) % (triples // 5 + 1)}> .\n"
            )
    return path.stat().st_size


def load(path: Path, store: Path) -> dict:
    """Run ``neurosym kg load`` in a child process; its wall time and peak RSS."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "kg", "load", str(path), "--store", str(store)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    output = child.stdout.read().decode() + child.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"kg load failed: {output}")
    return {"load_seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "output": output.strip()}


def slope(xs: list[float], ys: list[float]) -> float:
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triples", type=int, nargs="+", default=[2_000_000])
    parser.add_argument("--json", default=None, help="Also write the JSON object to this file.")
    parser.add_argument("--dir", default=None, help="Work folder (default: a temporary one, removed after).")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="neurosym-load-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for n in sorted(args.triples):
            path = work / f"kg-{n}.nt"
            size = generate(path, n)
            store = work / f"store-{n}.sqlite"
            row = {"triples": n, "file_mb": round(size / 2**20, 1), **load(path, store)}
            row["triples_per_second"] = round(n / row["load_seconds"])
            rows.append(row)
            path.unlink()
            for leftover in work.glob(f"store-{n}*"):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    result = {**rows[-1], "rows": rows, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "command": "python bench/load.py " + " ".join(sys.argv[1:])}
    if len(rows) > 1:
        result["rss_slope_mb_per_million"] = round(slope([r["triples"] / 1e6 for r in rows], [r["peak_rss_mb"] for r in rows]), 1)
    emit(result, args.json)


if __name__ == "__main__":
    main()
