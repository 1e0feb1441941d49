"""NaN or infinity reaching a concept layer or the constraint in training: one NonFiniteError naming
the layer, and no state (an EMA codebook above all) updated from the bad batch."""

from __future__ import annotations

import pytest
import torch

from neurosym.concepts import GumbelConcepts, VectorQuantizer
from neurosym.concepts.continuous import ContinuousConcepts
from neurosym.constraint import TupleConstraint
from neurosym.errors import NonFiniteError

LAYERS = {
    "GumbelConcepts": lambda: GumbelConcepts(dim=8, num_codes=4),
    "VectorQuantizer": lambda: VectorQuantizer(dim=8, num_codes=4, ema=True),
    "VectorQuantizer-grad": lambda: VectorQuantizer(dim=8, num_codes=4, ema=False, data_init=True),
    "ContinuousConcepts": lambda: ContinuousConcepts(dim=8),
}


def _poisoned(value: float) -> torch.Tensor:
    x = torch.randn(6, 2, 8)
    x[3, 1, 5] = value
    return x


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_refuses_non_finite_input_in_training_and_keeps_its_state(name, value):
    torch.manual_seed(0)
    layer = LAYERS[name]().train()
    layer(torch.randn(6, 2, 8))  # one good step: EMA, recent states and data init all in play
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    with pytest.raises(NonFiniteError, match=f"^{type(layer).__name__}: its input holds NaN or infinity"):
        layer(_poisoned(value))
    after = layer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "state changed by a refused batch"
    out = layer(torch.randn(6, 2, 8))
    assert torch.isfinite(out.quantized).all() and torch.isfinite(out.log_probs).all()


def test_ema_codebook_never_takes_a_nan_batch():
    torch.manual_seed(0)
    vq = VectorQuantizer(dim=8, num_codes=16, ema=True).train()
    for step in range(20):
        batch = _poisoned(float("nan")) if step % 5 == 4 else torch.randn(6, 2, 8)
        try:
            vq(batch)
        except NonFiniteError:
            pass
    assert torch.isfinite(vq.codebook).all() and torch.isfinite(vq.ema_sum).all() and torch.isfinite(vq.ema_count).all()


@pytest.mark.parametrize("name", list(LAYERS))
def test_inference_is_not_slowed_by_the_check(name, monkeypatch):
    """The guard is a training-step host sync: in eval mode it must not run at all (not even a scan of
    the input), and a NaN passes through instead of stopping an encode."""
    scans = []
    real_isfinite = torch.isfinite

    def counting_isfinite(tensor):
        scans.append(tuple(tensor.shape))
        return real_isfinite(tensor)

    layer = LAYERS[name]().train()
    layer(torch.randn(6, 2, 8))
    monkeypatch.setattr(torch, "isfinite", counting_isfinite)
    layer(torch.randn(6, 2, 8))
    assert scans, "the training step scans its input"  # the counter sees the guard when it runs
    scans.clear()
    assert layer.eval()(_poisoned(float("nan"))).codes.shape == (6, 2)
    assert scans == []


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_constraint_refuses_nan_and_plus_inf(value):
    constraint = TupleConstraint([(a, b, a + b) for a in range(3) for b in range(3)])
    log_probs = torch.log_softmax(torch.randn(4, 2, 3), -1)
    labels = torch.tensor([0, 1, 2, 3])
    assert torch.isfinite(constraint(log_probs, labels))
    zero_probability = log_probs.clone()
    zero_probability[0, 0, 2] = float("-inf")  # a symbol of probability 0 is a valid input
    assert torch.isfinite(constraint(zero_probability, labels))
    log_probs[2, 1, 0] = value
    with pytest.raises(NonFiniteError, match="^TupleConstraint: its log_probs input holds NaN"):
        constraint(log_probs, labels)


def test_training_names_the_layer_and_the_batch(tmp_path, tiny_model_config, tiny_task):
    from neurosym.model import ConceptTransformer
    from neurosym.train import TrainConfig, fit

    model = ConceptTransformer(tiny_model_config(num_codes=4))
    with torch.no_grad():
        next(model.parameters()).fill_(float("inf"))  # a diverged encoder
    with pytest.raises(NonFiniteError, match=r"^GumbelConcepts: its input .* \(epoch 1, batch 1\)$"):
        fit(model, tiny_task(), TrainConfig(epochs=1, device="cpu"), tmp_path, progress=False)
