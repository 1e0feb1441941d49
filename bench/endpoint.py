"""Load benchmark of ``neurosym serve``: N concurrent clients, the simple concept lookup, a 1M-assignment store.

    python bench/endpoint.py --json bench/endpoint.json              # 8 clients, 30 s, N = 1 000 000

Builds the store of ``bench/store.py`` (arithmetic KG + one synthetic run of N assignments; reused from
``--dir`` when it already holds one of that size), starts ``neurosym serve`` on it in its own process
on a free loopback port, and runs ``--clients`` threads, each with one keep-alive HTTP connection,
sending for ``--seconds`` (after a 2 s warm-up) the concept lookup of a random input

    SELECT ?e WHERE { <input:synthetic/test/KEY> ns:hasConcept ?e }

and checking every answer against the entity the input's code is aligned to: a wrong answer, an HTTP
status other than 200 or a broken connection counts in ``errors``. Then one ``INSERT DATA`` without
``--allow-updates`` must be refused (403) and the store's triple count unchanged. Prints and writes one
JSON object: ``requests_per_s``, ``p50_ms``, ``p99_ms``, ``errors``, ``peak_rss_mb`` (the server's peak
resident memory), the load average around the run, and the build timings. Clients only ever talk to
127.0.0.1, their number is at most 64 and the run at most 600 s.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kg.store import Store  # noqa: E402
from kg.vocab import ARITH, input_iri  # noqa: E402
from _output import emit  # noqa: E402  (bench/ is on sys.path when a script runs)

_spec = importlib.util.spec_from_file_location("bench_store", ROOT / "bench" / "store.py")
bench_store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_store)

LOOKUP = "SELECT ?e WHERE { <%s> ns:hasConcept ?e }"
HOST = "127.0.0.1"


def build_or_reuse(path: Path, n: int) -> tuple[np.ndarray, dict]:
    """The bench store at ``path`` with ``n`` assignments, and each input's expected entity (by key)."""
    expected_for = lambda codes: np.array([str(ARITH[f"n{k % 19}"]) for k in range(bench_store.K)])[codes]  # noqa: E731
    if path.exists():
        with Store.open(path) as store:
            runs = store.runs()
        if runs and runs[0]["config"].get("n") == n:
            # build() draws codes from default_rng(seed) first thing after the norms: replay the draw.
            rng = np.random.default_rng(runs[0]["seed"])
            rng.random(bench_store.K)
            return expected_for(rng.integers(0, bench_store.K, n)), {"reused_store": str(path)}
        raise SystemExit(f"{path} holds another store; pass another --dir")
    store, timings = bench_store.build(path, n)
    store.close()
    rng = np.random.default_rng(0)
    rng.random(bench_store.K)
    return expected_for(rng.integers(0, bench_store.K, n)), timings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(store: Path, port: int, workers: int) -> subprocess.Popen:
    command = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())", "serve",
               "--store", str(store), "--host", HOST, "--port", str(port), "--workers", str(workers), "--quiet"]
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.stderr.read().strip()}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("server did not start within 300 s")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def client(port: int, n: int, expected: np.ndarray, stop_at: float, record_from: float, seed: int,
           latencies: list[float], errors: list[str]) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Accept": "application/sparql-results+json"}
    while (now := time.perf_counter()) < stop_at:
        key = rng.randrange(n)
        path = "/sparql?" + urllib.parse.urlencode({"query": LOOKUP % input_iri("synthetic", "test", str(key))})
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            ok = response.status == 200
            if ok:
                bindings = json.loads(body)["results"]["bindings"]
                ok = [b["e"]["value"] for b in bindings] == [expected[key]]
            if not ok:
                errors.append(f"{response.status}: {body[:200]!r}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            continue
        if now >= record_from:
            latencies.append(time.perf_counter() - now)
    conn.close()


def update_refused(port: int) -> bool:
    """An INSERT DATA without --allow-updates: 403, and the store's triple count unchanged."""
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"

    def triples() -> str:
        conn = http.client.HTTPConnection(HOST, port, timeout=300)
        conn.request("GET", "/sparql?" + urllib.parse.urlencode({"query": count}), headers={"Accept": "text/csv"})
        return conn.getresponse().read().decode()

    before = triples()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request("POST", "/sparql", body="INSERT DATA { arith:n7 ns:lucky true }",
                 headers={"Content-Type": "application/sparql-update"})
    status = conn.getresponse().status
    return status == 403 and triples() == before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=4, help="the server's query workers")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="where to build (or find) the store; default a temp dir")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 0 < args.seconds <= 600:
        parser.error("--clients must be in [1, 64] and --seconds in (0, 600]")
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="neurosym-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store_path = workdir / "endpoint.sqlite"
    expected, timings = build_or_reuse(store_path, args.n)

    port = free_port()
    server = start_server(store_path, port, args.workers)
    try:
        latencies: list[float] = []
        errors: list[str] = []
        load_before = os.getloadavg()
        start = time.perf_counter()
        record_from, stop_at = start + 2.0, start + 2.0 + args.seconds
        threads = [threading.Thread(target=client, args=(port, args.n, expected, stop_at, record_from, i, latencies, errors))
                   for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        load_after = os.getloadavg()
        refused = update_refused(port)
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    ms = np.array(latencies) * 1000
    out = {
        "n": args.n, "clients": args.clients, "seconds": args.seconds, "server_workers": args.workers,
        "query": LOOKUP % input_iri("synthetic", "test", "KEY"), "keys": "uniform over the N inputs",
        "requests": len(latencies), "requests_per_s": len(latencies) / args.seconds,
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
        "errors": len(errors), "error_examples": errors[:3], "update_refused_store_unchanged": refused,
        "peak_rss_mb": rss, "loadavg_1m_before": load_before[0], "loadavg_1m_after": load_after[0],
        "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(), **timings,
    }
    emit(out, args.json, sort_keys=True)


if __name__ == "__main__":
    main()
