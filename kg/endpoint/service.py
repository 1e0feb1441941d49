"""What the SPARQL endpoint does with a request, HTTP aside: limits, queries, updates, status codes.

Every query passes ``kg.query.guard.check_query`` (size, nesting, SERVICE) in the request's thread
and is then evaluated by one of ``workers`` worker processes (``kg.query.worker_pool``), killed and
replaced at the deadline; requests beyond the workers wait for one, and the wait counts against
their time limit. Updates (``INSERT DATA`` only, with the token) are written to SQL in the request's
thread. Failures are ``HttpError``s with the status the SPARQL 1.1 Protocol asks for.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

import pyoxigraph as ox

from kg.rdf import vocab
from kg.endpoint.negotiation import HttpError, negotiate
from kg.errors import KGError, SparqlSyntaxError
from kg.query.guard import (
    QueryEvaluationError,
    QueryLimitError,
    QueryLimits,
    ResultTooLargeError,
    ServiceRefusedError,
    check_query,
)
from kg.query.worker_pool import QueryCrashError, QueryRunner, QueryTimeoutError
from kg.query.formats import serialize
from kg.query.evaluate import evaluate
from kg.store import Store

#: Graphs that SQL derives (rebuilt from tables): updates may not write into them.
DERIVED_GRAPHS = (vocab.RUN_BASE, vocab.INPUTS_GRAPH, vocab.RULES_GRAPHS)
#: Where ``INSERT DATA`` puts triples given outside any ``GRAPH`` block.
USER_GRAPH = vocab.GRAPH_BASE + "user"
TEXT = "text/plain; charset=utf-8"
#: The result kind of each query form, for content negotiation before evaluation.
RESULT_KINDS = {"select": "select", "ask": "ask", "construct": "graph", "describe": "graph"}


@dataclass
class EndpointConfig:
    """How the endpoint listens and what it allows; ``port=0`` picks a free port.

    ``workers`` query processes, ``backlog`` connections waiting to be accepted; ``allow_service``
    the hosts (``host`` or ``host:port``) that SERVICE clauses may call, none by default.
    """

    host: str = "127.0.0.1"
    port: int = 7878
    timeout_s: float = 30.0
    max_rows: int = 100_000
    max_body: int = 1 << 20
    workers: int = 4
    backlog: int = 1024
    allow_service: tuple[str, ...] = ()
    allow_updates: bool = False
    token: str | None = None
    log_requests: bool = False
    examples: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.allow_updates and not self.token:
            raise KGError("allow_updates needs a token (clients send it as 'Authorization: Bearer TOKEN')")
        for name in ("timeout_s", "max_rows", "max_body", "workers", "backlog"):
            if not getattr(self, name) > 0:
                raise KGError(f"endpoint {name} must be > 0, got {getattr(self, name)}")

    def limits(self) -> QueryLimits:
        return QueryLimits(max_chars=self.max_body, timeout_s=self.timeout_s, max_rows=self.max_rows,
                           allow_service=tuple(self.allow_service))


@dataclass
class Dataset:
    """The protocol's ``default-graph-uri`` and ``named-graph-uri`` parameters."""

    default: list[str] = field(default_factory=list)
    named: list[str] = field(default_factory=list)

    def options(self) -> dict | None:
        """pyoxigraph's dataset options, or None for the union of all graphs; 400 on a bad IRI."""
        for name, iris in (("default-graph-uri", self.default), ("named-graph-uri", self.named)):
            for iri in iris:
                try:
                    ox.NamedNode(iri)
                except ValueError as exc:
                    raise HttpError(400, f"{name} {iri!r} is not an absolute IRI: {exc}") from None
        if not self.default and not self.named:
            return None
        options: dict = {"default_graph": list(self.default)} if self.default else {"use_default_graph_as_union": True}
        if self.named:
            options["named_graphs"] = list(self.named)
        return options


class EndpointService:
    """Runs protocol operations against a ``Store`` with the endpoint's limits (thread-safe)."""

    def __init__(self, store: Store, config: EndpointConfig):
        self.store, self.config = store, config
        self.limits = config.limits()
        self.open_view()
        self.runner = QueryRunner(store.view, workers=config.workers, network=bool(config.allow_service))
        self.runner.warm_up()

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
        self.runner.close()

    def _sync(self) -> None:
        # The SQL store may be written by other processes while we serve: pick their writes up first.
        if self.store.auto_sync:
            self.store.sync_rdf()

    def query(self, text: str, dataset: Dataset, accept: str | None) -> tuple[str, bytes]:
        """Answer a query: (media type, body); raises ``HttpError``."""
        try:
            checked = check_query(text, self.limits, vocab.PREFIXES)
        except (QueryLimitError, ServiceRefusedError, SparqlSyntaxError) as exc:
            raise HttpError(400, str(exc)) from None
        if checked.form == "empty":
            raise HttpError(400, "empty query: the request carries no SPARQL operation (a query is sent as "
                                 "'query=' or as the body of an application/sparql-query POST)")
        if checked.form == "update":
            raise HttpError(400, "this is a SPARQL update: send it as 'update=' or application/sparql-update, "
                                 "not as a query")
        kind = RESULT_KINDS.get(checked.form)  # None: the engine will name what is wrong
        if kind is not None:
            media, fmt = negotiate(accept, kind)  # before any work: a 406 costs nothing
        options = dataset.options()
        try:
            result = evaluate(self.runner, text, self.limits, options, prepare=self._sync, sql_engine=self.store.engine)
        except (SparqlSyntaxError, QueryLimitError) as exc:
            raise HttpError(400, str(exc)) from None
        except ResultTooLargeError as exc:
            raise HttpError(422, str(exc).replace("; add", " (the endpoint's --max-rows); add")) from None
        except QueryTimeoutError as exc:
            raise HttpError(503, str(exc)) from None
        except QueryCrashError as exc:
            raise HttpError(500, str(exc)) from None
        except QueryEvaluationError as exc:  # an allowed SERVICE that failed is the other host's fault
            raise HttpError(502 if checked.services else 500, str(exc)) from None
        if kind is None:
            media, fmt = negotiate(accept, result.kind)
        return media, serialize(result, fmt).encode("utf-8")

    def update(self, text: str, authorization: str | None) -> tuple[str, bytes]:
        """Apply an ``INSERT DATA`` update (if allowed); (media type, body)."""
        if not self.config.allow_updates:
            raise HttpError(403, "updates are disabled on this endpoint (read-only); start it with "
                                 "--allow-updates and a token to accept INSERT DATA")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.config.token.encode()):
            raise HttpError(401, "updates need 'Authorization: Bearer TOKEN' with the endpoint's token",
                            {"WWW-Authenticate": 'Bearer realm="neurosym"'})
        try:
            checked = check_query(text, self.limits, vocab.PREFIXES)
        except (QueryLimitError, ServiceRefusedError, SparqlSyntaxError) as exc:
            raise HttpError(400, str(exc)) from None
        if checked.form == "empty":
            raise HttpError(400, "empty update: the request carries no SPARQL operation")
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
        return TEXT, f"inserted {added} new triple(s) into {len(by_graph)} graph(s)\n".encode()


def _parse_update(text: str):
    """rdflib's algebra of a SPARQL update with the project prefixes, or 400."""
    from rdflib.plugins.sparql.algebra import translateUpdate
    from rdflib.plugins.sparql.parser import parseUpdate

    try:
        return translateUpdate(parseUpdate(text), initNs=vocab.PREFIXES)
    except Exception as exc:
        raise HttpError(400, f"SPARQL update syntax error: {str(exc).splitlines()[0]}") from None
