"""The one SPARQL lexer: the query guard's scan, the SQL subset's parser, syntax-error messages and the
placement of bindings all read a query through these tokens.

Each match names its kind (``match.lastgroup``): ``ws``, ``comment``, ``string``, ``short_string``,
``unclosed_long`` / ``unclosed`` (a string that never ends), ``iri``, ``var``, ``pname``, ``bnode``,
``word``, ``number``, ``open`` / ``close`` (any bracket) and ``punct``. Strings, comments and IRIs are
single tokens, so a bracket or a ``#`` inside them is never read as structure.
"""

from __future__ import annotations

import re

# The characters U+00B7 (U+00C0) to U+FFFF, written as the complement of the rest: a class that spans
# the range itself costs re 8 ms to compile (it fills a 64k-entry map in Python), and four of them were
# a tenth of the CLI's start-up; this form compiles in 0.3 ms and matches exactly the same characters.
_BMP_FROM_B7 = r"[^\x00-\u00B6\U00010000-\U0010FFFF]"
_BMP_FROM_C0 = r"[^\x00-\xBF\U00010000-\U0010FFFF]"

TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*''')
    |(?P<unclosed_long>\"\"\"|''')
    |(?P<short_string>"(?:[^"\\\n\r]|\\.)*"|'(?:[^'\\\n\r]|\\.)*')
    |(?P<unclosed>["'])
    |(?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
    |(?P<var>[?$](?:\w|{BMP_FROM_B7})+)
    |(?P<pname>(?:(?:[A-Za-z]|{BMP_FROM_C0})(?:[\w.\-]|{BMP_FROM_B7})*)?:(?:[\w\-:%]|{BMP_FROM_B7}|\\.|\.(?=[\w\-:%]))*)
    |(?P<bnode>_:(?:[\w.\-]|{BMP_FROM_B7})*)
    |(?P<word>[A-Za-z_]\w*)
    |(?P<number>[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)
    |(?P<open>[{(\[])
    |(?P<close>[})\]])
    |(?P<punct>&&|\|\||\^\^|!=|<=|>=|.)""".replace("{BMP_FROM_B7}", _BMP_FROM_B7).replace("{BMP_FROM_C0}", _BMP_FROM_C0),
    re.X | re.S,
)



def significant(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` of every token but white space and comments."""
    return [(m.lastgroup, m.group()) for m in TOKEN.finditer(text) if m.lastgroup not in ("ws", "comment")]
