"""One query worker process: evaluates SPARQL on a read-only snapshot of the RDF view.

Started by ``kg.query.worker_pool`` as ``python kg/query/worker.py READ_FD WRITE_FD [--network]``; it
imports nothing but the standard library and pyoxigraph (about 50 ms to start), so that a worker
killed at a query's deadline is replaced at once. Messages are pickled tuples over the two pipes:

- ``("open", path)``: open the snapshot at ``path`` read-only (no answer; an error is kept for the
  next query);
- ``("query", path, text, options, max_rows)``: answer ``("ok", kind, payload)`` or
  ``("error", reason, message)`` with ``reason`` one of ``syntax``, ``rows``, ``eval``.

Payloads hold terms as plain values: an IRI as ``str``, a blank node as ``("b", id)``, a literal as
``("l", value, datatype, language)``. Queries run on a thread with a 256 MiB stack, room for over
20,000 levels of nesting (``kg.query.guard`` lets far fewer through). Unless started with
``--network``, the worker first moves into a network namespace of its own (Linux, where
unprivileged user namespaces are allowed): a query that slipped past the SERVICE check still
reaches no host. The worker exits when its parent does.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

import pyoxigraph as ox

if TYPE_CHECKING:  # imported where used: ``kg.query.fresh_view`` runs ``evaluate`` in-process and needs neither
    from multiprocessing.connection import Connection

STACK_BYTES = 256 << 20
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000


def isolate_network() -> bool:
    """Enter a fresh network namespace (no interface up, no route anywhere); False where not allowed."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0
    except (OSError, AttributeError):
        return False


def encode(term):
    if type(term) is ox.NamedNode:
        return term.value
    if term is None:
        return None
    if type(term) is ox.Literal:
        return ("l", term.value, term.datatype.value, term.language)
    if type(term) is ox.BlankNode:
        return ("b", term.value)
    raise ValueError(f"unsupported result term {term!r} (RDF-star triples are not supported)")


def evaluate(store: ox.Store, text: str, options: dict, max_rows: int | None) -> tuple:
    """Run one query on ``store``: ``("ok", kind, payload)`` or ``("error", reason, message)`` (see above).
    ``options`` are pyoxigraph's, graph IRIs as strings. Also used in-process by ``kg.query.fresh_view``."""
    options = dict(options)
    for key in ("default_graph", "named_graphs"):
        if key in options:
            options[key] = [ox.NamedNode(g) for g in options[key]]
    try:
        answer = store.query(text, **options)
    except SyntaxError as exc:
        return ("error", "syntax", str(exc))
    try:
        if isinstance(answer, ox.QueryBoolean):
            return ("ok", "ask", bool(answer))
        limit = float("inf") if max_rows is None else max_rows
        if isinstance(answer, ox.QueryTriples):
            triples = []
            for t in answer:
                if len(triples) >= limit:
                    return ("error", "rows", "triples")
                triples.append((encode(t.subject), encode(t.predicate), encode(t.object)))
            return ("ok", "graph", triples)
        names = [v.value for v in answer.variables]
        width = range(len(names))
        rows = []
        for solution in answer:
            if len(rows) >= limit:
                return ("error", "rows", "rows")
            rows.append(tuple(encode(solution[i]) for i in width))
        return ("ok", "select", (names, rows))
    except (OSError, RuntimeError, ValueError) as exc:  # e.g. an allowed SERVICE that failed
        return ("error", "eval", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


class Worker:
    def __init__(self, requests: Connection, answers: Connection):
        self.requests, self.answers = requests, answers
        self.path: str | None = None
        self.store: ox.Store | None = None
        self.open_error: str | None = None

    def open(self, path: str) -> None:
        if path == self.path:
            return
        self.store, self.path, self.open_error = None, path, None
        try:
            self.store = ox.Store.read_only(path)
        except OSError as exc:
            self.open_error = f"cannot open the RDF view snapshot {path}: {exc}".splitlines()[0]

    def query(self, path: str, text: str, options: dict, max_rows: int | None) -> tuple:
        self.open(path)
        if self.store is None:
            return ("error", "eval", self.open_error)
        return evaluate(self.store, text, options, max_rows)

    def serve(self) -> None:
        while True:
            try:
                message = self.requests.recv()
            except (EOFError, OSError):
                os._exit(0)
            if message[0] == "open":
                self.open(message[1])
            else:
                self.answers.send(self.query(*message[1:]))


def main() -> None:
    from multiprocessing.connection import Connection

    read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
    if "--network" not in sys.argv:
        isolate_network()
    parent = os.getppid()
    worker = Worker(Connection(read_fd, writable=False), Connection(write_fd, readable=False))
    threading.stack_size(STACK_BYTES)
    threading.Thread(target=worker.serve, name="sparql-worker", daemon=True).start()
    while os.getppid() == parent:  # orphaned (the parent died mid-query): stop working for nobody
        time.sleep(0.5)
    os._exit(0)


if __name__ == "__main__":
    main()
