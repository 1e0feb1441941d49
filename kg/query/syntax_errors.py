"""One line for a SPARQL syntax error: the engine's message shaped for a person.

Oxigraph's parser reports where it stopped and every alternative it could have taken there, its
character classes included (``expected one of Prefix not found, ['%'], ['-' | '0' ..= '9' |
'\\u{00B7}' ...``): five lines of Unicode ranges for a query that only lacks a ``PREFIX``. Here the
message keeps its position and the first clause a person can act on:

- an undeclared prefix (which the parser reports as ``Prefix not found`` among the alternatives, or
  not at all when another alternative got further): its name, the line and column where it is used,
  and how to declare it;
- else a sentence the parser gave among the alternatives (``The query limit should be a non negative
  integer``);
- else the keywords and punctuation it expected (character classes dropped), and what it found.

The engine's whole message stays on the error as ``detail``, which the CLI prints under ``--debug``.
"""

from __future__ import annotations

import re

from kg.errors import SparqlSyntaxError
from kg.query.lexer import TOKEN

_POSITION = re.compile(r"^error at (\d+):(\d+): (.*)$", re.S)
_SHOWN = 8  #: expected alternatives shown before the rest is cut


def syntax_error(text: str, message: str, prefixes: dict[str, str]) -> SparqlSyntaxError:
    """The project's error for the engine's syntax error ``message`` on query ``text``, whose
    predeclared ``prefixes`` the engine was given."""
    undeclared = first_undeclared_prefix(text, prefixes)
    if undeclared is not None:
        name, pname, line, column = undeclared
        known = ", ".join(f"{p}:" for p in sorted(prefixes))
        return SparqlSyntaxError(
            f"SPARQL syntax error at line:column {line}:{column}: undeclared prefix '{name}:' in {pname}; "
            f"declare it (PREFIX {name}: <IRI>) or use a predeclared one ({known})", detail=message)
    match = _POSITION.match(message)
    if match is None:
        return SparqlSyntaxError(f"SPARQL syntax error: {message.splitlines()[0]}", detail=message)
    line, column, rest = int(match[1]), int(match[2]), match[3]
    return SparqlSyntaxError(f"SPARQL syntax error at line:column {line}:{column}: {_first_clause(rest)}"
                             f"{_found(text, line, column)}", detail=message)


def _first_clause(rest: str) -> str:
    """``expected one of A, B, [class], ...`` -> a sentence among them, else ``expected one of A, B``."""
    body = re.sub(r"^expected (one of )?", "", rest.replace("\n", " "))
    body = re.sub(r"\[[^\[\]]*(\[[^\[\]]*\][^\[\]]*)*\]", "", body)  # character classes, ['[' ..] included
    alternatives = [a.strip() for a in body.split(", ") if a.strip()]
    sentences = [a for a in alternatives if " " in a and not a.startswith('"')]
    if sentences:
        return sentences[0][0].lower() + sentences[0][1:]
    if not alternatives:
        return "unexpected text"
    shown = ", ".join(alternatives[:_SHOWN]) + (", ..." if len(alternatives) > _SHOWN else "")
    return f"expected {'one of ' if len(alternatives) > 1 else ''}{shown}"


def _found(text: str, line: int, column: int) -> str:
    """``; found 'x'`` for the text at the (1-based) position, or ``; found the end of the query``."""
    lines = text.split("\n")
    if line > len(lines) or (line == len(lines) and column > len(lines[-1])):
        return "; found the end of the query"
    token = re.match(r"\S{1,20}", lines[line - 1][column - 1:] if column >= 1 else "")
    return f"; found '{token.group()}'" if token else ""


def first_undeclared_prefix(text: str, prefixes: dict[str, str]) -> tuple[str, str, int, int] | None:
    """``(prefix, prefixed name, line, column)`` of the first prefixed name whose prefix is neither in
    ``prefixes`` nor declared by a ``PREFIX`` before it, or None. Strings, IRIs and comments are
    skipped (the lexer of ``kg.query.guard``)."""
    declared = set(prefixes)
    previous: list[str] = []
    for match in TOKEN.finditer(text):
        kind = match.lastgroup
        if kind in ("ws", "comment"):
            continue
        value = match.group()
        if kind == "pname":
            name = value.partition(":")[0]
            if previous[-1:] == ["PREFIX"]:
                declared.add(name)
            elif name not in declared:
                line = text.count("\n", 0, match.start()) + 1
                column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
                return name, value, line, column
        previous = [value.upper() if kind == "word" else value]
    return None
