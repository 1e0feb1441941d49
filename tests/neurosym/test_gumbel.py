import math

import pytest
import torch

from neurosym.concepts import GumbelConcepts, TemperatureSchedule, gumbel_softmax_sample, straight_through
from neurosym.errors import ConfigError, ShapeError


def test_straight_through_forwards_hard_and_backpropagates_soft():
    soft = torch.tensor([0.2, 0.7, 0.1], requires_grad=True)
    hard = torch.tensor([0.0, 1.0, 0.0])
    out = straight_through(hard, soft)
    assert torch.equal(out.detach(), hard)
    (out * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(soft.grad, torch.tensor([1.0, 2.0, 3.0]))


def test_gumbel_sample_is_one_hot_when_hard_and_a_distribution_when_soft():
    logits = torch.randn(32, 4, 7)
    hard = gumbel_softmax_sample(logits, tau=0.5, hard=True)
    # Straight-through adds and subtracts the soft sample: equal to one-hot up to rounding.
    one_hot = torch.nn.functional.one_hot(hard.argmax(-1), 7).float()
    assert torch.allclose(hard, one_hot, atol=1e-6)
    soft = gumbel_softmax_sample(logits, tau=0.5, hard=False)
    assert torch.allclose(soft.sum(-1), torch.ones(32, 4))
    assert ((soft > 0) & (soft < 1)).any()


def test_gumbel_samples_follow_the_softmax_at_temperature_one():
    logits = torch.tensor([[math.log(0.7), math.log(0.2), math.log(0.1)]]).expand(20000, 3)
    torch.manual_seed(0)
    freq = gumbel_softmax_sample(logits, tau=1.0).mean(0)
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.02)


@pytest.mark.parametrize("tau", [0.0, -1.0])
def test_non_positive_temperature_is_rejected(tau):
    with pytest.raises(ConfigError, match="temperature"):
        gumbel_softmax_sample(torch.randn(2, 3), tau=tau)
    with pytest.raises(ConfigError, match="temperature start"):
        TemperatureSchedule(kind="constant", start=tau)


def test_codebook_smaller_than_two_is_rejected():
    with pytest.raises(ConfigError, match="num_codes must be >= 2, got 1"):
        GumbelConcepts(8, 1)


@pytest.mark.parametrize("kind", ["constant", "exponential", "cosine"])
def test_schedules_start_and_end_where_configured(kind):
    schedule = TemperatureSchedule(kind=kind, start=2.0, end=0.5, steps=100)
    assert schedule(0) == pytest.approx(2.0)
    assert schedule(100) == pytest.approx(2.0 if kind == "constant" else 0.5)
    assert schedule(10_000) == schedule(100)
    if kind != "constant":
        assert schedule(0) > schedule(30) > schedule(70) > schedule(100)


def test_layer_anneals_temperature_per_step():
    layer = GumbelConcepts(8, 5, schedule=TemperatureSchedule("exponential", 1.0, 0.25, 10))
    layer.set_step(5)
    assert layer.temperature == pytest.approx(0.5)


def test_gradients_reach_the_encoder_through_hard_samples():
    encoder = torch.nn.Linear(6, 8)
    layer = GumbelConcepts(8, 5, hard=True)
    out = layer(encoder(torch.randn(4, 3, 6)).view(4, 3, 8))
    (out.quantized ** 2).sum().backward()
    assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0
    assert layer.embedding.grad.abs().sum() > 0


def test_inference_is_deterministic_argmax():
    layer = GumbelConcepts(8, 5).eval()
    x = torch.randn(16, 2, 8)
    first, second = layer(x), layer(x)
    assert torch.equal(first.codes, second.codes)
    assert torch.equal(first.codes, layer.to_logits(x).argmax(-1))
    assert torch.equal(first.probs, torch.nn.functional.one_hot(first.codes, 5).float())


def test_output_shapes_and_usage_statistics():
    layer = GumbelConcepts(8, 5, code_dim=3)
    out = layer(torch.randn(7, 2, 8))
    assert out.codes.shape == (7, 2) and out.codes.dtype == torch.int64
    assert out.probs.shape == out.log_probs.shape == (7, 2, 5)
    assert out.quantized.shape == (7, 2, 3)
    assert layer.usage.counts.sum() == 14
    assert 0 < layer.usage.usage() <= 1 and 1 <= layer.usage.perplexity() <= 5


def test_wrong_input_shape_names_the_expected_shape():
    with pytest.raises(ShapeError, match=r"expected shape \[B, S, D\]"):
        GumbelConcepts(8, 5)(torch.randn(4, 8))
    with pytest.raises(ShapeError, match="dim 2 = 8"):
        GumbelConcepts(8, 5)(torch.randn(4, 1, 9))
