"""Disjoint groups of inputs labelled through a compiled query: the multi-digit addition protocol.

The training inputs are shuffled once by the seed and cut into disjoint groups of A inputs (for
N-digit addition A = 2N: the first N digits are number 1, the next N number 2); so are the test
inputs. Each group's label is what the world gives: the evidence values of the query's explanation
of the group's hidden symbols (for addition, the digits of the sum), computed by the same compiled
query with the hidden symbols as certain inputs. The model sees only the inputs and the label.

Shape legend: N inputs, G groups, A inputs per group, E label positions, K codes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurosym.errors import ConfigError
from neurosym.metrics import hungarian_map, mapped_accuracy
from neurosym.query_constraint import QueryConstraint
from neurosym.regrounding import best_code_order, is_identity
from neurosym.tasks import Augment, SymbolData, check_divisible, encode_codes, member_log_probs

HUNGARIAN_INPUTS = 10_000  # training inputs used to fit the best-case code -> symbol map
REGROUND_INPUTS = 1_024  # training inputs whose groups' labels choose a code order (seconds on a CPU)
REGROUND_MIN_GAIN = 0.05  # nats per group a new order must explain better than the current one
CHECK_GROUPS = 512  # training groups whose labels the trap check asks the model to reproduce


def label_groups(constraint: QueryConstraint, symbols: Tensor, groups: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Labels of groups whose hidden symbols are known. Shapes: symbols ``[N]``, groups ``[G, A]`` ->
    labels ``[G', E]`` and the kept groups ``[G', A]`` (groups the query cannot explain are dropped)."""
    labels, kept = [], []
    for part in groups.split(chunk):
        certain = F.one_hot(symbols[part], constraint.num_symbols).float().log()  # (g, A, K): 0 or -inf
        explanation = constraint.explain(certain)
        possible = torch.isfinite(explanation.log_prob)
        labels.append(torch.stack([explanation.values[v] for v in constraint.evidence], 1)[possible])
        kept.append(part[possible])
    return torch.cat(labels), torch.cat(kept)


def disjoint_groups(count: int, arity: int, generator: torch.Generator) -> Tensor:
    """``[count // arity, arity]``: a seeded shuffle of ``range(count)`` cut into groups (rest dropped)."""
    order = torch.randperm(count, generator=generator)
    return order[: count - count % arity].reshape(-1, arity)


def group_indices(train_count: int, test_count: int, arity: int, seed: int) -> tuple[Tensor, Tensor]:
    """The seed's disjoint training and test groups, unlabelled: ``[G_train, A]``, ``[G_test, A]``."""
    generator = torch.Generator().manual_seed(seed)
    return disjoint_groups(train_count, arity, generator), disjoint_groups(test_count, arity, generator)


class GroupTask:
    """Learn concepts from group labels through a ``QueryConstraint`` (the fit loop's ``Task``).

    ``label_acc`` is the share of test groups whose predicted label (from the model's most probable
    explanation) equals the true one in every position; concept accuracy is measured on every test
    input, grounded (code i = symbol i) and best case (Hungarian map on training inputs).
    """

    def __init__(self, train: SymbolData, test: SymbolData, constraint: QueryConstraint, seed: int = 0,
                 aux_weight: float = 1.0, augment: Augment | None = None) -> None:
        self.train, self.test, self.constraint = train, test, constraint
        self.arity, self.num_codes = constraint.arity, constraint.num_symbols
        self.aux_weight, self.augment = aux_weight, augment
        if int(train.symbols.max()) >= self.num_codes or int(test.symbols.max()) >= self.num_codes:
            raise ConfigError(f"dataset symbols must be below the {self.num_codes} codes of the query's inputs")
        train_groups, test_groups = group_indices(len(train.symbols), len(test.symbols), self.arity, seed)
        self.train_labels, self.train_groups = label_groups(constraint, train.symbols, train_groups)
        self.test_labels, self.test_groups = label_groups(constraint, test.symbols, test_groups)
        if not len(self.train_groups) or not len(self.test_groups):
            raise ConfigError(f"no group of {self.arity} inputs has a label the query explains "
                              f"({len(train.symbols)} training and {len(test.symbols)} test inputs)")

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-len(self.train_groups) // batch_size)

    def constraint_on(self, device: torch.device) -> QueryConstraint:
        return self.constraint.to(device)

    def batches(self, epoch: int, generator: torch.Generator, batch_size: int, rank: int = 0, world: int = 1):
        """Every group once per epoch, in an order drawn from ``generator``; under torchrun each rank
        takes every ``world``-th group of each batch."""
        check_divisible("train.batch_size", batch_size, world)
        order = torch.randperm(len(self.train_groups), generator=generator)
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size][rank::world]
            inputs = self.train.inputs[self.train_groups[chosen].reshape(-1)]  # (b * A, ...)
            if self.augment is not None:
                inputs = self.augment(inputs, generator)
            yield inputs, self.train_labels[chosen]

    def loss(self, model: nn.Module, batch, device: torch.device) -> Tensor:
        inputs, labels = batch  # (b * A, ...), (b, E)
        log_probs, aux = member_log_probs(model, inputs, self.arity, device)
        return self.constraint_on(device)(log_probs, labels.to(device, non_blocking=True)) + self.aux_weight * aux

    def reground(self, model: nn.Module, device: torch.device) -> Tensor | None:
        """The code order ``[K]`` (new code j = old code ``order[j]``) under which the model's concept
        distributions best explain a fixed sample of training groups' labels, or None if that is the
        order it has (see ``neurosym.regrounding``). Deterministic: every rank of a run finds the same."""
        count = max(1, min(len(self.train_groups), REGROUND_INPUTS // self.arity))
        was_training = model.training
        model.eval()
        with torch.no_grad():
            log_probs = encode_codes(model, self.train.inputs[self.train_groups[:count].reshape(-1)], device)[1]
            log_probs = log_probs[:, 0, :].reshape(count, self.arity, -1)  # (G, A, K)
            labels, constraint = self.train_labels[:count], self.constraint.to("cpu")
        order, _ = best_code_order(constraint.log_likelihood, log_probs, labels)
        with torch.no_grad():
            gain = (constraint.log_likelihood(log_probs[..., order], labels)
                    - constraint.log_likelihood(log_probs, labels)).mean()
        self.constraint.to(device)
        model.train(was_training)
        return None if is_identity(order) or not gain > REGROUND_MIN_GAIN else order

    def check_groups(self) -> tuple[Tensor, Tensor]:
        """The fixed slice of training groups the trap check reads: members ``[G, A]``, labels ``[G, E]``
        (the last ``CHECK_GROUPS``; re-grounding reads the first ones)."""
        count = min(len(self.train_groups), CHECK_GROUPS)
        return self.train_groups[-count:], self.train_labels[-count:]

    def explained_share(self, model: nn.Module, device: torch.device) -> float:
        """The share of a fixed slice of *training* groups whose label the model's most probable
        explanation reproduces in every position: how well the knowledge, read through the model's
        symbols, explains the labels it was trained on (the figure the trap verdict rests on).

        Trained-on groups, not held-out ones: the question is whether training found an explanation
        of its own labels, and holding groups out would take data from the protocol.
        """
        groups, labels = self.check_groups()
        was_training = model.training
        model.eval()
        with torch.no_grad():
            log_probs = encode_codes(model, self.train.inputs[groups.reshape(-1)], device)[1]
        model.train(was_training)
        predicted = self.predicted_labels(log_probs[:, 0, :].reshape(len(groups), self.arity, -1), device)
        return float((predicted == labels).all(1).double().mean())

    def predicted_labels(self, grouped: Tensor, device: torch.device) -> Tensor:
        """The label of each group's most probable explanation: ``[G, A, K]`` -> ``[G, E]`` (on the CPU,
        in chunks; the constraint goes back to ``device``)."""
        predicted = torch.cat([self.constraint.to("cpu").predict(part) for part in grouped.split(4096)])
        self.constraint.to(device)
        return predicted

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        test_codes, test_log_probs = encode_codes(model, self.test.inputs, device)
        train_codes = encode_codes(model, self.train.inputs[:HUNGARIAN_INPUTS], device)[0][:, 0]
        predicted = self.predicted_labels(test_log_probs[:, 0, :][self.test_groups], device)  # from (G, A, K)
        mapping = hungarian_map(train_codes, self.train.symbols[:HUNGARIAN_INPUTS], self.num_codes, self.num_codes)
        return {
            "label_acc": float((predicted == self.test_labels).all(1).double().mean()),
            "concept_acc": mapped_accuracy(test_codes[:, 0], self.test.symbols),
            "concept_acc_hungarian": mapped_accuracy(test_codes[:, 0], self.test.symbols, mapping),
            "train_explained": self.explained_share(model, device),
        }
