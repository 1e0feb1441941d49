"""Bounded queries through Store.sparql and `neurosym query`: size and nesting limits, SERVICE refused,
a time limit that stops the work, a crashed engine replaced; the store unchanged after each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from rdflib import Literal, URIRef

from kg.errors import ReadOnlyQueryError, SparqlSyntaxError
from kg.query.guard import QueryLimitError, QueryLimits, ServiceRefusedError, check_query
from kg.query.worker_pool import PACKAGE_PARENT, QueryCrashError, QueryRunner, QueryTimeoutError, runner_for
from kg.rdf.vocab import ARITH, PREFIXES

SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"  # 696^4 rows, one answer
UNIONS = "SELECT * WHERE { " + " UNION ".join(["{ ?s ?p ?o }"] * 10_000) + " }"  # SIGSEGV in Oxigraph unguarded
HOSTILE = {
    "10,000 UNION branches": UNIONS,
    "5,000 nested groups": "SELECT * WHERE " + "{ " * 5000 + "?s ?p ?o" + " }" * 5000,
    "5,000 nested parentheses": "ASK { FILTER(" + "(" * 5000 + "1" + ")" * 5000 + ") }",
    "20,000 negations": "ASK { FILTER(" + "!" * 20_000 + "true) }",
    "2 MB of text": "SELECT * WHERE { ?s ?p ?o } #" + "x" * (2 << 20),
}


def _triples(store) -> int:
    return len(store.export("nt").splitlines())


@pytest.mark.parametrize("name", list(HOSTILE))
def test_oversized_and_deep_queries_refused_before_the_engine(run_store, name):
    before = _triples(run_store)
    start = time.perf_counter()
    with pytest.raises(QueryLimitError, match="the limit"):
        run_store.sparql(HOSTILE[name])
    assert time.perf_counter() - start < 10  # milliseconds on an idle machine
    assert _triples(run_store) == before
    assert run_store.sparql("ASK { arith:n7 a arith:Prime }").askanswer is True


def test_lexer_stays_linear_on_unterminated_strings():
    start = time.perf_counter()
    with pytest.raises(SparqlSyntaxError, match="unterminated string"):
        check_query('"\\' * 400_000, QueryLimits())
    with pytest.raises(SparqlSyntaxError, match="line:column 2:14"):
        check_query("ASK {\n  ?s ?p ?o . '''never closed", QueryLimits())
    assert time.perf_counter() - start < 1


def test_query_forms_and_keywords_in_strings_iris_and_names():
    limits = QueryLimits()
    assert check_query("PREFIX e: <http://e/> # comment\n", limits).form == "empty"
    assert check_query("BASE <http://e/> DELETE WHERE { ?s ?p ?o }", limits).form == "update"
    assert check_query("describe <http://e/x>", limits).form == "describe"
    harmless = "SELECT ?service WHERE { ?s e:SERVICE 'SERVICE <http://x/> {}' ; <http://e/SERVICE> ?service } # SERVICE"
    assert check_query(harmless, limits, {"e": "http://e/"}).services == ()


@pytest.mark.parametrize("clause", [
    "SERVICE <http://127.0.0.1:{port}/sparql> {{ ?s ?p ?o }}",
    "service silent <http://127.0.0.1:{port}/sparql> {{ ?s ?p ?o }}",
    "SERVICE here:sparql {{ ?s ?p ?o }}",
    "BIND(<http://127.0.0.1:{port}/sparql> AS ?e) SERVICE ?e {{ ?s ?p ?o }}",
    "SERVICE <sparql> {{ ?s ?p ?o }}",
])
def test_service_refused_and_nothing_sent(run_store, listener, clause):
    query = f"PREFIX here: <http://127.0.0.1:{listener.port}/> BASE <http://127.0.0.1:{listener.port}/> " \
            f"SELECT * WHERE {{ {clause.format(port=listener.port)} }}"
    before = _triples(run_store)
    with pytest.raises(ServiceRefusedError, match="refused"):
        run_store.sparql(query)
    with pytest.raises(ServiceRefusedError, match="refused"):  # an allow-list names hosts, never variables
        run_store.sparql(query, limits=QueryLimits(allow_service=("example.org",)))
    assert listener.close() == []
    assert _triples(run_store) == before


def test_service_to_an_allowed_host_only(run_store, listener):
    allowed = QueryLimits(allow_service=(f"127.0.0.1:{listener.port}",), timeout_s=10)
    with pytest.raises(ServiceRefusedError, match="not on the allow-list"):
        run_store.sparql(f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{listener.port + 1}/x> {{ ?s ?p ?o }} }}", limits=allowed)
    with pytest.raises(ValueError, match="SPARQL evaluation failed"):  # the listener answers nothing useful
        run_store.sparql(f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{listener.port}/x> {{ ?s ?p ?o }} }}", limits=allowed)
    received = listener.close()
    assert len(received) == 1 and received[0].startswith(b"POST /x ")


def _isolation_works() -> bool:
    probe = "from kg.query.worker import isolate_network; import sys; sys.exit(0 if isolate_network() else 1)"
    return subprocess.run([sys.executable, "-c", probe], cwd=PACKAGE_PARENT).returncode == 0


@pytest.mark.skipif(not _isolation_works(), reason="no unprivileged network namespaces on this machine")
def test_workers_reach_no_host_even_past_the_check(run_store, listener):
    runner = QueryRunner(run_store.view, workers=1)  # the text goes straight to a worker, unchecked
    try:
        status, kind, message = runner.run(f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{listener.port}/x> {{ ?s ?p ?o }} }}",
                                           {}, None, 10)
    finally:
        runner.close()
    assert (status, kind) == ("error", "eval") and "unreachable" in message
    assert listener.close() == []


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_time_limit_stops_the_work(run_store):
    run_store.sparql("ASK { ?s ?p ?o }")
    worker = runner_for(run_store.view).pool.pids()[0]
    start = time.perf_counter()
    with pytest.raises(QueryTimeoutError, match="time limit of 0.5 s and was stopped"):
        run_store.sparql(SLOW, limits=QueryLimits(timeout_s=0.5))
    assert time.perf_counter() - start < 5
    assert not os.path.exists(f"/proc/{worker}")  # killed and reaped, not left computing
    fresh = runner_for(run_store.view).pool.pids()[0]
    assert fresh != worker
    assert run_store.sparql("ASK { arith:n7 a arith:Prime }").askanswer is True
    busy = _cpu_seconds(fresh)
    time.sleep(0.5)
    assert _cpu_seconds(fresh) - busy < 0.1  # idle


def test_crashed_engine_is_replaced(run_store):
    run_store.sparql("ASK { ?s ?p ?o }")
    pool = runner_for(run_store.view).pool
    worker = pool.pids()[0]
    threading.Timer(0.5, os.kill, (worker, signal.SIGSEGV)).start()
    with pytest.raises(QueryCrashError, match="SIGSEGV"):
        run_store.sparql(SLOW, limits=QueryLimits(timeout_s=30))
    assert pool.pids()[0] != worker
    assert run_store.sparql("ASK { arith:n7 a arith:Prime }").askanswer is True


def test_updates_and_empty_queries_refused(run_store):
    with pytest.raises(ReadOnlyQueryError):
        run_store.sparql("PREFIX e: <http://e/> INSERT DATA { e:a e:b e:c }")
    for empty in ("", "  # only a comment\n", "PREFIX e: <http://e/>"):
        with pytest.raises(ValueError, match="empty SPARQL query"):
            run_store.sparql(empty)


def test_queries_follow_writes_and_old_snapshots_go(run_store):
    ask = "ASK { arith:n7 ns:lucky true }"
    assert run_store.sparql(ask).askanswer is False
    snapshots = runner_for(run_store.view).snapshots
    first = sorted(os.listdir(snapshots.root))
    run_store.add_triples([(URIRef(ARITH.n7), URIRef(PREFIXES["ns"] + "lucky"), Literal(True))], "https://example.org/g")
    assert run_store.sparql(ask).askanswer is True
    assert run_store.sparql(ask).askanswer is True
    assert sorted(os.listdir(snapshots.root)) != first and len(os.listdir(snapshots.root)) == 1


def test_cli_refuses_hostile_queries_in_one_line(cli, cli_runner, run_store, store_path, tmp_path, listener):
    union = tmp_path / "union.rq"
    union.write_text(UNIONS)
    cases = [
        (["query", "-f", str(union)], "Error: query has more than 20000 tokens (the limit)"),
        (["query", f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{listener.port}/> {{ ?s ?p ?o }} }}"], "Error: SERVICE <"),
        (["query", "--timeout", "0.5", SLOW], "Error: query exceeded the time limit of 0.5 s and was stopped"),
    ]
    before = _triples(run_store)
    run_store.close()
    for args, message in cases:
        out = cli_runner.invoke(cli, [*args, "--store", str(store_path)])
        assert out.exit_code == 1, out.output
        assert out.output.startswith(message) and out.output.count("\n") == 1, out.output
        assert "Traceback" not in out.output
    assert listener.close() == []
    assert _triples(run_store) == before
