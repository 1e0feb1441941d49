"""The compiled-query constraint: exact against brute force and against TupleConstraint, stable far below
float32's range, and its most probable explanation."""

from __future__ import annotations

import itertools

import pytest
import torch

from neurosym import logspace
from neurosym.constraint import TupleConstraint
from neurosym.errors import ConfigError, NonFiniteError, ShapeError
from neurosym.query_constraint import Factor, QueryConstraint


def digits_of_sum(digits: list[int], n: int) -> list[int]:
    total = int("".join(map(str, digits[:n]))) + int("".join(map(str, digits[n:])))
    return [int(c) for c in f"{total:0{n + 1}d}"]


@pytest.mark.parametrize("relation", ["addition", "maximum"])
def test_one_factor_query_equals_tuple_constraint_in_loss_and_gradient(relation):
    combine = (lambda a, b: a + b) if relation == "addition" else max
    tuples = [(a, b, combine(a, b)) for a in range(10) for b in range(10)]
    labels_count = 19 if relation == "addition" else 10
    table = torch.zeros((10, 10, labels_count), dtype=torch.bool)
    table[tuple(torch.tensor(tuples).T)] = True
    query = QueryConstraint([Factor("r", ("a", "b", "y"), table)],
                            {"a": 10, "b": 10, "y": labels_count}, ["a", "b"], ["y"])
    flat = TupleConstraint(tuples, num_symbols=10)
    log_probs = torch.randn(16, 2, 10, generator=torch.Generator().manual_seed(1)).log_softmax(-1).requires_grad_()
    labels = torch.tensor([combine(a, b) for a, b in torch.randint(0, 10, (16, 2)).tolist()])
    loss_query, loss_flat = query(log_probs, labels), flat(log_probs, labels)
    (grad_query,) = torch.autograd.grad(loss_query, log_probs)
    (grad_flat,) = torch.autograd.grad(loss_flat, log_probs)
    assert loss_query.item() == pytest.approx(loss_flat.item(), rel=1e-5)
    assert torch.allclose(grad_query, grad_flat, atol=1e-6)


def test_carry_chain_equals_brute_force_sum_over_digit_tuples(adder_chain):
    query = adder_chain(2)
    log_probs = torch.randn(3, 4, 10, generator=torch.Generator().manual_seed(2)).log_softmax(-1)
    labels = torch.tensor([digits_of_sum(d, 2) for d in ([1, 7, 4, 5], [9, 9, 9, 9], [0, 3, 0, 4])])
    got = query.log_likelihood(log_probs, labels)
    for b in range(3):
        terms = [sum(log_probs[b, j, d[j]] for j in range(4))
                 for d in itertools.product(range(10), repeat=4) if digits_of_sum(list(d), 2) == labels[b].tolist()]
        assert got[b].item() == pytest.approx(torch.logsumexp(torch.stack(terms), 0).item(), abs=1e-4)


@pytest.mark.parametrize("semiring", ["sum", "max"])
def test_stacked_alike_steps_equal_the_plan_step_by_step(adder_chain, semiring):
    query, generator = adder_chain(6), torch.Generator().manual_seed(5)
    log_probs = torch.randn(4, 12, 10, generator=generator).log_softmax(-1).requires_grad_()
    labels = query.predict(torch.randn(4, 12, 10, generator=generator).log_softmax(-1))
    operands = query._operands(log_probs, labels, [])
    key = (semiring, "test")
    assert any(len(group) > 1 for wave in query._waves(operands, key) for group in wave)  # the adders' steps
    stacked = query._contract(operands, key, semiring, 4)
    work = list(operands)  # the same plan, one step at a time
    for step, needed in query._plan(operands, key):
        picked = [work[i] for i in step]
        for i in sorted(step, reverse=True):
            work.pop(i)
        work.append(query._step(picked, needed, semiring))
    (alone, names), = work
    alone = logspace.reduce(alone, names, {"__batch__"}, semiring)[0]
    assert torch.allclose(stacked, alone, atol=1e-5)
    (grad_stacked,) = torch.autograd.grad(stacked.sum(), log_probs, retain_graph=True)
    (grad_alone,) = torch.autograd.grad(alone.sum(), log_probs)
    assert torch.allclose(grad_stacked, grad_alone, atol=1e-6)


@pytest.mark.parametrize("semiring", ["sum", "max"])
def test_a_step_joining_three_operands_keeps_what_a_later_operand_shares(semiring):
    # i is shared by the 1st and 3rd operands only: joining the 2nd must not reduce it yet.
    generator = torch.Generator().manual_seed(7)
    x, y, z = (torch.randn(*shape, generator=generator) for shape in [(2, 3), (2, 4), (2, 3, 4)])
    picked = [(x, ("b", "i")), (y, ("b", "j")), (z, ("b", "i", "j"))]
    joint = x[:, :, None] + y[:, None, :] + z  # [b, i, j]
    for needed, expected in [({"b"}, joint.flatten(1)), ({"b", "j"}, joint.transpose(1, 2))]:
        expected = torch.logsumexp(expected, -1) if semiring == "sum" else expected.amax(-1)
        got, names = QueryConstraint._step(picked, needed, semiring)
        assert names == QueryConstraint._step_indices([n for _, n in picked], needed)
        assert names == tuple(sorted(needed))
        assert torch.allclose(got, expected, atol=1e-6)


def test_fifteen_digits_confidently_wrong_stays_finite_far_below_float32(adder_chain):
    n, generator = 15, torch.Generator().manual_seed(3)
    query = adder_chain(n)
    digits = torch.randint(0, 10, (8, 2 * n), generator=generator)
    confident = torch.nn.functional.one_hot(digits, 10).float().mul(30).log_softmax(-1).requires_grad_()
    other = torch.randint(0, 10, (8, 2 * n), generator=generator)
    labels = torch.tensor([digits_of_sum(row, n) for row in other.tolist()])
    log_p = query.log_likelihood(confident, labels)
    assert torch.isfinite(log_p).all() and (log_p < -230).all()  # P < 1e-100, not rounded to 0
    (grad,) = torch.autograd.grad(log_p.sum(), confident)
    assert torch.isfinite(grad).all()


def test_impossible_paths_give_finite_gradients(adder_chain):
    # Digit 9 + 9 cannot give a last digit of 0 without a carry in; half the paths are impossible.
    query = adder_chain(1)
    log_probs = torch.full((1, 2, 10), -1e4)
    log_probs[0, :, 9] = 0.0
    log_probs[0, 0, 1] = -1.0
    log_probs = log_probs.log_softmax(-1).requires_grad_()
    loss = query(log_probs, torch.tensor([[1, 0]]))  # 10 = 1 + 9 only
    (grad,) = torch.autograd.grad(loss, log_probs)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_unexplainable_label_is_a_clear_error(adder_chain):
    with pytest.raises(NonFiniteError, match="no assignment that explains it"):
        adder_chain(1)(torch.full((1, 2, 10), -1e31), torch.tensor([[1, 9]]))


def test_most_probable_explanation_is_the_sum_of_the_argmax_digits(adder_chain):
    n = 4
    query = adder_chain(n)
    log_probs = torch.randn(32, 2 * n, 10, generator=torch.Generator().manual_seed(4)).log_softmax(-1)
    predicted = query.predict(log_probs)
    expected = [digits_of_sum(row, n) for row in log_probs.argmax(-1).tolist()]
    assert predicted.tolist() == expected
    explanation = query.explain(log_probs, predicted)
    assert [explanation.values[f"a{i}"] for i in reversed(range(n))][0].tolist() == log_probs[:, 0].argmax(-1).tolist()
    assert not logspace.is_impossible(explanation.log_prob).any()


def test_bad_shapes_and_labels_name_the_problem(adder_chain):
    query = adder_chain(2)
    with pytest.raises(ShapeError, match=r"expected \[B, 4, 10\]"):
        query(torch.zeros(2, 3, 10), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ShapeError, match="one value per label variable"):
        query(torch.zeros(2, 4, 10).log_softmax(-1), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ConfigError, match="outside"):
        query(torch.zeros(2, 4, 10).log_softmax(-1), torch.full((2, 3), 12))
    with pytest.raises(NonFiniteError, match="NaN"):
        query(torch.full((2, 4, 10), float("nan")), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match="occurs in no relation"):
        QueryConstraint([Factor("r", ("a", "y"), torch.ones(2, 2, dtype=torch.bool))], {"a": 2, "y": 2}, ["b"], ["y"])
    with pytest.raises(ConfigError, match="no rows"):
        Factor("r", ("a",), torch.zeros(3, dtype=torch.bool))
