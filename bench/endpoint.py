"""Load benchmark of ``neurosym serve``: N concurrent clients, the simple concept lookup, a 1M-assignment store.

    python bench/endpoint.py --json bench/endpoint.json              # 8 clients, 30 s, N = 1 000 000

Builds the store of ``bench/store.py`` (arithmetic KG + one synthetic run of N assignments; reused from
``--dir`` when it already holds one of that size), starts ``neurosym serve`` on it in its own process
on a free loopback port, and runs ``--clients`` threads, each with one keep-alive HTTP connection,
sending for ``--seconds`` (after a 2 s warm-up) the concept lookup of a random input

    SELECT ?e WHERE { <input:synthetic/test/KEY> ns:hasConcept ?e }

and checking every answer against the entity the input's code is aligned to: a wrong answer, an HTTP
status other than 200 or a broken connection counts in ``errors``. Then one ``INSERT DATA`` without
``--allow-updates`` must be refused (403) and the store's triple count unchanged.

Then a **burst** (``--burst 200``): that many clients, each with a new connection, all released at
once by a barrier, send ``--burst-requests`` lookups each (``burst_*``: p50, p99, max, errors). Then
the **time limit** (``--timeouts 20``): the server is restarted with ``--timeout 1`` and sent that many
queries that never finish (a cartesian product, counted) one after the other; each must be answered
503, and the CPU time of the server and its worker processes (from /proc) must stop growing within
``idle_within_s`` of each deadline (idle: under 10 % of a core over 250 ms); then the simple lookup is
timed (``after_timeouts_lookup_ms``).

Prints and writes one JSON object: ``requests_per_s``, ``p50_ms``, ``p99_ms``, ``errors``,
``peak_rss_mb`` (the server's peak resident memory), the burst and time-limit figures, the load
average around the run, and the build timings. Clients only ever talk to 127.0.0.1; at most 64
sustained clients and 400 in the burst, the sustained run at most 600 s.
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
from kg.rdf.vocab import ARITH, input_iri  # noqa: E402
from _output import emit  # noqa: E402  (bench/ is on sys.path when a script runs)

_spec = importlib.util.spec_from_file_location("bench_store", ROOT / "bench" / "store.py")
bench_store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_store)

LOOKUP = "SELECT ?e WHERE { <%s> ns:hasConcept ?e }"
#: Streams no row before it has counted 10^13 pairs: only the time limit ends it.
NEVER_ENDING = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f }"
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


def start_server(store: Path, port: int, workers: int, *options: str) -> subprocess.Popen:
    command = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())", "serve",
               "--store", str(store), "--host", HOST, "--port", str(port), "--workers", str(workers), "--quiet", *options]
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


def lookup(conn: http.client.HTTPConnection, key: int, expected: np.ndarray) -> str | None:
    """Ask for input ``key``'s concept on ``conn``: None if the answer is right, else what went wrong."""
    path = "/sparql?" + urllib.parse.urlencode({"query": LOOKUP % input_iri("synthetic", "test", str(key))})
    conn.request("GET", path, headers={"Accept": "application/sparql-results+json"})
    response = conn.getresponse()
    body = response.read()
    if response.status == 200:
        bindings = json.loads(body)["results"]["bindings"]
        if [b["e"]["value"] for b in bindings] == [expected[key]]:
            return None
    return f"{response.status}: {body[:200]!r}"


def client(port: int, n: int, expected: np.ndarray, stop_at: float, record_from: float, seed: int,
           latencies: list[float], errors: list[str]) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    while (now := time.perf_counter()) < stop_at:
        try:
            error = lookup(conn, rng.randrange(n), expected)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            continue
        if error:
            errors.append(error)
        if now >= record_from:
            latencies.append(time.perf_counter() - now)
    conn.close()


def burst(port: int, n: int, expected: np.ndarray, clients: int, requests: int) -> dict:
    """``clients`` new connections released together, ``requests`` lookups each: latency figures."""
    latencies: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(clients)

    def one(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        for _ in range(requests):
            start = time.perf_counter()
            try:
                error = lookup(conn, rng.randrange(n), expected)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
            latencies.append(time.perf_counter() - start)
            if error:
                errors.append(error)
        conn.close()

    threads = [threading.Thread(target=one, args=(1000 + i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ms = np.array(latencies) * 1000
    return {"burst_clients": clients, "burst_requests": len(latencies), "burst_errors": len(errors),
            "burst_error_examples": errors[:3], "burst_seconds": time.perf_counter() - start,
            "burst_p50_ms": float(np.percentile(ms, 50)), "burst_p99_ms": float(np.percentile(ms, 99)),
            "burst_max_ms": float(ms.max())}


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of process ``pid``, its reaped children and its live children (from /proc)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid:
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        elif int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def seconds_to_idle(pid: int, since: float, window: float = 0.25, limit: float = 10.0) -> float:
    """Seconds from ``since`` until the process tree of ``pid`` uses under 10 % of a core over ``window``."""
    samples = [(time.perf_counter(), tree_cpu_seconds(pid))]
    while samples[-1][0] - since < limit:
        time.sleep(0.05)
        now, cpu = time.perf_counter(), tree_cpu_seconds(pid)
        samples.append((now, cpu))
        earlier = [(t, c) for t, c in samples if now - t >= window]
        if earlier and (cpu - earlier[-1][1]) / (now - earlier[-1][0]) < 0.10:
            return max(earlier[-1][0] - since, 0.0)
    return float("inf")


def time_limits(store: Path, workers: int, n: int, expected: np.ndarray, count: int) -> dict:
    """``count`` never-ending queries against a server with ``--timeout 1``, then the simple lookup."""
    port = free_port()
    server = start_server(store, port, workers, "--timeout", "1")
    answers, to_idle = [], []
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        for _ in range(count):
            start = time.perf_counter()
            conn.request("GET", "/sparql?" + urllib.parse.urlencode({"query": NEVER_ENDING}))
            response = conn.getresponse()
            response.read()
            answered = time.perf_counter()
            answers.append((response.status, answered - start))
            to_idle.append(seconds_to_idle(server.pid, answered))
        conn.close()
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        lookups = []
        for key in range(5):
            start = time.perf_counter()
            error = lookup(conn, key, expected)
            lookups.append((time.perf_counter() - start) * 1000)
            if error:
                raise SystemExit(f"lookup after the time limits failed: {error}")
        conn.close()
        workers_rss = sum(rss_mb(pid) for pid in children(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"timeouts": count, "timeout_statuses": sorted({status for status, _ in answers}),
            "timeout_answer_s_max": max(seconds for _, seconds in answers),
            "idle_within_s_max": max(to_idle), "idle_within_s_median": float(np.median(to_idle)),
            "idle_within_s": [round(seconds, 3) for seconds in to_idle],
            "after_timeouts_lookup_ms": lookups, "workers_rss_mb": workers_rss}


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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
    parser.add_argument("--burst", type=int, default=200, help="clients released at once (0: no burst)")
    parser.add_argument("--burst-requests", type=int, default=1, help="lookups per burst client")
    parser.add_argument("--timeouts", type=int, default=20, help="never-ending queries sent (0: none)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="where to build (or find) the store; default a temp dir")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 0 < args.seconds <= 600 or not 0 <= args.burst <= 400:
        parser.error("--clients must be in [1, 64], --seconds in (0, 600] and --burst in [0, 400]")
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
        bursts = burst(port, args.n, expected, args.burst, args.burst_requests) if args.burst else {}
        rss = peak_rss_mb(server.pid)
        workers_rss = sum(rss_mb(pid) for pid in children(server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    limits = time_limits(store_path, args.workers, args.n, expected, args.timeouts) if args.timeouts else {}

    ms = np.array(latencies) * 1000
    out = {
        "n": args.n, "clients": args.clients, "seconds": args.seconds, "server_workers": args.workers,
        "query": LOOKUP % input_iri("synthetic", "test", "KEY"), "keys": "uniform over the N inputs",
        "requests": len(latencies), "requests_per_s": len(latencies) / args.seconds,
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
        "errors": len(errors), "error_examples": errors[:3], "update_refused_store_unchanged": refused,
        "peak_rss_mb": rss, "workers_rss_mb_after_load": workers_rss, **bursts, **limits, "loadavg_1m_before": load_before[0], "loadavg_1m_after": load_after[0],
        "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(), **timings,
    }
    emit(out, args.json, sort_keys=True)


if __name__ == "__main__":
    main()
