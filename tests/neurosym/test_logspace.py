"""Log-space contraction: equal to a plain einsum, finite where every path is impossible."""

from __future__ import annotations

import torch

from neurosym import logspace


def test_contract_equals_einsum_in_linear_space():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 4, 5, generator=generator), torch.rand(5, 4, 6, generator=generator)
    got, names = logspace.contract(x.log(), ("a", "b", "c"), y.log(), ("c", "b", "d"), keep={"a", "d"})
    assert names == ("a", "d")
    assert torch.allclose(got.exp(), torch.einsum("abc,cbd->ad", x, y), rtol=1e-5)


def test_max_product_picks_the_best_joint_entry():
    x = torch.tensor([[0.0, -1.0], [-3.0, -0.5]])
    got, _ = logspace.reduce(x, ("a", "b"), keep={"a"}, semiring="max")
    assert got.tolist() == [0.0, -0.5]


def test_all_impossible_rows_keep_finite_gradients():
    x = torch.tensor([[logspace.IMPOSSIBLE, logspace.IMPOSSIBLE], [0.0, logspace.IMPOSSIBLE]], requires_grad=True)
    out = logspace.logsumexp(x, [1])
    assert logspace.is_impossible(out).tolist() == [True, False]
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(grad).all()
    # a plain -inf would have poisoned the gradient
    plain = torch.tensor([[float("-inf")] * 2], requires_grad=True)
    (bad,) = torch.autograd.grad(torch.logsumexp(plain, 1).sum(), plain)
    assert torch.isnan(bad).any()


def test_impossible_means_at_or_below_half_of_the_stand_in():
    """A sum that holds one ``IMPOSSIBLE`` term lands near it, whatever the finite terms add (they are
    far smaller); the threshold halfway keeps such sums apart from every possible value."""
    half = logspace.IMPOSSIBLE / 2
    values = torch.tensor([logspace.IMPOSSIBLE, half, half * 0.9, -1e4, 0.0], dtype=torch.float64)
    assert logspace.is_impossible(values).tolist() == [True, True, False, False, False]
