"""``neurosym query`` on a SQLite store whose RDF view is current: answered without opening the store.

Opening a ``kg.store.Store`` imports SQLAlchemy and rdflib (0.7 s together on the 2-core machine)
and starts a query worker process, where a small query itself takes milliseconds. When the store is a
SQLite file and its persisted view already reflects every write (the view's ``state.json`` holds the
store id and the write counter of each graph that the SQL ``meta`` and ``graph_version`` tables hold,
read here with the standard library's ``sqlite3``), the view alone answers the query, exactly as the
full path would: the same ``kg.query.guard`` checks and limits, the same evaluation
(``kg.query.worker.evaluate``) and the same prefixes.

The full path answers instead (``answer`` returns None) whenever its answer could differ or it has
work to do: a server URL, a missing or unreadable file, another schema version (it migrates), a view
that is behind SQL (it syncs), held by another process (it reads a snapshot) or being built, a
CONSTRUCT/DESCRIBE (rdflib serialises graphs), an update or an empty query (its errors), a SERVICE
allow-list (its workers reach the network in isolation), and a query that ``kg.query.sql.translate`` may answer
in SQL (faster at scale than the view).

The query is evaluated by a forked child process (a millisecond, where a fresh worker process
costs 50 ms) that opens the view's files read-only while this process holds the view's writer lock,
moves into a network namespace of its own like the query workers, and runs the query on a thread
with their large stack. At the deadline the child is killed: the time limit stops the work itself.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pyoxigraph as ox

from kg.rdf.prefixes import PREFIXES
from kg.query.guard import QueryCrashError, QueryLimits, QueryTimeoutError, check_query, engine_error, timeout_message
from kg.query.worker import STACK_BYTES, evaluate, isolate_network
from kg.view.rdf_view import RdfView
from kg.query.sql.subset import may_answer_in_sql
from kg.sql.location import default_view_dir, sqlite_path

#: The store schema version this code reads: ``kg.sql.schema.SCHEMA_VERSION``, copied so that checking it
#: needs no SQLAlchemy (``tests/kg/test_fresh_view.py`` asserts that the two agree).
SCHEMA_VERSION = 3
#: What the view's lines say: ``kg.sql.derive.VOCABULARY``, copied likewise; a view of another one is not
#: current (the full path rebuilds it).
VIEW_VOCABULARY = 2
#: Dataset options of every query from the CLI: the union of all graphs is the default graph.
QUERY_OPTIONS = {"prefixes": PREFIXES, "use_default_graph_as_union": True}


def answer(target: str, text: str, limits: QueryLimits, view_dir: str | Path | None = None) -> tuple[str, object] | None:
    """``(kind, payload)`` of a read-only query answered from the current view of the SQLite store at
    ``target`` (``kind`` ``select``: payload ``(names, rows)`` of plain terms, see ``kg.query.plain_formats``;
    ``ask``: a bool), or None when the full path (``Store.sparql``) must answer. Raises the errors the
    full path raises for the same query (limits, syntax, evaluation, time limit, engine crash)."""
    sqlite_file = sqlite_path(target)
    if sqlite_file is None or limits.allow_service or not sqlite_file.is_file():
        return None
    versions = sql_versions(sqlite_file)
    if versions is None:
        return None
    if check_query(text, limits, PREFIXES).form not in ("select", "ask") or may_answer_in_sql(text, PREFIXES):
        return None
    store_id, graphs = versions
    view = RdfView(view_dir if view_dir is not None else default_view_dir(sqlite_file, store_id), vocabulary=VIEW_VOCABULARY)
    try:
        store_dir = view.hold_if_current(store_id, graphs)
        if store_dir is None:
            return None
        return _evaluate_in_child(str(store_dir), text, limits)
    finally:
        view.close()


def sql_versions(sqlite_file: Path) -> tuple[str, dict[str, int]] | None:
    """(store id, graph -> write counter) read from the SQLite file, or None where the full store must
    open it (not a store, another schema version, unreadable)."""
    try:
        connection = sqlite3.connect(f"file:{quote(str(sqlite_file))}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        connection.execute("BEGIN")  # one read transaction: the id and the counters of one moment
        meta = dict(connection.execute("SELECT key, value FROM meta"))
        graphs = dict(connection.execute("SELECT graph, version FROM graph_version"))
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    if meta.get("schema_version") != str(SCHEMA_VERSION) or not meta.get("store_id"):
        return None
    return meta["store_id"], graphs


def _evaluate_in_child(store_dir: str, text: str, limits: QueryLimits) -> tuple[str, object] | None:
    """Evaluate in a forked child within ``limits.timeout_s``; None where the child cannot open the view
    (damaged files: the full path rebuilds them)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(store_dir, text, limits.max_rows, write_end)
    os.close(write_end)
    reaped = False
    try:
        data, complete = _read_until(read_end, None if limits.timeout_s is None else time.monotonic() + limits.timeout_s)
        if not complete:
            raise QueryTimeoutError(timeout_message(limits.timeout_s))
        status = os.waitpid(pid, 0)[1]
        reaped = True
        if not data or os.waitstatus_to_exitcode(status) != 0:
            code = os.waitstatus_to_exitcode(status)
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            raise QueryCrashError(f"the query engine died on this query ({how}); nothing was changed")
    finally:
        os.close(read_end)
        if not reaped:  # the deadline passed (or this process was interrupted): stop the work itself
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    answer = marshal.loads(data)
    if answer[0] == "unreadable":
        return None
    status, kind, payload = answer
    if status == "error":
        raise engine_error(kind, payload, limits.max_rows, text, PREFIXES)
    return kind, payload


def _read_until(fd: int, deadline: float | None) -> tuple[bytes, bool]:
    """Everything the child writes, and whether it finished before ``deadline``."""
    chunks = []
    poller = select.poll()  # not select.select, which refuses descriptors above 1023
    poller.register(fd, select.POLLIN)
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return b"", False
        if not poller.poll(None if remaining is None else max(1, int(remaining * 1000))):
            return b"", False
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


def _child(store_dir: str, text: str, max_rows: int | None, out: int) -> None:
    """The forked child's whole life: answer, write the answer (``marshal``), exit without cleanup."""
    code = 0
    try:
        isolate_network()
        try:
            store = ox.Store.read_only(store_dir)
        except OSError:
            answer: tuple = ("unreadable",)
        else:
            outcome: list = []
            threading.stack_size(STACK_BYTES)  # room for the nesting kg.query.guard lets through
            thread = threading.Thread(target=lambda: outcome.append(evaluate(store, text, QUERY_OPTIONS, max_rows)))
            thread.start()
            thread.join()
            answer = outcome[0] if outcome else ("error", "eval", "the query engine failed")
        data = marshal.dumps(answer)
        view = memoryview(data)
        while view:
            view = view[os.write(out, view):]
    except BaseException:
        code = 1
    finally:
        os._exit(code)
