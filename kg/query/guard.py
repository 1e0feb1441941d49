"""Checks a SPARQL text must pass before it reaches the query engine: size, nesting, SERVICE, its form.

Oxigraph parses and evaluates recursively, so a query nested or chained deeply enough (about 5,000
levels of ``{``, or 10,000 ``UNION`` branches, on an 8 MiB stack) overflows the stack and kills the
process with SIGSEGV. Those queries are refused here, from a lexical scan that costs microseconds on
ordinary queries: at most ``max_chars`` characters, ``max_tokens`` tokens and ``max_depth`` levels of
brackets. Every deep algebra tree needs one token per level, so the token bound bounds the depth of
the engine's recursion too; evaluation then runs on a 256 MiB stack (``kg/query/worker.py``), which
holds over 20,000 levels.

The same scan finds ``SERVICE`` clauses: a query may only name endpoints on the ``allow_service``
list (``host`` or ``host:port``), and by default the list is empty, so that nobody can make the
store send requests to other hosts (server-side request forgery). A variable endpoint
(``SERVICE ?e``) or a relative IRI is always refused: its host is not known before evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from kg.errors import KGError, SparqlSyntaxError
from kg.query.lexer import TOKEN
from kg.query.syntax_errors import syntax_error

#: Keywords that open a SPARQL query or update (after the BASE/PREFIX prologue).
QUERY_WORDS = frozenset({"SELECT", "ASK", "CONSTRUCT", "DESCRIBE"})
UPDATE_WORDS = frozenset({"INSERT", "DELETE", "LOAD", "CLEAR", "CREATE", "DROP", "COPY", "MOVE", "ADD", "WITH"})


class QueryLimitError(KGError):
    """A query over the size or nesting limits; refused before the engine sees it."""


class ResultTooLargeError(KGError):
    """A result with more rows (or triples) than ``max_rows``."""


class QueryEvaluationError(KGError):
    """The engine failed while evaluating a query (e.g. an allowed SERVICE endpoint did not answer)."""


class ServiceRefusedError(KGError):
    """A query with a ``SERVICE`` clause naming an endpoint that is not on the allow-list."""


class QueryTimeoutError(KGError):
    """A query ran past its time limit; its work was stopped."""


class QueryCrashError(KGError):
    """The query engine died on a query (the process that ran it is gone; nothing was changed)."""


def timeout_message(timeout_s: float | None) -> str:
    """What a user reads when a query ran out of time (the same words on every path)."""
    return (f"query exceeded the time limit of {timeout_s:g} s and was stopped; narrow it (LIMIT, more "
            "specific patterns) or allow more time (--timeout)")


def result_too_large(max_rows: int, counted: str = "rows") -> ResultTooLargeError:
    """The error for a result over ``max_rows`` (the same words on every path)."""
    return ResultTooLargeError(f"result has more than {max_rows} {counted}; add a LIMIT or narrow the query")


def engine_error(reason: str, message: str, max_rows: int | None, text: str = "",
                 prefixes: dict[str, str] | None = None) -> KGError:
    """The project's error for an engine's ``("error", reason, message)`` answer (``kg/query/worker.py``):
    ``reason`` is ``syntax``, ``rows`` (what was counted: rows or triples) or ``eval``. A syntax error
    is one line (``kg.query.syntax_errors``), which needs the query ``text`` and the engine's ``prefixes``."""
    if reason == "syntax":
        return syntax_error(text, message, prefixes or {})
    if reason == "rows":
        return result_too_large(max_rows, message)
    return QueryEvaluationError(f"SPARQL evaluation failed: {message}")


@dataclass(frozen=True)
class QueryLimits:
    """What one query may cost: text size and nesting (checked before evaluation), time, result size,
    and the hosts its ``SERVICE`` clauses may call (none by default).

    ``timeout_s`` and ``max_rows`` of ``None`` mean no limit.
    """

    max_chars: int = 1 << 20
    max_tokens: int = 20_000
    max_depth: int = 64
    timeout_s: float | None = 60.0
    max_rows: int | None = None
    allow_service: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_tokens", "max_depth", "timeout_s", "max_rows"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise KGError(f"query limit {name} must be > 0, got {value}")
        object.__setattr__(self, "allow_service", tuple(h.strip().lower() for h in self.allow_service if h.strip()))


@dataclass(frozen=True)
class QueryText:
    """What the scan learned: ``form`` is ``select``, ``ask``, ``construct``, ``describe``, ``update``,
    ``empty`` (no operation at all) or ``unknown`` (the engine will say what is wrong); ``services``
    the endpoint IRIs named in ``SERVICE`` clauses (all allowed)."""

    form: str
    services: tuple[str, ...] = ()


def check_query(text: str, limits: QueryLimits, prefixes: dict[str, str] | None = None) -> QueryText:
    """Scan ``text``; raise ``QueryLimitError`` or ``ServiceRefusedError``, else say what it is."""
    if len(text) > limits.max_chars:
        raise QueryLimitError(f"query is {len(text)} characters long; the limit is {limits.max_chars}")
    tokens = _tokens(text, limits)
    declared = dict(prefixes or {})
    form, i = "empty", 0
    while i < len(tokens):  # the prologue: BASE <iri> and PREFIX p: <iri>
        word = tokens[i][1].upper() if tokens[i][0] == "word" else ""
        if word == "PREFIX" and i + 2 < len(tokens) and tokens[i + 1][0] == "pname" and tokens[i + 2][0] == "iri":
            declared[tokens[i + 1][1][:-1]] = tokens[i + 2][1][1:-1]
            i += 3
        elif word == "BASE" and i + 1 < len(tokens):
            i += 2
        else:
            form = "update" if word in UPDATE_WORDS else word.lower() if word in QUERY_WORDS else "unknown"
            break
    services = tuple(_services(tokens, declared, limits.allow_service))
    return QueryText(form=form, services=services)


def _tokens(text: str, limits: QueryLimits) -> list[tuple[str, str]]:
    """(kind, text) of each token but blanks and comments, within the token and depth limits."""
    tokens: list[tuple[str, str]] = []
    depth = 0
    for match in TOKEN.finditer(text):
        kind = match.lastgroup
        if kind in ("ws", "comment"):
            continue
        if kind in ("unclosed", "unclosed_long"):
            # Stop here: scanning on from every later quote would cost time quadratic in the length.
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            raise SparqlSyntaxError(f"SPARQL syntax error at line:column {line}:{column}: unterminated string")
        if kind == "open":
            depth += 1
            if depth > limits.max_depth:
                raise QueryLimitError(f"query nests brackets more than {limits.max_depth} levels deep "
                                      f"(the limit); rewrite it flatter")
        elif kind == "close":
            depth = max(depth - 1, 0)
        tokens.append((kind, match.group()))
        if len(tokens) > limits.max_tokens:
            raise QueryLimitError(f"query has more than {limits.max_tokens} tokens (the limit); split it, "
                                  "or pass long lists of values in several queries")
    return tokens


def _services(tokens: list[tuple[str, str]], prefixes: dict[str, str], allowed: tuple[str, ...]):
    """The endpoint IRI of each ``SERVICE`` clause, refusing those not on the allow-list."""
    for i, (kind, value) in enumerate(tokens):
        if kind == "word" and value.upper() == "PREFIX" and i + 2 < len(tokens) and tokens[i + 1][0] == "pname":
            prefixes.setdefault(tokens[i + 1][1][:-1], tokens[i + 2][1][1:-1])
        if kind != "word" or value.upper() != "SERVICE":
            continue
        j = i + 1
        if j < len(tokens) and tokens[j][0] == "word" and tokens[j][1].upper() == "SILENT":
            j += 1
        target = tokens[j] if j < len(tokens) else ("end", "")
        iri = _resolve(target, prefixes)
        if not allowed:
            raise ServiceRefusedError(
                f"SERVICE {target[1]} refused: this store sends no requests to other hosts "
                "(an operator may allow some with --allow-service HOST)")
        if iri is None:
            raise ServiceRefusedError(f"SERVICE {target[1]} refused: the endpoint must be an absolute http(s) IRI, "
                                      "not a variable or a relative IRI")
        url = urlsplit(iri)
        host = (url.hostname or "").lower()
        port = url.port or (443 if url.scheme == "https" else 80)
        if host not in allowed and f"{host}:{port}" not in allowed:
            raise ServiceRefusedError(f"SERVICE <{iri}> refused: host {host}:{port} is not on the allow-list "
                                      f"({', '.join(allowed)})")
        yield iri


def _resolve(token: tuple[str, str], prefixes: dict[str, str]) -> str | None:
    """The absolute http(s) IRI a SERVICE target names, or None (a variable, relative or odd IRI)."""
    kind, value = token
    if kind == "iri":
        iri = value[1:-1]
    elif kind == "pname":
        prefix, _, local = value.partition(":")
        if prefix not in prefixes:
            return None
        iri = prefixes[prefix] + re.sub(r"\\(.)", r"\1", local)
    else:
        return None
    try:
        url = urlsplit(iri)
        url.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return iri if url.scheme in ("http", "https") and url.hostname else None
