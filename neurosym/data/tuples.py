"""Inputs grouped into tuples whose label comes from a relation, e.g. image pairs labelled by a sum.

The label of a tuple of inputs with hidden symbols ``(s_1, .., s_A)`` is looked up in the relation's
allowed tuples, as the world would give it: the relation must be functional in its inputs (one label
per symbol combination). The model only ever sees the inputs and this label.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurosym.errors import ConfigError


def label_table(tuples: Tensor, num_symbols: int) -> Tensor:
    """Allowed tuples ``[R, A + 1]`` -> dense lookup ``[K] * A`` of labels (-1 where no tuple).

    Raises ConfigError if two tuples give the same inputs different labels.
    """
    arity = tuples.shape[1] - 1
    table = torch.full((num_symbols,) * arity, -1, dtype=torch.long)
    index = tuple(tuples[:, i] for i in range(arity))
    table[index] = tuples[:, -1]
    if (table[index] != tuples[:, -1]).any():
        raise ConfigError("the relation gives more than one label to the same inputs; labels need a function")
    return table


def sample_tuples(num_inputs: int, count: int, arity: int, generator: torch.Generator) -> Tensor:
    """``[count, arity]`` random input indices in ``[0, num_inputs)``."""
    return torch.randint(num_inputs, (count, arity), generator=generator)


def tuple_labels(symbols: Tensor, members: Tensor, table: Tensor) -> Tensor:
    """Labels of input tuples. Shapes: symbols ``[N]``, members ``[P, A]`` -> ``[P]`` (-1: not in relation)."""
    hidden = symbols[members]  # (P, A)
    return table[tuple(hidden[:, i] for i in range(hidden.shape[1]))]


def labelled_tuples(
    symbols: Tensor, count: int, tuples: Tensor, num_symbols: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Draw ``count`` input tuples whose hidden symbols the relation covers.

    Shapes: symbols ``[N]`` (hidden symbol index of each input) -> members ``[count, A]``, labels ``[count]``.
    """
    table = label_table(tuples, num_symbols)
    arity = tuples.shape[1] - 1
    members_parts, label_parts, have = [], [], 0
    for _ in range(100):
        members = sample_tuples(symbols.shape[0], max(count, 64), arity, generator)
        labels = tuple_labels(symbols, members, table)
        keep = labels >= 0
        members_parts.append(members[keep])
        label_parts.append(labels[keep])
        have += int(keep.sum())
        if have >= count:
            break
    if have < count:
        raise ConfigError("the relation covers too few symbol combinations of the inputs to draw tuples")
    return torch.cat(members_parts)[:count], torch.cat(label_parts)[:count]
