"""The rule language: Horn rules over RDF-like triples, parsed into plain dataclasses.

Syntax (one statement per ``.``; ``#`` starts a comment outside IRIs and strings)::

    @prefix ex: <http://example.org/> .          # the project's prefixes (arith:, ...) are built in
    @predicate hasConcept .                      # declared: known even when no fact uses it
    @predicate follows <http://example.org/f> .  # declared alias for an IRI
    [transitive_subclass] subClassOf(?a, ?c) :- subClassOf(?a, ?b), subClassOf(?b, ?c).
    isa(?x, ?c) :- hasConcept(?x, ?e), type(?e, ?c).   # id defaults to "{file stem}:{line}"
    arith:Prime(ex:two).                                # a fact: a rule without body

Predicates: ``type``, ``subClassOf``, ``label`` are rdf:type, rdfs:subClassOf, rdfs:label; other bare
names resolve through ``@predicate`` aliases, else to the project vocabulary ``ns:``. Prefixed names
(``arith:Prime``) and ``<IRI>`` work as predicates and as constants; ``"text"`` is a plain-string
constant. A unary atom ``C(?x)`` means ``type(?x, C)``. Bare names are not allowed as constants
(write ``ns:Name``), so that a constant never silently lands in the wrong namespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kg.errors import KGError
from kg.rdf.vocab import PREFIXES

RDF = PREFIXES["rdf"]
RDFS = PREFIXES["rdfs"]
NS = PREFIXES["ns"]

#: Known without ``@prefix``: the project's prefixes (ns:, arith:, run:, input:, graph:, rdf:, rdfs:, ...).
DEFAULT_PREFIXES = dict(PREFIXES)
BUILTIN_PREDICATES = {"type": RDF + "type", "subClassOf": RDFS + "subClassOf", "label": RDFS + "label"}


class RuleError(KGError):
    """A rule or rule file is wrong: syntax, unbound head variable, unknown predicate, no fixpoint.

    ``source``, ``line`` and ``rule_id`` say where (each may be None when it does not apply).
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 rule_id: str | None = None):
        self.source, self.line, self.rule_id = source, line, rule_id
        where = f"{source or '<rules>'}:{line}: " if line is not None else (f"{source}: " if source else "")
        rule = f"rule [{rule_id}]: " if rule_id else ""
        super().__init__(f"{where}{rule}{message}")


@dataclass(frozen=True)
class Var:
    name: str  # without the leading '?'


@dataclass(frozen=True)
class Const:
    value: str           # an IRI, or the text of a plain-string literal
    literal: bool = False


Term = Var | Const


@dataclass(frozen=True)
class Atom:
    predicate: str               # full IRI
    args: tuple[Term, Term]      # (subject, object)

    @property
    def variables(self) -> list[str]:
        return [t.name for t in self.args if isinstance(t, Var)]


@dataclass(frozen=True)
class Rule:
    """``head :- body``. ``line`` and ``source`` locate it for error messages; they do not take
    part in equality, so a rule set printed and parsed again compares equal."""

    id: str
    head: Atom
    body: tuple[Atom, ...]
    line: int = field(default=0, compare=False)
    source: str = field(default="<rules>", compare=False)

    def error(self, message: str) -> RuleError:
        return RuleError(message, source=self.source, line=self.line, rule_id=self.id)


@dataclass
class RuleSet:
    rules: list[Rule]
    prefixes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PREFIXES))
    declared: dict[str, str] = field(default_factory=dict)  # short name -> predicate IRI
    source: str = "<rules>"

    def __iter__(self):
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __getitem__(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def to_text(self) -> str:
        """The rule set in the syntax above; ``parse_rules(rs.to_text()) == rs`` (up to lines)."""
        out = [f"@prefix {p}: <{iri}> ." for p, iri in self.prefixes.items()
               if DEFAULT_PREFIXES.get(p) != iri]
        out += [f"@predicate {name} <{iri}> ." for name, iri in self.declared.items()]
        out += [f"[{r.id}] {self._atom(r.head)}" + (" :- " + ", ".join(map(self._atom, r.body)) if r.body else "")
                + "." for r in self.rules]
        return "\n".join(out) + "\n"

    def _atom(self, atom: Atom) -> str:
        names = {**{iri: n for n, iri in BUILTIN_PREDICATES.items()}, **{iri: n for n, iri in self.declared.items()}}
        pred = names.get(atom.predicate) or self._iri(atom.predicate)
        return f"{pred}({', '.join(self._term(t) for t in atom.args)})"

    def _term(self, term: Term) -> str:
        if isinstance(term, Var):
            return "?" + term.name
        if term.literal:
            return '"' + term.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return self._iri(term.value)

    def _iri(self, iri: str) -> str:
        for p, ns in self.prefixes.items():
            if iri.startswith(ns) and re.fullmatch(r"[\w-]*", iri[len(ns):]):
                return f"{p}:{iri[len(ns):]}"
        return f"<{iri}>"


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r]+) | (?P<nl>\n) | (?P<comment>\#[^\n]*)
  | (?P<iri><[^<>"\s]*>)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<var>\?[A-Za-z_]\w*)
  | (?P<directive>@[A-Za-z]+)
  | (?P<implies>:-)
  | (?P<pname>[A-Za-z_][\w-]*:[\w-]*)
  | (?P<name>[A-Za-z_][\w-]*)
  | (?P<punct>[(),.\[\]])
""", re.VERBOSE)


@dataclass
class _Tok:
    kind: str
    text: str
    line: int


def _tokenize(text: str, source: str) -> list[_Tok]:
    toks, pos, line = [], 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise RuleError(f"unexpected character {text[pos]!r}", source=source, line=line)
        kind = m.lastgroup
        if kind == "nl":
            line += 1
        elif kind not in ("ws", "comment"):
            toks.append(_Tok(kind, m.group(), line))
        pos = m.end()
    toks.append(_Tok("eof", "end of file", line))
    return toks


class _Parser:
    def __init__(self, text: str, source: str):
        self.source = source
        self.stem = Path(source).stem or source
        self.toks = _tokenize(text, source)
        self.i = 0
        self.prefixes = dict(DEFAULT_PREFIXES)
        self.declared: dict[str, str] = {}

    # -- token helpers -------------------------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def fail(self, expected: str) -> RuleError:
        return RuleError(f"expected {expected}, found {self.tok.text!r}", source=self.source, line=self.tok.line)

    def take(self, kind: str, text: str | None = None, expected: str | None = None) -> _Tok:
        tok = self.tok
        if tok.kind != kind or (text is not None and tok.text != text):
            raise self.fail(expected or repr(text or kind))
        self.i += 1
        return tok

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    # -- grammar -------------------------------------------------------------------------------
    def parse(self) -> RuleSet:
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        while not self.at("eof"):
            if self.at("directive"):
                self.directive()
                continue
            rule = self.rule()
            if rule.id in seen:
                raise rule.error(f"duplicate rule id (first used on line {seen[rule.id]})")
            seen[rule.id] = rule.line
            rules.append(rule)
        return RuleSet(rules, self.prefixes, self.declared, self.source)

    def directive(self) -> None:
        tok = self.take("directive")
        if tok.text == "@prefix":
            name = self.take("pname", expected="a prefix such as 'ar:'").text
            if not name.endswith(":"):
                raise RuleError(f"expected a prefix ending in ':', found {name!r}", source=self.source, line=tok.line)
            self.prefixes[name[:-1]] = self.take("iri", expected="<IRI>").text[1:-1]
        elif tok.text == "@predicate":
            name = self.take("name", expected="a bare predicate name").text
            self.declared[name] = self.iri() if not self.at("punct", ".") else NS + name
        else:
            raise RuleError(f"unknown directive {tok.text!r} (expected @prefix or @predicate)",
                            source=self.source, line=tok.line)
        self.take("punct", ".", expected="'.' ending the directive")

    def rule(self) -> Rule:
        line = self.tok.line
        rule_id = f"{self.stem}:{line}"
        if self.at("punct", "["):
            self.i += 1
            rule_id = "".join(self.take(k).text for k in self._id_kinds())
            self.take("punct", "]", expected="']' closing the rule id")
        head, body = self.atom(), []
        if self.at("implies"):
            self.i += 1
            body.append(self.atom())
            while self.at("punct", ","):
                self.i += 1
                body.append(self.atom())
        self.take("punct", ".", expected="',' or '.' ending the rule" if body else "':-' or '.' ending the rule")
        rule = Rule(rule_id, head, tuple(body), line, self.source)
        bound = {v for atom in body for v in atom.variables}
        for v in head.variables:
            if v not in bound:
                raise rule.error(f"head variable ?{v} does not occur in the body (unbound head variable)")
        return rule

    def _id_kinds(self) -> list[str]:
        if self.tok.kind in ("name", "pname"):
            return [self.tok.kind]
        raise self.fail("a rule id such as [transitive_subclass]")

    def atom(self) -> Atom:
        tok = self.tok
        if tok.kind == "name":
            self.i += 1
            pred = BUILTIN_PREDICATES.get(tok.text) or self.declared.get(tok.text) or NS + tok.text
        elif tok.kind in ("pname", "iri"):
            pred = self.iri()
        else:
            raise self.fail("a predicate such as subClassOf, ar:successor or <IRI>")
        self.take("punct", "(", expected="'(' after the predicate")
        args = [self.term()]
        while self.at("punct", ","):
            self.i += 1
            args.append(self.term())
        self.take("punct", ")", expected="')' closing the atom (atoms take one or two arguments)")
        if len(args) == 1:  # class membership: C(?x) is type(?x, C)
            if tok.kind == "name" and tok.text in BUILTIN_PREDICATES:
                raise RuleError(f"{tok.text}(...) needs two arguments", source=self.source, line=tok.line)
            return Atom(BUILTIN_PREDICATES["type"], (args[0], Const(pred)))
        if len(args) != 2:
            raise RuleError(f"atom {tok.text}(...) has {len(args)} arguments; atoms take one or two",
                            source=self.source, line=tok.line)
        return Atom(pred, (args[0], args[1]))

    def term(self) -> Term:
        tok = self.tok
        if tok.kind == "var":
            self.i += 1
            return Var(tok.text[1:])
        if tok.kind == "string":
            self.i += 1
            return Const(re.sub(r"\\(.)", r"\1", tok.text[1:-1]), literal=True)
        if tok.kind in ("pname", "iri"):
            return Const(self.iri())
        if tok.kind == "name":
            raise RuleError(f"bare name {tok.text!r} as a constant; write ns:{tok.text}, a prefixed name or <IRI>",
                            source=self.source, line=tok.line)
        raise self.fail("a term: ?var, prefix:name, <IRI> or \"string\"")

    def iri(self) -> str:
        tok = self.tok
        self.i += 1
        if tok.kind == "iri":
            return tok.text[1:-1]
        if tok.kind == "pname":
            prefix, local = tok.text.split(":", 1)
            if prefix not in self.prefixes:
                raise RuleError(f"unknown prefix {prefix!r} in {tok.text!r} (declare it with @prefix)",
                                source=self.source, line=tok.line)
            return self.prefixes[prefix] + local
        self.i -= 1
        raise self.fail("a prefixed name or <IRI>")


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Parse rule text; ``source`` (a file name) appears in errors and default rule ids."""
    return _Parser(text, source).parse()


def load_rules(path: str | Path) -> RuleSet:
    """Parse a rule file."""
    path = Path(path)
    return parse_rules(path.read_text(encoding="utf-8"), source=str(path))
