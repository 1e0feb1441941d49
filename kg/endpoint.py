"""A SPARQL 1.1 Protocol endpoint over the store's RDF view (stdlib ``ThreadingHTTPServer``).

>>> with SparqlEndpoint(store, EndpointConfig(port=0)) as endpoint:   # doctest: +SKIP
...     endpoint.start()                                    # serves in a background thread
...     print(endpoint.url)                                 # http://127.0.0.1:PORT/sparql

- queries by ``GET /sparql?query=...``, ``POST`` form (``query=...``) or ``POST`` with
  ``Content-Type: application/sparql-query``; ``default-graph-uri`` / ``named-graph-uri`` choose the
  dataset (without them the default graph is the union of all graphs, as in ``Store.sparql``);
- results by content negotiation: SELECT/ASK as ``application/sparql-results+json`` (the default),
  ``+xml``, ``text/csv``, ``text/tab-separated-values``; CONSTRUCT/DESCRIBE as ``text/turtle`` (the
  default), ``application/n-triples``, ``application/ld+json``, ``application/rdf+xml``;
- updates (``POST`` form ``update=`` or ``application/sparql-update``) answer 403 unless the endpoint
  was started with ``allow_updates`` and a token, and then only ``INSERT DATA`` of ground triples
  into graphs that SQL does not derive (not a run's graph, not ``graph:inputs``, not ``graph:rules/``):
  they go to SQL through ``Store.add_triples``, so they survive a rebuild of the view;
- limits: ``timeout_s`` per query (503), ``max_rows`` result rows or triples (422), ``max_body``
  request bytes (413). Oxigraph cannot be interrupted from outside: a query past its time limit is
  answered 503 at once, and its worker stops at the next result row it produces; a query that
  computes everything before its first row (ORDER BY, GROUP BY) keeps its worker until it is done;
  the pool of ``workers`` bounds how many such queries can run at once.

Errors are one-line ``text/plain`` bodies: 400 (malformed query, with the parser's message), 401/403
(updates), 406 (no acceptable format), 411/413/415 (request body), 422 (result too large), 503 (time).
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.term import Node

from kg import vocab
from kg.errors import KGError
from kg.rdf_io import bind_prefixes
from kg.sparql import SparqlResult, to_rdflib
from kg.store import Store

PAGE = Path(__file__).with_name("endpoint_page.html")

#: Media type -> result format, in order of preference for ``*/*``.
RESULT_TYPES = {
    "application/sparql-results+json": "json", "application/json": "json",
    "application/sparql-results+xml": "xml", "application/xml": "xml",
    "text/csv": "csv", "text/tab-separated-values": "tsv", "text/xml": "xml",
}
GRAPH_TYPES = {
    "text/turtle": "turtle", "application/x-turtle": "turtle",
    "application/n-triples": "nt", "text/plain": "nt",
    "application/ld+json": "json-ld", "application/rdf+xml": "xml",
}
#: Graphs that SQL derives (rebuilt from tables): updates may not write into them.
DERIVED_GRAPHS = (vocab.RUN_BASE, vocab.INPUTS_GRAPH, vocab.GRAPH_BASE + "rules/")
#: Where ``INSERT DATA`` puts triples given outside any ``GRAPH`` block.
USER_GRAPH = vocab.GRAPH_BASE + "user"


@dataclass
class EndpointConfig:
    """How the endpoint listens and what it allows; ``port=0`` picks a free port."""

    host: str = "127.0.0.1"
    port: int = 7878
    timeout_s: float = 30.0
    max_rows: int = 100_000
    max_body: int = 1 << 20
    workers: int = 4
    allow_updates: bool = False
    token: str | None = None
    log_requests: bool = False
    examples: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.allow_updates and not self.token:
            raise KGError("allow_updates needs a token (clients send it as 'Authorization: Bearer TOKEN')")
        for name in ("timeout_s", "max_rows", "max_body", "workers"):
            if not getattr(self, name) > 0:
                raise KGError(f"endpoint {name} must be > 0, got {getattr(self, name)}")


class HttpError(Exception):
    """An answer other than 200: HTTP status and a one-line message for the body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


# -- content negotiation --------------------------------------------------------------------------
def negotiate(accept: str | None, kind: str) -> tuple[str, str]:
    """(media type, format) for an ``Accept`` header and a result kind (``select``/``ask``/``graph``)."""
    types = GRAPH_TYPES if kind == "graph" else RESULT_TYPES
    offers = []
    for position, part in enumerate((accept or "*/*").split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            offers.append((-q, position, media.lower()))
    for _, _, media in sorted(offers):
        if media in types:
            return media, types[media]
        if media in ("*/*", "application/*", "text/*"):
            for known, fmt in types.items():
                if media == "*/*" or known.startswith(media[:-1]):
                    return known, fmt
    wanted = "CONSTRUCT/DESCRIBE" if kind == "graph" else "SELECT/ASK"
    raise HttpError(406, f"no acceptable format in Accept: {accept!r}; {wanted} results come as {', '.join(dict.fromkeys(types))}")


# -- serialisation ----------------------------------------------------------------------------------
def results_xml(result: SparqlResult) -> str:
    """A SELECT or ASK result in the SPARQL Query Results XML Format."""
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">\n']
    if result.kind == "ask":
        out.append(f"<head/>\n<boolean>{'true' if result.askanswer else 'false'}</boolean>\n</sparql>\n")
        return "".join(out)
    out.append("<head>" + "".join(f"<variable name={quoteattr(v)}/>" for v in result.vars) + "</head>\n<results>\n")
    for row in result.rows:
        cells = "".join(
            f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>" for v, t in zip(result.vars, row) if t is not None
        )
        out.append(f"<result>{cells}</result>\n")
    out.append("</results>\n</sparql>\n")
    return "".join(out)


def _xml_term(term: Node) -> str:
    if isinstance(term, URIRef):
        return f"<uri>{escape(str(term))}</uri>"
    if isinstance(term, BNode):
        return f"<bnode>{escape(str(term))}</bnode>"
    assert isinstance(term, Literal)
    if term.language:
        return f"<literal xml:lang={quoteattr(term.language)}>{escape(str(term))}</literal>"
    if term.datatype is not None and str(term.datatype) != "http://www.w3.org/2001/XMLSchema#string":
        return f"<literal datatype={quoteattr(str(term.datatype))}>{escape(str(term))}</literal>"
    return f"<literal>{escape(str(term))}</literal>"


def serialize(result: SparqlResult, fmt: str) -> str:
    """The result in a negotiated format (see ``RESULT_TYPES`` and ``GRAPH_TYPES``)."""
    if result.kind == "graph":
        if fmt in ("turtle", "nt"):
            return result.serialize(fmt)
        return bind_prefixes(result.graph).serialize(format=fmt)
    return results_xml(result) if fmt == "xml" else result.serialize(fmt)


# -- running queries and updates --------------------------------------------------------------------
@dataclass
class Dataset:
    """The protocol's ``default-graph-uri`` and ``named-graph-uri`` parameters."""

    default: list[str] = field(default_factory=list)
    named: list[str] = field(default_factory=list)


class Engine:
    """Runs protocol operations against a ``Store`` with the endpoint's limits (thread-safe)."""

    def __init__(self, store: Store, config: EndpointConfig):
        self.store, self.config = store, config
        self._sync_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="sparql")
        self.open_view()

    def open_view(self) -> None:
        """Open (and sync) the RDF view now, so that a store held elsewhere fails at start-up."""
        try:
            self.store.sync_rdf()
        except KGError as exc:
            if "lock" in str(exc).lower():
                raise KGError(
                    f"the RDF view at {self.store.view.path} is locked by another process (another "
                    f"'neurosym serve' or a pipeline on {self.store.engine.url.database or self.store.engine.url}?); "
                    "one process at a time can hold it: stop that one, or serve a copy of the store"
                ) from None
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self, fn, *args) -> tuple[str, bytes]:
        """Run ``fn(*args, deadline)`` in the worker pool; 503 if it outlives the time limit."""
        deadline = time.monotonic() + self.config.timeout_s
        future = self._pool.submit(fn, *args, deadline)
        try:
            return future.result(timeout=self.config.timeout_s)
        except FutureTimeout:
            future.cancel()
            raise self._time_limit_error() from None

    def _time_limit_error(self) -> HttpError:
        return HttpError(503, f"query exceeded the time limit of {self.config.timeout_s:g} s and was abandoned; "
                              "narrow it (LIMIT, more specific patterns) or ask for a longer --timeout")

    def _sync(self) -> None:
        # The SQL store may be written by other processes while we serve: pick their writes up first.
        if self.store.auto_sync:
            with self._sync_lock:
                self.store.sync_rdf()

    def query(self, text: str, dataset: Dataset, accept: str | None, deadline: float) -> tuple[str, bytes]:
        """Answer a query: (media type, body); raises ``HttpError``."""
        self._sync()
        options = {"use_default_graph_as_union": True}
        if dataset.default:
            options = {"default_graph": [ox.NamedNode(g) for g in dataset.default]}
        if dataset.named:
            options["named_graphs"] = [ox.NamedNode(g) for g in dataset.named]
        try:
            answer = self.store.view.store.query(text, prefixes=vocab.PREFIXES, **options)
        except SyntaxError as exc:
            if _parse_update(text, quiet=True) is not None:
                raise HttpError(400, "this is a SPARQL update: send it as 'update=' or application/sparql-update, "
                                     "not as a query") from None
            raise HttpError(400, f"SPARQL syntax {exc}".replace("error at ", "error at line:column ")) from None
        except ValueError as exc:  # e.g. a malformed graph IRI in the dataset parameters
            raise HttpError(400, str(exc).splitlines()[0]) from None
        except (OSError, RuntimeError) as exc:
            raise HttpError(500, f"SPARQL evaluation failed: {exc}".splitlines()[0]) from None
        try:
            kind = "ask" if isinstance(answer, ox.QueryBoolean) else "graph" if isinstance(answer, ox.QueryTriples) else "select"
            media, fmt = negotiate(accept, kind)  # before any work: a 406 costs nothing
            result = self._collect(answer, kind, deadline)
        except (OSError, RuntimeError) as exc:  # raised by Oxigraph while evaluating (e.g. a failing SERVICE)
            raise HttpError(500, f"SPARQL evaluation failed: {exc}".splitlines()[0]) from None
        finally:
            answer = None  # pyoxigraph results must be dropped on the thread that made them
        return media, serialize(result, fmt).encode("utf-8")

    def _collect(self, answer, kind: str, deadline: float) -> SparqlResult:
        if kind == "ask":
            return SparqlResult(kind="ask", askanswer=bool(answer))
        if kind == "graph":
            graph = Graph()
            for i, t in enumerate(answer):
                self._check(i, deadline, "triples")
                graph.add((to_rdflib(t.subject), to_rdflib(t.predicate), to_rdflib(t.object)))
            return SparqlResult(kind="graph", graph=graph)
        names = [v.value for v in answer.variables]
        rows = []
        for i, s in enumerate(answer):
            self._check(i, deadline, "rows")
            rows.append(tuple(to_rdflib(s[k]) for k in range(len(names))))
        return SparqlResult(kind="select", vars=names, rows=rows)

    def _check(self, i: int, deadline: float, what: str) -> None:
        if i >= self.config.max_rows:
            raise HttpError(422, f"result has more than {self.config.max_rows} {what} (the endpoint's --max-rows); "
                                 "add a LIMIT or narrow the query")
        if i % 256 == 0 and time.monotonic() > deadline:
            # The worker's deadline and the caller's wait end together: whichever notices first
            # answers, so both give the same message.
            raise self._time_limit_error()

    def update(self, text: str, authorization: str | None, deadline: float) -> tuple[str, bytes]:
        """Apply an ``INSERT DATA`` update (if allowed); (media type, body)."""
        if not self.config.allow_updates:
            raise HttpError(403, "updates are disabled on this endpoint (read-only); start it with "
                                 "--allow-updates and a token to accept INSERT DATA")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.config.token.encode()):
            raise HttpError(401, "updates need 'Authorization: Bearer TOKEN' with the endpoint's token",
                            {"WWW-Authenticate": 'Bearer realm="neurosym"'})
        parsed = _parse_update(text)
        by_graph: dict[str, list] = {}
        for op in parsed.algebra:
            if op.name != "InsertData":
                raise HttpError(400, f"only INSERT DATA is supported by this endpoint, not {op.name}")
            for triple in op.triples or []:
                by_graph.setdefault(USER_GRAPH, []).append(triple)
            for graph, triples in (op.quads or {}).items():
                by_graph.setdefault(str(graph), []).extend(triples)
        for graph in by_graph:
            if graph.startswith(DERIVED_GRAPHS):
                raise HttpError(403, f"graph <{graph}> is derived from the store's tables and cannot be written; "
                                     "INSERT DATA into another named graph")
        added = sum(self.store.add_triples(triples, graph) for graph, triples in by_graph.items())
        self._sync()
        return "text/plain; charset=utf-8", f"inserted {added} new triple(s) into {len(by_graph)} graph(s)\n".encode()


def _parse_update(text: str, quiet: bool = False):
    """rdflib's algebra of a SPARQL update with the project prefixes, or 400 (None if ``quiet``)."""
    from rdflib.plugins.sparql.algebra import translateUpdate
    from rdflib.plugins.sparql.parser import parseUpdate

    try:
        return translateUpdate(parseUpdate(text), initNs=vocab.PREFIXES)
    except Exception as exc:
        if quiet:
            return None
        raise HttpError(400, f"SPARQL update syntax error: {str(exc).splitlines()[0]}") from None


# -- HTTP -------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connection
    disable_nagle_algorithm = True  # headers and body are two writes; never wait for a delayed ACK
    server_version = "neurosym-sparql"
    server: _Server

    def do_GET(self) -> None:
        self._dispatch(self._url_params(), None)

    def do_POST(self) -> None:
        params = self._url_params()
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            return self._send(411, "text/plain; charset=utf-8", b"a POST needs a Content-Length header\n")
        if not length.isdigit() or int(length) > self.server.engine.config.max_body:
            self.close_connection = True  # the body is never read: the connection cannot be reused
            return self._error(HttpError(413, f"request body of {length} bytes is over the endpoint's limit of "
                                              f"{self.server.engine.config.max_body} bytes"))
        body = self.rfile.read(int(length)).decode("utf-8", errors="replace")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            for key, values in parse_qs(body, keep_blank_values=True).items():
                params.setdefault(key, []).extend(values)
            self._dispatch(params, None)
        elif ctype == "application/sparql-query":
            self._dispatch(params | {"query": [body]}, None)
        elif ctype == "application/sparql-update":
            self._dispatch(params, body)
        else:
            self._error(HttpError(415, f"unsupported Content-Type {ctype!r}; use application/x-www-form-urlencoded, "
                                       "application/sparql-query or application/sparql-update"))

    def _url_params(self) -> dict[str, list[str]]:
        url = urlsplit(self.path)
        self._route = url.path
        return parse_qs(url.query, keep_blank_values=True)

    def _dispatch(self, params: dict[str, list[str]], update_body: str | None) -> None:
        engine = self.server.engine
        try:
            if self._route not in ("/", "/sparql"):
                raise HttpError(404, f"no such resource {self._route}; the endpoint is /sparql")
            if update_body is None and "update" in params:
                if self.command != "POST":
                    raise HttpError(400, "updates must be sent by POST")
                update_body = _single(params, "update")
            if update_body is not None:
                media, body = engine.run(engine.update, update_body, self.headers.get("Authorization"))
            elif "query" in params:
                dataset = Dataset(params.get("default-graph-uri", []), params.get("named-graph-uri", []))
                media, body = engine.run(engine.query, _single(params, "query"), dataset, self.headers.get("Accept"))
            else:
                media, body = "text/html; charset=utf-8", self.server.page
        except HttpError as exc:
            return self._error(exc)
        except KGError as exc:
            return self._error(HttpError(400, str(exc)))
        except Exception as exc:  # a bug or a store failure: answer, do not drop the connection
            return self._error(HttpError(500, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]))
        self._send(200, media, body)

    def _error(self, exc: HttpError) -> None:
        self._send(exc.status, "text/plain; charset=utf-8", (exc.message + "\n").encode("utf-8"), exc.headers)

    def _send(self, status: int, media: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media if "charset" in media else media + "; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Vary", "Accept")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        if self.server.engine.config.log_requests:
            super().log_message(format, *args)


def _single(params: dict[str, list[str]], name: str) -> str:
    values = params[name]
    if len(values) != 1:
        raise HttpError(400, f"expected exactly one '{name}' parameter, got {len(values)}")
    return values[0]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    engine: Engine
    page: bytes


def render_page(examples: dict[str, str]) -> bytes:
    """The HTML query page with the example queries built in."""
    data = json.dumps(examples).replace("</", "<\\/")
    return PAGE.read_text(encoding="utf-8").replace("/*EXAMPLES*/{}", data).encode("utf-8")


class SparqlEndpoint:
    """The HTTP server; ``start()`` serves from a background thread, ``serve_forever()`` from this one."""

    def __init__(self, store: Store, config: EndpointConfig | None = None):
        self.config = config or EndpointConfig()
        self.engine = Engine(store, self.config)
        try:
            self.server = _Server((self.config.host, self.config.port), _Handler)
        except OSError as exc:
            self.engine.close()
            raise OSError(f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}") from None
        self.server.engine = self.engine
        self.server.page = render_page(self.config.examples)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The query URL, e.g. ``http://127.0.0.1:7878/sparql``."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/sparql"

    def start(self) -> SparqlEndpoint:
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), name="sparql-endpoint", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()
        self.engine.close()

    def __enter__(self) -> SparqlEndpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
