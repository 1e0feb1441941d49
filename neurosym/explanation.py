"""What the model concluded about each group of inputs: its label, and the value of every variable of the
knowledge behind it, with a probability; and, where the true symbols are known, what they imply.

The values are the most probable explanation given the predicted label (max-product,
``QueryConstraint.explain``), so that they reproduce that label through the relations by construction.
The predicted label is the task's own prediction: the label of the most probable explanation for a
program (``GroupTask``), or each label position's most probable value for a flat relation
(``TupleConstraint.predict``, whose label is a sum over tuples).

The probability of a value is its marginal ``P(variable = value | inputs)`` under the same knowledge
(sum-product, ``QueryConstraint.marginals``), not the max-marginal. Max-marginals normalised over a
variable's values are no probability of anything (a carry's two max-marginals say which completion is
best, not how likely the carry is); the marginal is: for an input variable it is the concept layer's
own probability of that symbol (the relations of addition are functions of the inputs, so conditioning
on them adds nothing), for a carry the chance that the digits the model reads produce it. The value
of the explanation is not always the argmax of its marginal (the best joint completion need not be
built of the best single values): a low probability beside a value says where the model is unsure.

Shape legend: B groups, A inputs per group, K codes, E label positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from neurosym.errors import ConfigError
from neurosym.query_constraint import QueryConstraint


@dataclass
class GroupExplanations:
    """Shapes: ``values``/``probability``/``true_values`` map every variable to ``[B]`` (value
    indices into its domain, float probabilities); ``predicted``/``true_labels`` ``[B, E]``;
    ``correct`` ``[B]`` bool. The ``true_*`` fields and ``correct`` are None when the truth is unknown."""

    values: dict[str, Tensor]
    probability: dict[str, Tensor]
    predicted: Tensor
    true_values: dict[str, Tensor] | None = None
    true_labels: Tensor | None = None
    correct: Tensor | None = None


def explain_groups(constraint: QueryConstraint, log_probs: Tensor, label_from: str = "mpe",
                   true_symbols: Tensor | None = None, true_labels: Tensor | None = None,
                   chunk: int = 4096) -> GroupExplanations:
    """Explain B groups: ``log_probs`` ``[B, A, K]`` (each member's concept log-probabilities);
    ``true_symbols`` ``[B, A]`` and ``true_labels`` ``[B, E]`` (or ``[B]``) when known.

    ``label_from``: ``mpe`` (the label of the most probable explanation) or ``marginal`` (each label
    position's most probable value).
    """
    if label_from not in ("mpe", "marginal"):
        raise ConfigError(f"label_from must be 'mpe' or 'marginal', got {label_from!r}")
    if true_symbols is not None and true_symbols.shape != log_probs.shape[:2]:
        raise ConfigError(f"true_symbols: expected {list(log_probs.shape[:2])}, got {list(true_symbols.shape)}")
    parts = []
    for start in range(0, log_probs.shape[0], chunk):
        stop = start + chunk
        parts.append(_explain_chunk(constraint, log_probs[start:stop], label_from,
                                    None if true_symbols is None else true_symbols[start:stop],
                                    None if true_labels is None else true_labels[start:stop]))
    return _concat(parts) if len(parts) != 1 else parts[0]


def _explain_chunk(constraint: QueryConstraint, log_probs: Tensor, label_from: str,
                   true_symbols: Tensor | None, true_labels: Tensor | None) -> GroupExplanations:
    marginals = constraint.marginals(log_probs)  # variable -> (b, domain)
    if label_from == "mpe":  # the most probable explanation is the one given its own label: one max-product pass
        values = constraint.explain(log_probs).values
        predicted = torch.stack([values[v] for v in constraint.evidence], 1)
        values = _decode(constraint, log_probs, predicted, values)
    else:
        predicted = torch.stack([marginals[v].nan_to_num(-1.0).argmax(-1) for v in constraint.evidence], 1)
        values = _decode(constraint, log_probs, predicted)
    probability = {v: marginals[v].gather(1, values[v].unsqueeze(1)).squeeze(1) for v in values}
    out = GroupExplanations(values, probability, predicted)
    if true_symbols is not None:
        certain = F.one_hot(true_symbols, constraint.num_symbols).float().log()  # (b, A, K): 0 or -inf
        out.true_values = constraint.explain(certain, true_labels).values
        out.true_labels = torch.stack([out.true_values[v] for v in constraint.evidence], 1)
        out.correct = (predicted == out.true_labels).all(1)
    return out


def consistent(constraint: QueryConstraint, values: dict[str, Tensor]) -> Tensor:
    """``[B]``: whether the values satisfy every relation of the query (each factor holds the fact)."""
    ok = torch.ones(next(iter(values.values())).shape[0], dtype=torch.bool)
    for names, table in zip(constraint.variables, constraint.tables()):
        ok &= table[tuple(values[v] for v in names)] == 0
    return ok


def _decode(constraint: QueryConstraint, log_probs: Tensor, labels: Tensor, values: dict[str, Tensor] | None = None,
            tries: int = 3) -> dict[str, Tensor]:
    """The most probable explanation given ``labels``, made consistent where the derivative trick is not.

    Under an exact tie (the same image twice in a pair: (3, 5) and (5, 3) are equally probable) the
    gradient of the max is split between the tied assignments, and reading each variable's argmax
    separately can mix them into values that break a relation. Those rows are decoded again with the
    inputs' log-probabilities nudged by a fixed pattern of at most ``1e-4 * try`` nats, which breaks
    exact ties and leaves every other ranking as it was.
    """
    values = dict(values) if values is not None else constraint.explain(log_probs, labels).values
    generator = torch.Generator().manual_seed(0)
    for attempt in range(1, tries + 1):
        bad = ~consistent(constraint, values)
        if not bool(bad.any()):
            break
        nudge = 1e-4 * attempt * torch.rand(log_probs.shape[1:], generator=generator)  # (A, K)
        again = constraint.explain(log_probs[bad] + nudge, labels[bad]).values
        for v in values:
            values[v] = values[v].clone()
            values[v][bad] = again[v]
    return values


def _concat(parts: list[GroupExplanations]) -> GroupExplanations:
    def cat(name: str):
        first = getattr(parts[0], name)
        if first is None:
            return None
        if isinstance(first, dict):
            return {v: torch.cat([getattr(p, name)[v] for p in parts]) for v in first}
        return torch.cat([getattr(p, name) for p in parts])

    return GroupExplanations(cat("values"), cat("probability"), cat("predicted"), cat("true_values"),
                             cat("true_labels"), cat("correct"))
