"""Knowledge from the KG, not from code: a SPARQL SELECT's rows compiled into a training constraint.

The query's first A columns are the symbols of the A inputs of a tuple, its last column the label.
The input symbols of all columns form one vocabulary (code i of the concept layer is read as its
i-th entry); labels form another. Both are sorted in natural order of their IRIs ("n2" before
"n10"), so the same KG and query always give the same indices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor

from kg.store import Store
from neurosym.errors import ConfigError


def natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@dataclass(frozen=True)
class Relation:
    """Allowed tuples of a relation as indices into its vocabularies.

    Shapes: tuples ``[R, A + 1]`` int64 (input symbol indices, then the label index).
    """

    tuples: Tensor
    symbols: tuple[str, ...]
    labels: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def arity(self) -> int:
        return self.tuples.shape[1] - 1

    def symbol_index(self, entity: str) -> int:
        try:
            return self.symbols.index(entity)
        except ValueError:
            raise ConfigError(f"entity {entity} is not among the relation's {len(self.symbols)} symbols") from None


def compile_relation(columns: list[str], rows: list[tuple], query_name: str = "constraint query") -> Relation:
    """Turn SELECT rows (tuples of terms) into a Relation; errors name the query and the problem."""
    if len(columns) < 2:
        raise ConfigError(f"{query_name}: needs at least 2 columns (inputs..., label), got {len(columns)}: {columns}")
    if not rows:
        raise ConfigError(f"{query_name}: returned no rows, so no tuple is allowed; check the KG and the query")
    arity = len(columns) - 1
    clean = []
    for number, row in enumerate(rows, 1):
        if len(row) != len(columns) or any(term is None for term in row):
            raise ConfigError(
                f"{query_name}: row {number} has {sum(t is not None for t in row)} bound values, expected {len(columns)}"
                f" ({', '.join('?' + c for c in columns)})"
            )
        clean.append(tuple(str(term) for term in row))
    symbols = tuple(sorted({value for row in clean for value in row[:arity]}, key=natural_key))
    labels = tuple(sorted({row[-1] for row in clean}, key=natural_key))
    symbol_ids = {s: i for i, s in enumerate(symbols)}
    label_ids = {s: i for i, s in enumerate(labels)}
    table = torch.tensor(
        [[symbol_ids[v] for v in row[:arity]] + [label_ids[row[-1]]] for row in clean], dtype=torch.long
    )
    return Relation(tuples=torch.unique(table, dim=0), symbols=symbols, labels=labels, columns=tuple(columns))


def relation_from_store(store: Store, query: str, query_name: str = "constraint query") -> Relation:
    """Run the constraint query against the store's KG and compile its rows."""
    result = store.sparql(query)
    if result.kind != "select":
        raise ConfigError(f"{query_name}: must be a SELECT query, got {result.kind.upper()}")
    return compile_relation(list(result.vars), list(result.rows), query_name)


def dataset_symbols(labels: Tensor, relation, label_entity: str) -> Tensor:
    """Dataset labels ``[N]`` -> symbol indices ``[N]`` via ``label_entity`` (e.g. ``arith#n{label}``);
    ``relation`` is anything with the ``symbols`` vocabulary (a Relation or a compiled Program).

    Raises ConfigError naming the first label whose entity the relation (the KG) lacks.
    """
    table = {}
    for value in sorted(set(labels.tolist())):
        entity = label_entity.format(label=value)
        if entity not in relation.symbols:
            raise ConfigError(f"dataset label {value} maps to {entity}, which the KG's relation does not contain")
        table[value] = relation.symbols.index(entity)
    return torch.tensor([table[v] for v in labels.tolist()], dtype=torch.long)
