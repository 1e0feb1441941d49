"""A SPARQL 1.1 Protocol endpoint over the store's RDF view (stdlib ``ThreadingHTTPServer``).

>>> with SparqlEndpoint(store, EndpointConfig(port=0)) as endpoint:   # doctest: +SKIP
...     endpoint.start()                                    # serves in a background thread
...     print(endpoint.url)                                 # http://127.0.0.1:PORT/sparql

- queries by ``GET /sparql?query=...``, ``POST`` form (``query=...``) or ``POST`` with
  ``Content-Type: application/sparql-query``; ``default-graph-uri`` / ``named-graph-uri`` choose the
  dataset (without them the default graph is the union of all graphs, as in ``Store.sparql``);
- results by content negotiation (``kg/endpoint/negotiation.py``), serialised by ``kg/query/formats.py``;
- updates (``POST`` form ``update=`` or ``application/sparql-update``) answer 403 unless the endpoint
  was started with ``allow_updates`` and a token, and then only ``INSERT DATA`` of ground triples
  into graphs that SQL does not derive (``kg/endpoint/service.py``);
- limits: query size and nesting (400), ``timeout_s`` per query (503; the worker process evaluating
  it is killed at the deadline, see ``kg/query/worker_pool.py``), ``max_rows`` result rows or triples
  (422), ``max_body`` request bytes (413); no SERVICE calls unless ``allow_service`` names the host.

One thread per connection serves HTTP (a listen backlog of ``backlog``); ``workers`` processes
evaluate queries. Errors are one-line ``text/plain`` bodies; docs/endpoint.md lists every status.
"""

from __future__ import annotations

import json
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kg.rdf import vocab
from kg.endpoint.service import TEXT, Dataset, EndpointConfig, EndpointService
from kg.endpoint.negotiation import HttpError, negotiate
from kg.errors import KGError
from kg.endpoint.examples import example_queries
from kg.query.formats import results_xml, serialize
from kg.store import Store

__all__ = ["EndpointConfig", "HttpError", "SparqlEndpoint", "negotiate", "render_page", "results_xml", "serialize"]

PAGE = Path(__file__).with_name("page.html")


# -- HTTP -------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connection
    disable_nagle_algorithm = True  # headers and body are two writes; never wait for a delayed ACK
    server_version = "neurosym-sparql"
    server: _Server

    def do_GET(self) -> None:
        self._dispatch(self._url_params(), None)

    def _not_allowed(self) -> None:
        self._url_params()
        self._error(HttpError(405, f"method {self.command} is not allowed; the endpoint answers GET, HEAD and POST",
                              {"Allow": "GET, HEAD, POST"}))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed
    do_HEAD = do_GET  # the same answer without its body (``_send`` leaves it out)

    def do_POST(self) -> None:
        params = self._url_params()
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            return self._send(411, TEXT, b"a POST needs a Content-Length header\n")
        if not length.isdigit() or int(length) > self.server.service.config.max_body:
            self.close_connection = True  # the body is never read: the connection cannot be reused
            return self._error(HttpError(413, f"request body of {length} bytes is over the endpoint's limit of "
                                              f"{self.server.service.config.max_body} bytes"))
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
        service = self.server.service
        try:
            if self._route not in ("/", "/sparql"):
                raise HttpError(404, f"no such resource {self._route}; the endpoint is /sparql")
            if "query" in params and (update_body is not None or "update" in params):
                raise HttpError(400, "a request carries a query or an update, not both")
            if update_body is None and "update" in params:
                if self.command != "POST":
                    raise HttpError(400, "updates must be sent by POST")
                update_body = _single(params, "update")
            if update_body is not None:
                media, body = service.update(update_body, self.headers.get("Authorization"))
            elif "query" in params:
                dataset = Dataset(params.get("default-graph-uri", []), params.get("named-graph-uri", []))
                media, body = service.query(_single(params, "query"), dataset, self.headers.get("Accept"))
            else:
                media, body = "text/html; charset=utf-8", self.server.page
        except HttpError as exc:
            return self._error(exc)
        except KGError as exc:
            return self._error(HttpError(400, str(exc)))
        except Exception as exc:  # a bug or a store failure: answer, do not drop the connection
            return self._error(HttpError(500, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]))
        self._send(200, media, body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own refusals (malformed request line 400, 414, 431, 501, 505): one line too.
        self.close_connection = True
        self._send(code, TEXT, f"{message or HTTPStatus(code).phrase}\n".encode(), {"Connection": "close"})

    def _error(self, exc: HttpError) -> None:
        self._send(exc.status, TEXT, (exc.message + "\n").encode("utf-8"), exc.headers)

    def _send(self, status: int, media: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media if "charset" in media else media + "; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Vary", "Accept")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        if self.server.service.config.log_requests:
            super().log_message(format, *args)


def _single(params: dict[str, list[str]], name: str) -> str:
    values = params[name]
    if len(values) != 1:
        raise HttpError(400, f"expected exactly one '{name}' parameter, got {len(values)}")
    return values[0]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    service: EndpointService
    page: bytes

    def __init__(self, address: tuple[str, int], backlog: int):
        self.request_queue_size = backlog  # read by listen() in the base class's __init__
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-answer is not the server's failure: one line, no traceback.
        if self.service.config.log_requests:
            error = sys.exc_info()[1]
            sys.stderr.write(f"{client_address[0]} - connection ended early: {type(error).__name__}: {error}\n")


def render_page(examples: dict[str, str]) -> bytes:
    """The HTML query page with the example queries and the predeclared prefixes built in."""
    def script_json(value) -> str:
        return json.dumps(value).replace("</", "<\\/")

    page = PAGE.read_text(encoding="utf-8").replace("/*EXAMPLES*/{}", script_json(examples))
    return page.replace("/*PREFIXES*/{}", script_json(vocab.PREFIXES)).encode("utf-8")


class SparqlEndpoint:
    """The HTTP server; ``start()`` serves from a background thread, ``serve_forever()`` from this one."""

    def __init__(self, store: Store, config: EndpointConfig | None = None):
        self.config = config or EndpointConfig()
        self.service = EndpointService(store, self.config)
        try:
            self.server = _Server((self.config.host, self.config.port), self.config.backlog)
        except OSError as exc:
            self.service.close()
            raise OSError(f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}") from None
        self.server.service = self.service
        # Examples written for this store unless the caller gives its own.
        self.server.page = render_page(self.config.examples or example_queries(store))
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
        self.service.close()

    def __enter__(self) -> SparqlEndpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
