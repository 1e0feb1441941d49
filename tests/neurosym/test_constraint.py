import itertools

import pytest
import torch

from neurosym.constraint import TupleConstraint
from neurosym.errors import ConfigError, NonFiniteError, ShapeError

ADDITION = [(a, b, a + b) for a in range(4) for b in range(4)]


def brute_force_log_prob(log_probs, tuples, label):
    total = 0.0
    for *symbols, y in tuples:
        if y == label:
            total += float(sum(log_probs[j, s] for j, s in enumerate(symbols)).exp())
    return torch.tensor(total).log()


def test_exact_loss_equals_the_brute_force_sum():
    torch.manual_seed(0)
    constraint = TupleConstraint(ADDITION)
    log_probs = torch.randn(5, 2, 4).log_softmax(-1)
    labels = torch.tensor([0, 3, 6, 2, 4])
    expected = -torch.stack([brute_force_log_prob(log_probs[b], ADDITION, labels[b]) for b in range(5)]).mean()
    assert constraint(log_probs, labels).item() == pytest.approx(expected.item(), rel=1e-5)


def test_label_distribution_sums_to_one_and_predicts_the_likeliest_label():
    constraint = TupleConstraint(ADDITION)
    log_probs = torch.randn(3, 2, 4).log_softmax(-1)
    dist = constraint.label_log_probs(log_probs).exp()
    assert torch.allclose(dist.sum(-1), torch.ones(3), atol=1e-5)
    certain = torch.full((1, 2, 4), -30.0)
    certain[0, 0, 2] = certain[0, 1, 3] = 0.0
    assert constraint.predict(certain.log_softmax(-1)).item() == 5


def test_nothing_about_the_relation_is_built_in():
    # The same code learns from any relation: here "label = (a * b) mod 3" over three inputs.
    tuples = [(a, b, c, (a * b * c) % 3) for a, b, c in itertools.product(range(3), repeat=3)]
    constraint = TupleConstraint(tuples)
    log_probs = torch.randn(4, 3, 3).log_softmax(-1)
    labels = torch.tensor([0, 1, 2, 0])
    expected = -torch.stack([brute_force_log_prob(log_probs[b], tuples, labels[b]) for b in range(4)]).mean()
    assert constraint(log_probs, labels).item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_pushes_toward_allowed_tuples():
    constraint = TupleConstraint(ADDITION)
    logits = torch.zeros(1, 2, 4, requires_grad=True)
    constraint(logits.log_softmax(-1), torch.tensor([0])).backward()
    # Only (0, 0) sums to 0: the gradient raises symbol 0 in both slots and lowers the others.
    assert (logits.grad[0, :, 0] < 0).all() and (logits.grad[0, :, 1:] > 0).all()


def test_beam_approximation_matches_exact_when_the_beam_covers_all_symbols():
    log_probs = torch.randn(6, 2, 4).log_softmax(-1)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    exact = TupleConstraint(ADDITION)
    beam = TupleConstraint(ADDITION, exact_limit=1, beam=4)
    assert not beam.exact
    assert beam(log_probs, labels).item() == pytest.approx(exact(log_probs, labels).item(), rel=1e-5)
    narrow = TupleConstraint(ADDITION, exact_limit=1, beam=2)
    peaked = torch.full((1, 2, 4), -20.0)
    peaked[0, 0, 1] = peaked[0, 1, 2] = 0.0
    assert narrow(peaked.log_softmax(-1), torch.tensor([3])).item() == pytest.approx(0.0, abs=1e-4)


def test_chunked_evaluation_equals_one_chunk():
    log_probs = torch.randn(3, 2, 4).log_softmax(-1)
    labels = torch.tensor([1, 4, 6])
    whole = TupleConstraint(ADDITION)(log_probs, labels)
    chunked = TupleConstraint(ADDITION, chunk_size=3)(log_probs, labels)
    assert whole.item() == pytest.approx(chunked.item(), rel=1e-6)


def test_bad_inputs_raise_clear_errors():
    constraint = TupleConstraint(ADDITION)
    with pytest.raises(ShapeError, match=r"expected \[B, 2, 4\]"):
        constraint(torch.randn(3, 3, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match="labels must be in"):
        constraint(torch.randn(1, 2, 4).log_softmax(-1), torch.tensor([99]))
    with pytest.raises(ConfigError, match="no allowed tuples"):
        TupleConstraint(torch.zeros(0, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"\[R, A \+ 1\]"):
        TupleConstraint([1, 2, 3])
    sparse = TupleConstraint([(0, 0, 0), (1, 1, 2)], num_labels=3)
    with pytest.raises(NonFiniteError, match="no allowed tuple"):
        sparse(torch.randn(1, 2, 2).log_softmax(-1), torch.tensor([1]))
