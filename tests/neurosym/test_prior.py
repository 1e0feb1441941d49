import pytest
import torch

from neurosym.errors import ConfigError
from neurosym.prior import CodePrior, PriorConfig


def tiny_prior(**overrides) -> CodePrior:
    return CodePrior(PriorConfig(**(dict(num_codes=7, num_slots=5, d_model=16, n_heads=2, n_layers=1) | overrides)))


def test_samples_have_the_right_shape_and_code_range():
    prior = tiny_prior().eval()
    codes = prior.sample(9, generator=torch.Generator().manual_seed(0))
    assert codes.shape == (9, 5) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 7
    again = prior.sample(9, generator=torch.Generator().manual_seed(0))
    assert torch.equal(codes, again)


def test_prediction_is_causal():
    prior = tiny_prior(dropout=0.0).eval()
    codes = torch.randint(0, 7, (2, 5))
    changed = codes.clone()
    changed[:, 3] = (changed[:, 3] + 1) % 7
    # Position s predicts code s from codes < s: changing code 3 leaves positions 0..3 unchanged.
    assert torch.allclose(prior(codes)[:, :4], prior(changed)[:, :4], atol=1e-6)
    assert not torch.allclose(prior(codes)[:, 4], prior(changed)[:, 4])


def test_prior_learns_a_deterministic_sequence():
    torch.manual_seed(0)
    prior = tiny_prior(dropout=0.0)
    data = torch.tensor([[1, 2, 3, 4, 5], [6, 5, 4, 3, 2]]).repeat(16, 1)
    optimizer = torch.optim.Adam(prior.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        loss = prior.loss(data)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5  # log 2 = 0.69 is the floor of the first code's coin flip... plus nothing else
    samples = prior.eval().sample(20, temperature=0.5, generator=torch.Generator().manual_seed(1))
    rows = {tuple(r) for r in samples.tolist()}
    assert rows <= {(1, 2, 3, 4, 5), (6, 5, 4, 3, 2)}


def test_bad_codes_and_settings_are_named():
    prior = tiny_prior()
    with pytest.raises(ConfigError, match="codes have 6 slots, the prior models 5"):
        prior(torch.zeros(1, 6, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"codes must lie in \[0, 7\)"):
        prior.loss(torch.full((1, 5), 7))
    with pytest.raises(ConfigError, match="temperature"):
        prior.sample(2, temperature=0)
    with pytest.raises(ConfigError, match="top_k"):
        prior.sample(2, top_k=8)
