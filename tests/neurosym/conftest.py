"""Fixtures of the neural half's tests."""

from __future__ import annotations

import pytest
import torch

from neurosym.query_constraint import Factor, QueryConstraint
from neurosym.tasks import RelationTask, SymbolData

ADDITION = torch.tensor([(a, b, a + b) for a in range(4) for b in range(4)])


def make_tiny_task(num: int = 48, tuples_per_epoch: int = 64):
    generator = torch.Generator().manual_seed(0)
    symbols = torch.randint(0, 4, (num,), generator=generator)
    # Symbol k lights quadrant k of a noisy image: learnable in a few steps, not trivially constant.
    templates = torch.zeros(4, 8, 8)
    for k in range(4):
        templates[k, 4 * (k // 2):4 * (k // 2) + 4, 4 * (k % 2):4 * (k % 2) + 4] = 1.0
    images = templates[symbols] + 0.2 * torch.rand(num, 8, 8, generator=generator)
    data = SymbolData(images, symbols)
    return RelationTask(data, data, ADDITION, num_codes=4, tuples_per_epoch=tuples_per_epoch, test_tuples=32)


@pytest.fixture
def tiny_task():
    """``tiny_task(num=48, tuples_per_epoch=64)``: 4 symbols drawn as image quadrants, their sums as labels."""
    return make_tiny_task


class LossOverride:
    """A task whose ``loss`` is ``loss(model, batch, device)``; everything else is ``base``'s."""

    def __init__(self, base, loss):
        self.base, self.loss = base, loss

    def __getattr__(self, name):
        return getattr(self.base, name)


@pytest.fixture
def loss_override():
    return LossOverride


def relation_table(tuples: list[tuple[int, ...]], sizes: tuple[int, ...]) -> torch.Tensor:
    table = torch.zeros(sizes, dtype=torch.bool)
    for row in tuples:
        table[row] = True
    return table


def full_adder() -> torch.Tensor:
    rows = [(a, b, c, (a + b + c) % 10, (a + b + c) // 10) for a in range(10) for b in range(10) for c in range(2)]
    return relation_table(rows, (10, 10, 2, 10, 2))


def chain(n: int) -> QueryConstraint:
    """N full adders through latent carries; c0 fixed to 0 by slicing its axis; label = sum digits."""
    adder = full_adder()
    factors = [Factor(f"fa{i}", (f"a{i}", f"b{i}", f"c{i}", f"s{i}", f"c{i + 1}"), adder[:, :, :1] if i == 0 else adder)
               for i in range(n)]
    domains = {f"{v}{i}": size for i in range(n) for v, size in (("a", 10), ("b", 10), ("s", 10), ("c", 2))}
    domains |= {"c0": 1, f"c{n}": 2}
    inputs = [f"a{i}" for i in reversed(range(n))] + [f"b{i}" for i in reversed(range(n))]
    return QueryConstraint(factors, domains, inputs, [f"c{n}"] + [f"s{i}" for i in reversed(range(n))])


@pytest.fixture
def adder_chain():
    """``adder_chain(n)``: the N-digit addition constraint, N full adders through latent carries."""
    return chain
