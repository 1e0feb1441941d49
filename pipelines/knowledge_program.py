"""Knowledge as a conjunctive query over KG relations, compiled into a ``QueryConstraint``.

The ``[task.knowledge]`` section of an experiment names relations (each a SPARQL SELECT over the
store; its columns, in order, are the relation's arguments) and joins them in atoms over variables.
Some variables are bound to the inputs of an example, some to its label; the rest are latent::

    [task.knowledge]
    params = { n = 4 }
    relations = { full_adder = "queries/full_adder.rq" }     # ?a ?b ?carry_in ?digit ?carry_out
    atoms = ["full_adder(?a{i}, ?b{i}, ?c{i}, ?s{i}, ?c{i+1}) for i in range(n)"]
    constants = { c0 = "arith:n0" }
    inputs = ["?a{n-1-i} for i in range(n)", "?b{n-1-i} for i in range(n)"]
    label = ["?c{n}", "?s{n-1-i} for i in range(n)"]

An entry ending in ``for NAME in range(...)`` is repeated for each value; ``{...}`` inside it is an
integer expression over that name and ``params`` (``+ - * // %``, integers). Entities are full IRIs or
prefixed names with the project's prefixes.

Vocabularies: every input variable ranges over the *symbols* (the union of the entities that the
relations allow for any of them, in natural order: code i of the concept layer is symbol i); every
label variable over the *labels* (likewise); a latent variable over the entities its columns allow.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import torch

from kg.store import Store
from kg.rdf.vocab import PREFIXES
from neurosym.errors import ConfigError
from neurosym.query_constraint import Factor, QueryConstraint
from pipelines.knowledge import natural_key

LOOP = re.compile(r"^(?P<body>.*?)\s+for\s+(?P<name>[A-Za-z_]\w*)\s+in\s+range\((?P<args>[^()]*)\)\s*$")
ATOM = re.compile(r"^(?P<name>[A-Za-z_][\w-]*)\s*\((?P<terms>.*)\)$")
VARIABLE = re.compile(r"^\?[A-Za-z_]\w*$")
_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
              ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}


@dataclass(frozen=True)
class Atom:
    relation: str
    variables: tuple[str, ...]


@dataclass(frozen=True)
class Program:
    """A compiled knowledge program: the constraint and the vocabularies its indices refer to."""

    constraint: QueryConstraint
    symbols: tuple[str, ...]
    labels: tuple[str, ...]
    atoms: tuple[Atom, ...]
    #: each variable's values: index i of its axis is entity ``domains[v][i]`` (None: an unused code)
    domains: dict[str, tuple[str | None, ...]] = field(default_factory=dict)
    #: each relation's column names (its SELECT's variables), for naming what a variable stands for
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def arity(self) -> int:
        return self.constraint.arity


def _evaluate(expression: str, scope: dict[str, int], where: str) -> int:
    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in scope:
            return scope[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        raise ConfigError(f"{where}: {expression!r} is not an integer expression over {sorted(scope)}")

    try:
        return walk(ast.parse(expression.strip(), mode="eval"))
    except (SyntaxError, ZeroDivisionError):
        raise ConfigError(f"{where}: {expression!r} is not an integer expression over {sorted(scope)}") from None


def expand(entries: list[str], params: dict[str, int], where: str) -> list[str]:
    """Expand ``... for i in range(...)`` entries and substitute ``{expression}`` templates."""
    out = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ConfigError(f"{where}: entries must be strings, got {entry!r}")
        loop = LOOP.match(entry.strip())
        if loop:
            bounds = [_evaluate(arg, params, where) for arg in loop["args"].split(",")]
            if not 1 <= len(bounds) <= 3:
                raise ConfigError(f"{where}: range() takes 1 to 3 arguments in {entry!r}")
            scopes = [params | {loop["name"]: value} for value in range(*bounds)]
            body = loop["body"]
        else:
            scopes, body = [params], entry.strip()
        for scope in scopes:
            out.append(re.sub(r"\{([^{}]*)\}", lambda m: str(_evaluate(m[1], scope, where)), body))
    return out


def _variable(text: str, where: str) -> str:
    text = text.strip()
    if not VARIABLE.match(text):
        raise ConfigError(f"{where}: {text!r} is not a variable (write ?name)")
    return text[1:]


def parse_atoms(entries: list[str]) -> list[Atom]:
    atoms = []
    for entry in entries:
        match = ATOM.match(entry)
        if not match:
            raise ConfigError(f"task.knowledge.atoms: {entry!r} is not an atom like relation(?x, ?y)")
        terms = [_variable(term, f"task.knowledge.atoms: {entry!r}") for term in match["terms"].split(",")]
        atoms.append(Atom(match["name"], tuple(terms)))
    if not atoms:
        raise ConfigError("task.knowledge.atoms: the query has no atoms")
    return atoms


def expand_entity(text: str) -> str:
    """A full IRI (``<...>`` or bare) or a prefixed name with a project prefix."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        return text[1:-1]
    prefix, colon, local = text.partition(":")
    if colon and prefix in PREFIXES and not local.startswith("//"):
        return str(PREFIXES[prefix]) + local
    return text


def relation_rows(store: Store, name: str, query: str, arity: int) -> tuple[list[tuple[str, ...]], tuple[str, ...]]:
    """The rows of one relation's SELECT, as entity strings, and its column names; errors name the relation."""
    result = store.sparql(query)
    if result.kind != "select":
        raise ConfigError(f"relation {name}: its query must be a SELECT, got {result.kind.upper()}")
    if len(result.vars) != arity:
        raise ConfigError(f"relation {name}: its query has {len(result.vars)} columns "
                          f"({', '.join('?' + str(v) for v in result.vars)}), the atoms use {arity} arguments")
    rows = []
    for number, row in enumerate(result.rows, 1):
        if any(term is None for term in row):
            unbound = [f"?{v}" for v, term in zip(result.vars, row) if term is None]
            raise ConfigError(f"relation {name}: row {number} leaves {', '.join(unbound)} unbound")
        rows.append(tuple(str(term) for term in row))
    if not rows:
        raise ConfigError(f"relation {name}: its query returned no rows; check the KG and the query")
    return rows, tuple(str(v) for v in result.vars)


def compile_program(atoms: list[Atom], rows: dict[str, list[tuple[str, ...]]], inputs: list[str],
                    label: list[str], constants: dict[str, str], num_codes: int,
                    columns: dict[str, tuple[str, ...]] | None = None) -> Program:
    """Build the factor tables over the variables' vocabularies (see the module docstring)."""
    variables = {v for atom in atoms for v in atom.variables}
    for role, names in (("input", inputs), ("label", label), ("constant", list(constants))):
        for name in names:
            if name not in variables:
                raise ConfigError(f"task.knowledge: {role} variable ?{name} occurs in no atom")
    if not inputs or not label:
        raise ConfigError("task.knowledge: needs at least one input variable and one label variable")
    seen: dict[str, set[str]] = {v: set() for v in variables}
    for atom in atoms:
        for position, variable in enumerate(atom.variables):
            seen[variable].update(row[position] for row in rows[atom.relation])
    for variable, entity in constants.items():
        if variable in inputs or variable in label:
            raise ConfigError(f"task.knowledge.constants: ?{variable} is an input or label variable, not a latent one")
        if entity not in seen[variable]:
            raise ConfigError(f"task.knowledge.constants: ?{variable} = {entity}, which no relation allows there")
        seen[variable] = {entity}
    symbols = tuple(sorted(set().union(*(seen[v] for v in inputs)), key=natural_key))
    labels = tuple(sorted(set().union(*(seen[v] for v in label)), key=natural_key))
    if len(symbols) > num_codes:
        raise ConfigError(f"model.concept.num_codes = {num_codes} is smaller than the {len(symbols)} symbols "
                          f"the input variables range over")
    domains = {v: sorted(values, key=natural_key) for v, values in seen.items()}
    domains.update({v: list(symbols) + [None] * (num_codes - len(symbols)) for v in inputs})
    domains.update({v: list(labels) for v in label})
    factors = [_factor(f"{atom.relation}#{n}", atom, rows[atom.relation], domains) for n, atom in enumerate(atoms)]
    constraint = QueryConstraint(factors, {v: len(d) for v, d in domains.items()}, inputs, label)
    return Program(constraint, symbols, labels, tuple(atoms), {v: tuple(d) for v, d in domains.items()},
                   dict(columns or {}))


def _factor(name: str, atom: Atom, rows: list[tuple[str, ...]], domains: dict[str, list]) -> Factor:
    unique = tuple(dict.fromkeys(atom.variables))
    index = {v: {entity: i for i, entity in enumerate(domains[v]) if entity is not None} for v in unique}
    table = torch.zeros([len(domains[v]) for v in unique], dtype=torch.bool)
    for row in rows:
        cell: dict[str, int] = {}
        for variable, entity in zip(atom.variables, row):
            position = index[variable].get(entity)
            if position is None or cell.setdefault(variable, position) != position:
                break  # outside a constant's value, or a repeated variable with two values
        else:
            table[tuple(cell[v] for v in unique)] = True
    if not bool(table.any()):
        raise ConfigError(f"atom {atom.relation}({', '.join('?' + v for v in atom.variables)}): "
                          "no row of the relation fits its variables and constants")
    return Factor(name, unique, table)


def program_from_store(store: Store, knowledge, relation_queries: dict[str, str], num_codes: int) -> Program:
    """Expand the ``[task.knowledge]`` section, run each relation's query, compile the constraint.

    ``relation_queries`` maps each relation name to its SPARQL text (read from files by the caller).
    """
    params = dict(knowledge.params)
    atoms = parse_atoms(expand(knowledge.atoms, params, "task.knowledge.atoms"))
    unknown = sorted({atom.relation for atom in atoms} - set(relation_queries))
    if unknown:
        raise ConfigError(f"task.knowledge.atoms use relation(s) {', '.join(unknown)}, which "
                          f"task.knowledge.relations does not define (it has {', '.join(sorted(relation_queries))})")
    arities: dict[str, int] = {}
    for atom in atoms:
        if arities.setdefault(atom.relation, len(atom.variables)) != len(atom.variables):
            raise ConfigError(f"relation {atom.relation} is used with {arities[atom.relation]} and "
                              f"{len(atom.variables)} arguments")
    answers = {name: relation_rows(store, name, relation_queries[name], arity) for name, arity in arities.items()}
    rows = {name: answer[0] for name, answer in answers.items()}
    inputs = [_variable(v, "task.knowledge.inputs") for v in expand(knowledge.inputs, params, "task.knowledge.inputs")]
    label = [_variable(v, "task.knowledge.label") for v in expand(knowledge.label, params, "task.knowledge.label")]
    constants = {name.lstrip("?"): expand_entity(entity) for name, entity in knowledge.constants.items()}
    return compile_program(atoms, rows, inputs, label, constants, num_codes,
                           {name: answer[1] for name, answer in answers.items()})
